// The demo cluster as a newcomer sees it: timed stages, a URL, nodes, failures on request, and
// spot interruptions that look like aws-node-termination-handler and then recover.
#include "deploy/demo_backend.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>

#include "deploy/job_support.h"
#include "deploy/provisioner.h"
#include "tests/support/fake_clock.h"
#include "tests/support/fake_publisher.h"

namespace runbot::deploy {
namespace {

using K = bot::LifecycleKind;
using std::chrono::seconds;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

class DemoTest : public ::testing::Test {
 protected:
  DemoTest()
      : cluster(DemoClusterSettings{}, clock, publisher),
        backend(DemoSettings{}, cluster, clock),
        provisioner(ProvisionerSettings{}, catalog(), backend, publisher, clock) {}

  static std::map<bot::AppName, bot::AppSpec> catalog() {
    bot::AppSpec fe;
    fe.name = bot::AppName{"front-end"};
    fe.repo = "acme/front-end";
    bot::AppSpec shop;
    shop.name = bot::AppName{"shop"};
    shop.url_template = "https://{app}-{pr}.preview.example.com";
    return {{fe.name, fe}, {shop.name, shop}};
  }

  bot::Job up(int pr, std::string app = "front-end") {
    bot::Job j;
    j.id = bot::JobId{"job-" + std::to_string(++n_)};
    j.verb = bot::JobVerb::up;
    j.app = bot::AppName{app};
    j.pr = pr;
    j.env = bot::EnvId{app + "-pr-" + std::to_string(pr)};
    j.requested_by = bot::UserId{"alice"};
    j.requested_at = clock.now();
    j.ttl = std::chrono::hours(8);
    return j;
  }

  std::vector<bot::LifecycleEvent> of(const bot::Job& j, K kind) const {
    std::vector<bot::LifecycleEvent> out;
    for (const auto& e : publisher.events) {
      if (e.job == j.id && e.kind == kind) out.push_back(e);
    }
    return out;
  }

  // Brings an environment up and waits for it to be ready.
  bot::Job ready(int pr) {
    auto j = up(pr);
    provisioner.on_job(j);
    clock.advance(seconds(200));
    EXPECT_EQ(of(j, K::ready).size(), 1u);
    return j;
  }

  testing::FakeClock clock;
  testing::RecordingPublisher publisher;
  DemoCluster cluster;
  DemoBackend backend;
  Provisioner provisioner;
  int n_ = 0;
};

TEST_F(DemoTest, UpRunsSixTimedStagesThenIsReadyWithUrlAndNodes) {
  const auto start = clock.now();
  auto j = up(123);
  provisioner.on_job(j);
  clock.run_due();

  const std::vector<std::pair<std::string, int>> expected = {
      {"render manifests", 0}, {"create namespace", 5},   {"pull images", 8},
      {"deploy services", 48}, {"migrate database", 108}, {"smoke test", 138}};
  clock.advance(seconds(152));
  EXPECT_TRUE(of(j, K::ready).empty()) << "ready before the smoke test finished";
  clock.advance(seconds(1));

  auto progress = of(j, K::progress);
  ASSERT_EQ(progress.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(progress[i].stage, expected[i].first);
    EXPECT_EQ(progress[i].stage_index, static_cast<int>(i + 1));
    EXPECT_EQ(progress[i].stage_count, 6);
    EXPECT_EQ(progress[i].time - start, seconds(expected[i].second)) << progress[i].stage;
    EXPECT_TRUE(ends_with(progress[i].message, "(simulated)")) << progress[i].message;
    EXPECT_TRUE(progress[i].simulated);
  }
  EXPECT_TRUE(contains(progress[1].message, "janitor/ttl=8h")) << progress[1].message;
  EXPECT_TRUE(contains(progress[1].message,
                       "janitor/expires=" + janitor_expires(start + std::chrono::hours(8))));
  EXPECT_TRUE(contains(progress[2].message, "ghcr.io/acme/front-end:pr-123"));

  auto ready = of(j, K::ready);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].url, "https://front-end-pr-123.demo.runbot.invalid");
  EXPECT_EQ(ready[0].time - start, seconds(153));
  EXPECT_TRUE(ready[0].simulated);
  ASSERT_EQ(ready[0].nodes.size(), 2u);
  EXPECT_EQ(ready[0].nodes[0].capacity, bot::CapacityType::spot);
  EXPECT_EQ(ready[0].nodes[1].capacity, bot::CapacityType::on_demand);
  EXPECT_EQ(cluster.nodes_of(j.env), ready[0].nodes);
}

