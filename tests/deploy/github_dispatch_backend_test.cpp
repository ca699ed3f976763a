// GithubDispatchBackend against FakeGitHub (loopback HTTPS) with GitHub's signed workflow_run
// webhooks arriving at runbot's own HTTP server; time (timeouts, retry backoff) from a FakeClock.
#include "deploy/github_dispatch_backend.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>

#include "adapters/common/http_server.h"
#include "deploy/provisioner.h"
#include "tests/adapters/common/run_until.h"
#include "tests/deploy/backend_test_support.h"
#include "tests/support/fake_clock.h"
#include "tests/support/fake_github.h"
#include "tests/support/fake_publisher.h"

namespace runbot::deploy {
namespace {

using namespace std::chrono_literals;
using common::testing::run_until;
using testing::WorkflowRun;
using K = bot::LifecycleKind;

constexpr const char* kRepo = "acme/previews";
constexpr const char* kToken = "ghp_fake0123456789";
constexpr const char* kSecret = "webhook-secret-0123456789";

using Recorder = testing::JobRecorder;

bot::AppSpec front_end() {
  bot::AppSpec a;
  a.name = bot::AppName{"front-end"};
  a.namespace_template = "pr-{pr}";
  a.url_template = "https://{env}.preview.example.com";
  return a;
}

using testing::up_job;

WorkflowRun run_of(const std::string& job_id, std::int64_t id = 9001) {
  WorkflowRun r;
  r.id = id;
  r.display_title = "runbot " + job_id;
  return r;
}

class GithubDispatchTest : public ::testing::Test {
 protected:
  GithubDispatchSettings settings(const std::string& repository = kRepo) {
    GithubDispatchSettings s;
    s.api_url = fake.url();
    s.repository = repository;
    s.token = kToken;
    s.webhook_secret = kSecret;
    s.ca_file = ca.ca_file;
    s.timeout = 30min;
    s.retry_backoff = 2s;
    return s;
  }

  void make(GithubDispatchSettings s) {
    auto created = GithubDispatchBackend::create(io, clock, std::move(s));
    ASSERT_TRUE(created) << created.error().message;
    backend = std::move(*created);
    common::HttpServerSettings hs;
    hs.port = 0;
    server = std::make_unique<common::HttpServer>(io, hs);
    backend->route(*server);
    auto port = server->start();
    ASSERT_TRUE(port) << port.error().message;
    hook_url = "http://127.0.0.1:" + std::to_string(*port) + "/hooks/github";
  }

  // Starts `job` and waits until GitHub has its dispatch and the backend has the answer.
  std::unique_ptr<RunningJob> start(const bot::Job& job, const bot::AppSpec& app = front_end()) {
    const size_t before = fake.dispatches.size();
    auto handle = backend->start(job, app, rec.observer());
    EXPECT_TRUE(rec.stages.empty() && rec.outcomes.empty()) << "callbacks inside start()";
    clock.run_due();
    EXPECT_TRUE(run_until(io, [&] {
      return fake.dispatches.size() > before &&
             (!rec.stages.empty() || !rec.outcomes.empty() || !rec.logs.empty());
    }));
    return handle;
  }

  int webhook(const std::string& action, const WorkflowRun& run, const std::string& secret = kSecret) {
    int status = 0;
    fake.send_workflow_run(hook_url, secret, action, run, [&](int s, std::string) { status = s; });
    EXPECT_TRUE(run_until(io, [&] { return status != 0; }));
    return status;
  }

  int post(std::vector<std::pair<std::string, std::string>> headers, std::string body) {
    int status = 0;
    fake.send(hook_url, std::move(headers), std::move(body), [&](int s, std::string) { status = s; });
    EXPECT_TRUE(run_until(io, [&] { return status != 0; }));
    return status;
  }

