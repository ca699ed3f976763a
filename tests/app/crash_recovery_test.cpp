// SIGKILL in the middle of a stream (issue 4: "kill runbot (SIGKILL) in the middle of a stream of
// 10,000 mixed events and restart it — every announcement appears exactly once").
//
// The real `runbot run` binary runs as a child process against the shared real broker
// ($RUNBOT_TEST_KAFKA) and a FakeSlack served by this process (TLS with a TestCa, Socket Mode,
// chat.postMessage with metadata, conversations.history/replies). Topics, consumer groups and the
// state topic carry a per-run suffix, so reruns and other tests do not interfere.
//
// The test plays the user (slash commands create a few environments) and the provisioner (ready
// events put them on nodes), then produces 10,000 records, mixed: lifecycle `progress` events with
// a marker each, NTH spot-interruption notices (the real NTH log fixture, ids, node names and
// times replaced) for nodes that host environments and for other nodes, exporter BackOff warnings
// for the environments' pods (one grouped message per environment, edited in place), irrelevant
// records (the real exporter SuccessfulCreate and kubelet Pulling events, progress for an unknown
// environment), exact duplicates of recent records and poison records. Once half of the stream
// is produced (and at least a tenth of the expected announcements reached Slack), runbot is
// SIGKILLed and started again with the same config while production goes on.
//
// Asserted, as a Slack user would see it: every progress marker and every interruption notice is
// in exactly one message created in Slack (digests included), in the right thread; every notice's
// on-call summary exactly once; each environment's grouped warning message posted once and
// finally counting exactly the distinct warnings it got; nothing for irrelevant records; every
// poison record in `<topic>.dlq`; each slash command as an audit record on the audit topic (issue 7);
// no protocol problems seen by the fake.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bot/model.h"
#include "bot/time.h"
#include "events/cloudevents.h"
#include "events/cluster_decoder.h"
#include "events/kafka_consumer.h"
#include "events/kafka_producer.h"
#include "tests/support/fake_slack.h"
#include "tests/support/tls_test_ca.h"

extern char** environ;

namespace runbot {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;
using nlohmann::json;

constexpr auto kTestBudget = 170s;  // everything, runbot's two starts included
constexpr long kRecords = 10000;
constexpr double kRate = 500;       // records produced per second
const std::string kOncall = "C0ONCALL";

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string fixture(const std::string& name) {
  return read_file(std::string(RUNBOT_SOURCE_DIR) + "/tests/testdata/events/" + name);
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (auto p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
}

std::string tail_of(const std::string& path, size_t bytes = 6000) {
  std::string s = read_file(path);
  return s.size() > bytes ? "…" + s.substr(s.size() - bytes) : s;
}

// The runbot binary as a child process, its output appended to `log`.
class RunbotProcess {
 public:
  RunbotProcess(std::string config, std::string log) : config_(std::move(config)), log_(std::move(log)) {}
  ~RunbotProcess() { kill_now(); }

  bool start() {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    std::vector<std::string> args{RUNBOT_BIN, "run", "--config", config_};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int err = posix_spawn(&pid_, RUNBOT_BIN, &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err != 0) pid_ = -1;
    return pid_ > 0;
  }
  // True while the child runs (reaps it when it has exited).
  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }
  void kill_now() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  // SIGTERM and wait (graceful stop at the end).
  void terminate() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto deadline = SteadyClock::now() + 20s;
    while (running() && SteadyClock::now() < deadline) ::usleep(20000);
    kill_now();
  }

 private:
  std::string config_, log_;
  pid_t pid_ = -1;
};

// One record of the planned stream.
enum class What { progress, nth_hosted, nth_other, warning, irrelevant, unknown_env, duplicate, poison };

struct Planned {
  What what = What::progress;
  std::string topic, key, value;
  events::Headers headers;
  size_t env = 0;           // progress, warning: index into the environments
  std::string marker;       // what its announcement shows (progress: mk<seq>x; NTH: the deadline)
  long original = -1;       // duplicate: the seq it repeats
};