TEST_F(DemoTest, AppUrlTemplateIsUsed) {
  auto j = up(7, "shop");
  provisioner.on_job(j);
  clock.advance(seconds(200));
  auto ready = of(j, K::ready);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].url, "https://shop-7.preview.example.com");
}

TEST_F(DemoTest, DemoFailByNameFailsThatStageWithARealisticReason) {
  auto j = up(5);
  j.values["demo.fail"] = "pull-images";
  provisioner.on_job(j);
  clock.advance(seconds(200));
  EXPECT_TRUE(of(j, K::ready).empty());
  auto failed = of(j, K::failed);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].stage, "pull images");
  EXPECT_EQ(failed[0].stage_index, 3);
  EXPECT_TRUE(contains(failed[0].reason, "ImagePullBackOff")) << failed[0].reason;
  EXPECT_TRUE(ends_with(failed[0].reason, "(simulated)"));
  EXPECT_EQ(failed[0].exit_status, 1);
  ASSERT_FALSE(failed[0].log_tail.empty());
  EXPECT_TRUE(contains(failed[0].log_tail.back(), "Back-off pulling image"));
  EXPECT_EQ(of(j, K::progress).size(), 3u);  // later stages never started
  EXPECT_TRUE(cluster.nodes_of(j.env).empty());
}

TEST_F(DemoTest, DemoFailByIndexFailsThatStage) {
  auto j = up(6);
  j.values["demo.fail"] = "5";
  provisioner.on_job(j);
  clock.advance(seconds(200));
  auto failed = of(j, K::failed);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].stage, "migrate database");
  EXPECT_TRUE(contains(failed[0].reason, "migration"));
}

TEST_F(DemoTest, DownDuringUpCancelsAndRemovesNothingThatWasNotThere) {
  auto j = up(8);
  provisioner.on_job(j);
  clock.advance(seconds(10));
  bot::Job down = j;
  down.id = bot::JobId{"down-8"};
  down.verb = bot::JobVerb::down;
  provisioner.on_job(down);
  clock.advance(seconds(60));
  EXPECT_EQ(of(j, K::cancelled).size(), 1u);
  EXPECT_TRUE(of(j, K::ready).empty());
  EXPECT_EQ(of(down, K::deleted).size(), 1u);
  EXPECT_TRUE(cluster.nodes_of(j.env).empty());
}

TEST_F(DemoTest, DownFreesTheNodes) {
  auto j = ready(9);
  bot::Job down = j;
  down.id = bot::JobId{"down-9"};
  down.verb = bot::JobVerb::down;
  provisioner.on_job(down);
  clock.advance(seconds(60));
  ASSERT_EQ(of(down, K::deleted).size(), 1u);
  for (const auto& n : cluster.nodes()) EXPECT_TRUE(n.envs.empty()) << n.info.name;
}

TEST_F(DemoTest, SuspendFreesTheNodesAndResumeBringsTheEnvironmentBack) {
  auto j = ready(10);
  bot::Job suspend = j;
  suspend.id = bot::JobId{"suspend-10"};
  suspend.verb = bot::JobVerb::suspend;
  provisioner.on_job(suspend);
  clock.advance(seconds(8));
  ASSERT_EQ(of(suspend, K::suspended).size(), 1u);
  EXPECT_TRUE(cluster.nodes_of(j.env).empty());

  bot::Job resume = j;
  resume.id = bot::JobId{"resume-10"};
  resume.verb = bot::JobVerb::resume;
  provisioner.on_job(resume);
  clock.advance(seconds(30));
  auto resumed = of(resume, K::resumed);
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_EQ(resumed[0].url, "https://front-end-pr-10.demo.runbot.invalid");
  EXPECT_EQ(resumed[0].nodes.size(), 2u);
}

