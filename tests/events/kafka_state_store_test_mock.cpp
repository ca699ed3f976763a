// Component tests: KafkaStateStore against the in-process mock cluster (EmbeddedBroker). The mock
// does not compact, so these also show that the reader, not the broker, makes the last value win.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "events/embedded_broker.h"
#include "events/kafka_state_store.h"
#include "tests/events/kafka_scenarios.h"
#include "tests/events/kafka_state_store_test_scenarios.h"

namespace runbot::events {
namespace {

using ::testing::HasSubstr;
using testing::run_until;
using testing::sample_registry;
using testing::wait_delivered;

constexpr const char* kTopic = "runbot.state";

struct MockCluster {
  std::unique_ptr<EmbeddedBroker> broker;
  KafkaSettings settings;
  StateTopicSettings state;

  explicit MockCluster(bool create_topic = true) {
    auto b = EmbeddedBroker::start(KafkaSettings::Topics{});
    EXPECT_TRUE(b) << b.error().message;
    if (!b) return;
    broker = std::move(*b);
    if (create_topic) {
      EXPECT_TRUE(broker->create_topic(kTopic, 4));
    }
    settings = testing::test_settings(broker->bootstrap_servers());
    state.topic = kTopic;
    state.load_timeout = std::chrono::seconds(20);
  }

  std::unique_ptr<KafkaStateStore> store(boost::asio::io_context& io) const {
    auto s = KafkaStateStore::create(io, settings, state);
    EXPECT_TRUE(s) << s.error().message;
    return s ? std::move(*s) : nullptr;
  }
};

bot::Registry restore(const std::optional<std::string>& snapshot) {
  EXPECT_TRUE(snapshot.has_value());
  if (!snapshot) return {};
  auto r = bot::Registry::restore(*snapshot);
  EXPECT_TRUE(r) << r.error().message;
  return r ? std::move(*r) : bot::Registry{};
}

TEST(KafkaStateStoreMock, EmptyOrMissingTopicLoadsNothing) {
  MockCluster empty;
  ASSERT_TRUE(empty.broker);
  boost::asio::io_context io;
  auto loaded = empty.store(io)->load();
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_FALSE(loaded->has_value());

  MockCluster missing(/*create_topic=*/false);
  ASSERT_TRUE(missing.broker);
  auto none = missing.store(io)->load();
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_FALSE(none->has_value());
}

TEST(KafkaStateStoreMock, ChangedEnvironmentsAreProducedRemovedOnesTombstonedUnchangedOnesNot) {
  MockCluster mock;
  ASSERT_TRUE(mock.broker);
  boost::asio::io_context io;
  auto store = mock.store(io);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->load());

  bot::Registry r = sample_registry(3);
  ASSERT_TRUE(store->save(r.snapshot()));
  EXPECT_EQ(store->stats().records_produced, 4u) << "three environments and the registry record";
  wait_delivered(io, *store);

  // One environment changes, one is torn down; the registry part changes too (a lifecycle id).
  r.find(bot::EnvId{"app-1-pr-101"})->state = bot::EnvState::suspended;
  r.environments().erase(bot::EnvId{"app-2-pr-102"});
  r.mark_lifecycle("evt-suspended");
  ASSERT_TRUE(store->save(r.snapshot()));
  EXPECT_EQ(store->stats().records_produced, 7u)
      << "env/app-1 value, env/app-2 tombstone, registry; not env/app-0";
  EXPECT_EQ(store->stats().tombstones_produced, 1u);

  // The same snapshot again produces nothing.
  ASSERT_TRUE(store->save(r.snapshot()));
  EXPECT_EQ(store->stats().records_produced, 7u);
  wait_delivered(io, *store);
  EXPECT_TRUE(store->healthy());

