// Provisioner rules against a scripted backend: ordering, bounds, cancellation, events.
#include "deploy/provisioner.h"

#include <gtest/gtest.h>

#include <memory>

#include "tests/support/fake_clock.h"
#include "tests/support/fake_publisher.h"

namespace runbot::deploy {
namespace {

using bot::JobVerb;
using bot::LifecycleKind;
using K = bot::LifecycleKind;

// A backend whose jobs finish when the test says so. cancel() reports `cancelled` on the next
// clock turn, like a real backend would after the process died.
class ScriptedBackend final : public Backend {
 public:
  struct Started {
    bot::Job job;
    JobObserver observer;
    bool cancel_requested = false;
    bool handle_destroyed = false;
    bool done = false;
  };

  explicit ScriptedBackend(bot::Clock& clock, bool simulated = false)
      : clock_(clock), simulated_(simulated) {}

  std::unique_ptr<RunningJob> start(const bot::Job& job, const bot::AppSpec&,
                                    JobObserver observer) override {
    auto s = std::make_shared<Started>();
    s->job = job;
    s->observer = std::move(observer);
    started.push_back(s);
    return std::make_unique<Handle>(s, clock_);
  }
  std::string kind() const override { return "scripted"; }
  bool simulated() const override { return simulated_; }

  // Completes the i-th started job.
  void finish(size_t i, JobOutcome outcome) {
    auto s = started.at(i);
    ASSERT_FALSE(s->done) << "job " << s->job.id << " finished twice";
    s->done = true;
    s->observer.on_done(outcome);
  }
  void succeed(size_t i) {
    JobOutcome o;
    o.success = true;
    o.exit_status = 0;
    finish(i, o);
  }
  std::vector<std::string> started_ids() const {
    std::vector<std::string> out;
    for (const auto& s : started) out.push_back(s->job.id.str());
    return out;
  }

  std::vector<std::shared_ptr<Started>> started;

 private:
  class Handle final : public RunningJob {
   public:
    Handle(std::shared_ptr<Started> s, bot::Clock& clock) : s_(std::move(s)), clock_(clock) {}
    ~Handle() override { s_->handle_destroyed = true; }
    void cancel() override {
      if (s_->cancel_requested || s_->done) return;
      s_->cancel_requested = true;
      clock_.call_after(bot::Duration::zero(), [s = s_] {
        if (s->done) return;
        s->done = true;
        JobOutcome o;
        o.cancelled = true;
        o.reason = "cancelled";
        s->observer.on_done(o);
      });
    }

   private:
    std::shared_ptr<Started> s_;
    bot::Clock& clock_;
  };

  bot::Clock& clock_;
  bool simulated_;
};

bot::AppSpec app(std::string name) {
  bot::AppSpec a;
  a.name = bot::AppName{std::move(name)};
  return a;
}

bot::Job job(std::string id, JobVerb verb, std::string env, std::string app_name = "front-end") {
  bot::Job j;
  j.id = bot::JobId{std::move(id)};
  j.verb = verb;
  j.env = bot::EnvId{std::move(env)};
  j.app = bot::AppName{std::move(app_name)};
  j.requested_by = bot::UserId{"alice"};
  return j;
}

const bot::EnvId kA{"front-end-pr-1"};
const bot::EnvId kB{"front-end-pr-2"};
const bot::EnvId kC{"front-end-pr-3"};
const bot::EnvId kD{"front-end-pr-4"};

class ProvisionerTest : public ::testing::Test {
 protected:
  explicit ProvisionerTest(size_t max_concurrent = 4)
      : backend(clock),
        provisioner(ProvisionerSettings{max_concurrent, "/runbot/provisioner"},
                    {{bot::AppName{"front-end"}, app("front-end")},
                     {bot::AppName{"checkout"}, app("checkout")}},
                    backend, publisher, clock) {}

  std::vector<bot::LifecycleEvent> events_of_job(const std::string& id) const {
    std::vector<bot::LifecycleEvent> out;
    for (const auto& e : publisher.events) {
      if (e.job.str() == id) out.push_back(e);
    }
    return out;
  }
  std::vector<K> kinds_of_job(const std::string& id) const {
    std::vector<K> out;
    for (const auto& e : events_of_job(id)) out.push_back(e.kind);
    return out;
  }