TEST_F(DemoTest, ExtendRewritesTheJanitorExpiry) {
  auto j = ready(11);
  bot::Job extend = j;
  extend.id = bot::JobId{"extend-11"};
  extend.verb = bot::JobVerb::extend;
  extend.expires_at = clock.now() + std::chrono::hours(4);
  provisioner.on_job(extend);
  clock.advance(seconds(2));
  auto progress = of(extend, K::progress);
  ASSERT_EQ(progress.size(), 1u);
  EXPECT_TRUE(
      contains(progress[0].message, "janitor/expires=" + janitor_expires(*extend.expires_at)));
  auto extended = of(extend, K::extended);
  ASSERT_EQ(extended.size(), 1u);
  EXPECT_EQ(extended[0].expires_at, extend.expires_at);
}

TEST_F(DemoTest, SpotInterruptionPublishesAnNthWebhookBodyAndLaterReschedulesAffectedEnvs) {
  auto a = ready(1);  // spot node 1 + on-demand node 1
  auto b = ready(2);  // spot node 2 + on-demand node 2
  auto c = ready(3);  // spot node 1 again
  const auto spot = cluster.nodes_of(a.env).at(0);
  ASSERT_EQ(spot.capacity, bot::CapacityType::spot);
  ASSERT_EQ(cluster.nodes_of(c.env).at(0).name, spot.name);
  ASSERT_NE(cluster.nodes_of(b.env).at(0).name, spot.name);
  const size_t events_before = publisher.events.size();

  auto id = cluster.simulate_spot_interruption(spot.name);
  ASSERT_TRUE(id.has_value()) << id.error().message;

  ASSERT_EQ(publisher.records.size(), 1u);
  EXPECT_EQ(publisher.records[0].key, spot.name.str());
  auto body = nlohmann::json::parse(publisher.records[0].value);
  EXPECT_EQ(body["Kind"], "SPOT_ITN");
  EXPECT_EQ(body["Monitor"], "SPOT_ITN_MONITOR");
  const std::string event_id = body["EventID"];
  EXPECT_EQ(event_id, *id);
  ASSERT_EQ(event_id.size(), std::string("spot-itn-").size() + 64);
  EXPECT_EQ(event_id.rfind("spot-itn-", 0), 0u);
  EXPECT_EQ(body["NodeName"], spot.name.str());
  EXPECT_EQ(body["InstanceType"], spot.instance_type);
  EXPECT_EQ(body["instanceType"], spot.instance_type);
  EXPECT_EQ(body["availabilityZone"], spot.zone);
  EXPECT_EQ(body["instanceLifeCycle"], "spot");
  EXPECT_EQ(body["StartTime"], rfc3339_seconds(clock.now() + std::chrono::minutes(2)));
  EXPECT_EQ(body["EndTime"], "0001-01-01T00:00:00Z");
  EXPECT_TRUE(contains(body["Description"], "(simulated)"));
  const std::string instance_id = body["InstanceID"];
  EXPECT_EQ(instance_id.rfind("i-", 0), 0u);
  EXPECT_EQ(body["ProviderID"], "aws:///" + spot.zone + "/" + instance_id);
  std::vector<std::string> pods = body["Pods"];
  auto has_pod_of = [&](const bot::EnvId& env) {
    return std::any_of(pods.begin(), pods.end(),
                       [&](const std::string& p) { return p.rfind(env.str() + "-", 0) == 0; });
  };
  EXPECT_TRUE(has_pod_of(a.env));
  EXPECT_TRUE(has_pod_of(c.env));
  EXPECT_FALSE(has_pod_of(b.env));
  for (const auto& key : {"accountId", "instanceId", "publicHostname", "publicIp", "localHostname",
                          "privateIp", "region", "Description", "State", "AutoScalingGroupName",
                          "NodeLabels", "IsManaged", "NodeProcessed", "InProgress"}) {
    EXPECT_TRUE(body.contains(key)) << key;
  }

  auto again = cluster.simulate_spot_interruption(spot.name);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, bot::Errc::conflict);

  clock.advance(seconds(89));
  EXPECT_EQ(publisher.events.size(), events_before) << "rescheduled before the node went away";
  clock.advance(seconds(1));

  std::vector<bot::LifecycleEvent> moved;
  for (size_t i = events_before; i < publisher.events.size(); ++i)
    moved.push_back(publisher.events[i]);
  ASSERT_EQ(moved.size(), 2u);
  std::vector<bot::EnvId> envs{moved[0].env, moved[1].env};
  std::sort(envs.begin(), envs.end());
  EXPECT_EQ(envs, (std::vector<bot::EnvId>{a.env, c.env}));
  EXPECT_NE(moved[0].id, moved[1].id);
  for (const auto& e : moved) {
    EXPECT_EQ(e.kind, K::rescheduled);
    EXPECT_TRUE(e.simulated);
    EXPECT_TRUE(ends_with(e.message, "(simulated)"));
    ASSERT_EQ(e.nodes.size(), 2u);
    for (const auto& n : e.nodes) EXPECT_NE(n.name, spot.name);
    EXPECT_EQ(e.nodes[0].capacity, bot::CapacityType::spot);
    EXPECT_EQ(e.nodes[0].instance_type, spot.instance_type);
    EXPECT_EQ(e.nodes[0].zone, spot.zone);
  }
  // The interrupted node is gone and replaced; the cluster still has four nodes.
  ASSERT_EQ(cluster.nodes().size(), 4u);
  for (const auto& n : cluster.nodes()) EXPECT_NE(n.info.name, spot.name);
  EXPECT_EQ(cluster.nodes_of(b.env).size(), 2u);
}

