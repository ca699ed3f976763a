// Policies as chat users meet them: denials, queueing, approvals, budget alerts, audit.
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

class BotPolicy : public ::testing::Test {
 protected:
  BotPolicy() {
    AppSpec app;
    app.name = AppName{"web"};
    app.repo = "acme/web";
    app.team = TeamName{"webteam"};
    app.rate_per_hour = Money::dollars(1);
    app.default_ttl = 8h;
    settings.apps[app.name] = app;
    settings.oncall_channel = "fake:oncall";
    auto& p = settings.policy;
    p.enabled = true;
    p.default_role = Role::viewer;
    p.bindings.push_back({Role::admin, "*", {"boss"}, {}, {}, {}});
    p.bindings.push_back({Role::developer, "*", {"alice", "bob"}, {}, {}, {}});
    p.teams[TeamName{"webteam"}] = {{"alice", "bob"}, Money::dollars(100), "fake:webteam"};
    p.quotas.per_user = 1;
    p.approvals_channel = "fake:approvals";
    OutboxSettings os;
    os.messages_per_second = 100;
    os.burst = 100;
    outbox = std::make_unique<Outbox>(os, clock, metrics);
    bot = std::make_unique<Bot>(settings, Registry{}, clock, jobs, *outbox, metrics, nullptr);
    BotHooks hooks;
    hooks.audit = [this](const AuditRecord& r) { audit_topic.push_back(r); };
    bot->set_hooks(hooks);
    bot->attach(chat);
    bot->start();
  }

  std::string say(const std::string& text, const std::string& user) {
    chat.say(text, user);
    clock.advance(1s);
    std::string out = chat.replies.back().title + "\n" + chat.replies.back().text;
    for (const auto& c : chat.replies.back().code) out += "\n" + c;
    return out;
  }

  void lifecycle(const std::string& env, LifecycleKind kind) {
    const Environment* e = bot->registry().find(EnvId{env});
    ASSERT_NE(e, nullptr);
    LifecycleEvent ev;
    ev.id = env + "-" + to_string(kind) + "-" + std::to_string(++seq);
    ev.kind = kind;
    ev.env = e->id;
    ev.job = e->current_job;
    bot->on_lifecycle(ev);
    clock.advance(1s);
  }

  std::vector<FakeChatAdapter::Posted> posts_in(const std::string& channel) const {
    std::vector<FakeChatAdapter::Posted> out;
    for (const auto& p : chat.posts) {
      if (p.request.channel.str() == channel) out.push_back(p);
    }
    return out;
  }

  FakeClock clock;
  Metrics metrics;
  BotSettings settings;
  RecordingJobQueue jobs{clock};
  FakeChatAdapter chat{clock};
  std::unique_ptr<Outbox> outbox;
  std::unique_ptr<Bot> bot;
  std::vector<AuditRecord> audit_topic;
  int seq = 0;
};

TEST_F(BotPolicy, AViewerIsDeniedWithTheMissingRoleAndNoJobIsPublished) {
  std::string answer = say("up web 1", "mallory");
  EXPECT_NE(answer.find("`up` needs the developer role; @mallory has viewer. Ask @boss to grant it."), std::string::npos)
      << answer;
  EXPECT_TRUE(jobs.jobs.empty());
  EXPECT_NE(say("list", "mallory").find("No environments"), std::string::npos) << "viewers may look";
  ASSERT_FALSE(audit_topic.empty());
  EXPECT_EQ(audit_topic.front().outcome, "denied");
  EXPECT_EQ(audit_topic.front().user.str(), "mallory");
  EXPECT_EQ(audit_topic.front().verb, "up");
}

TEST_F(BotPolicy, OverQuotaRequestsQueueShowInListStartInOrderAndCanBeCancelled) {
  say("up web 1", "alice");
  ASSERT_EQ(jobs.jobs.size(), 1u);
  std::string queued = say("up web 2", "alice");
  EXPECT_NE(queued.find("web-pr-2 is queued at position 1 (q-1)"), std::string::npos) << queued;
  EXPECT_NE(queued.find("@alice already has 1 of 1 active environments"), std::string::npos);
  say("up web 3", "alice");
  EXPECT_EQ(jobs.jobs.size(), 1u) << "nothing over quota is published";
  std::string list = say("list", "alice");
  EXPECT_NE(list.find("q-1  web-pr-2  @alice  queued #1"), std::string::npos) << list;
  EXPECT_NE(list.find("q-2  web-pr-3  @alice  queued #2"), std::string::npos) << list;
  EXPECT_NE(say("cancel q-2", "bob").find("needs the operator role"), std::string::npos);
  EXPECT_NE(say("cancel q-2", "alice").find("Cancelled q-2 (web-pr-3)"), std::string::npos);
  // web-pr-1 goes away: q-1 starts and its requester is told.
  lifecycle("web-pr-1", LifecycleKind::ready);
  say("down web-pr-1", "alice");
  say("yes", "alice");
  lifecycle("web-pr-1", LifecycleKind::deleted);
  ASSERT_EQ(jobs.jobs.size(), 3u);  // up 1, down 1, up 2
  EXPECT_EQ(jobs.jobs.back().env.str(), "web-pr-2");
  bool told = false;
  for (const auto& p : chat.posts) told = told || p.request.message.title.find("q-1 (web-pr-2) is starting now") != std::string::npos;
  EXPECT_TRUE(told);
  EXPECT_TRUE(bot->registry().pending().empty());
}

