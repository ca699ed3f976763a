// Broker restart while events flow (issue 4, "stop and restart the broker while events flow —
// nothing lost"). The test runs its OWN single-node Apache Kafka broker through .ci/kafka/start.sh
// and stop.sh, on ports and a data dir of its own, so the broker that CI shares between tests
// ($RUNBOT_TEST_KAFKA) is never touched. A producer keeps producing lifecycle CloudEvents
// (`progress`, each with a marker in its message) and NTH spot-interruption webhooks (each for a
// node of its own) while the real Bot consumes them through KafkaEventSource; the broker is
// stopped in the middle and started again with its data (`start.sh --keep-data`).
// Asserted: every record whose delivery was reported ok is handled at least once, and announced
// exactly once (the Bot's dedupe), as the chat adapter sees it.
//
// Label integration: it needs what a real broker needs (java, kcat, the jars of .ci/kafka/fetch.sh)
// and, like the other integration tests, fails with instructions when $RUNBOT_TEST_KAFKA is unset.
// Env: RUNBOT_RESTART_KAFKA_PORT (default 19592; the controller uses the next port).
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <gtest/gtest.h>

#include "adapters/common/asio_clock.h"
#include "bot/app/config.h"
#include "bot/bot.h"
#include "events/cloudevents.h"
#include "events/kafka_event_source.h"
#include "events/kafka_producer.h"
#include "events/topic_admin.h"

extern char** environ;

namespace runbot {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kTestBudget = 150s;  // the whole test, broker starts included
constexpr double kRate = 200;       // records produced per second

// One broker of the test's own, driven through the project's scripts.
class OwnBroker {
 public:
  OwnBroker() {
    const char* p = std::getenv("RUNBOT_RESTART_KAFKA_PORT");
    port_ = p ? std::atoi(p) : 19592;
    data_ = "/tmp/runbot-kafka-restart-test-" + std::to_string(::getpid());
  }
  ~OwnBroker() {
    // Always leave nothing running: stop.sh is idempotent.
    if (started_) (void)run_blocking(spawn("stop.sh", false));
    std::error_code ec;
    std::filesystem::remove_all(data_, ec);
  }

  // Starts the script asynchronously; returns its pid (-1 on failure). Output goes to files in
  // the data dir; start.sh prints the bootstrap address on its last stdout line.
  pid_t spawn(const std::string& script, bool keep_data) {
    std::filesystem::create_directories(data_);
    const std::string cmd = "RUNBOT_KAFKA_PORT=" + std::to_string(port_) +
                            " RUNBOT_KAFKA_CONTROLLER_PORT=" + std::to_string(port_ + 1) + " RUNBOT_KAFKA_DATA=" +
                            data_ + " exec bash " + std::string(RUNBOT_SOURCE_DIR) + "/.ci/kafka/" + script +
                            (keep_data ? " --keep-data" : "") + " >" + data_ + "/" + script + ".out 2>>" + data_ +
                            "/scripts.err";
    std::vector<std::string> args{"/bin/sh", "-c", cmd};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    if (posix_spawn(&pid, "/bin/sh", nullptr, nullptr, argv.data(), environ) != 0) return -1;
    if (script == "start.sh") started_ = true;
    return pid;
  }
  // Exit status of a spawned script if it has finished, nullopt while it runs.
  static std::optional<int> finished(pid_t pid) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) != pid) return std::nullopt;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  }
  static int run_blocking(pid_t pid) {
    if (pid < 0) return -1;
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  }
  std::string bootstrap() const {
    std::ifstream in(data_ + "/start.sh.out");
    std::string line, last;
    while (std::getline(in, line)) {
      if (!line.empty()) last = line;
    }
    return last;
  }
  std::string script_errors() const {
    std::ifstream in(data_ + "/scripts.err");
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    return s.size() > 4000 ? s.substr(s.size() - 4000) : s;
  }

 private:
  int port_ = 19592;
  std::string data_;
  bool started_ = false;
};