  // A fresh store reads all 7 records (the mock keeps every version) and rebuilds the last one.
  auto fresh = mock.store(io);
  auto loaded = fresh->load();
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(fresh->stats().records_loaded, 7u);
  bot::Registry back = restore(*loaded);
  EXPECT_EQ(back, r);
  EXPECT_EQ(back.find(bot::EnvId{"app-2-pr-102"}), nullptr);
  EXPECT_TRUE(back.seen_lifecycle("evt-suspended"));
}

TEST(KafkaStateStoreMock, StoreThatLoadedTombstonesEnvironmentsItNeverSaved) {
  MockCluster mock;
  ASSERT_TRUE(mock.broker);
  boost::asio::io_context io;
  {
    auto first = mock.store(io);
    ASSERT_TRUE(first->load());
    ASSERT_TRUE(first->save(sample_registry(2).snapshot()));
    wait_delivered(io, *first);
  }
  // After a restart, the bot's first save lacks app-0: the store knows it from load().
  auto second = mock.store(io);
  auto loaded = second->load();
  ASSERT_TRUE(loaded && *loaded);
  bot::Registry r = restore(*loaded);
  r.environments().erase(bot::EnvId{"app-0-pr-100"});
  ASSERT_TRUE(second->save(r.snapshot()));
  EXPECT_EQ(second->stats().tombstones_produced, 1u);
  EXPECT_EQ(second->stats().records_produced, 1u)
      << "only the tombstone: env/app-1 and registry are unchanged";
  wait_delivered(io, *second);

  auto third = mock.store(io);
  auto again = third->load();
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(restore(*again), r);
}

TEST(KafkaStateStoreMock, ManySavesThenAFreshLoadRestoresTheLastRegistry) {
  MockCluster mock;
  ASSERT_TRUE(mock.broker);
  std::uint64_t produced =
      testing::many_saves_then_fresh_load_restores_the_last(mock.settings, mock.state, 40);
  // 40 versions each change one environment and the registry record (plus arrivals and
  // teardowns): far fewer records than 40 full snapshots of 6-7 environments.
  EXPECT_GT(produced, 80u);
  EXPECT_LT(produced, 40u * 7u);
}

TEST(KafkaStateStoreMock, FailedDeliveryMakesTheStoreUnhealthyUntilALaterSaveIsDelivered) {
  MockCluster mock;
  ASSERT_TRUE(mock.broker);
  mock.settings.message_timeout = std::chrono::milliseconds(1500);
  boost::asio::io_context io;
  auto store = mock.store(io);
  ASSERT_TRUE(store->load());
  bot::Registry r = sample_registry(2);
  mock.broker->fail_produce_requests(100000);
  ASSERT_TRUE(store->save(r.snapshot())) << "save() only hands records to the producer";
  int durable = 0;
  store->when_durable([&] { ++durable; });
  ASSERT_TRUE(run_until(io, [&] { return !store->healthy(); }));
  EXPECT_THAT(store->problem(), HasSubstr(kTopic));
  ASSERT_TRUE(run_until(io, [&] {
    auto s = store->stats();
    return s.delivery_failures == s.records_produced;
  }));
  EXPECT_EQ(durable, 0) << "a failed save is not durable";

  mock.broker->clear_produce_errors();
  // Nothing changed, yet the keys that failed are produced again.
  std::uint64_t before = store->stats().records_produced;
  ASSERT_TRUE(store->save(r.snapshot()));
  EXPECT_EQ(store->stats().records_produced, before + 3u);
  ASSERT_TRUE(run_until(io, [&] { return store->healthy(); }));
  EXPECT_TRUE(store->problem().empty());
  ASSERT_TRUE(run_until(io, [&] { return durable == 1; })) << "durable once the keys were produced again";

  auto fresh = mock.store(io);
  auto loaded = fresh->load();
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(restore(*loaded), r);
}

TEST(KafkaStateStoreMock, WhenDurableWaitsForEverySaveSoFar) {
  MockCluster mock;
  ASSERT_TRUE(mock.broker);
  boost::asio::io_context io;
  auto store = mock.store(io);
  ASSERT_TRUE(store->load());
  int durable = 0;
  store->when_durable([&] { ++durable; });
  EXPECT_EQ(durable, 1) << "nothing saved yet: durable at once";
  bot::Registry r = sample_registry(3);
  ASSERT_TRUE(store->save(r.snapshot()));
  std::vector<int> order;
  store->when_durable([&] { order.push_back(1); });
  r = sample_registry(5);
  ASSERT_TRUE(store->save(r.snapshot()));
  store->when_durable([&] { order.push_back(2); });
  EXPECT_TRUE(order.empty()) << "not before the broker acknowledged";
  ASSERT_TRUE(run_until(io, [&] { return order.size() == 2; }));
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  ASSERT_TRUE(store->save(r.snapshot())) << "unchanged: nothing produced";
  store->when_durable([&] { order.push_back(3); });
  EXPECT_EQ(order.size(), 3u) << "nothing in flight: durable at once";
  auto fresh = mock.store(io);
  auto loaded = fresh->load();
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(restore(*loaded), r);
}

TEST(KafkaStateStoreMock, SavingPartsProducesTheSameRecordsAsSavingTheWholeSnapshot) {
  MockCluster mock;
  ASSERT_TRUE(mock.broker);
  boost::asio::io_context io;
  auto store = mock.store(io);
  ASSERT_TRUE(store->load());
  bot::Registry r = sample_registry(3);
  ASSERT_TRUE(store->save_parts(r.snapshot_parts()));
  ASSERT_TRUE(store->flush());
  const auto produced = store->stats().records_produced;
  EXPECT_EQ(produced, 4u) << "three environments and the registry";
  // The environments are the same bytes either way; the registry record only has its keys in
  // another order (its long lists are written last), so at most that one is produced again.
  ASSERT_TRUE(store->save(r.snapshot()));
  EXPECT_LE(store->stats().records_produced, produced + 1) << "no environment produced again";
  r = sample_registry(2);
  ASSERT_TRUE(store->save_parts(r.snapshot_parts()));
  ASSERT_TRUE(store->flush());
  EXPECT_EQ(store->stats().tombstones_produced, 1u) << "the third environment is gone";
  auto fresh = mock.store(io);
  auto loaded = fresh->load();
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(restore(*loaded), r);
  bot::StateSnapshot twice = r.snapshot_parts();
  twice.environments.push_back(twice.environments.front());
  auto bad = store->save_parts(twice);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("repeated id"), std::string::npos) << bad.error().message;
}

TEST(KafkaStateStoreMock, UnusableRecordStopsLoadWithItsPosition) {
  MockCluster mock;
  ASSERT_TRUE(mock.broker);
  boost::asio::io_context io;
  testing::produce_all(io, mock.settings, kTopic,
                       {{"env/a", std::string(R"({"id":"a"})"), state_topic::record_headers()},
                        {"env/a", std::string("{truncated"), state_topic::record_headers()}});
  auto loaded = mock.store(io)->load();
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, bot::Errc::invalid_argument);
  EXPECT_THAT(loaded.error().message, HasSubstr("state topic runbot.state partition "));
  EXPECT_THAT(loaded.error().message, HasSubstr(" offset 1 (key 'env/a')"));
}

}  // namespace
}  // namespace runbot::events
