// ExecBackend against real processes: the scripts in tests/deploy/scripts/.
#include "deploy/exec_backend.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>

#include "deploy/provisioner.h"
#include "tests/deploy/backend_test_support.h"
#include "tests/support/fake_clock.h"
#include "tests/support/fake_publisher.h"

namespace runbot::deploy {
namespace {

using namespace std::chrono_literals;
using K = bot::LifecycleKind;

const std::string kScripts = RUNBOT_DEPLOY_TEST_SCRIPTS;

// Runs the io_context until `done()` holds or `limit` passes; returns done().
template <class Pred>
bool run_until(boost::asio::io_context& io, Pred done, std::chrono::milliseconds limit = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    if (io.stopped()) io.restart();
    io.run_one_for(20ms);
  }
  return done();
}

bool contains(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

using Recorder = testing::JobRecorder;

bot::AppSpec front_end() {
  bot::AppSpec a;
  a.name = bot::AppName{"front-end"};
  a.namespace_template = "pr-{pr}";
  a.provisioner_env = {{"CHART", "charts/front-end"}};
  return a;
}

using testing::up_job;

class ExecBackendTest : public ::testing::Test {
 protected:
  ExecSettings settings(const std::string& script) {
    ExecSettings s;
    s.program = kScripts + "/" + script;
    s.timeout = 5s;
    s.kill_grace = 300ms;
    return s;
  }
  boost::asio::io_context io;
  Recorder rec;
};

TEST_F(ExecBackendTest, SuccessReportsStagesUrlNodesAndTheScriptGetsItsEnvironment) {
  ::setenv("RUNBOT_TEST_LEAK", "must-not-reach-the-script", 1);
  auto s = settings("report.sh");
  s.env = {{"KUBECONFIG", "/etc/runbot/kubeconfig"}};
  ExecBackend backend(io, s);
  auto job = backend.start(up_job(), front_end(), rec.observer());
  EXPECT_TRUE(rec.stages.empty()) << "callbacks must not run inside start()";
  ASSERT_TRUE(run_until(io, [&] { return !rec.outcomes.empty(); }));

  const auto& out = rec.outcomes[0];
  EXPECT_TRUE(out.success) << out.reason;
  EXPECT_EQ(out.exit_status, 0);
  ASSERT_EQ(rec.stages.size(), 2u);
  EXPECT_EQ(rec.stages[0].name, "render");
  EXPECT_EQ(rec.stages[1].name, "deploy");
  EXPECT_EQ(rec.stages[1].index, 2);
  EXPECT_EQ(rec.stages[1].count, 2);
  EXPECT_EQ(rec.stages[1].message, "helm upgrade --install");
  EXPECT_EQ(rec.urls, (std::vector<std::string>{"https://front-end-pr-12.preview.example.com"}));
  ASSERT_EQ(rec.nodes.size(), 2u);
  EXPECT_EQ(rec.nodes[0], (bot::NodeInfo{bot::NodeName{"ip-10-0-1-17"}, bot::CapacityType::spot,
                                         "m5.large", "eu-west-1a"}));
  EXPECT_EQ(rec.nodes[1].capacity, bot::CapacityType::on_demand);

  // argv: <verb> <env-id> after the configured args.
  EXPECT_TRUE(contains(rec.logs, "arg=[up]"));
  EXPECT_TRUE(contains(rec.logs, "arg=[front-end-pr-12]"));
  for (const char* line : {"RUNBOT_VERB=up", "RUNBOT_ENV=front-end-pr-12", "RUNBOT_APP=front-end",
                           "RUNBOT_PR=12", "RUNBOT_NAMESPACE=pr-12", "RUNBOT_IMAGE=pr-12-abc123",
                           R"(RUNBOT_VALUES={"feature.flag":"on \"quoted\"","replicas":"2"})",
                           "RUNBOT_TTL_SECONDS=28800", "RUNBOT_EXPIRES_AT=2026-11-26T20:00:00Z",
                           "RUNBOT_REQUESTED_BY=alice", "RUNBOT_JOB_ID=job-42",
                           "RUNBOT_JANITOR_TTL=8h", "RUNBOT_JANITOR_EXPIRES=2026-11-26T20:00:00Z",
                           "KUBECONFIG=/etc/runbot/kubeconfig", "CHART=charts/front-end"}) {
    EXPECT_TRUE(contains(rec.logs, line)) << "missing in the script's environment: " << line;
  }
  EXPECT_TRUE(contains(rec.logs, std::string("PATH=") + ::getenv("PATH")));
  EXPECT_TRUE(contains(rec.logs, "a warning on stderr"));
  for (const auto& l : rec.logs) {
    EXPECT_EQ(l.find("RUNBOT_TEST_LEAK"), std::string::npos) << "parent environment leaked";
    EXPECT_EQ(l.rfind("runbot:", 0), std::string::npos) << "protocol line logged: " << l;
  }
}