// Records every post as the user would see it; completes each on the next loop turn.
class RecordingChat final : public bot::ChatAdapter {
 public:
  explicit RecordingChat(boost::asio::io_context& io) : io_(io) {}
  std::string platform() const override { return "console"; }
  void start(InboundHandler handler) override { handler_ = std::move(handler); }
  void post(bot::PostRequest request, std::function<void(bot::Result<bot::PostResult>)> done) override {
    std::string id = request.edit.empty() ? "m" + std::to_string(posts.size() + 1) : request.edit;
    posts.push_back(std::move(request));
    boost::asio::post(io_, [done = std::move(done), id = std::move(id)] { done(bot::PostResult{id}); });
  }
  bool answer_in_band(const bot::InboundMessage&, const bot::Message&) override { return true; }
  void stop() override {}
  bool healthy() const override { return true; }
  void say(const std::string& text) {
    bot::InboundMessage m;
    m.platform = "console";
    m.channel = bot::ChannelId{"C1"};
    m.user = bot::UserId{"dev"};
    m.user_name = "dev";
    m.text = text;
    handler_(m);
  }
  std::vector<bot::PostRequest> posts;

 private:
  boost::asio::io_context& io_;
  InboundHandler handler_;
};

// Counts each handled event by id, then hands it to the Bot.
class CountingSink final : public bot::EventSink {
 public:
  explicit CountingSink(bot::Bot& b) : bot_(b) {}
  void on_lifecycle(const bot::LifecycleEvent& e) override {
    ++handled[e.id];
    bot_.on_lifecycle(e);
  }
  void on_cluster(const bot::ClusterEvent& e) override {
    ++handled[e.dedupe_key];
    bot_.on_cluster(e);
  }
  std::map<std::string, int> handled;

 private:
  bot::Bot& bot_;
};

