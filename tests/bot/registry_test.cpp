#include "bot/registry.h"

#include <gtest/gtest.h>

namespace runbot::bot {
namespace {

using namespace std::chrono_literals;

Environment sample() {
  Environment e;
  e.id = EnvId{"front-end-pr-123"};
  e.app = AppName{"front-end"};
  e.pr = 123;
  e.namespace_name = "front-end-pr-123";
  e.state = EnvState::ready;
  e.owner = e.requester = UserId{"alice"};
  e.team = TeamName{"web"};
  e.created_at = TimePoint{} + 1000h;
  e.ready_at = e.created_at + 3min;
  e.ttl = 8h;
  e.expires_at = *e.ready_at + 8h;
  e.url = "https://x";
  e.values = {{"a", "b"}};
  e.threads = {{"console", ChannelId{"console"}, "console-1"}};
  e.warnings_sent = {30min};
  remember(e, e.created_at, "requested");
  return e;
}

TEST(Registry, SnapshotRestoresEverythingItSaved) {
  Registry r;
  r.put(sample());
  r.set_env_nodes(EnvId{"front-end-pr-123"}, {{NodeName{"n1"}, CapacityType::spot, "m5.large", "eu-west-1a"}},
                  TimePoint{} + 1001h);
  ClusterEvent ev;
  ev.dedupe_key = "spot-itn-1";
  ev.kind = ClusterEventKind::spot_interruption;
  ev.node.name = NodeName{"n1"};
  ev.time = TimePoint{} + 1002h;
  EXPECT_TRUE(r.remember_cluster_event({TimePoint{} + 1002h, ev, {EnvId{"front-end-pr-123"}}}));
  r.mark_lifecycle("evt-1");
  r.learn_provisioning_time(AppName{"front-end"}, 150s);
  r.set_adapter_state("teams/conv/19:abc@thread.tacv2", R"({"serviceUrl":"https://smba.example/"})");
  r.set_adapter_state("teams/conv/gone", "x");
  r.set_adapter_state("teams/conv/gone", "");
  auto restored = Registry::restore(r.snapshot());
  ASSERT_TRUE(restored.has_value()) << restored.error().message;
  EXPECT_EQ(*restored, r);
  EXPECT_TRUE(restored->seen_lifecycle("evt-1"));
  ASSERT_NE(restored->adapter_state("teams/conv/19:abc@thread.tacv2"), nullptr);
  EXPECT_EQ(*restored->adapter_state("teams/conv/19:abc@thread.tacv2"), R"({"serviceUrl":"https://smba.example/"})");
  EXPECT_EQ(restored->adapter_state("teams/conv/gone"), nullptr) << "an empty value erases";
  EXPECT_FALSE(restored->remember_cluster_event({TimePoint{}, ev, {}})) << "dedupe memory survives a restart";
}

TEST(Registry, ClusterDedupeRemembersMoreKeysThanEventsItLists) {
  // A catch-up interleaves partitions: a duplicate can come thousands of records after its
  // original, well beyond the 500 events the registry lists.
  Registry r;
  auto event = [](int i) {
    ClusterEvent ev;
    ev.dedupe_key = "k-" + std::to_string(i);
    ev.kind = ClusterEventKind::other;
    return ClusterEventRecord{TimePoint{} + std::chrono::seconds(i), ev, {}};
  };
  for (int i = 0; i < 3000; ++i) ASSERT_TRUE(r.remember_cluster_event(event(i)));
  EXPECT_EQ(r.cluster_events().size(), Registry::kMaxClusterEvents);
  EXPECT_FALSE(r.remember_cluster_event(event(0))) << "the oldest key is still known";
  auto restored = Registry::restore(r.snapshot());
  ASSERT_TRUE(restored) << restored.error().message;
  EXPECT_EQ(*restored, r);
  EXPECT_FALSE(restored->remember_cluster_event(event(1))) << "and after a restart";
  for (int i = 3000; i < 3000 + static_cast<int>(Registry::kMaxClusterKeys); ++i) {
    ASSERT_TRUE(restored->remember_cluster_event(event(i)));
  }
  EXPECT_TRUE(restored->remember_cluster_event(event(2))) << "bounded: forgotten after kMaxClusterKeys newer keys";
}

TEST(Registry, SnapshotsFollowEveryChangeDespiteTheJsonTheyKeep) {
  // Each environment's and each listed event's JSON is kept between snapshots: a change made in
  // place, an environment removed, an event pushed out of the list must all show in the next one.
  Registry r;
  r.put(sample());
  Environment second = sample();
  second.id = EnvId{"front-end-pr-124"};
  r.put(second);
  auto event = [](int i) {
    ClusterEvent ev;
    ev.dedupe_key = "k-" + std::to_string(i);
    ev.kind = ClusterEventKind::other;
    ev.message = "event \"" + std::to_string(i) + "\" naïve";  // needs escaping
    return ClusterEventRecord{TimePoint{} + std::chrono::seconds(i), ev, {}};
  };
  for (int i = 0; i < 10; ++i) r.remember_cluster_event(event(i));
  r.mark_lifecycle("id with \"quotes\" and ünïcode");
  r.set_outbox_journal(nlohmann::json::array({{"slack", "C1", "front-end-pr-123", "warnings", "1700.1"}}),
                       {{"d-1", R"({"id":"d-1","order":1})"}, {"d-2", R"({"id":"d-2","order":2})"}});
  auto check = [&](const char* when) {
    auto restored = Registry::restore(r.snapshot());
    ASSERT_TRUE(restored) << when << ": " << restored.error().message;
    EXPECT_EQ(*restored, r) << when;
  };
  check("first snapshot");
  r.find(EnvId{"front-end-pr-123"})->url = "https://changed";
  remember(*r.find(EnvId{"front-end-pr-124"}), TimePoint{} + 1010h, "progress: deploying");
  check("after changes in place");
  r.environments().erase(EnvId{"front-end-pr-124"});
  check("after a removal");
  for (int i = 10; i < 10 + static_cast<int>(Registry::kMaxClusterEvents); ++i) r.remember_cluster_event(event(i));
  check("after the first events left the list");
  auto parts = r.snapshot_parts();
  ASSERT_EQ(parts.environments.size(), 1u);
  EXPECT_EQ(parts.environments[0].first, "front-end-pr-123");
  EXPECT_NE(parts.environments[0].second.find("https://changed"), std::string::npos);
  EXPECT_EQ(parts.outbox.size(), 2u) << "queued messages are parts of their own";
  EXPECT_EQ(r.outbox_journal(), nlohmann::json::parse(R"({"keyed":[["slack","C1","front-end-pr-123","warnings","1700.1"]],
                                                          "items":[{"id":"d-1","order":1},{"id":"d-2","order":2}]})"));
}

TEST(Registry, SnapshotKeepsTheBillingHistoryCompactly) {
  Registry r;
  Environment e = sample();
  e.metered_until = e.created_at;
  ASSERT_TRUE(transition(e, EnvState::suspended, e.created_at + 2h));
  ASSERT_TRUE(transition(e, EnvState::ready, e.created_at + 3h));
  r.put(e);
  const std::string snapshot = r.snapshot();
  EXPECT_NE(snapshot.find(R"("billing":[[3607200000,1],[3610800000,0]])"), std::string::npos) << snapshot;
  auto restored = Registry::restore(snapshot);
  ASSERT_TRUE(restored) << restored.error().message;
  EXPECT_EQ(*restored, r);
  const Environment& back = *restored->find(e.id);
  EXPECT_EQ(billed_between(back, e.created_at + 1h, e.created_at + 4h), (BilledTime{2h, 1h}));
}

TEST(Registry, SnapshotWithoutBillingHistoryLoadsAndWorksFromTheTotals) {
  // A snapshot written before the history existed: 10 h running and 2 h suspended, metered
  // to t0 + 12 h, ready since.
  Environment e = sample();
  e.active_time = 10h;
  e.suspended_time = 2h;
  e.metered_until = e.created_at + 12h;
  Registry r;
  r.put(e);
  auto j = nlohmann::json::parse(r.snapshot());
  for (auto& env : j.at("environments")) env.erase("billing");
  auto restored = Registry::restore(j.dump());
  ASSERT_TRUE(restored) << restored.error().message;
  const Environment& back = *restored->find(e.id);
  EXPECT_TRUE(back.billing.empty());
  const TimePoint t0 = e.created_at;
  EXPECT_EQ(billed_between(back, t0, t0 + 14h), (BilledTime{12h, 2h})) << "lifetime: exact";
  EXPECT_EQ(billed_between(back, t0 + 12h, t0 + 14h), (BilledTime{2h, 0h})) << "after the totals: exact";
  EXPECT_EQ(billed_between(back, t0 + 11h, t0 + 14h), (BilledTime{3h, 0h})) << "reaching into them: counted running";
}

TEST(Registry, CorruptSnapshotIsAClearError) {
  auto bad = Registry::restore("{\"version\":1,\"environments\":[{\"id\":\"x\"}]}");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("state snapshot is corrupt"), std::string::npos);
  auto future = Registry::restore("{\"version\":99}");
  ASSERT_FALSE(future.has_value());
  EXPECT_NE(future.error().message.find("version 99"), std::string::npos);
  EXPECT_FALSE(Registry::restore("not json").has_value());
}

TEST(Registry, NodesFollowTheEnvironmentsOnThem) {
  Registry r;
  r.put(sample());
  EnvId id{"front-end-pr-123"};
  r.set_env_nodes(id, {{NodeName{"n1"}, CapacityType::spot, "", ""}}, TimePoint{});
  r.set_env_nodes(id, {{NodeName{"n2"}, CapacityType::on_demand, "", ""}}, TimePoint{});
  EXPECT_TRUE(r.nodes().at(NodeName{"n1"}).envs.empty());
  EXPECT_EQ(r.nodes().at(NodeName{"n2"}).envs.count(id), 1u);
  EXPECT_EQ(r.find(id)->nodes, std::vector<NodeName>{NodeName{"n2"}});
}

TEST(Registry, ProvisioningTimeIsLearnedFromRuns) {
  Registry r;
  AppName app{"a"};
  EXPECT_FALSE(r.expected_provisioning_time(app).has_value());
  r.learn_provisioning_time(app, 90s);
  r.learn_provisioning_time(app, 180s);
  EXPECT_EQ(*r.expected_provisioning_time(app), 120s);
}

}  // namespace
}  // namespace runbot::bot