TEST_F(ExecBackendTest, ArgumentsWithSpacesAndShellMetacharactersArriveIntact) {
  const std::string marker = "/tmp/runbot-exec-test-" + std::to_string(::getpid());
  std::filesystem::remove(marker);
  auto s = settings("report.sh");
  s.args = {"two words", "$(touch " + marker + ")", "; rm -rf /nonexistent", "`id`", "*", "a|b&c>d",
            ""};
  ExecBackend backend(io, s);
  bot::AppSpec app = front_end();
  app.provisioner_args = {"--set", "title=It's \"here\" $HOME"};
  auto job = backend.start(up_job(), app, rec.observer());
  ASSERT_TRUE(run_until(io, [&] { return !rec.outcomes.empty(); }));
  ASSERT_TRUE(rec.outcomes[0].success) << rec.outcomes[0].reason;

  std::vector<std::string> args;
  for (const auto& l : rec.logs) {
    if (l.rfind("arg=[", 0) == 0) args.push_back(l);
  }
  EXPECT_EQ(args,
            (std::vector<std::string>{
                "arg=[two words]", "arg=[$(touch " + marker + ")]", "arg=[; rm -rf /nonexistent]",
                "arg=[`id`]", "arg=[*]", "arg=[a|b&c>d]", "arg=[]", "arg=[up]",
                "arg=[front-end-pr-12]", "arg=[--set]", "arg=[title=It's \"here\" $HOME]"}));
  EXPECT_FALSE(std::filesystem::exists(marker)) << "an argument was run by a shell";
}

TEST_F(ExecBackendTest, NonZeroExitFailsWithStatusAndLastLines) {
  auto s = settings("fail.sh");
  s.log_tail_lines = 5;
  ExecBackend backend(io, s);
  auto job = backend.start(up_job(), front_end(), rec.observer());
  ASSERT_TRUE(run_until(io, [&] { return !rec.outcomes.empty(); }));
  const auto& out = rec.outcomes[0];
  EXPECT_FALSE(out.success);
  EXPECT_FALSE(out.cancelled);
  EXPECT_FALSE(out.timed_out);
  EXPECT_EQ(out.exit_status, 3);
  EXPECT_EQ(out.reason, "exited with status 3");
  ASSERT_EQ(out.log_tail.size(), 5u);
  EXPECT_EQ(out.log_tail.back(), "error: relation orders does not exist");
  EXPECT_TRUE(contains(out.log_tail, "step 30"));
  EXPECT_FALSE(contains(out.log_tail, "step 1"));
}

TEST_F(ExecBackendTest, TimeoutEscalatesToSigkillWhenSigtermIsIgnored) {
  auto s = settings("stubborn.sh");
  s.timeout = 300ms;
  s.kill_grace = 300ms;
  ExecBackend backend(io, s);
  const auto started = std::chrono::steady_clock::now();
  auto job = backend.start(up_job(), front_end(), rec.observer());
  ASSERT_TRUE(run_until(io, [&] { return !rec.outcomes.empty(); }));
  const auto elapsed = std::chrono::steady_clock::now() - started;

  const auto& out = rec.outcomes[0];
  EXPECT_FALSE(out.success);
  EXPECT_TRUE(out.timed_out);
  EXPECT_FALSE(out.cancelled);
  EXPECT_EQ(out.signal, SIGKILL);
  EXPECT_EQ(out.reason, "timed out after 300ms; killed by signal 9 (SIGKILL)");
  EXPECT_TRUE(contains(out.log_tail, "got TERM, ignoring")) << "SIGTERM was not sent first";
  EXPECT_GE(elapsed, s.timeout + s.kill_grace);
  ASSERT_EQ(rec.stages.size(), 1u);
}

TEST_F(ExecBackendTest, CancelStopsTheProcessGroupAndReportsCancelledOnce) {
  auto s = settings("provision.sh");
  ExecBackend backend(io, s);
  auto job = backend.start(up_job(), front_end(), rec.observer());
  ASSERT_TRUE(run_until(io, [&] { return !rec.stages.empty(); }));
  job->cancel();
  job->cancel();
  ASSERT_TRUE(run_until(io, [&] { return !rec.outcomes.empty(); }));
  EXPECT_TRUE(rec.outcomes[0].cancelled);
  EXPECT_EQ(rec.outcomes[0].signal, SIGTERM);
  job->cancel();
  io.restart();
  io.run_for(100ms);
  EXPECT_EQ(rec.outcomes.size(), 1u);
}

