#include "tests/events/kafka_state_store_test_scenarios.h"

#include <gtest/gtest.h>

#include "tests/events/kafka_scenarios.h"

namespace runbot::events::testing {

void wait_delivered(boost::asio::io_context& io, const KafkaStateStore& store) {
  auto done = [&] {
    auto s = store.stats();
    return s.records_delivered + s.delivery_failures >= s.records_produced;
  };
  ASSERT_TRUE(run_until(io, done)) << "produced=" << store.stats().records_produced
                                   << " delivered=" << store.stats().records_delivered;
  EXPECT_EQ(store.stats().delivery_failures, 0u);
}

std::uint64_t many_saves_then_fresh_load_restores_the_last(const KafkaSettings& settings,
                                                           const StateTopicSettings& state,
                                                           int versions, bool expect_empty_topic) {
  boost::asio::io_context io;
  auto writer = KafkaStateStore::create(io, settings, state);
  EXPECT_TRUE(writer) << writer.error().message;
  if (!writer) return 0;
  auto first = (*writer)->load();
  EXPECT_TRUE(first) << first.error().message;
  if (expect_empty_topic) {
    EXPECT_TRUE(first && !*first) << "a new topic holds no state";
  }

  bot::Registry r = sample_registry(6);
  for (int v = 0; v < versions; ++v) {
    // Each version: one environment changes, every fifth a new one arrives and one is torn down.
    auto& envs = r.environments();
    auto it = std::next(envs.begin(), static_cast<long>(static_cast<std::size_t>(v) % envs.size()));
    it->second.stage = "stage-" + std::to_string(v);
    it->second.stage_index = v;
    if (v % 5 == 4) {
      bot::Environment e = envs.begin()->second;
      e.id = bot::EnvId{"late-pr-" + std::to_string(v)};
      e.pr = 1000 + v;
      r.put(e);
      envs.erase(envs.begin());
    }
    r.mark_lifecycle("evt-v" + std::to_string(v));
    auto saved = (*writer)->save(r.snapshot());
    EXPECT_TRUE(saved) << saved.error().message;
  }
  wait_delivered(io, **writer);
  EXPECT_TRUE((*writer)->healthy());
  auto flushed = (*writer)->flush();
  EXPECT_TRUE(flushed) << flushed.error().message;

  auto reader = KafkaStateStore::create(io, settings, state);
  EXPECT_TRUE(reader) << reader.error().message;
  if (!reader) return 0;
  auto loaded = (*reader)->load();
  EXPECT_TRUE(loaded) << loaded.error().message;
  if (!loaded || !*loaded) {
    ADD_FAILURE() << "load() found no state";
    return 0;
  }
  auto restored = bot::Registry::restore(**loaded);
  EXPECT_TRUE(restored) << restored.error().message;
  if (restored) {
    EXPECT_EQ(*restored, r);
  }
  // A store that loaded the topic has nothing to produce for the same registry.
  EXPECT_TRUE((*reader)->save(r.snapshot()));
  EXPECT_EQ((*reader)->stats().records_produced, 0u);
  return (*writer)->stats().records_produced;
}

}  // namespace runbot::events::testing