TEST_F(DemoTest, EnvironmentDeletedDuringTheNoticeIsNotRescheduled) {
  auto a = ready(1);
  const auto spot = cluster.nodes_of(a.env).at(0);
  ASSERT_TRUE(cluster.simulate_spot_interruption(spot.name).has_value());
  bot::Job down = a;
  down.id = bot::JobId{"down-1"};
  down.verb = bot::JobVerb::down;
  provisioner.on_job(down);
  clock.advance(seconds(120));
  for (const auto& e : publisher.events) EXPECT_NE(e.kind, K::rescheduled) << e.env;
}

TEST_F(DemoTest, NewEnvironmentsAvoidANodeThatIsGoingAway) {
  const auto spot = cluster.nodes().at(0).info;
  ASSERT_TRUE(cluster.simulate_spot_interruption(spot.name).has_value());
  auto a = ready(1);
  for (const auto& n : cluster.nodes_of(a.env)) EXPECT_NE(n.name, spot.name);
}

TEST_F(DemoTest, UnknownNodeIsAnErrorListingTheKnownNodes) {
  auto r = cluster.simulate_spot_interruption(bot::NodeName{"ip-1-2-3-4"});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, bot::Errc::not_found);
  EXPECT_TRUE(contains(r.error().message, "unknown node 'ip-1-2-3-4'"));
  for (const auto& n : cluster.nodes()) EXPECT_TRUE(contains(r.error().message, n.info.name.str()));
  EXPECT_TRUE(publisher.records.empty());
}

TEST_F(DemoTest, OnDemandNodesGetNoSpotInterruption) {
  auto on_demand = std::find_if(
      cluster.nodes().begin(), cluster.nodes().end(),
      [](const DemoNode& n) { return n.info.capacity == bot::CapacityType::on_demand; });
  ASSERT_NE(on_demand, cluster.nodes().end());
  auto r = cluster.simulate_spot_interruption(on_demand->info.name);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, bot::Errc::invalid_argument);
}

TEST(DemoClusterDefaults, FourNodesTwoSpotTwoOnDemandInTwoZones) {
  auto nodes = DemoClusterSettings::default_nodes();
  ASSERT_EQ(nodes.size(), 4u);
  auto spot = std::count_if(nodes.begin(), nodes.end(), [](const bot::NodeInfo& n) {
    return n.capacity == bot::CapacityType::spot;
  });
  EXPECT_EQ(spot, 2);
  EXPECT_EQ(nodes[0].zone, "eu-west-1a");
  EXPECT_EQ(nodes[1].zone, "eu-west-1b");
}

}  // namespace
}  // namespace runbot::deploy