std::string read_fixture(const std::string& name) {
  std::ifstream in(std::string(RUNBOT_SOURCE_DIR) + "/tests/testdata/events/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (auto p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
}

// Occurrences of "<open><digits><close>" in `text`, by the digits.
void count_markers(const std::string& text, const std::string& open, const std::string& close,
                   std::map<long, int>& out) {
  for (auto p = text.find(open); p != std::string::npos; p = text.find(open, p + 1)) {
    size_t q = p + open.size();
    size_t digits = q;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
    if (digits > q && text.compare(digits, close.size(), close) == 0) ++out[std::stol(text.substr(q, digits - q))];
  }
}

TEST(BrokerRestart, EventsProducedWhileTheBrokerRestartsAreHandledAndAnnouncedExactlyOnce) {
  if (const char* b = std::getenv("RUNBOT_TEST_KAFKA"); b == nullptr || *b == '\0') {
    FAIL() << "RUNBOT_TEST_KAFKA is not set: this integration test runs a real Kafka broker of its own through "
              ".ci/kafka/start.sh (java, kcat and the jars of .ci/kafka/fetch.sh are needed); start the shared one with "
              "`bash .ci/kafka/start.sh` and export RUNBOT_TEST_KAFKA=127.0.0.1:19092 (`.ci/run` does both)";
  }
  const auto test_deadline = SteadyClock::now() + kTestBudget;
  OwnBroker broker;
  ASSERT_EQ(OwnBroker::run_blocking(broker.spawn("start.sh", false)), 0)
      << "start.sh failed:\n" << broker.script_errors();
  const std::string bootstrap = broker.bootstrap();
  ASSERT_FALSE(bootstrap.empty()) << broker.script_errors();

  events::KafkaSettings settings;
  settings.brokers = bootstrap;
  settings.session_timeout = 6s;
  ASSERT_TRUE(events::ensure_topics(settings, 4, 1));

  boost::asio::io_context io;
  common::AsioClock clock(io);
  auto cfg = app::parse_config(app::demo_config_yaml(), {});
  ASSERT_TRUE(cfg) << cfg.error().message;
  bot::OutboxSettings outbox_settings = cfg->outbox;
  outbox_settings.messages_per_second = 1e6;  // the test counts announcements, not rate limits
  outbox_settings.burst = 1e6;
  bot::Metrics metrics;
  struct NoJobs final : bot::JobQueue {
    explicit NoJobs(boost::asio::io_context& c) : ctx(c) {}
    void publish(const bot::Job&, std::function<void(bot::Status)> done) override {
      boost::asio::post(ctx, [done = std::move(done)] { done(bot::ok()); });
    }
    boost::asio::io_context& ctx;
  } jobs(io);
  bot::Outbox outbox(outbox_settings, clock, metrics);
  bot::Bot the_bot(cfg->bot, bot::Registry{}, clock, jobs, outbox, metrics, nullptr);
  RecordingChat chat(io);
  the_bot.attach(chat);
  the_bot.start();
  chat.say("up front-end 1");
  ASSERT_NE(the_bot.registry().find(bot::EnvId{"front-end-pr-1"}), nullptr);

  auto run_until = [&](const std::function<bool()>& done, SteadyClock::time_point deadline) {
    while (!done()) {
      if (SteadyClock::now() > deadline || SteadyClock::now() > test_deadline) return false;
      io.run_one_for(5ms);
    }
    return true;
  };

  CountingSink sink(the_bot);
  auto source = events::KafkaEventSource::create(io, settings, sink, "runbot-restart-test");
  ASSERT_TRUE(source) << source.error().message;
  auto producer = events::KafkaProducer::create(io, settings);
  ASSERT_TRUE(producer) << producer.error().message;

  const std::string nth = read_fixture("nth-webhook-tojson-imds-spot-itn.json");
  ASSERT_FALSE(nth.empty());
  std::map<long, std::string> delivered_ok;  // seq -> id, delivery reported ok
  long produced = 0, reported = 0, failed = 0;
  std::set<long> cluster_seqs;
  auto produce_one = [&] {
    const long seq = produced++;
    std::string id;
    if (seq % 5 == 4) {
      // NTH webhook for a node of its own: announced once, in the on-call summary.
      id = "nth-restart-" + std::to_string(seq);
      std::string v = nth;
      replace_all(v, "spot-itn-c375f2bb4fa7984f3455aef01a1717bf6a7d7689850d31a68f324ba46ba7ae52", id);
      replace_all(v, "ip-10-0-3-17.ec2.internal", "ip-n" + std::to_string(seq) + "x-bench");
      cluster_seqs.insert(seq);
      (*producer)->produce(settings.topics.cluster_events, "ip-n" + std::to_string(seq) + "x-bench", std::move(v), {},
                           [&, seq, id](bot::Status st) {
                             ++reported;
                             if (st) delivered_ok[seq] = id; else ++failed;
                           });
      return;
    }
    bot::LifecycleEvent e;
    e.id = "lc-restart-" + std::to_string(seq);
    e.source = "/runbot/provisioner/restart-test";
    e.kind = bot::LifecycleKind::progress;
    e.env = bot::EnvId{"front-end-pr-1"};
    e.time = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    e.stage = "deploy";
    e.message = "[s" + std::to_string(seq) + "]";
    events::EncodedRecord r = events::encode_lifecycle(e);
    id = e.id;
    (*producer)->produce(settings.topics.events, r.key, std::move(r.value), r.headers, [&, seq, id](bot::Status st) {
      ++reported;
      if (st) delivered_ok[seq] = id; else ++failed;
    });
  };
  // Produces at kRate until `done` holds, driving the loop meanwhile.
  const auto pace_start = SteadyClock::now();
  auto produce_until = [&](const std::function<bool()>& done, SteadyClock::time_point deadline) {
    while (!done()) {
      if (SteadyClock::now() > deadline || SteadyClock::now() > test_deadline) return false;
      const auto due = static_cast<long>(std::chrono::duration<double>(SteadyClock::now() - pace_start).count() * kRate);
      while (produced < due) produce_one();
      io.run_one_for(2ms);
    }
    return true;
  };
  auto handled_ids = [&] { return sink.handled.size(); };

  // 1. Flowing: the group has formed and records are being handled.
  ASSERT_TRUE(produce_until([&] { return handled_ids() >= 200; }, SteadyClock::now() + 60s))
      << "handled " << handled_ids() << " of " << produced << " produced before the restart";
  // 2. Stop the broker while producing, and keep producing while it is down.
  const long before_stop = produced;
  const pid_t stopping = broker.spawn("stop.sh", false);
  ASSERT_GT(stopping, 0);
  std::optional<int> stop_rc;
  ASSERT_TRUE(produce_until([&] { return (stop_rc = OwnBroker::finished(stopping)).has_value(); },
                            SteadyClock::now() + 45s)) << "stop.sh did not finish";
  ASSERT_EQ(*stop_rc, 0) << broker.script_errors();
  const long at_stop = produced;
  const size_t handled_at_stop = handled_ids();
  ASSERT_TRUE(produce_until([&] { return produced >= at_stop + 300; }, SteadyClock::now() + 10s));
  EXPECT_EQ(handled_ids(), handled_at_stop) << "records were handled while the broker was down";
  // 3. Start it again with its data while producing.
  const pid_t starting = broker.spawn("start.sh", true);
  ASSERT_GT(starting, 0);
  std::optional<int> start_rc;
  ASSERT_TRUE(produce_until([&] { return (start_rc = OwnBroker::finished(starting)).has_value(); },
                            SteadyClock::now() + 60s)) << "start.sh --keep-data did not finish";
  ASSERT_EQ(*start_rc, 0) << broker.script_errors();
  // 4. Flowing again: more records after the restart, then stop producing.
  const long at_restart = produced;
  ASSERT_TRUE(produce_until([&] { return produced >= at_restart + 300; }, SteadyClock::now() + 10s));
  ASSERT_TRUE(run_until([&] { return reported == produced; }, SteadyClock::now() + 60s))
      << "delivery reports: " << reported << " of " << produced;
  EXPECT_EQ(failed, 0) << "the idempotent producer retries through a broker restart";
  ASSERT_TRUE(run_until([&] {
    for (const auto& [seq, id] : delivered_ok) {
      if (!sink.handled.contains(id)) return false;
    }
    return true;
  }, SteadyClock::now() + 60s)) << "handled " << handled_ids() << " of " << delivered_ok.size() << " delivered";
  ASSERT_TRUE(run_until([&] { return outbox.pending() == 0; }, SteadyClock::now() + 20s));

  // Every delivered record handled at least once ...
  long redelivered = 0;
  for (const auto& [seq, id] : delivered_ok) {
    ASSERT_TRUE(sink.handled.contains(id)) << id;
    redelivered += sink.handled.at(id) - 1;
  }
  // ... and announced exactly once: a progress line in the thread, a spot summary on call.
  std::map<long, int> announced;
  for (const auto& p : chat.posts) {
    const std::string text = bot::to_plain_text(p.message);
    if (p.channel.str() == "oncall") {
      count_markers(text, "ip-n", "x-bench", announced);
    } else if (!p.thread.empty() && p.edit.empty()) {
      count_markers(text, "[s", "]", announced);
    }
  }
  for (const auto& [seq, id] : delivered_ok) {
    EXPECT_EQ(announced[seq], 1) << id << (cluster_seqs.contains(seq) ? " (spot summary)" : " (progress)");
  }
  EXPECT_EQ(announced.size(), delivered_ok.size());
  std::printf("[ broker restart ] produced %ld (%ld before the stop, %ld during it and while down, %ld after the "
              "restart), delivered %zu, redelivered to the handler %ld, posts %zu\n",
              produced, before_stop, at_restart - before_stop, produced - at_restart, delivered_ok.size(), redelivered,
              chat.posts.size());
  (void)(*source)->close();
  (void)(*producer)->flush(5s);
  the_bot.stop();
}

}  // namespace
}  // namespace runbot
