// Bot against fakes: lifecycle and cluster events, as a chat user would see them.
#include <gtest/gtest.h>

#include "bot/bot.h"
#include "tests/support/fake_chat_adapter.h"
#include "tests/support/recording_job_queue.h"

namespace runbot::bot {
namespace {

using namespace std::chrono_literals;
using testing::FakeChatAdapter;
using testing::FakeClock;
using testing::RecordingJobQueue;

class BotEvents : public ::testing::Test {
 protected:
  BotEvents() {
    AppSpec app;
    app.name = AppName{"web"};
    app.repo = "acme/web";
    settings.apps[app.name] = app;
    settings.oncall_channel = "fake:oncall";
    outbox_settings.messages_per_second = 100;
    outbox_settings.burst = 100;
    outbox = std::make_unique<Outbox>(outbox_settings, clock, metrics);
    bot = std::make_unique<Bot>(settings, Registry{}, clock, jobs, *outbox, metrics, nullptr);
    bot->attach(chat);
    bot->start();
  }

  // Creates web-pr-1 and brings it to ready on node n1 (spot).
  void make_ready() {
    chat.say("up web 1");
    clock.advance(1s);
    ASSERT_EQ(jobs.jobs.size(), 1u);
    LifecycleEvent e;
    e.id = "ev-ready";
    e.kind = LifecycleKind::ready;
    e.env = EnvId{"web-pr-1"};
    e.job = jobs.jobs[0].id;
    e.url = "https://web-pr-1";
    e.nodes = {{NodeName{"n1"}, CapacityType::spot, "m5.large", "a"}};
    bot->on_lifecycle(e);
    clock.advance(1s);
  }

  std::vector<std::string> titles() const {
    std::vector<std::string> out;
    for (const auto& p : chat.posts) out.push_back(p.request.message.title);
    return out;
  }
  // In whole messages: a reply may reach the thread inside a digest of several.
  size_t count_text(const std::string& needle) const {
    size_t n = 0;
    for (const auto& p : chat.posts) n += to_plain_text(p.request.message).find(needle) != std::string::npos;
    return n;
  }
  size_t count_titles(const std::string& needle) const {
    size_t n = 0;
    for (const auto& t : titles()) n += t.find(needle) != std::string::npos;
    return n;
  }

  ClusterEvent spot(const std::string& key) {
    ClusterEvent e;
    e.dedupe_key = key;
    e.kind = ClusterEventKind::spot_interruption;
    e.node = {NodeName{"n1"}, CapacityType::spot, "m5.large", "a"};
    e.deadline = clock.now() + 2min;
    return e;
  }

