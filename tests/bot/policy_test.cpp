#include "bot/policy.h"

#include <gtest/gtest.h>

namespace runbot::bot {
namespace {

using namespace std::chrono_literals;

PolicySettings settings() {
  PolicySettings s;
  s.enabled = true;
  s.default_role = Role::viewer;
  s.bindings.push_back({Role::admin, "*", {"boss"}, {}, {}, {}});
  s.bindings.push_back({Role::operator_, "slack", {}, {}, {"oncall"}, {}});
  s.bindings.push_back({Role::developer, "*", {}, {"dev@acme.dev"}, {}, {}});
  s.bindings.push_back({Role::developer, "slack", {}, {}, {}, {"C-dev"}});
  s.teams[TeamName{"web"}] = {{"alice", "dev@acme.dev"}, Money::dollars(100), "slack:C-web"};
  s.app_teams[AppName{"front-end"}] = {TeamName{"web"}};
  s.quotas = {2, 3, 4};
  return s;
}

Actor actor(std::string user, std::string channel = "C-other", std::string platform = "slack") {
  Actor a;
  a.platform = std::move(platform);
  a.user = UserId{std::move(user)};
  a.channel = ChannelId{std::move(channel)};
  return a;
}

TEST(Policy, HighestBindingWinsPerUserAcrossUsersEmailsGroupsAndChannels) {
  Policy p(settings());
  EXPECT_EQ(p.role_of(actor("boss")), Role::admin);
  EXPECT_EQ(p.role_of(actor("nobody")), Role::viewer);
  Actor grouped = actor("carol");
  grouped.groups = {"oncall"};
  EXPECT_EQ(p.role_of(grouped), Role::operator_);
  grouped.platform = "teams";
  EXPECT_EQ(p.role_of(grouped), Role::viewer) << "the group binding is Slack's only";
  Actor by_mail = actor("u9");
  by_mail.email = "dev@acme.dev";
  EXPECT_EQ(p.role_of(by_mail), Role::developer);
  // Two people in one channel: the channel grants developer, the admin keeps admin.
  EXPECT_EQ(p.role_of(actor("dave", "C-dev")), Role::developer);
  EXPECT_EQ(p.role_of(actor("boss", "C-dev")), Role::admin);
}

TEST(Policy, DenialNamesTheMissingRoleAndWhoCanGrantIt) {
  Policy p(settings());
  Command up;
  up.verb = Verb::up;
  auto denied = p.allow(actor("nobody"), up, nullptr);
  ASSERT_FALSE(denied.has_value());
  EXPECT_EQ(denied.error().message, "`up` needs the developer role; @nobody has viewer. Ask @boss to grant it.");
  EXPECT_NE(denied.error().message.find("needs the developer role"), std::string::npos);
  EXPECT_NE(denied.error().message.find("@nobody has viewer"), std::string::npos);
  EXPECT_NE(denied.error().message.find("Ask @boss"), std::string::npos);
  Command list;
  list.verb = Verb::list;
  EXPECT_TRUE(p.allow(actor("nobody"), list, nullptr).has_value());
}

TEST(Policy, ActingOnSomeoneElsesEnvironmentNeedsOperator) {
  Policy p(settings());
  Environment env;
  env.id = EnvId{"front-end-pr-1"};
  env.owner = UserId{"alice"};
  Command down;
  down.verb = Verb::down;
  EXPECT_TRUE(p.allow(actor("alice", "C-dev"), down, &env).has_value());
  auto other = p.allow(actor("dave", "C-dev"), down, &env);
  ASSERT_FALSE(other.has_value());
  EXPECT_NE(other.error().message.find("owned by @alice"), std::string::npos);
  EXPECT_NE(other.error().message.find("needs the operator role"), std::string::npos);
  Actor oncall = actor("carol");
  oncall.groups = {"oncall"};
  EXPECT_TRUE(p.allow(oncall, down, &env).has_value());
  Command audit;
  audit.verb = Verb::events;
  audit.audit = true;
  EXPECT_FALSE(p.allow(actor("alice", "C-dev"), audit, nullptr).has_value());
  EXPECT_TRUE(p.allow(oncall, audit, nullptr).has_value());
}

TEST(Policy, AppsRestrictedToTeamsAdmitOnlyMembersAndAdmins) {
  Policy p(settings());
  AppSpec fe;
  fe.name = AppName{"front-end"};
  AppSpec api;
  api.name = AppName{"api"};
  EXPECT_TRUE(p.allow_app(actor("alice"), fe).has_value());
  EXPECT_TRUE(p.allow_app(actor("boss"), fe).has_value());
  auto no = p.allow_app(actor("dave"), fe);
  ASSERT_FALSE(no.has_value());
  EXPECT_NE(no.error().message.find("restricted to team(s) web"), std::string::npos);
  EXPECT_TRUE(p.allow_app(actor("dave"), api).has_value());
}

TEST(Policy, QuotasCountActiveEnvironmentsPerUserTeamAndTotal) {
  Policy p(settings());
  Registry r;
  auto add = [&r](const std::string& id, const std::string& owner, const std::string& team, EnvState st) {
    Environment e;
    e.id = EnvId{id};
    e.owner = UserId{owner};
    e.team = TeamName{team};
    e.state = st;
    r.put(e);
  };
  add("a-pr-1", "alice", "web", EnvState::ready);
  EXPECT_FALSE(p.over_quota(r, UserId{"alice"}, TeamName{"web"}).has_value());
  add("a-pr-2", "alice", "web", EnvState::provisioning);
  add("a-pr-3", "alice", "web", EnvState::deleted);  // does not count
  add("a-pr-4", "alice", "web", EnvState::failed);   // does not count
  EXPECT_EQ(*p.over_quota(r, UserId{"alice"}, TeamName{"web"}), "@alice already has 2 of 2 active environments");
  add("a-pr-5", "bob", "web", EnvState::ready);
  EXPECT_EQ(*p.over_quota(r, UserId{"carol"}, TeamName{"web"}), "team web already has 3 of 3 active environments");
  add("b-pr-1", "erin", "api", EnvState::ready);
  EXPECT_EQ(*p.over_quota(r, UserId{"carol"}, TeamName{"api"}), "the cluster already runs 4 of 4 environments");
}

TEST(Policy, MonthSpendCountsOnlyThisMonthsMinutes) {
  Policy p(settings());
  std::map<AppName, AppSpec> apps;
  AppSpec app;
  app.name = AppName{"front-end"};
  app.rate_per_hour = Money::dollars(1);
  apps[app.name] = app;
  const TimePoint now = *parse_time("2026-11-10T00:00:00Z");
  Registry r;
  Environment old_one;
  old_one.id = EnvId{"front-end-pr-1"};
  old_one.app = app.name;
  old_one.team = TeamName{"web"};
  old_one.state = EnvState::ready;
  old_one.created_at = old_one.metered_until = *parse_time("2026-10-31T00:00:00Z");
  r.put(old_one);
  Environment new_one = old_one;
  new_one.id = EnvId{"front-end-pr-2"};
  new_one.created_at = new_one.metered_until = now - 10h;
  r.put(new_one);
  // 9 days of the old one this month + 10 hours of the new one, at $1/h.
  EXPECT_EQ(format_money(p.month_spend(r, apps, TeamName{"web"}, now)), "$226.00");
  EXPECT_EQ(month_start(now), *parse_time("2026-11-01T00:00:00Z"));
}

// The front-end app at $1/h running and `suspended` $/h suspended, and a provisioning environment
// of it for team web created (and metered) at `created`.
std::map<AppName, AppSpec> front_end_at(double suspended) {
  AppSpec app;
  app.name = AppName{"front-end"};
  app.rate_per_hour = Money::dollars(1);
  app.suspended_rate_per_hour = Money::dollars(suspended);
  return {{app.name, app}};
}
Environment provisioning_since(const char* created) {
  Environment e;
  e.id = EnvId{"front-end-pr-1"};
  e.app = AppName{"front-end"};
  e.team = TeamName{"web"};
  e.state = EnvState::provisioning;
  e.created_at = e.metered_until = *parse_time(created);
  return e;
}

TEST(Policy, MonthSpendCountsThisMonthsSuspensionAtTheSuspendedRate) {
  Policy p(settings());
  const auto apps = front_end_at(0.10);
  const TimePoint now = *parse_time("2026-11-10T00:00:00Z");
  Environment e = provisioning_since("2026-10-20T00:00:00Z");
  ASSERT_TRUE(transition(e, EnvState::ready, *parse_time("2026-10-20T00:05:00Z")));
  ASSERT_TRUE(transition(e, EnvState::suspended, *parse_time("2026-11-03T00:00:00Z")));
  ASSERT_TRUE(transition(e, EnvState::ready, *parse_time("2026-11-03T10:00:00Z")));
  Registry r;
  r.put(e);
  // 216 h this month: 206 h running at $1/h, 10 h suspended at $0.10/h.
  EXPECT_EQ(format_money(p.month_spend(r, apps, TeamName{"web"}, now)), "$207.00");
}

TEST(Policy, MonthSpendOfAnEnvironmentThatFailedLastMonthIsZero) {
  Policy p(settings());
  const auto apps = front_end_at(0);
  Environment e = provisioning_since("2026-10-20T00:00:00Z");
  ASSERT_TRUE(transition(e, EnvState::failed, *parse_time("2026-10-20T00:10:00Z")));
  Registry r;
  r.put(e);
  EXPECT_EQ(format_money(p.month_spend(r, apps, TeamName{"web"}, *parse_time("2026-11-10T00:00:00Z"))), "$0.00");
  // Its ten minutes count in the month they ran.
  EXPECT_EQ(format_money(p.month_spend(r, apps, TeamName{"web"}, *parse_time("2026-10-25T00:00:00Z"))), "$0.17");
}

TEST(Policy, DenialSaysWhenTheEmailOrGroupLookupFailed) {
  Policy p(settings());
  Command up;
  up.verb = Verb::up;
  Actor a = actor("u9");
  a.identity_error = "slack users.info: missing_scope";
  auto denied = p.allow(a, up, nullptr);
  ASSERT_FALSE(denied.has_value());
  EXPECT_EQ(denied.error().message,
            "`up` needs the developer role; @u9 has viewer. Ask @boss to grant it. Your e-mail address and groups "
            "could not be looked up (slack users.info: missing_scope), so role bindings by e-mail or group were not "
            "applied.");
  // Without a lookup problem the denial stays as it was.
  EXPECT_EQ(p.allow(actor("u9"), up, nullptr).error().message.find("looked up"), std::string::npos);
  AppSpec fe;
  fe.name = AppName{"front-end"};
  auto restricted = p.allow_app(a, fe);
  ASSERT_FALSE(restricted.has_value());
  EXPECT_NE(restricted.error().message.find("could not be looked up (slack users.info: missing_scope)"),
            std::string::npos);
  // A failed lookup does not take away what other bindings grant.
  Actor in_channel = actor("u9", "C-dev");
  in_channel.identity_error = "timed out";
  EXPECT_TRUE(p.allow(in_channel, up, nullptr).has_value());
}

TEST(Policy, IdentityNeedsFollowTheBindingsOfEachPlatform) {
  PolicySettings s;
  s.enabled = true;
  s.bindings.push_back({Role::admin, "*", {"boss"}, {}, {}, {}});
  EXPECT_FALSE(identity_needs(s, "slack").any()) << "user ids and channels need no lookup";
  s.bindings.push_back({Role::developer, "mattermost", {}, {"dev@acme.dev"}, {}, {}});
  s.bindings.push_back({Role::operator_, "slack", {}, {}, {"sre"}, {}});
  EXPECT_FALSE(identity_needs(s, "slack").email);
  EXPECT_TRUE(identity_needs(s, "slack").groups);
  EXPECT_TRUE(identity_needs(s, "mattermost").email);
  EXPECT_FALSE(identity_needs(s, "mattermost").groups);
  EXPECT_FALSE(identity_needs(s, "console").any());
  s.bindings.push_back({Role::viewer, "*", {}, {}, {"everyone"}, {}});
  EXPECT_TRUE(identity_needs(s, "console").groups) << "a binding for every platform";
  // Team members given as e-mail addresses need the e-mail everywhere.
  s.teams[TeamName{"web"}] = {{"alice@acme.dev"}, std::nullopt, ""};
  EXPECT_TRUE(identity_needs(s, "slack").email);
  s.enabled = false;
  EXPECT_FALSE(identity_needs(s, "mattermost").any()) << "no policy, no lookups";
}

TEST(Policy, DisabledPolicyLetsEveryoneDoEverything) {
  Policy p(PolicySettings{});
  Command simulate;
  simulate.verb = Verb::simulate;
  EXPECT_TRUE(p.allow(actor("anyone"), simulate, nullptr).has_value());
  EXPECT_EQ(p.role_of(actor("anyone")), Role::admin);
}

}  // namespace
}  // namespace runbot::bot
