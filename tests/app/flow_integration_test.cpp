// The whole flow over Kafka: console -> bot -> job on Kafka -> provisioner (demo backend) ->
// lifecycle events on Kafka -> bot -> announcements in the console thread, including TTL warnings,
// expiry and a spot interruption whose NTH notice travels through the cluster-events topic.
// Runs once over the embedded mock cluster and once over a real Kafka broker ($RUNBOT_TEST_KAFKA).
#include <unistd.h>

#include <chrono>
#include <functional>
#include <sstream>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "adapters/common/asio_clock.h"
#include "adapters/console/console_adapter.h"
#include "bot/app/config.h"
#include "bot/bot.h"
#include "deploy/demo_backend.h"
#include "deploy/provisioner.h"
#include "events/embedded_broker.h"
#include "events/kafka_event_publisher.h"
#include "events/kafka_event_source.h"
#include "events/kafka_job_queue.h"
#include "events/kafka_job_source.h"
#include "events/kafka_producer.h"
#include "events/topic_admin.h"

namespace runbot {
namespace {

using namespace std::chrono_literals;

// The demo clock runs this much faster than real time, so a 2-hour TTL passes in seconds.
constexpr double kSpeed = 600;

class Flow {
 public:
  explicit Flow(std::string brokers) : domain_clock_(io_, kSpeed), real_clock_(io_, 1.0) {
    const std::string suffix = std::to_string(::getpid()) + "-" +
                               std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
    if (brokers.empty()) {
      auto b = events::EmbeddedBroker::start(settings_.topics);
      EXPECT_TRUE(b) << b.error().message;
      broker_ = std::move(*b);
      brokers = broker_->bootstrap_servers();
    } else {
      // A persistent broker keeps earlier runs' records: give this run its own topics.
      settings_.topics.jobs += "-" + suffix;
      settings_.topics.events += "-" + suffix;
      settings_.topics.cluster_events += "-" + suffix;
    }
    settings_.brokers = brokers;
    settings_.session_timeout = 6s;
    if (!broker_) {
      auto created = events::ensure_topics(settings_);
      EXPECT_TRUE(created) << created.error().message;
    }
    auto cfg = app::parse_config(app::demo_config_yaml(), {});
    EXPECT_TRUE(cfg) << cfg.error().message;
    config_ = *cfg;
    config_.bot.demo = true;
    config_.bot.ttl_check_interval = 10s;
    auto producer = events::KafkaProducer::create(io_, settings_);
    EXPECT_TRUE(producer) << producer.error().message;
    producer_ = std::move(*producer);
    jobs_ = std::make_unique<events::KafkaJobQueue>(*producer_, settings_.topics);
    publisher_ = std::make_unique<events::KafkaEventPublisher>(*producer_, settings_.topics);
    outbox_ = std::make_unique<bot::Outbox>(config_.outbox, real_clock_, metrics_);
    bot_ = std::make_unique<bot::Bot>(config_.bot, bot::Registry{}, domain_clock_, *jobs_, *outbox_, metrics_, nullptr);
    // Keep the interruption notice and the rescheduling apart by more than a Kafka round trip,
    // as 90 s are in real time.
    deploy::DemoClusterSettings cluster_settings;
    cluster_settings.reschedule_after = 30min;
    cluster_ = std::make_unique<deploy::DemoCluster>(cluster_settings, domain_clock_, *publisher_);
    backend_ = std::make_unique<deploy::DemoBackend>(deploy::DemoSettings{}, *cluster_, domain_clock_);
    provisioner_ = std::make_unique<deploy::Provisioner>(deploy::ProvisionerSettings{}, config_.bot.apps, *backend_,
                                                         *publisher_, domain_clock_);
    auto src = events::KafkaEventSource::create(io_, settings_, *bot_, "runbot-bot-" + suffix);
    EXPECT_TRUE(src) << src.error().message;
    events_ = std::move(*src);
    auto* prov = provisioner_.get();
    auto job_src = events::KafkaJobSource::create(io_, settings_, [prov](const bot::Job& j) { prov->on_job(j); },
                                                  "runbot-provisioner-" + suffix);
    EXPECT_TRUE(job_src) << job_src.error().message;
    job_source_ = std::move(*job_src);
    console::ConsoleSettings cs;
    cs.user = "dev";
    cs.timestamps = false;
    console_ = std::make_unique<console::ConsoleAdapter>(io_, cs, domain_clock_, out_, nullptr);
    bot::BotHooks hooks;
    auto* cluster = cluster_.get();
    hooks.simulate_spot = [cluster](const bot::NodeName& n) { return cluster->simulate_spot_interruption(n); };
    bot_->set_hooks(hooks);
    bot_->attach(*console_);
    bot_->start();
    // Both consumer groups must have formed before the first command.
    EXPECT_TRUE(run_until([&] {
      return events_->consumer().assigned_partitions() > 0 && job_source_->consumer().assigned_partitions() > 0;
    }, 60s)) << "consumer groups did not form";
  }

