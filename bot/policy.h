#pragma once
// Policy: who may do what, how much may run, and what it may cost. Pure rules over the config and
// the registry, so every rule is unit-tested without I/O.
//
// - Roles viewer < developer < operator < admin, bound to platform user ids, e-mail addresses,
//   groups and channels; the highest binding wins, per user (two people in one channel can have
//   different rights). Users with no binding get `default_role`.
// - Each verb needs a role; acting on someone else's environment needs operator.
// - Apps may be restricted to teams; a user's teams come from team membership in the config.
// - Quotas: active environments per user, per team and in total (0 = no limit). Requests over
//   quota wait in a queue (see Registry::queue) rather than fail.
// - Budgets: a monthly budget per team; cost = rate × minutes alive. Alerts at 80 % and 100 %;
//   a request whose projected cost would exceed the budget waits for an admin's approval.
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bot/chat_adapter.h"
#include "bot/command.h"
#include "bot/registry.h"

namespace runbot::bot {

enum class Role { viewer = 0, developer = 1, operator_ = 2, admin = 3 };
const char* to_string(Role r);
std::optional<Role> role_from_string(std::string_view s);

struct RoleBinding {
  Role role = Role::viewer;
  std::string platform = "*";            // "slack", "console", … or "*" for any
  std::set<std::string> users;           // platform user ids
  std::set<std::string> emails;
  std::set<std::string> groups;          // platform groups (Slack user groups, Mattermost teams, AAD groups)
  std::set<std::string> channels;        // everyone speaking in these channels
};

struct TeamSettings {
  std::set<std::string> members;         // user ids or e-mail addresses
  std::optional<Money> monthly_budget;   // none = unlimited
  std::string channel;                   // "<platform>:<channel>" for budget alerts
};

struct Quotas {
  int per_user = 0;  // 0 = no limit
  int per_team = 0;
  int total = 0;
};

struct PolicySettings {
  bool enabled = false;                  // false: everyone is admin (the embedded demo)
  std::vector<RoleBinding> bindings;
  Role default_role = Role::viewer;
  std::map<TeamName, TeamSettings> teams;
  std::map<AppName, std::set<TeamName>> app_teams;  // apps restricted to teams
  Quotas quotas;
  std::string approvals_channel;         // where admins are asked to approve; empty = the team's channel
};

// Who is asking, as far as policy is concerned.
struct Actor {
  std::string platform;
  UserId user;
  std::string email;
  std::vector<std::string> groups;
  ChannelId channel;
  std::string identity_error;  // the adapter's e-mail/group lookup failed: named in denials
};
Actor actor_of(const InboundMessage& msg);

// Which facts about a user some rule needs on `platform`, so adapters look up only those: e-mail
// when a binding for the platform (or "*") names e-mails or a team lists an e-mail address as a
// member; groups when such a binding names groups. Both false when policy is disabled.
struct IdentityNeeds {
  bool email = false;
  bool groups = false;
  bool any() const { return email || groups; }
};
IdentityNeeds identity_needs(const PolicySettings& settings, std::string_view platform);

class Policy {
 public:
  explicit Policy(PolicySettings settings) : settings_(std::move(settings)) {}

  const PolicySettings& settings() const { return settings_; }
  Role role_of(const Actor& actor) const;
  static Role required_role(Verb verb);
  // Teams the actor belongs to.
  std::vector<TeamName> teams_of(const Actor& actor) const;

  // Whether `actor` may run `cmd` (`env` is the environment it acts on, if any). The Error says
  // which role is missing and who can grant it, and that bindings by e-mail or group could not
  // be checked when the actor carries an identity_error.
  Status allow(const Actor& actor, const Command& cmd, const Environment* env) const;
  // Whether `actor` may use `app` at all (team restrictions).
  Status allow_app(const Actor& actor, const AppSpec& app) const;

  // Why a new environment for `team`/`user` must wait, or nullopt when it can start now.
  std::optional<std::string> over_quota(const Registry& registry, const UserId& user, const TeamName& team) const;

  // Month-to-date spend of `team` (UTC calendar month), and its budget.
  Money month_spend(const Registry& registry, const std::map<AppName, AppSpec>& apps, const TeamName& team,
                    TimePoint now) const;
  std::optional<Money> budget_of(const TeamName& team) const;

  // Admin contacts, for denial messages: "@alice, @bob" or the channels that grant admin.
  std::string admins() const;

 private:
  PolicySettings settings_;
};

// The first instant of the UTC month containing `t`.
TimePoint month_start(TimePoint t);

}  // namespace runbot::bot