  testing::FakeClock clock;
  testing::RecordingPublisher publisher;
  ScriptedBackend backend;
  Provisioner provisioner;
};

class ProvisionerWithTwoSlots : public ProvisionerTest {
 protected:
  ProvisionerWithTwoSlots() : ProvisionerTest(2) {}
};

class ProvisionerWithOneSlot : public ProvisionerTest {
 protected:
  ProvisionerWithOneSlot() : ProvisionerTest(1) {}
};

TEST_F(ProvisionerTest, JobsOfOneEnvironmentRunOneAtATimeInArrivalOrder) {
  provisioner.on_job(job("j1", JobVerb::up, kA.str()));
  provisioner.on_job(job("j2", JobVerb::extend, kA.str()));
  provisioner.on_job(job("j3", JobVerb::suspend, kA.str()));
  EXPECT_EQ(backend.started_ids(), (std::vector<std::string>{"j1"}));
  // The user sees why the second job waits.
  ASSERT_EQ(kinds_of_job("j2"), (std::vector<K>{K::accepted}));
  EXPECT_NE(events_of_job("j2")[0].message.find("queued behind job j1"), std::string::npos);

  backend.succeed(0);
  EXPECT_EQ(backend.started_ids(), (std::vector<std::string>{"j1", "j2"}));
  backend.succeed(1);
  EXPECT_EQ(backend.started_ids(), (std::vector<std::string>{"j1", "j2", "j3"}));
  backend.succeed(2);
  EXPECT_EQ(kinds_of_job("j2"), (std::vector<K>{K::accepted, K::extended}));
  EXPECT_EQ(kinds_of_job("j3"), (std::vector<K>{K::accepted, K::suspended}));
  EXPECT_EQ(provisioner.stats().done, 3u);
}

TEST_F(ProvisionerWithTwoSlots, AtMostMaxConcurrentRunAndTheRestStartInArrivalOrder) {
  provisioner.on_job(job("a", JobVerb::up, kA.str()));
  provisioner.on_job(job("b", JobVerb::up, kB.str()));
  provisioner.on_job(job("c", JobVerb::up, kC.str()));
  provisioner.on_job(job("d", JobVerb::up, kD.str()));
  EXPECT_EQ(backend.started_ids(), (std::vector<std::string>{"a", "b"}));
  auto stats = provisioner.stats();
  EXPECT_EQ(stats.running, 2u);
  EXPECT_EQ(stats.queued, 2u);
  EXPECT_NE(events_of_job("c")[0].message.find("2 jobs running"), std::string::npos);

  auto listed = provisioner.jobs();
  ASSERT_EQ(listed.size(), 4u);
  EXPECT_TRUE(listed[0].running);
  EXPECT_FALSE(listed[2].running);
  EXPECT_EQ(listed[2].id.str(), "c");
  EXPECT_EQ(listed[3].id.str(), "d");

  backend.succeed(1);  // b finishes first: c (not d) takes its slot
  EXPECT_EQ(backend.started_ids(), (std::vector<std::string>{"a", "b", "c"}));
  backend.succeed(0);
  EXPECT_EQ(backend.started_ids(), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(provisioner.stats().running, 2u);
  EXPECT_EQ(provisioner.stats().queued, 0u);
}

TEST_F(ProvisionerWithOneSlot, BusyEnvironmentDoesNotBlockOthersBehindIt) {
  provisioner.on_job(job("a1", JobVerb::up, kA.str()));
  provisioner.on_job(job("a2", JobVerb::extend, kA.str()));
  provisioner.on_job(job("b1", JobVerb::up, kB.str()));
  backend.succeed(0);
  // a2 arrived first and its environment is free again: it goes before b1.
  EXPECT_EQ(backend.started_ids(), (std::vector<std::string>{"a1", "a2"}));
  backend.succeed(1);
  EXPECT_EQ(backend.started_ids(), (std::vector<std::string>{"a1", "a2", "b1"}));
}

TEST_F(ProvisionerTest, DownDuringUpCancelsTheUpAndThenTearsDown) {
  provisioner.on_job(job("up1", JobVerb::up, kA.str()));
  backend.started[0]->observer.on_stage("pull-images", 3, 6, "pulling");
  provisioner.on_job(job("down1", JobVerb::down, kA.str()));

  EXPECT_TRUE(backend.started[0]->cancel_requested);
  // The down waits until the up has really stopped.
  EXPECT_EQ(backend.started_ids(), (std::vector<std::string>{"up1"}));
  clock.run_due();

  auto up_events = events_of_job("up1");
  ASSERT_EQ(kinds_of_job("up1"), (std::vector<K>{K::accepted, K::progress, K::cancelled}));
  EXPECT_EQ(up_events.back().reason, "cancelled by down job down1");
  EXPECT_EQ(up_events.back().stage, "pull-images");
  EXPECT_TRUE(backend.started[0]->handle_destroyed);
  ASSERT_EQ(backend.started_ids(), (std::vector<std::string>{"up1", "down1"}));

  backend.succeed(1);
  EXPECT_EQ(kinds_of_job("down1"), (std::vector<K>{K::accepted, K::deleted}));
  EXPECT_EQ(provisioner.stats().cancelled, 1u);
  EXPECT_EQ(provisioner.stats().done, 1u);
}

TEST_F(ProvisionerWithOneSlot, QueuedUpIsDroppedByDownWithoutEverStarting) {
  provisioner.on_job(job("b-up", JobVerb::up, kB.str()));
  provisioner.on_job(job("a-up", JobVerb::up, kA.str()));
  provisioner.on_job(job("a-down", JobVerb::down, kA.str()));

  ASSERT_EQ(kinds_of_job("a-up"), (std::vector<K>{K::accepted, K::cancelled}));
  EXPECT_NE(events_of_job("a-up")[1].reason.find("down job a-down"), std::string::npos);
  EXPECT_EQ(provisioner.stats().queued, 1u);

  backend.succeed(0);
  EXPECT_EQ(backend.started_ids(), (std::vector<std::string>{"b-up", "a-down"}));
  EXPECT_FALSE(backend.started[0]->cancel_requested);  // other environments are untouched
}

TEST_F(ProvisionerTest, RedeliveredJobIdIsIgnored) {
  auto j = job("j1", JobVerb::up, kA.str());
  provisioner.on_job(j);
  provisioner.on_job(j);
  backend.succeed(0);
  provisioner.on_job(j);  // even after it finished
  EXPECT_EQ(backend.started.size(), 1u);
  EXPECT_EQ(kinds_of_job("j1"), (std::vector<K>{K::accepted, K::ready}));
  EXPECT_EQ(provisioner.stats().duplicates, 2u);
}

TEST_F(ProvisionerTest, UnknownAppFailsWithAReasonNamingTheKnownApps) {
  provisioner.on_job(job("j1", JobVerb::up, "nope-pr-1", "nope"));
  EXPECT_TRUE(backend.started.empty());
  ASSERT_EQ(publisher.events.size(), 1u);
  const auto& e = publisher.events[0];
  EXPECT_EQ(e.kind, K::failed);
  EXPECT_EQ(e.reason, "unknown app 'nope' (known apps: checkout, front-end)");
  EXPECT_EQ(provisioner.stats().failed, 1u);
  // The provisioner keeps working.
  provisioner.on_job(job("j2", JobVerb::up, kA.str()));
  EXPECT_EQ(backend.started.size(), 1u);
}

TEST_F(ProvisionerTest, FirstUpIsReadyLaterUpsAreUpdatesUntilTornDown) {
  provisioner.on_job(job("up1", JobVerb::up, kA.str()));
  backend.started[0]->observer.on_url("https://a.example");
  bot::NodeInfo node{bot::NodeName{"ip-10-0-1-17"}, bot::CapacityType::spot, "m5.large",
                     "eu-west-1a"};
  backend.started[0]->observer.on_node(node);
  backend.started[0]->observer.on_node(node);  // reported twice, listed once
  backend.succeed(0);
  auto ready = events_of_job("up1").back();
  EXPECT_EQ(ready.kind, K::ready);
  EXPECT_EQ(ready.url, "https://a.example");
  EXPECT_EQ(ready.nodes, (std::vector<bot::NodeInfo>{node}));
  EXPECT_TRUE(provisioner.created(kA));

  provisioner.on_job(job("up2", JobVerb::up, kA.str()));
  backend.succeed(1);
  auto updated = events_of_job("up2").back();
  EXPECT_EQ(updated.kind, K::updated);
  EXPECT_EQ(updated.url, "https://a.example");  // the URL is remembered when not re-reported

  provisioner.on_job(job("down1", JobVerb::down, kA.str()));
  backend.succeed(2);
  EXPECT_FALSE(provisioner.created(kA));
  provisioner.on_job(job("up3", JobVerb::up, kA.str()));
  backend.succeed(3);
  EXPECT_EQ(events_of_job("up3").back().kind, K::ready);
}

TEST_F(ProvisionerTest, FailureReportsStageReasonExitStatusAndLastTenLines) {
  provisioner.on_job(job("up1", JobVerb::up, kA.str()));
  backend.started[0]->observer.on_stage("render", 1, 2, "rendering");
  backend.started[0]->observer.on_stage("deploy", 2, 2, "helm upgrade");
  JobOutcome o;
  o.exit_status = 3;
  o.reason = "exited with status 3";
  for (int i = 1; i <= 15; ++i) o.log_tail.push_back("line " + std::to_string(i));
  backend.finish(0, o);

  auto events = events_of_job("up1");
  ASSERT_EQ(kinds_of_job("up1"),
            (std::vector<K>{K::accepted, K::progress, K::progress, K::failed}));
  EXPECT_EQ(events[1].stage_index, 1);
  EXPECT_EQ(events[2].stage, "deploy");
  EXPECT_EQ(events[2].stage_count, 2);
  EXPECT_EQ(events[2].message, "helm upgrade");
  const auto& failed = events[3];
  EXPECT_EQ(failed.stage, "deploy");
  EXPECT_EQ(failed.reason, "exited with status 3");
  EXPECT_EQ(failed.exit_status, 3);
  ASSERT_EQ(failed.log_tail.size(), 10u);
  EXPECT_EQ(failed.log_tail.front(), "line 6");
  EXPECT_EQ(failed.log_tail.back(), "line 15");
  EXPECT_FALSE(provisioner.created(kA));
  EXPECT_EQ(provisioner.stats().failed, 1u);
}

TEST_F(ProvisionerTest, EventsHaveUniqueIdsClockTimeAndSource) {
  provisioner.on_job(job("up1", JobVerb::up, kA.str()));
  clock.advance(std::chrono::seconds(5));
  backend.started[0]->observer.on_stage("render", 1, 1, "");
  clock.advance(std::chrono::seconds(5));
  backend.succeed(0);
  auto events = events_of_job("up1");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].id, "up1.1");
  EXPECT_EQ(events[1].id, "up1.2");
  EXPECT_EQ(events[2].id, "up1.3");
  EXPECT_EQ(events[2].time - events[0].time, std::chrono::seconds(10));
  EXPECT_EQ(events[0].source, "/runbot/provisioner/scripted");
  EXPECT_EQ(events[0].verb, JobVerb::up);
  EXPECT_EQ(events[0].env, kA);
  EXPECT_FALSE(events[0].simulated);
}

TEST_F(ProvisionerTest, ExtendReportsTheNewExpiry) {
  auto j = job("ext", JobVerb::extend, kA.str());
  j.expires_at = clock.now() + std::chrono::hours(4);
  provisioner.on_job(j);
  backend.succeed(0);
  auto e = events_of_job("ext").back();
  EXPECT_EQ(e.kind, K::extended);
  EXPECT_EQ(e.expires_at, clock.now() + std::chrono::hours(4));
}

TEST_F(ProvisionerTest, DestroyingTheProvisionerStopsRunningJobsSilently) {
  {
    testing::RecordingPublisher pub;
    ScriptedBackend b(clock);
    {
      Provisioner p({}, {{bot::AppName{"front-end"}, app("front-end")}}, b, pub, clock);
      p.on_job(job("up1", JobVerb::up, kA.str()));
    }
    EXPECT_TRUE(b.started[0]->handle_destroyed);
    EXPECT_EQ(pub.events.size(), 1u);  // only `accepted`
  }
}

}  // namespace
}  // namespace runbot::deploy