  ~Flow() {
    bot_->stop();
    (void)events_->close();
    (void)job_source_->close();
    (void)producer_->flush(5s);
  }

  bool run_until(const std::function<bool()>& done, std::chrono::steady_clock::duration limit = 30s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      io_.run_one_for(20ms);
    }
    return true;
  }

  std::string say(const std::string& line) {
    const size_t from = out_.str().size();
    console_->feed_line(line);
    return out_.str().substr(from);
  }
  std::string output() const { return out_.str(); }
  bool printed(const std::string& text) const { return out_.str().find(text) != std::string::npos; }
  const bot::Registry& registry() const { return bot_->registry(); }
  const bot::Environment* env(const std::string& id) const { return bot_->registry().find(bot::EnvId{id}); }
  bot::EnvState state(const std::string& id) const { return env(id) ? env(id)->state : bot::EnvState::requested; }
  events::KafkaProducer& producer() { return *producer_; }
  const events::KafkaSettings& settings() const { return settings_; }
  bot::EventSourceStats event_stats() const { return events_->stats(); }

 private:
  boost::asio::io_context io_;
  common::AsioClock domain_clock_;
  common::AsioClock real_clock_;
  events::KafkaSettings settings_;
  std::unique_ptr<events::EmbeddedBroker> broker_;
  app::Config config_;
  bot::Metrics metrics_;
  std::ostringstream out_;
  std::unique_ptr<events::KafkaProducer> producer_;
  std::unique_ptr<events::KafkaJobQueue> jobs_;
  std::unique_ptr<events::KafkaEventPublisher> publisher_;
  std::unique_ptr<bot::Outbox> outbox_;
  std::unique_ptr<bot::Bot> bot_;
  std::unique_ptr<deploy::DemoCluster> cluster_;
  std::unique_ptr<deploy::DemoBackend> backend_;
  std::unique_ptr<deploy::Provisioner> provisioner_;
  std::unique_ptr<events::KafkaEventSource> events_;
  std::unique_ptr<events::KafkaJobSource> job_source_;
  std::unique_ptr<console::ConsoleAdapter> console_;
};

std::string brokers_for(const std::string& mode) {
  if (mode == "mock") return "";
  const char* b = std::getenv("RUNBOT_TEST_KAFKA");
  return b ? b : "";
}

class WholeFlow : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "broker" && brokers_for("broker").empty()) {
      FAIL() << "RUNBOT_TEST_KAFKA is not set: start a real broker with `bash .ci/kafka/start.sh` and export "
                "RUNBOT_TEST_KAFKA=127.0.0.1:19092 (`.ci/run` does both)";
    }
  }
};