TEST_F(ExecBackendTest, DroppingTheHandleKillsTheProcessWithoutCallbacks) {
  ExecBackend backend(io, settings("provision.sh"));
  auto job = backend.start(up_job(), front_end(), rec.observer());
  ASSERT_TRUE(run_until(io, [&] { return !rec.stages.empty(); }));
  ASSERT_FALSE(rec.logs.empty());
  ASSERT_EQ(rec.logs[0].rfind("pid ", 0), 0u);
  const pid_t pid = std::stoi(rec.logs[0].substr(4));
  ASSERT_EQ(::kill(pid, 0), 0) << "script should still be running";
  job.reset();
  EXPECT_TRUE(run_until(io, [&] { return ::kill(pid, 0) != 0; })) << "script outlived its job";
  EXPECT_TRUE(rec.outcomes.empty());
}

TEST_F(ExecBackendTest, MissingProgramFailsWithAClearReason) {
  ExecBackend backend(io, settings("does-not-exist.sh"));
  auto job = backend.start(up_job(), front_end(), rec.observer());
  EXPECT_TRUE(rec.outcomes.empty()) << "callbacks must not run inside start()";
  ASSERT_TRUE(run_until(io, [&] { return !rec.outcomes.empty(); }));
  EXPECT_FALSE(rec.outcomes[0].success);
  EXPECT_EQ(rec.outcomes[0].reason,
            "cannot start '" + kScripts + "/does-not-exist.sh': No such file or directory");
  job->cancel();  // harmless after a failed spawn
}

class ExecProvisionerTest : public ::testing::Test {
 protected:
  boost::asio::io_context io;
  testing::FakeClock clock;
  testing::RecordingPublisher publisher;

  std::vector<K> kinds_of(const std::string& job) const {
    std::vector<K> out;
    for (const auto& e : publisher.events) {
      if (e.job.str() == job) out.push_back(e.kind);
    }
    return out;
  }
  bool has(const std::string& job, K kind) const {
    auto k = kinds_of(job);
    return std::find(k.begin(), k.end(), kind) != k.end();
  }
};

TEST_F(ExecProvisionerTest, DownDuringUpKillsTheUpScriptThenRunsDown) {
  ExecSettings s;
  s.program = kScripts + "/provision.sh";
  s.timeout = 5s;
  s.kill_grace = 300ms;
  ExecBackend backend(io, s);
  Provisioner provisioner({}, {{bot::AppName{"front-end"}, front_end()}}, backend, publisher,
                          clock);

  auto up = up_job();
  provisioner.on_job(up);
  ASSERT_TRUE(run_until(io, [&] { return has("job-42", K::progress); }));
  EXPECT_EQ(provisioner.stats().running, 1u);

  bot::Job down = up;
  down.id = bot::JobId{"job-43"};
  down.verb = bot::JobVerb::down;
  provisioner.on_job(down);
  ASSERT_TRUE(run_until(io, [&] { return has("job-43", K::deleted); }));

  EXPECT_EQ(kinds_of("job-42"), (std::vector<K>{K::accepted, K::progress, K::cancelled}));
  EXPECT_EQ(kinds_of("job-43"), (std::vector<K>{K::accepted, K::progress, K::deleted}));
  auto stats = provisioner.stats();
  EXPECT_EQ(stats.cancelled, 1u);
  EXPECT_EQ(stats.done, 1u);
  EXPECT_EQ(stats.running, 0u);
}

TEST_F(ExecProvisionerTest, MissingProgramBecomesAFailedEvent) {
  ExecSettings s;
  s.program = "/nonexistent/runbot-provision";
  ExecBackend backend(io, s);
  Provisioner provisioner({}, {{bot::AppName{"front-end"}, front_end()}}, backend, publisher,
                          clock);
  provisioner.on_job(up_job());
  ASSERT_TRUE(run_until(io, [&] { return has("job-42", K::failed); }));
  const auto& failed = publisher.events.back();
  EXPECT_EQ(failed.reason,
            "cannot start '/nonexistent/runbot-provision': No such file or directory");
  EXPECT_EQ(provisioner.stats().failed, 1u);
}

}  // namespace
}  // namespace runbot::deploy