  FakeClock clock;
  Metrics metrics;
  BotSettings settings;
  OutboxSettings outbox_settings;
  RecordingJobQueue jobs{clock};
  FakeChatAdapter chat{clock};
  std::unique_ptr<Outbox> outbox;
  std::unique_ptr<Bot> bot;
};

TEST_F(BotEvents, RedeliveredEventsAreAnnouncedOnce) {
  make_ready();
  LifecycleEvent again;
  again.id = "ev-ready";
  again.kind = LifecycleKind::ready;
  again.env = EnvId{"web-pr-1"};
  again.job = jobs.jobs[0].id;
  bot->on_lifecycle(again);
  bot->on_cluster(spot("spot-itn-1"));
  bot->on_cluster(spot("spot-itn-1"));
  clock.advance(2s);
  EXPECT_EQ(count_titles("web-pr-1 is ready"), 1u);
  EXPECT_EQ(count_titles("spot interruption on node n1"), 2u) << "one in the thread, one summary on-call";
}

TEST_F(BotEvents, IllegalTransitionIsRefusedNotApplied) {
  make_ready();
  LifecycleEvent e;
  e.id = "ev-x";
  e.kind = LifecycleKind::resumed;  // ready -> ready is not a transition
  e.env = EnvId{"web-pr-1"};
  e.job = jobs.jobs[0].id;
  bot->on_lifecycle(e);
  clock.advance(1s);
  EXPECT_EQ(bot->registry().find(EnvId{"web-pr-1"})->state, EnvState::ready);
  EXPECT_EQ(count_titles("resumed"), 0u);
  EXPECT_EQ(metrics.value("runbot_events_ignored_total", {{"reason", "illegal_transition"}}), 1);
}

TEST_F(BotEvents, RepeatedWarningsBecomeOneMessageThatIsUpdated) {
  make_ready();
  for (int i = 0; i < 5; ++i) {
    ClusterEvent w;
    w.dedupe_key = "uid-" + std::to_string(i);
    w.kind = ClusterEventKind::pod_warning;
    w.namespace_name = "web-pr-1";
    w.object = "Pod/web-7d9f";
    w.reason = "CrashLoopBackOff";
    w.message = "Back-off restarting failed container";
    bot->on_cluster(w);
    clock.advance(2s);
  }
  std::vector<FakeChatAdapter::Posted> warning_posts;
  for (const auto& p : chat.posts) {
    if (p.request.message.kind == NoticeKind::warning_events) warning_posts.push_back(p);
  }
  ASSERT_FALSE(warning_posts.empty());
  EXPECT_TRUE(warning_posts.front().request.edit.empty());
  for (size_t i = 1; i < warning_posts.size(); ++i) EXPECT_EQ(warning_posts[i].request.edit, warning_posts.front().id);
  EXPECT_EQ(warning_posts.back().request.message.title, "⚠ 5 warning events in web-pr-1");
  ASSERT_EQ(warning_posts.back().request.message.code.size(), 1u);
  EXPECT_NE(warning_posts.back().request.message.code[0].find("CrashLoopBackOff ×5  Pod/web-7d9f"), std::string::npos);
}

TEST_F(BotEvents, InterruptionWithoutRecoveryIsReportedAfterTheTimeout) {
  make_ready();
  bot->on_cluster(spot("spot-itn-2"));
  clock.advance(9min);
  EXPECT_EQ(count_titles("has not recovered"), 0u);
  clock.advance(2min);
  EXPECT_EQ(count_titles("web-pr-1 has not recovered 10m after the interruption"), 1u);
  clock.advance(30min);
  EXPECT_EQ(count_titles("has not recovered"), 1u) << "said once";
}

TEST_F(BotEvents, APodScheduledElsewhereAfterAnInterruptionMeansRecovered) {
  make_ready();
  bot->on_cluster(spot("spot-itn-3"));
  ClusterEvent s;
  s.dedupe_key = "uid-sched";
  s.kind = ClusterEventKind::pod_scheduled;
  s.namespace_name = "web-pr-1";
  s.object = "Pod/web-new";
  s.node = {NodeName{"n2"}, CapacityType::on_demand, "", ""};
  bot->on_cluster(s);
  clock.advance(2s);
  EXPECT_EQ(count_text("web-pr-1 recovered"), 1u);
  clock.advance(20min);
  EXPECT_EQ(count_text("has not recovered"), 0u);
}

TEST_F(BotEvents, AJobThatCannotBePublishedFailsTheEnvironmentVisibly) {
  jobs.fail_next = true;
  chat.say("up web 2");
  clock.advance(2s);
  EXPECT_EQ(bot->registry().find(EnvId{"web-pr-2"})->state, EnvState::failed);
  EXPECT_EQ(count_titles("web-pr-2 failed at stage publish"), 1u);
}

TEST_F(BotEvents, StatusShowsEventLagPerTopic) {
  BotHooks hooks;
  hooks.event_stats = [] {
    EventSourceStats s;
    s.consumed = 120;
    s.skipped_invalid = 2;
    s.dead_lettered = 2;
    s.lag = 3;
    s.lag_by_topic = {{"runbot.events", 0}, {"runbot.cluster-events", 3}, {"runbot.other", -1}};
    return s;
  };
  bot->set_hooks(hooks);
  chat.say("status");
  ASSERT_FALSE(chat.replies.empty());
  std::string lag_line;
  for (const auto& f : chat.replies.back().fields) {
    if (f.label == "Event lag") lag_line = f.value;
  }
  EXPECT_EQ(lag_line,
            "runbot.cluster-events 3, runbot.events 0, runbot.other unknown, 120 consumed, 2 invalid skipped "
            "(2 in the dead-letter topic)");
}

TEST_F(BotEvents, StatusShowsTotalEventLagWhenNoTopicIsKnown) {
  BotHooks hooks;
  hooks.event_stats = [] {
    EventSourceStats s;
    s.lag = 7;
    return s;
  };
  bot->set_hooks(hooks);
  chat.say("status");
  ASSERT_FALSE(chat.replies.empty());
  std::string lag_line;
  for (const auto& f : chat.replies.back().fields) {
    if (f.label == "Event lag") lag_line = f.value;
  }
  EXPECT_EQ(lag_line, "7 records, 0 consumed, 0 invalid skipped (0 in the dead-letter topic)");
}

}  // namespace
}  // namespace runbot::bot