TEST_P(WholeFlow, UpReadyTtlWarningsExpiryAndSpotInterruptionReachTheThread) {
  Flow flow(brokers_for(GetParam()));
  EXPECT_NE(flow.say("/ephemeral up front-end pr-123").find("Creating front-end-pr-123"), std::string::npos);
  EXPECT_NE(flow.say("up docs 7").find("Creating docs-pr-7 (TTL 2h)"), std::string::npos);
  ASSERT_TRUE(flow.run_until([&] {
    return flow.state("front-end-pr-123") == bot::EnvState::ready && flow.state("docs-pr-7") == bot::EnvState::ready;
  })) << flow.output();
  // Announcements leave through the rate-limited outbox, a little after the state changes.
  ASSERT_TRUE(flow.run_until([&] {
    return flow.printed("[front-end-pr-123] front-end-pr-123 is ready: https://front-end-pr-123.demo.runbot.invalid");
  })) << flow.output();
  // Stages may arrive one by one or, when the thread is backed up, as one digest of them.
  EXPECT_TRUE(flow.printed("[front-end-pr-123] Stage render manifests (1/6)") ||
              flow.printed("[front-end-pr-123]   • Stage render manifests (1/6)"))
      << flow.output();

  // A spot interruption of the spot node the environment runs on, through the cluster-events topic.
  const auto* fe = flow.env("front-end-pr-123");
  ASSERT_TRUE(fe && !fe->nodes.empty());
  std::string spot_node;
  for (const auto& n : fe->nodes) {
    if (flow.registry().nodes().at(n).info.capacity == bot::CapacityType::spot) spot_node = n.str();
  }
  ASSERT_FALSE(spot_node.empty()) << "the demo places every environment on a spot node";
  std::string answer = flow.say("simulate spot " + spot_node);
  ASSERT_NE(answer.find("Simulating a spot interruption of " + spot_node), std::string::npos) << answer;
  ASSERT_TRUE(flow.run_until([&] { return flow.printed("@dev, front-end-pr-123 runs on this node"); }))
      << flow.output();
  EXPECT_TRUE(flow.printed("[front-end-pr-123] ⚠ spot interruption on node " + spot_node));
  EXPECT_TRUE(flow.printed("[#oncall] ⚠ spot interruption on node " + spot_node));
  ASSERT_TRUE(flow.run_until([&] { return flow.printed("front-end-pr-123 recovered: running on"); })) << flow.output();

  // docs has a 2h TTL: both warnings, then expiry, then the provisioner's deletion.
  ASSERT_TRUE(flow.run_until([&] { return flow.printed("docs-pr-7 deleted (TTL expired)"); }, 60s)) << flow.output();
  EXPECT_EQ(flow.state("docs-pr-7"), bot::EnvState::deleted);
  const std::string out = flow.output();
  const size_t w30 = out.find("docs-pr-7 expires in 30m");
  const size_t w5 = out.find("docs-pr-7 expires in 5m");
  const size_t expired = out.find("docs-pr-7 expired after 2h");
  const size_t deleted = out.find("docs-pr-7 deleted (TTL expired)");
  ASSERT_NE(w30, std::string::npos) << out;
  ASSERT_NE(w5, std::string::npos) << out;
  ASSERT_NE(expired, std::string::npos) << out;
  ASSERT_NE(deleted, std::string::npos) << out;
  EXPECT_LT(w30, w5);
  EXPECT_LT(w5, expired);
  EXPECT_LT(expired, deleted);
  EXPECT_EQ(flow.state("front-end-pr-123"), bot::EnvState::ready);
}

TEST_P(WholeFlow, PoisonRecordsAreSkippedAndCountedWhileGoodEventsFlow) {
  Flow flow(brokers_for(GetParam()));
  bool delivered = false;
  flow.producer().produce(flow.settings().topics.events, "front-end-pr-1", std::string("{not json"), {},
                          [&](bot::Status s) { delivered = s.has_value(); });
  flow.producer().produce(flow.settings().topics.cluster_events, "", std::string("{\"hello\":\"world\"}"), {},
                          [](bot::Status) {});
  ASSERT_TRUE(flow.run_until([&] { return delivered; }));
  flow.say("up api 1");
  ASSERT_TRUE(flow.run_until([&] { return flow.state("api-pr-1") == bot::EnvState::ready; })) << flow.output();
  ASSERT_TRUE(flow.run_until([&] { return flow.event_stats().skipped_invalid >= 2; }));
  EXPECT_EQ(flow.event_stats().skipped_invalid, 2u);
}

INSTANTIATE_TEST_SUITE_P(Kafka, WholeFlow, ::testing::Values("mock", "broker"),
                         [](const auto& test) { return test.param; });

}  // namespace
}  // namespace runbot