TEST_F(BotPolicy, OverBudgetNeedsAnAdminsApprovalBeforeTheJobIsPublished) {
  settings.policy.quotas.per_user = 0;
  settings.apps.at(AppName{"web"}).rate_per_hour = Money::dollars(2);
  bot = std::make_unique<Bot>(settings, Registry{}, clock, jobs, *outbox, metrics, nullptr);
  bot->attach(chat);
  bot->start();
  std::string answer = say("up web 1 --ttl 3d", "alice");  // 72h at $2/h: over the $100 budget
  EXPECT_NE(answer.find("web-pr-1 waits for an admin's approval (q-1)"), std::string::npos) << answer;
  EXPECT_TRUE(jobs.jobs.empty());
  auto asks = posts_in("approvals");
  ASSERT_EQ(asks.size(), 1u);
  EXPECT_EQ(asks[0].request.message.buttons.size(), 2u);
  EXPECT_EQ(asks[0].request.message.buttons[0].action, "approve");
  EXPECT_NE(say("approve q-1", "alice").find("needs the admin role"), std::string::npos);
  EXPECT_NE(say("approve q-1", "boss").find("Approved q-1 (web-pr-1)"), std::string::npos);
  ASSERT_EQ(jobs.jobs.size(), 1u);
  EXPECT_EQ(jobs.jobs[0].env.str(), "web-pr-1");
  say("up web 2 --ttl 3d", "bob");
  EXPECT_NE(say("deny q-2", "boss").find("Denied q-2"), std::string::npos);
  EXPECT_EQ(jobs.jobs.size(), 1u);
}

TEST_F(BotPolicy, BudgetAlertsAt80And100PercentOncePerMonthInTheTeamChannel) {
  settings.policy.quotas.per_user = 0;
  settings.apps.at(AppName{"web"}).rate_per_hour = Money::dollars(2);
  bot = std::make_unique<Bot>(settings, Registry{}, clock, jobs, *outbox, metrics, nullptr);
  bot->attach(chat);
  bot->start();
  say("up web 1 --ttl 72h", "boss");  // $144 projected: admins' requests need approval too
  say("approve q-1", "boss");
  lifecycle("web-pr-1", LifecycleKind::ready);
  clock.advance(38h);  // $2/h: 80 % of $100 is reached after 40 hours alive
  EXPECT_TRUE(posts_in("webteam").empty());
  clock.advance(3h);
  auto alerts = posts_in("webteam");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_NE(alerts[0].request.message.title.find("Team webteam has used 8"), std::string::npos)
      << alerts[0].request.message.title;
  EXPECT_NE(alerts[0].request.message.title.find("% of its monthly budget"), std::string::npos);
  clock.advance(5h);
  EXPECT_EQ(posts_in("webteam").size(), 1u) << "80 % is said once";
  clock.advance(5h);
  alerts = posts_in("webteam");
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_NE(alerts[1].request.message.title.find("has used 10"), std::string::npos) << alerts[1].request.message.title;
  EXPECT_NE(alerts[1].request.message.text.find("need an admin's approval"), std::string::npos);
}

TEST_F(BotPolicy, UsageSinceCountsOnlyTheHoursInsideTheWindow) {
  say("up web 1 --ttl 3d", "alice");
  lifecycle("web-pr-1", LifecycleKind::ready);
  clock.advance(30h);
  // Alive 30 hours at $1/h; the last hour of it is 1.0 env-hour and $1.00.
  std::string hour = say("usage --since 1h", "alice");
  EXPECT_NE(hour.find("team webteam  1     1.0        $1.00"), std::string::npos) << hour;
  std::string month = say("usage", "alice");
  // Over 30 days: all of it, 30 h and the seconds before `ready`, every started minute billed.
  EXPECT_NE(month.find("team webteam  1     30.0       $30.02"), std::string::npos) << month;
}

TEST_F(BotPolicy, AuditShowsEveryCommandToOperatorsOnly) {
  say("status", "alice");
  say("up nope 1", "alice");
  std::string denied = say("events --audit", "alice");
  EXPECT_NE(denied.find("needs the operator role"), std::string::npos);
  std::string log = say("events --audit", "boss");
  EXPECT_NE(log.find("@alice  status  ok"), std::string::npos) << log;
  auto m = chat.replies.back();
  std::string all;
  for (const auto& c : m.code) all += c + "\n";
  EXPECT_NE(all.find("@alice  up  rejected  up nope 1"), std::string::npos) << all;
  EXPECT_NE(all.find("@alice  events  denied"), std::string::npos) << all;
  EXPECT_EQ(audit_topic.size(), 4u);
}

TEST_F(BotPolicy, ConfirmationExpires) {
  say("up web 1", "alice");
  lifecycle("web-pr-1", LifecycleKind::ready);
  say("down web-pr-1", "alice");
  clock.advance(3min);
  EXPECT_NE(say("yes", "alice").find("that confirmation expired"), std::string::npos);
  EXPECT_EQ(bot->registry().find(EnvId{"web-pr-1"})->state, EnvState::ready);
}

}  // namespace
}  // namespace runbot::bot