  boost::asio::io_context io;
  testing::FakeClock clock;
  testing::TestCa ca = testing::TestCa::make();
  testing::FakeGitHub fake{io, ca, kRepo, kToken};
  std::unique_ptr<GithubDispatchBackend> backend;
  std::unique_ptr<common::HttpServer> server;
  std::string hook_url;
  Recorder rec;
};

TEST_F(GithubDispatchTest, DispatchCarriesTheEventTypeThePayloadAndGitHubsHeaders) {
  make(settings());
  auto handle = start(up_job());
  ASSERT_EQ(fake.dispatches.size(), 1u);
  const auto& d = fake.dispatches[0];
  EXPECT_EQ(d.repository, kRepo);
  EXPECT_EQ(d.event_type, "runbot-up");
  const auto& p = d.client_payload;
  EXPECT_EQ(p["job_id"], "job-42");
  EXPECT_EQ(p["verb"], "up");
  EXPECT_EQ(p["env"], "front-end-pr-12");
  EXPECT_EQ(p["app"], "front-end");
  EXPECT_EQ(p["pr"], 12);
  EXPECT_EQ(p["namespace"], "pr-12");
  EXPECT_EQ(p["image"], "pr-12-abc123");
  EXPECT_EQ(p["requested_by"], "alice");
  EXPECT_EQ(p["values"], (nlohmann::json{{"replicas", "2"}, {"feature.flag", "on \"quoted\""}}));
  EXPECT_EQ(p["ttl"]["seconds"], 28800);
  EXPECT_EQ(p["ttl"]["janitor_ttl"], "8h");
  EXPECT_EQ(p["ttl"]["expires_at"], "2026-11-26T20:00:00Z");
  EXPECT_EQ(p["ttl"]["janitor_expires"], "2026-11-26T20:00:00Z");
  EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);

  ASSERT_EQ(rec.stages.size(), 1u);
  EXPECT_EQ(rec.stages[0].name, "dispatch");
  EXPECT_NE(rec.stages[0].message.find("runbot-up"), std::string::npos);
  EXPECT_TRUE(rec.outcomes.empty()) << "the job waits for the workflow";

