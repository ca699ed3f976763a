// Integration tests: KafkaStateStore against a REAL Kafka broker at $RUNBOT_TEST_KAFKA.
// Start one with:  bash .ci/kafka/fetch.sh && export RUNBOT_TEST_KAFKA=$(bash .ci/kafka/start.sh)
// and stop it with bash .ci/kafka/stop.sh. Without the variable these tests FAIL on purpose.
// Every test uses its own topic (per-run suffix), so reruns against a persistent broker start
// clean.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <string>

#include "events/topic_admin.h"
#include "tests/events/kafka_scenarios.h"
#include "tests/events/kafka_state_store_test_scenarios.h"

namespace runbot::events {
namespace {

using ::testing::HasSubstr;

std::string broker_or_fail() {
  const char* addr = std::getenv("RUNBOT_TEST_KAFKA");
  if (!addr || !*addr) {
    ADD_FAILURE()
        << "RUNBOT_TEST_KAFKA is not set. These tests need a real Kafka broker: run\n"
           "  bash .ci/kafka/fetch.sh && export RUNBOT_TEST_KAFKA=$(bash .ci/kafka/start.sh)\n"
           "then rerun, and bash .ci/kafka/stop.sh afterwards.";
    return {};
  }
  return addr;
}

std::string unique_topic(const char* test) {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return std::string("runbot.state.") + test + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
}

StateTopicSettings state_settings(const std::string& topic) {
  StateTopicSettings s;
  s.topic = topic;
  return s;
}

TEST(KafkaStateStoreRealBroker, ManySavesThenAFreshLoadRestoresTheLastRegistry) {
  std::string addr = broker_or_fail();
  if (addr.empty()) return;
  KafkaSettings settings = testing::test_settings(addr);
  std::string topic = unique_topic("many");
  auto created = ensure_compacted_topic(settings, topic, 4);
  ASSERT_TRUE(created) << created.error().message;
  auto again = ensure_compacted_topic(settings, topic, 4);
  EXPECT_TRUE(again) << "an existing compacted topic is fine: " << again.error().message;
  testing::many_saves_then_fresh_load_restores_the_last(settings, state_settings(topic), 200);
}

// A compacting topic (segments roll every 100 ms, any dirty ratio is enough, tombstones may go at
// once). Shared by the tests below.
std::map<std::string, std::string> aggressive_compaction() {
  return {{"segment.ms", "100"},
          {"min.cleanable.dirty.ratio", "0.01"},
          {"min.compaction.lag.ms", "0"},
          {"delete.retention.ms", "0"}};
}

TEST(KafkaStateStoreRealBroker, NewRegistryOverLeftoverStateReplacesItOnACompactingTopic) {
  std::string addr = broker_or_fail();
  if (addr.empty()) return;
  KafkaSettings settings = testing::test_settings(addr);
  std::string topic = unique_topic("leftover");
  auto created = ensure_compacted_topic(settings, topic, 2, -1, aggressive_compaction());
  ASSERT_TRUE(created) << created.error().message;
  // Each round starts from a new registry over what the previous round left, so its leftover
  // environments are tombstoned (and, with delete.retention.ms=0, may vanish entirely).
  for (int round = 0; round < 4 && !::testing::Test::HasFailure(); ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    testing::many_saves_then_fresh_load_restores_the_last(settings, state_settings(topic), 60,
                                                          /*expect_empty_topic=*/round == 0);
  }
}

TEST(KafkaStateStoreRealBroker, LoadBeforeAndAfterTheBrokerCompactedRestoresTheLastRegistry) {
  // Keeps saving new versions (environments change, arrive and are torn down) and loading them
  // with a fresh store, until a load reads fewer records than were produced: the broker's log
  // cleaner (log.cleaner.backoff.ms, 15 s by default) compacted. Every load, before and after,
  // must restore the registry as last saved.
  std::string addr = broker_or_fail();
  if (addr.empty()) return;
  KafkaSettings settings = testing::test_settings(addr);
  std::string topic = unique_topic("compacted");
  auto created = ensure_compacted_topic(settings, topic, 1, -1, aggressive_compaction());
  ASSERT_TRUE(created) << created.error().message;

  boost::asio::io_context io;
  auto writer = KafkaStateStore::create(io, settings, state_settings(topic));
  ASSERT_TRUE(writer) << writer.error().message;
  ASSERT_TRUE((*writer)->load());
  bot::Registry r = testing::sample_registry(4);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  bool compacted = false;
  int loads = 0;
  for (int v = 0; !compacted && std::chrono::steady_clock::now() < deadline; ++v) {
    auto& envs = r.environments();
    envs.begin()->second.stage = "stage-" + std::to_string(v);
    bot::Environment e = envs.begin()->second;
    e.id = bot::EnvId{"short-lived-" + std::to_string(v)};
    r.put(e);
    if (v > 0) envs.erase(bot::EnvId{"short-lived-" + std::to_string(v - 1)});
    r.mark_lifecycle("evt-" + std::to_string(v));
    ASSERT_TRUE((*writer)->save(r.snapshot()));
    testing::wait_delivered(io, **writer);

    auto reader = KafkaStateStore::create(io, settings, state_settings(topic));
    ASSERT_TRUE(reader);
    auto loaded = (*reader)->load();
    ASSERT_TRUE(loaded && *loaded) << (loaded ? "no state" : loaded.error().message);
    auto restored = bot::Registry::restore(**loaded);
    ASSERT_TRUE(restored) << restored.error().message;
    ASSERT_EQ(*restored, r) << "version " << v << ", records read "
                            << (*reader)->stats().records_loaded;
    ++loads;
    compacted = (*reader)->stats().records_loaded < (*writer)->stats().records_produced;
  }
  EXPECT_TRUE(compacted)
      << "the broker did not compact " << topic << " within 120 s (" << loads
      << " loads); is log.cleaner.enable off or log.cleaner.backoff.ms very long?";
}

TEST(KafkaStateStoreRealBroker, DeletePolicyTopicIsRefusedWithAFix) {
  std::string addr = broker_or_fail();
  if (addr.empty()) return;
  KafkaSettings settings = testing::test_settings(addr);
  std::string topic = unique_topic("delete-policy");
  ASSERT_TRUE(ensure_compacted_topic(settings, topic, 1, -1, {{"cleanup.policy", "delete"}}));
  auto refused = ensure_compacted_topic(settings, topic, 1);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, bot::Errc::invalid_argument);
  EXPECT_THAT(refused.error().message, HasSubstr("cleanup.policy=delete"));
  EXPECT_THAT(refused.error().message, HasSubstr("cleanup.policy=compact"));
}

}  // namespace
}  // namespace runbot::events