struct Env {
  int pr;
  std::string app, id, channel, node;
  std::string card_ts;  // the thread root, once posted
};

TEST(CrashRecovery, SigkillInTheMiddleOfTenThousandEventsAnnouncesEverythingExactlyOnce) {
  const char* bootstrap_env = std::getenv("RUNBOT_TEST_KAFKA");
  if (bootstrap_env == nullptr || *bootstrap_env == '\0') {
    FAIL() << "RUNBOT_TEST_KAFKA is not set: this integration test needs a real Kafka broker. Start one with "
              "`bash .ci/kafka/fetch.sh && bash .ci/kafka/start.sh` (it prints the bootstrap address, default "
              "127.0.0.1:19092) and export RUNBOT_TEST_KAFKA=127.0.0.1:19092 (`.ci/run` does both)";
  }
  const std::string bootstrap = bootstrap_env;
  const auto t0 = SteadyClock::now();
  const auto test_deadline = t0 + kTestBudget;
  const auto seconds_since = [](SteadyClock::time_point t) {
    return std::chrono::duration<double>(SteadyClock::now() - t).count();
  };

  // ---- per-run names ----
  const std::string sfx = std::to_string(::getpid()) + "-" +
                          std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());
  const std::string t_jobs = "crash-" + sfx + ".jobs", t_events = "crash-" + sfx + ".events",
                    t_cluster = "crash-" + sfx + ".cluster-events", t_audit = "crash-" + sfx + ".audit",
                    t_state = "crash-" + sfx + ".state";
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("runbot-crash-" + sfx);
  std::filesystem::create_directories(dir);
  const std::string log_path = (dir / "runbot.log").string();
  const std::string config_path = (dir / "runbot.yaml").string();

  boost::asio::io_context io;
  testing::TestCa ca = testing::TestCa::make();
  testing::FakeSlack fake(io, ca);
  fake.start();

  std::vector<Env> envs{{1, "front-end", "", "C0001", "ip-10-1-0-1.ec2.internal", ""},
                        {2, "front-end", "", "C0002", "ip-10-1-0-1.ec2.internal", ""},
                        {3, "api", "", "C0003", "ip-10-1-0-2.ec2.internal", ""},
                        {4, "docs", "", "C0004", "ip-10-1-0-3.ec2.internal", ""}};
  for (auto& e : envs) e.id = e.app + "-pr-" + std::to_string(e.pr);
  const std::vector<std::string> hosted_nodes{"ip-10-1-0-1.ec2.internal", "ip-10-1-0-2.ec2.internal",
                                              "ip-10-1-0-3.ec2.internal"};

  {
    std::ofstream cfg(config_path);
    cfg << "http:\n  port: -1\n"
        << "kafka:\n  brokers: " << bootstrap << "\n  group_id: runbot-bot-" << sfx
        << "\n  provisioner_group_id: runbot-prov-" << sfx << "\n  session_timeout: 6s\n"
        << "  topics:\n    jobs: " << t_jobs << "\n    events: " << t_events << "\n    cluster_events: " << t_cluster
        << "\n    audit: " << t_audit << "\n    state: " << t_state << "\n"
        << "state:\n  save_delay_ms: 50\n"
        << "notifications:\n  oncall_channel: slack:" << kOncall
        << "\n  messages_per_second: 100000\n  burst: 100000\n"
        << "provisioner:\n  backend: demo\n"
        << "log:\n  format: text\n  level: info\n"
        << "slack:\n  app_token: xapp-1-test\n  bot_token: xoxb-test\n  api_base_url: " << fake.api_base_url()
        << "\n  ca_file: " << ca.ca_file << "\n  connections: 1\n  messages_per_second: 100000\n  burst: 100000\n"
        // The apps of the embedded demo configuration (bot/app/config.cpp).
        << "apps:\n"
        << "  front-end:\n    repo: acme/front-end\n    team: web\n    default_ttl: 8h\n    max_ttl: 3d\n"
        << "    rate_per_hour: 0.625\n    suspended_rate_per_hour: 0.05\n    url: https://{env}.demo.runbot.invalid\n"
        << "  api:\n    repo: acme/api\n    team: platform\n    default_ttl: 4h\n    max_ttl: 1d\n"
        << "    rate_per_hour: 0.9\n    suspended_rate_per_hour: 0.08\n    url: https://{env}.demo.runbot.invalid\n"
        << "  docs:\n    repo: acme/docs\n    team: web\n    default_ttl: 2h\n    max_ttl: 12h\n"
        << "    rate_per_hour: 0.12\n    url: https://{env}.demo.runbot.invalid\n";
  }

  events::KafkaSettings ks;
  ks.brokers = bootstrap;
  ks.session_timeout = 6s;
  auto producer = events::KafkaProducer::create(io, ks);
  ASSERT_TRUE(producer) << producer.error().message;

  RunbotProcess runbot(config_path, log_path);
  auto run_until = [&](const std::function<bool()>& done, std::chrono::seconds limit) {
    const auto deadline = SteadyClock::now() + limit;
    while (!done()) {
      if (SteadyClock::now() > deadline || SteadyClock::now() > test_deadline) return false;
      io.run_one_for(2ms);
    }
    return true;
  };
  // Slack socket of the current runbot process: a new one after each start.
  int last_socket = 0;
  auto wait_connected = [&](std::chrono::seconds limit) {
    return run_until([&] {
      auto open = fake.open_sockets();
      if (!open.empty() && open.back() > last_socket) {
        last_socket = open.back();
        return true;
      }
      return false;
    }, limit);
  };

  // ---- 1. runbot up, environments created from Slack and made ready on their nodes ----
  ASSERT_TRUE(runbot.start()) << "cannot spawn " << RUNBOT_BIN;
  ASSERT_TRUE(wait_connected(60s)) << "runbot did not connect to Slack; its log:\n" << tail_of(log_path);
  const double first_start_s = seconds_since(t0);
  for (const auto& e : envs) fake.send_slash(-1, "up " + e.app + " " + std::to_string(e.pr), "U0DEV01", e.channel);
  ASSERT_TRUE(run_until([&] {
    for (auto& e : envs) {
      if (!e.card_ts.empty()) continue;
      for (const auto& p : fake.posted) {
        if (p.channel == e.channel && p.thread_ts.empty()) e.card_ts = p.ts;
      }
      if (e.card_ts.empty()) return false;
    }
    return true;
  }, 30s)) << "status cards were not posted; runbot's log:\n" << tail_of(log_path);

  long delivered = 0, failed = 0;
  auto on_delivery = [&](bot::Status st) {
    if (st) ++delivered; else ++failed;
  };
  for (const auto& e : envs) {
    bot::LifecycleEvent ready;
    ready.id = "ready-" + e.id + "-" + sfx;
    ready.source = "/runbot/provisioner/crash-test";
    ready.kind = bot::LifecycleKind::ready;
    ready.env = bot::EnvId{e.id};
    ready.time = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    ready.url = "https://" + e.id + ".demo.runbot.invalid";
    ready.nodes = {bot::NodeInfo{bot::NodeName{e.node}, bot::CapacityType::spot, "m6i.large", "eu-west-1a"}};
    events::EncodedRecord r = events::encode_lifecycle(ready);
    (*producer)->produce(t_events, r.key, std::move(r.value), r.headers, on_delivery);
  }
  ASSERT_TRUE(run_until([&] {
    size_t n = 0;
    for (const auto& e : envs) {
      for (const auto& p : fake.posted) {
        if (p.channel == e.channel && p.thread_ts == e.card_ts && p.text.find(" is ready") != std::string::npos) {
          ++n;
          break;
        }
      }
    }
    return n == envs.size();
  }, 30s)) << "environments did not become ready; runbot's log:\n" << tail_of(log_path);

  // ---- 2. the stream, planned in full first so the expected announcements are known ----
  const std::string nth_real = fixture("real/nth-interruption-event-log-imds-spot-itn.json");
  const std::string backoff = fixture("k8s-resmoio-pod-backoff-reconstructed.json");
  const std::string created = fixture("real/kubernetes-event-exporter-resmoio-stdout-successfulcreate.json");
  const std::string pulling = fixture("real/k8s-core-v1-event-pulling-otel-doc.json");
  const std::string nth_template = fixture("nth-webhook-default-template.txt");
  ASSERT_FALSE(nth_real.empty() || backoff.empty() || created.empty() || pulling.empty() || nth_template.empty());

  std::mt19937 rng(20261126);
  std::vector<Planned> plan;
  plan.reserve(kRecords);
  std::map<std::string, std::vector<std::string>> thread_markers;  // env id -> markers due in its thread
  std::vector<std::string> oncall_markers;
  std::map<std::string, std::set<std::string>> warning_uids;  // env id -> distinct warnings
  std::set<std::string> poison_ids;
  std::set<std::string> silent_markers;  // must never appear
  const auto base = std::chrono::sys_days{std::chrono::year{2030} / 1 / 1};
  // A provisioner progress event for `env` whose message is p.marker.
  auto progress_record = [&](Planned& p, const std::string& id, const std::string& env) {
    bot::LifecycleEvent e;
    e.id = id;
    e.source = "/runbot/provisioner/crash-test";
    e.kind = bot::LifecycleKind::progress;
    e.env = bot::EnvId{env};
    e.time = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    e.stage = "deploy";
    e.message = p.marker;
    events::EncodedRecord r = events::encode_lifecycle(e);
    p.topic = t_events;
    p.key = r.key;
    p.value = *r.value;
    p.headers = r.headers;
  };
  for (long seq = 0; seq < kRecords; ++seq) {
    Planned p;
    const int roll = static_cast<int>(rng() % 100);
    const std::string s = std::to_string(seq);
    if (roll < 18 && seq > 60) {
      // An exact duplicate of a recent record (not a poison one): the same key, value, headers.
      long back = seq - 1 - static_cast<long>(rng() % 50);
      while (back > 0 && (plan[static_cast<size_t>(back)].what == What::poison || plan[static_cast<size_t>(back)].what == What::duplicate)) --back;
      p = plan[static_cast<size_t>(back)];
      p.original = back;
      p.what = What::duplicate;
    } else if (roll < 38) {
      p.what = What::progress;
      p.env = static_cast<size_t>(rng() % envs.size());
      p.marker = "mk" + s + "x";
      progress_record(p, "lc-" + sfx + "-" + s, envs[p.env].id);
      thread_markers[envs[p.env].id].push_back(p.marker);
    } else if (roll < 44) {
      // NTH notice (the real log-form fixture): half of them for a node hosting environments.
      const bool hosted = roll < 41;
      p.what = hosted ? What::nth_hosted : What::nth_other;
      const std::string node =
          hosted ? hosted_nodes[rng() % hosted_nodes.size()] : "ip-10-9-" + std::to_string(seq % 250) + "-" + s + ".ec2.internal";
      std::string v = nth_real;
      replace_all(v, "spot-itn-c375f2bb4fa7984f3455aef01a1717bf6a7d7689850d31a68f324ba46ba7ae52", "spot-itn-kill-" + sfx + "-" + s);
      replace_all(v, "ip-10-128-37-128.ec2.internal", node);
      const std::string when = bot::format_time(base + std::chrono::seconds(seq)).substr(0, 19) + "Z";
      replace_all(v, "2022-10-07T04:16:37Z", when);
      p.topic = t_cluster;
      p.key = node;
      p.value = v;
      // What the announcement shows of it: its deadline, as runbot decodes it.
      events::Record rec;
      rec.topic = t_cluster;
      rec.value = v;
      auto decoded = events::decode_cluster_record(rec);
      ASSERT_TRUE(decoded && decoded->deadline) << "fixture no longer decodes: " << v;
      p.marker = bot::format_time(*decoded->deadline);
      oncall_markers.push_back(p.marker);
      if (hosted) {
        for (const auto& e : envs) {
          if (e.node == node) thread_markers[e.id].push_back(p.marker);
        }
      }
    } else if (roll < 70) {
      p.what = What::warning;
      p.env = static_cast<size_t>(rng() % envs.size());
      const std::string& ns = envs[p.env].id;
      std::string v = backoff;
      const std::string uid = "5b0e8c1e-kill-" + sfx + "-" + s;
      replace_all(v, "5b0e8c1e-2f4a-4d7e-9a61-0f3d2c1b9e77", uid);
      replace_all(v, "pr-1234", ns);
      p.topic = t_cluster;
      p.key = uid;
      p.value = v;
      warning_uids[ns].insert(uid);
    } else if (roll < 99) {
      const int kind = roll % 3;
      if (kind == 0) {
        p.what = What::unknown_env;
        p.marker = "uk" + s + "x";
        progress_record(p, "lc-unknown-" + sfx + "-" + s, "nobody-pr-" + s);
        silent_markers.insert(p.marker);
      } else {
        p.what = What::irrelevant;
        std::string v = kind == 1 ? created : pulling;
        replace_all(v, kind == 1 ? "756accaa-7558-49b1-be8c-2f004ace2824" : "d210b74b-5c58-473f-ac51-3e21f6f8e2d1",
                    "irrelevant-" + sfx + "-" + s);
        p.topic = t_cluster;
        p.key = "irrelevant-" + s;
        p.value = v;
      }
    } else {
      // Poison: not JSON on the cluster topic, not a CloudEvent on the events topic, or NTH's
      // default (Slack-style, invalid JSON) template body.
      p.what = What::poison;
      const int kind = static_cast<int>(seq % 3);
      p.marker = "poison-" + sfx + "-" + s;
      p.topic = kind == 1 ? t_events : t_cluster;
      p.key = p.marker;
      p.value = kind == 0 ? "{\"" + p.marker + "\": not json" : kind == 1 ? "{\"id\":\"" + p.marker + "\"}" : nth_template + p.marker;
      poison_ids.insert(p.marker);
    }
    plan.push_back(std::move(p));
  }
  size_t expected_thread = 0;
  for (const auto& [env, ms] : thread_markers) expected_thread += ms.size();
  const size_t expected_total = expected_thread + oncall_markers.size();

  // ---- counting what Slack shows, incrementally ----
  std::unordered_map<std::string, int> seen;                  // marker -> messages created showing it
  std::unordered_map<std::string, std::vector<std::string>> seen_where;  // marker -> "channel/thread" of each
  std::set<std::string> expected_markers;
  for (const auto& [env, ms] : thread_markers) expected_markers.insert(ms.begin(), ms.end());
  expected_markers.insert(oncall_markers.begin(), oncall_markers.end());
  size_t scanned = 0;
  size_t announcements_seen = 0;  // (marker, message) pairs of expected markers
  auto scan = [&] {
    for (; scanned < fake.posted.size(); ++scanned) {
      const auto& p = fake.posted[scanned];
      std::set<std::string> in_message;
      for (auto pos = p.text.find("mk"); pos != std::string::npos; pos = p.text.find("mk", pos + 2)) {
        size_t q = pos + 2;
        while (q < p.text.size() && std::isdigit(static_cast<unsigned char>(p.text[q]))) ++q;
        if (q > pos + 2 && q < p.text.size() && p.text[q] == 'x') in_message.insert(p.text.substr(pos, q + 1 - pos));
      }
      for (auto pos = p.text.find("uk"); pos != std::string::npos; pos = p.text.find("uk", pos + 2)) {
        size_t q = pos + 2;
        while (q < p.text.size() && std::isdigit(static_cast<unsigned char>(p.text[q]))) ++q;
        if (q > pos + 2 && q < p.text.size() && p.text[q] == 'x') in_message.insert(p.text.substr(pos, q + 1 - pos));
      }
      for (auto pos = p.text.find("2030-"); pos != std::string::npos; pos = p.text.find("2030-", pos + 5)) {
        if (pos + 24 <= p.text.size()) in_message.insert(p.text.substr(pos, 24));
      }
      for (const auto& m : in_message) {
        ++seen[m];
        seen_where[m].push_back(p.channel + "/" + p.thread_ts);
        if (expected_markers.contains(m)) ++announcements_seen;
      }
    }
  };

  // ---- 3. produce, SIGKILL at about half, restart, produce the rest ----
  long produced = 0;
  auto produce_one = [&] {
    const Planned& p = plan[static_cast<size_t>(produced++)];
    (*producer)->produce(p.topic, p.key, p.value, p.headers, on_delivery);
  };
  const auto stream_start = SteadyClock::now();
  auto produce_until = [&](const std::function<bool()>& done, std::chrono::seconds limit) {
    const auto deadline = SteadyClock::now() + limit;
    while (!done()) {
      if (SteadyClock::now() > deadline || SteadyClock::now() > test_deadline) return false;
      const auto due = std::min<long>(
          kRecords, static_cast<long>(std::chrono::duration<double>(SteadyClock::now() - stream_start).count() * kRate));
      while (produced < due) produce_one();
      io.run_one_for(2ms);
      scan();
    }
    return true;
  };
  // The middle of the stream: half of it produced (runbot is consuming it, offsets are being
  // committed behind the state) and announcements flowing to Slack (the outbox has a backlog).
  ASSERT_TRUE(produce_until([&] { return produced * 2 >= kRecords && announcements_seen * 10 >= expected_total; }, 90s))
      << "announcements before the kill: " << announcements_seen << " of " << expected_total << ", produced "
      << produced << "; runbot's log:\n" << tail_of(log_path);
  ASSERT_TRUE(runbot.running()) << "runbot exited by itself; its log:\n" << tail_of(log_path);
  const long produced_at_kill = produced;
  const size_t seen_at_kill = announcements_seen;
  const double kill_s = seconds_since(stream_start);
  runbot.kill_now();
  {
    std::ofstream(log_path, std::ios::app) << "\n======== crash_recovery_test: SIGKILL, restarting ========\n";
  }
  const auto restart = SteadyClock::now();
  ASSERT_TRUE(runbot.start());
  ASSERT_TRUE(produce_until([&] {
    auto open = fake.open_sockets();
    if (!open.empty() && open.back() > last_socket) {
      last_socket = open.back();
      return true;
    }
    return false;
  }, 60s)) << "runbot did not come back to Slack after the restart; its log:\n" << tail_of(log_path);
  const double reconnect_s = seconds_since(restart);
  ASSERT_TRUE(produce_until([&] { return produced == kRecords; }, 90s)) << "produced " << produced;
  ASSERT_TRUE(run_until([&] { return delivered + failed == kRecords + static_cast<long>(envs.size()); }, 60s))
      << "delivery reports: " << delivered + failed;
  EXPECT_EQ(failed, 0);

  // ---- 4. everything expected arrived, then quiet ----
  auto all_seen = [&] {
    scan();
    for (const auto& m : expected_markers) {
      if (!seen.contains(m)) return false;
    }
    return true;
  };
  const bool complete = run_until(all_seen, 150s);  // bounded by the test budget
  const double caught_up_s = seconds_since(restart);
  // Quiet: nothing new posted or edited for 2 s (late duplicates would show up here).
  size_t calls_before = 0;
  auto quiet_since = SteadyClock::now();
  (void)run_until([&] {
    if (fake.calls.size() != calls_before) {
      calls_before = fake.calls.size();
      quiet_since = SteadyClock::now();
    }
    return SteadyClock::now() - quiet_since > 2s;
  }, 30s);
  scan();

  // ---- 5. the dead-letter topics ----
  std::map<std::string, int> dead;
  auto dlq = events::KafkaConsumer::create(io, ks, "crash-dlq-reader-" + sfx, {t_events + ".dlq", t_cluster + ".dlq"},
                                           [&](const events::Record& r) -> bot::Status {
                                             if (r.key) ++dead[*r.key];
                                             return bot::ok();
                                           });
  ASSERT_TRUE(dlq) << dlq.error().message;
  const bool all_dead = run_until([&] {
    for (const auto& id : poison_ids) {
      if (!dead.contains(id)) return false;
    }
    return true;
  }, 30s);
  (void)(*dlq)->close();

  // ---- 6. the audit topic: every slash command on record, read by a consumer of its own ----
  std::vector<json> audit;
  auto audit_reader = events::KafkaConsumer::create(io, ks, "crash-audit-reader-" + sfx, {t_audit},
                                                    [&](const events::Record& r) -> bot::Status {
                                                      auto j = json::parse(r.value.value_or(""), nullptr, false);
                                                      if (!j.is_discarded()) audit.push_back(std::move(j));
                                                      return bot::ok();
                                                    });
  ASSERT_TRUE(audit_reader) << audit_reader.error().message;
  auto audited = [&](const Env& e) {
    return std::any_of(audit.begin(), audit.end(), [&](const json& a) {
      const std::string args = a.value("args", "");
      return a.value("platform", "") == "slack" && a.value("user", "") == "U0DEV01" && a.value("verb", "") == "up" &&
             a.value("outcome", "") == "ok" && a.value("channel", "") == e.channel &&
             args.find(e.app) != std::string::npos && args.find(std::to_string(e.pr)) != std::string::npos;
    });
  };
  const bool all_audited = run_until([&] { return std::all_of(envs.begin(), envs.end(), audited); }, 30s);
  (void)(*audit_reader)->close();

  // ---- assertions ----
  std::map<std::string, const Env*> env_by_id;
  for (const auto& e : envs) env_by_id[e.id] = &e;
  auto where_ok = [&](const std::string& where, const std::string& channel, const std::string& thread) {
    return where == channel + "/" + thread;
  };
  int missing = 0, duplicated = 0, misplaced = 0;
  std::string report;
  auto note = [&](const std::string& line) {
    if (report.size() < 4000) report += line + "\n";
  };
  for (const auto& [env, ms] : thread_markers) {
    const Env& e = *env_by_id.at(env);
    for (const auto& m : ms) {
      // An interruption of a node with two environments shows its deadline in both threads.
      const auto it = seen_where.find(m);
      const int in_thread = it == seen_where.end()
                                ? 0
                                : static_cast<int>(std::count_if(it->second.begin(), it->second.end(), [&](const std::string& w) {
                                    return where_ok(w, e.channel, e.card_ts);
                                  }));
      if (in_thread == 0) ++missing, note("missing in " + env + "'s thread: " + m);
      if (in_thread > 1) ++duplicated, note("posted " + std::to_string(in_thread) + " times in " + env + "'s thread: " + m);
    }
  }
  for (const auto& m : oncall_markers) {
    const auto it = seen_where.find(m);
    const int n = it == seen_where.end() ? 0
                                         : static_cast<int>(std::count_if(it->second.begin(), it->second.end(), [&](const std::string& w) {
                                             return where_ok(w, kOncall, "");
                                           }));
    if (n == 0) ++missing, note("on-call summary missing: " + m);
    if (n > 1) ++duplicated, note("on-call summary posted " + std::to_string(n) + " times: " + m);
  }
  // Nothing shows up anywhere else: each marker's total equals its expected places.
  std::map<std::string, int> expected_places;
  for (const auto& [env, ms] : thread_markers) {
    for (const auto& m : ms) ++expected_places[m];
  }
  for (const auto& m : oncall_markers) ++expected_places[m];
  for (const auto& [m, n] : seen) {
    const auto it = expected_places.find(m);
    const int want = it == expected_places.end() ? 0 : it->second;
    if (n > want && !silent_markers.contains(m)) ++misplaced, note("shown " + std::to_string(n) + " times, expected " + std::to_string(want) + ": " + m);
    if (silent_markers.contains(m)) ++misplaced, note("announced an event of an unknown environment: " + m);
  }
  EXPECT_TRUE(complete) << "not every expected announcement arrived";
  EXPECT_EQ(missing, 0);
  EXPECT_EQ(duplicated, 0);
  EXPECT_EQ(misplaced, 0);
  if (!report.empty()) ADD_FAILURE() << report;

  // Grouped warnings: one message per environment, finally counting each distinct warning once.
  for (const auto& e : envs) {
    std::vector<std::string> posts;
    for (const auto& p : fake.posted) {
      if (p.channel == e.channel && p.thread_ts == e.card_ts && p.text.find("warning event") != std::string::npos) {
        posts.push_back(p.ts);
      }
    }
    ASSERT_EQ(posts.size(), 1u) << e.id << ": the grouped warnings message was posted " << posts.size() << " times";
    std::string last;
    for (const auto& p : fake.posted) {
      if (p.ts == posts[0]) last = p.text;
    }
    for (const auto& c : fake.calls) {
      if (c.method == "chat.update" && c.error.empty() && c.body.value("ts", "") == posts[0]) last = c.body.value("text", "");
    }
    const std::string want = std::to_string(warning_uids[e.id].size()) + " warning events in " + e.id;
    EXPECT_NE(last.find(want), std::string::npos) << e.id << ": the grouped warnings should say \"" << want
                                                  << "\", it says: " << last.substr(0, 200);
  }
  EXPECT_TRUE(all_dead) << "poison records missing from the DLQ: " << [&] {
    int n = 0;
    for (const auto& id : poison_ids) n += dead.contains(id) ? 0 : 1;
    return n;
  }();
  EXPECT_TRUE(all_audited) << "slash commands missing from the audit topic " << t_audit << "; it holds "
                           << audit.size() << " records"
                           << (audit.empty() ? std::string() : ", the first: " + audit.front().dump());
  EXPECT_TRUE(fake.problems.empty()) << fake.problems.front();

  size_t created_messages = fake.posted.size(), edits = fake.calls_to("chat.update").size(),
         lookups = fake.calls_to("conversations.replies").size() + fake.calls_to("conversations.history").size();
  int dlq_twice = 0;
  for (const auto& [id, n] : dead) dlq_twice += n > 1 ? 1 : 0;
  std::printf("[ crash recovery ] records %ld (poison %zu, duplicates %ld), expected announcements %zu (%zu in threads, "
              "%zu on-call), runbot first start %.1fs, SIGKILL at %.1fs into the stream after %ld records and %zu "
              "announcements, back on Slack %.1fs after the restart, every announcement there %.1fs after the restart, "
              "Slack messages created %zu, edits %zu, delivery lookups %zu, DLQ records %zu (dead-lettered twice %d), "
              "whole test %.1fs\n",
              kRecords, poison_ids.size(),
              static_cast<long>(std::count_if(plan.begin(), plan.end(), [](const Planned& p) { return p.what == What::duplicate; })),
              expected_total, expected_thread, oncall_markers.size(), first_start_s, kill_s, produced_at_kill, seen_at_kill,
              reconnect_s, caught_up_s, created_messages, edits, lookups, dead.size(), dlq_twice, seconds_since(t0));
  if (HasFailure()) {
    // Every message Slack shows, with its delivery id, next to runbot's log for the post-mortem.
    std::ofstream dump(dir / "slack-posted.txt");
    for (const auto& p : fake.posted) {
      dump << p.ts << " " << p.channel << " thread=" << p.thread_ts << " meta=" << p.metadata.dump() << " text="
           << p.text.substr(0, 300) << "\n";
    }
    std::printf("runbot's log (tail):\n%s\nfull log and every Slack message in %s\n", tail_of(log_path, 12000).c_str(),
                dir.c_str());
  }

  runbot.terminate();
  (void)(*producer)->flush(5s);
  std::error_code ec;
  if (!HasFailure()) std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace runbot