  bot::Job down = up_job("job-43");
  down.verb = bot::JobVerb::down;
  Recorder other;
  auto h2 = backend->start(down, front_end(), other.observer());
  clock.run_due();
  ASSERT_TRUE(run_until(io, [&] { return !other.stages.empty(); }));
  EXPECT_EQ(fake.dispatches.back().event_type, "runbot-down");
  EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
}

TEST_F(GithubDispatchTest, WorkflowRunWebhooksReportTheStageAndSuccessWithTheUrl) {
  make(settings());
  auto handle = start(up_job());
  EXPECT_EQ(webhook("requested", run_of("job-42")), 200);
  EXPECT_EQ(webhook("in_progress", run_of("job-42")), 200);
  EXPECT_EQ(webhook("in_progress", run_of("job-42")), 200) << "a redelivery is harmless";
  ASSERT_EQ(rec.stages.size(), 3u) << "dispatch, queued, running";
  EXPECT_EQ(rec.stages[1].name, "workflow");
  EXPECT_EQ(rec.stages[2].message,
            "GitHub workflow Preview environment running: "
            "https://github.com/acme/previews/actions/runs/9001");
  EXPECT_TRUE(rec.outcomes.empty());

  WorkflowRun done = run_of("job-42");
  done.conclusion = "success";
  EXPECT_EQ(webhook("completed", done), 200);
  ASSERT_EQ(rec.outcomes.size(), 1u);
  EXPECT_TRUE(rec.outcomes[0].success) << rec.outcomes[0].reason;
  EXPECT_EQ(rec.urls, (std::vector<std::string>{"https://front-end-pr-12.preview.example.com"}));
  EXPECT_EQ(rec.logs, (std::vector<std::string>{
                          "GitHub run: https://github.com/acme/previews/actions/runs/9001"}));
  EXPECT_TRUE(fake.cancels.empty());
  EXPECT_EQ(clock.pending(), 0u) << "the timeout is disarmed";
  EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
}

TEST_F(GithubDispatchTest, FailedConclusionFailsTheJobWithTheRunsUrl) {
  make(settings());
  auto handle = start(up_job());
  WorkflowRun done = run_of("job-42", 777);
  done.conclusion = "failure";
  EXPECT_EQ(webhook("completed", done), 200);
  ASSERT_EQ(rec.outcomes.size(), 1u);
  EXPECT_FALSE(rec.outcomes[0].success);
  EXPECT_FALSE(rec.outcomes[0].cancelled);
  EXPECT_EQ(rec.outcomes[0].reason,
            "GitHub workflow Preview environment concluded failure: "
            "https://github.com/acme/previews/actions/runs/777");
  EXPECT_TRUE(rec.urls.empty());
}

TEST_F(GithubDispatchTest, BadSignaturesAre401AndChangeNothing) {
  make(settings());
  auto handle = start(up_job());
  WorkflowRun done = run_of("job-42");
  done.conclusion = "success";
  EXPECT_EQ(webhook("completed", done, "another-secret-0123456789"), 401);
  const std::string body = fake.workflow_run_body("completed", done).dump();
  EXPECT_EQ(post({{"X-GitHub-Event", "workflow_run"}}, body), 401) << "no signature";
  EXPECT_EQ(post({{"X-GitHub-Event", "workflow_run"},
                  {"X-Hub-Signature-256", deploy::github_signature(kSecret, body + " ")}},
                 body),
            401)
      << "the signature of another body";
  EXPECT_EQ(post({{"X-GitHub-Event", "workflow_run"},
                  {"X-Hub-Signature", "sha1=0000000000000000000000000000000000000000"}},
                 body),
            401)
      << "only the SHA-256 signature counts";
  EXPECT_TRUE(rec.outcomes.empty());
  EXPECT_EQ(rec.stages.size(), 1u);
  EXPECT_EQ(backend->stats().webhooks_rejected, 4u);
  // Signed but not JSON: 400; signed ping: ignored.
  EXPECT_EQ(post({{"X-GitHub-Event", "workflow_run"},
                  {"X-Hub-Signature-256", deploy::github_signature(kSecret, "{not json")}},
                 "{not json"),
            400);
  const std::string ping = R"({"zen":"Keep it logically awesome.","hook_id":1})";
  EXPECT_EQ(post({{"X-GitHub-Event", "ping"},
                  {"X-Hub-Signature-256", deploy::github_signature(kSecret, ping)}},
                 ping),
            204);
  EXPECT_TRUE(rec.outcomes.empty());
  // The genuine delivery still works.
  EXPECT_EQ(webhook("completed", done), 200);
  ASSERT_EQ(rec.outcomes.size(), 1u);
  EXPECT_TRUE(rec.outcomes[0].success);
}

TEST_F(GithubDispatchTest, RunsOfOtherJobsRepositoriesAndEventsAreIgnored) {
  make(settings());
  auto handle = start(up_job());
  WorkflowRun other = run_of("job-4");  // a prefix of job-42 is not job-42
  other.conclusion = "failure";
  EXPECT_EQ(webhook("completed", other), 202) << "another replica may own it";
  WorkflowRun push = run_of("job-42");
  push.event = "push";
  push.conclusion = "failure";
  EXPECT_EQ(webhook("completed", push), 204);
  EXPECT_TRUE(rec.outcomes.empty());
  EXPECT_EQ(backend->stats().webhooks_unknown, 1u);
  EXPECT_EQ(backend->stats().webhooks_ignored, 1u);
  // A title with more words still finds the job.
  WorkflowRun titled = run_of("job-42");
  titled.display_title = "Deploy front-end-pr-12 (runbot job-42)";
  titled.conclusion = "success";
  EXPECT_EQ(webhook("completed", titled), 200);
  ASSERT_EQ(rec.outcomes.size(), 1u);
  EXPECT_TRUE(rec.outcomes[0].success);
}

TEST_F(GithubDispatchTest, DispatchToARepositoryTheTokenCannotSeeFailsClearly) {
  make(settings("acme/missing"));
  auto handle = start(up_job());
  ASSERT_EQ(rec.outcomes.size(), 1u);
  EXPECT_EQ(rec.outcomes[0].reason,
            "repository acme/missing not found or the token cannot see it (404 Not Found)");
  EXPECT_EQ(fake.dispatches.size(), 1u) << "a 404 is not retried";
  EXPECT_EQ(clock.pending(), 0u);
}

TEST_F(GithubDispatchTest, UnprocessableDispatchFailsWithGitHubsMessage) {
  make(settings());
  fake.fail_next({422});
  auto handle = start(up_job());
  ASSERT_EQ(rec.outcomes.size(), 1u);
  EXPECT_EQ(rec.outcomes[0].reason,
            "GitHub refused the dispatch to acme/previews (422 Unprocessable Entity: Invalid "
            "request.)");
}

TEST_F(GithubDispatchTest, ServerErrorsAreRetriedWithBackoffUntilGitHubAccepts) {
  make(settings());
  fake.fail_next({502, 503});
  auto handle = start(up_job());
  ASSERT_EQ(fake.dispatches.size(), 1u);
  EXPECT_TRUE(rec.stages.empty());
  clock.advance(1999ms);
  io.poll();
  EXPECT_EQ(fake.dispatches.size(), 1u) << "waits 2 s before the first retry";
  clock.advance(1ms);
  ASSERT_TRUE(run_until(io, [&] { return rec.logs.size() == 2; }));
  EXPECT_EQ(fake.dispatches.size(), 2u);
  clock.advance(4s);
  ASSERT_TRUE(run_until(io, [&] { return !rec.stages.empty(); }));
  EXPECT_EQ(fake.dispatches.size(), 3u);
  EXPECT_EQ(fake.dispatches[2].status, 204);
  EXPECT_EQ(rec.stages[0].name, "dispatch");
  EXPECT_TRUE(rec.outcomes.empty());
  EXPECT_EQ(fake.dispatches[0].client_payload, fake.dispatches[2].client_payload);
}

TEST_F(GithubDispatchTest, RetriesEndWithAFailureNamingTheLastError) {
  auto s = settings();
  s.dispatch_attempts = 2;
  make(s);
  fake.fail_next({500, 500});
  auto handle = start(up_job());
  clock.advance(2s);
  ASSERT_TRUE(run_until(io, [&] { return !rec.outcomes.empty(); }));
  EXPECT_EQ(fake.dispatches.size(), 2u);
  EXPECT_EQ(rec.outcomes[0].reason,
            "could not send repository_dispatch to acme/previews after 2 attempts: GitHub "
            "answered 500: Server Error");
}

TEST_F(GithubDispatchTest, CancelDuringTheRunCancelsItOnGitHub) {
  make(settings());
  auto handle = start(up_job());
  EXPECT_EQ(webhook("in_progress", run_of("job-42", 4242)), 200);
  handle->cancel();
  handle->cancel();
  EXPECT_TRUE(rec.outcomes.empty()) << "not inside cancel()";
  ASSERT_TRUE(run_until(io, [&] { return !rec.outcomes.empty(); }));
  ASSERT_EQ(fake.cancels.size(), 1u);
  EXPECT_EQ(fake.cancels[0].run_id, 4242);
  EXPECT_TRUE(rec.outcomes[0].cancelled);
  EXPECT_EQ(rec.outcomes[0].reason, "cancelled; GitHub run 4242 cancelled");
  // GitHub then reports the run as cancelled: nothing more happens.
  WorkflowRun done = run_of("job-42", 4242);
  done.conclusion = "cancelled";
  EXPECT_EQ(webhook("completed", done), 202);
  EXPECT_EQ(rec.outcomes.size(), 1u);
  EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
}

TEST_F(GithubDispatchTest, CancelBeforeTheRunIsKnownCancelsTheRunWhenItAppears) {
  make(settings());
  auto handle = start(up_job());
  handle->cancel();
  clock.run_due();
  ASSERT_EQ(rec.outcomes.size(), 1u);
  EXPECT_TRUE(rec.outcomes[0].cancelled);
  EXPECT_TRUE(fake.cancels.empty());
  EXPECT_EQ(webhook("requested", run_of("job-42", 31337)), 200);
  ASSERT_TRUE(run_until(io, [&] { return !fake.cancels.empty(); }));
  EXPECT_EQ(fake.cancels[0].run_id, 31337);
  EXPECT_EQ(rec.outcomes.size(), 1u);
  EXPECT_EQ(rec.stages.size(), 1u) << "no stage after the job ended";
}

TEST_F(GithubDispatchTest, NoResultWithinTheTimeoutFailsTheJobAndCancelsTheRun) {
  make(settings());
  auto handle = start(up_job());
  EXPECT_EQ(webhook("in_progress", run_of("job-42", 55)), 200);
  clock.advance(29min);
  EXPECT_TRUE(rec.outcomes.empty());
  clock.advance(1min);
  ASSERT_EQ(rec.outcomes.size(), 1u);
  EXPECT_TRUE(rec.outcomes[0].timed_out);
  EXPECT_EQ(rec.outcomes[0].reason, "no result from GitHub within 30m");
  ASSERT_TRUE(run_until(io, [&] { return !fake.cancels.empty(); }));
  EXPECT_EQ(fake.cancels[0].run_id, 55);
}

TEST_F(GithubDispatchTest, DroppingTheHandleSilencesTheJob) {
  make(settings());
  auto handle = start(up_job());
  handle.reset();
  WorkflowRun done = run_of("job-42");
  done.conclusion = "success";
  EXPECT_EQ(webhook("completed", done), 202);
  clock.advance(1h);
  EXPECT_TRUE(rec.outcomes.empty());
}

TEST_F(GithubDispatchTest, SettingsAreCheckedAtCreation) {
  GithubDispatchSettings s;
  s.api_url = "http://api.github.com";
  s.repository = "acme";
  auto created = GithubDispatchBackend::create(io, clock, s);
  ASSERT_FALSE(created);
  for (const char* expected : {"api_url must be an https:// URL", "repository must be owner/name",
                               "token is required", "webhook_secret is required"}) {
    EXPECT_NE(created.error().message.find(expected), std::string::npos)
        << expected << " in " << created.error().message;
  }
}

// The whole provisioner: a job in, lifecycle events out, the outcome from GitHub's webhooks.
TEST_F(GithubDispatchTest, ProvisionerReportsReadyFromTheWorkflowAndCancelsItOnDown) {
  make(settings());
  testing::RecordingPublisher publisher;
  std::map<bot::AppName, bot::AppSpec> catalog{{bot::AppName{"front-end"}, front_end()}};
  Provisioner provisioner({}, catalog, *backend, publisher, clock);
  const bot::EnvId env{"front-end-pr-12"};

  provisioner.on_job(up_job("job-1"));
  clock.run_due();
  ASSERT_TRUE(run_until(io, [&] { return publisher.kinds(env).size() == 2; }));
  EXPECT_EQ(webhook("in_progress", run_of("job-1", 1)), 200);
  WorkflowRun done = run_of("job-1", 1);
  done.conclusion = "success";
  EXPECT_EQ(webhook("completed", done), 200);
  EXPECT_EQ(publisher.kinds(env), (std::vector<K>{K::accepted, K::progress, K::progress, K::ready}));
  const auto ready = publisher.of(env).back();
  EXPECT_EQ(ready.url, "https://front-end-pr-12.preview.example.com");
  EXPECT_EQ(ready.source, "/runbot/provisioner/github-dispatch");
  EXPECT_EQ(publisher.of(env)[2].stage, "workflow");

  // An update is cancelled by a down; the down then runs its own workflow.
  provisioner.on_job(up_job("job-2"));
  clock.run_due();
  ASSERT_TRUE(run_until(io, [&] { return fake.dispatches.size() == 2; }));
  EXPECT_EQ(webhook("in_progress", run_of("job-2", 2)), 200);
  bot::Job down = up_job("job-3");
  down.verb = bot::JobVerb::down;
  provisioner.on_job(down);
  ASSERT_TRUE(run_until(io, [&] {
    return provisioner.jobs().size() == 1 && provisioner.jobs()[0].id == down.id;
  }));
  clock.run_due();  // the down's dispatch is sent on the clock's next turn
  ASSERT_TRUE(run_until(io, [&] { return fake.dispatches.size() == 3; }));
  ASSERT_EQ(fake.cancels.size(), 1u);
  EXPECT_EQ(fake.cancels[0].run_id, 2);
  EXPECT_EQ(fake.dispatches[2].event_type, "runbot-down");
  WorkflowRun deleted = run_of("job-3", 3);
  deleted.conclusion = "success";
  EXPECT_EQ(webhook("completed", deleted), 200);
  const auto kinds = publisher.kinds(env);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), K::cancelled), 1);
  EXPECT_EQ(kinds.back(), K::deleted);
  EXPECT_EQ(provisioner.stats().running, 0u);
  EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
}

}  // namespace
}  // namespace runbot::deploy
