#include "bot/environment.h"

#include <gtest/gtest.h>

namespace runbot::bot {
namespace {

using namespace std::chrono_literals;
using S = EnvState;

const std::vector<S> kAll{S::requested, S::provisioning, S::ready,   S::updating,    S::suspended,
                          S::failed,    S::expired,      S::tearing_down, S::deleted};

TEST(Lifecycle, LegalTransitionsMatchTheProductLifecycle) {
  std::set<std::pair<S, S>> legal{
      {S::requested, S::provisioning}, {S::requested, S::failed},   {S::provisioning, S::ready},
      {S::provisioning, S::failed},    {S::ready, S::updating},     {S::updating, S::ready},
      {S::updating, S::failed},        {S::ready, S::suspended},    {S::suspended, S::ready},
      {S::ready, S::expired},          {S::suspended, S::expired},  {S::expired, S::deleted},
      {S::tearing_down, S::deleted},   {S::tearing_down, S::failed}, {S::failed, S::requested},
      {S::failed, S::provisioning},    {S::deleted, S::requested}};
  for (S s : kAll) {
    if (s != S::deleted && s != S::tearing_down) legal.insert({s, S::tearing_down});
  }
  for (S from : kAll) {
    for (S to : kAll) {
      EXPECT_EQ(can_transition(from, to), legal.count({from, to}) > 0)
          << to_string(from) << " -> " << to_string(to);
    }
  }
}

TEST(Lifecycle, IllegalTransitionIsRefusedAndLeavesTheEnvironmentUnchanged) {
  Environment env;
  env.id = EnvId{"a-pr-1"};
  env.state = S::deleted;
  Environment before = env;
  auto s = transition(env, S::ready, TimePoint{} + 1h);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, Errc::conflict);
  EXPECT_EQ(s.error().message, "a-pr-1 is deleted and cannot become ready");
  EXPECT_EQ(env, before);
}

TEST(Cost, IsRateTimesStartedMinutesWithSuspendedMinutesAtTheSuspendedRate) {
  AppSpec app;
  app.rate_per_hour = Money::dollars(0.60);  // 1 cent a minute
  app.suspended_rate_per_hour = Money::dollars(0.06);
  Environment env;
  env.id = EnvId{"a-pr-1"};
  const TimePoint t0 = TimePoint{} + 1000h;
  env.created_at = env.metered_until = t0;
  env.state = S::provisioning;
  EXPECT_EQ(cost_of(env, app, t0), Money{});
  // 90 minutes and one second: 91 started minutes.
  ASSERT_TRUE(transition(env, S::ready, t0 + 30min));
  EXPECT_EQ(format_money(cost_of(env, app, t0 + 90min + 1s)), "$0.91");
  ASSERT_TRUE(transition(env, S::suspended, t0 + 60min));
  // 60 active minutes ($0.60) + 60 suspended minutes ($0.06).
  EXPECT_EQ(format_money(cost_of(env, app, t0 + 120min)), "$0.66");
  ASSERT_TRUE(transition(env, S::ready, t0 + 120min));
  ASSERT_TRUE(transition(env, S::tearing_down, t0 + 150min));
  ASSERT_TRUE(transition(env, S::deleted, t0 + 151min));
  // Nothing accrues once deleted.
  EXPECT_EQ(cost_of(env, app, t0 + 300min), cost_of(env, app, t0 + 151min));
  EXPECT_EQ(format_money(cost_of(env, app, t0 + 151min)), "$0.97");
}

TEST(Cost, InAWindowCountsOnlyTheMinutesInsideIt) {
  AppSpec app;
  app.rate_per_hour = Money::dollars(0.60);  // 1 cent a minute
  app.suspended_rate_per_hour = Money::dollars(0.06);
  Environment env;
  const TimePoint t0 = TimePoint{} + 1000h;
  env.created_at = env.metered_until = t0;
  env.state = S::provisioning;
  ASSERT_TRUE(transition(env, S::ready, t0 + 10min));
  ASSERT_TRUE(transition(env, S::suspended, t0 + 60min));
  ASSERT_TRUE(transition(env, S::ready, t0 + 120min));
  ASSERT_TRUE(transition(env, S::tearing_down, t0 + 150min));
  ASSERT_TRUE(transition(env, S::deleted, t0 + 151min));
  ASSERT_EQ(env.billing.size(), 3u) << "a mark only where the billed kind changes";
  // 30 active minutes before the suspension, 30 suspended; 1 h 1 min after it, all active.
  EXPECT_EQ(billed_between(env, t0 + 30min, t0 + 90min), (BilledTime{30min, 30min}));
  EXPECT_EQ(billed_between(env, t0 + 90min, t0 + 1000min), (BilledTime{31min, 30min}));
  EXPECT_EQ(format_money(cost_between(env, app, t0 + 90min, t0 + 1000min)), "$0.34");
  EXPECT_EQ(cost_between(env, app, t0, t0 + 1000min), cost_of(env, app, t0 + 1000min));
}

TEST(Cost, HistoryIsBoundedAndLifetimeCostStaysExact) {
  AppSpec app;
  app.rate_per_hour = Money::dollars(0.60);
  app.suspended_rate_per_hour = Money::dollars(0.06);
  Environment env;
  const TimePoint t0 = TimePoint{} + 1000h;
  env.created_at = env.metered_until = t0;
  env.state = S::ready;
  TimePoint t = t0;
  for (int i = 0; i < 100; ++i) {  // 200 marks' worth: 1 h running, 1 h suspended, each time
    ASSERT_TRUE(transition(env, S::suspended, t += 1h));
    ASSERT_TRUE(transition(env, S::ready, t += 1h));
  }
  EXPECT_EQ(env.billing.size(), kBillingMarks);
  // 100 h at $0.60 + 100 h at $0.06, and 30 more running minutes.
  EXPECT_EQ(format_money(cost_of(env, app, t + 30min)), "$66.30");
  EXPECT_EQ(cost_between(env, app, t0, t + 30min), cost_of(env, app, t + 30min));
  // The last 4 hours are still marked: exact.
  EXPECT_EQ(billed_between(env, t - 4h, t), (BilledTime{2h, 2h}));
  // Before the oldest kept mark only totals are known: an upper bound, counted running.
  EXPECT_EQ(billed_between(env, t0 + 10h, t0 + 12h), (BilledTime{2h, 0h}));
}

TEST(Money, FormatsDollarsWithCentsAndThousands) {
  EXPECT_EQ(format_money(Money::dollars(15)), "$15.00");
  EXPECT_EQ(format_money(Money::dollars(1234.5)), "$1,234.50");
  EXPECT_EQ(format_money(Money::dollars(0.625)), "$0.63");
  EXPECT_EQ(format_money(cost_for(Money::dollars(0.625), 24h)), "$15.00");
}

TEST(EnvId, IsADns1123Label) {
  EXPECT_EQ(make_env_id(AppName{"front-end"}, 123)->str(), "front-end-pr-123");
  EXPECT_FALSE(make_env_id(AppName{std::string(60, 'a')}, 123).has_value());
  EXPECT_FALSE(make_env_id(AppName{"Front"}, 1).has_value());
}

}  // namespace
}  // namespace runbot::bot
