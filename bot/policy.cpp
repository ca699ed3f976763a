#include "bot/policy.h"

#include <algorithm>

namespace runbot::bot {

const char* to_string(Role r) {
  switch (r) {
    case Role::viewer: return "viewer";
    case Role::developer: return "developer";
    case Role::operator_: return "operator";
    case Role::admin: return "admin";
  }
  return "viewer";
}

std::optional<Role> role_from_string(std::string_view s) {
  if (s == "viewer") return Role::viewer;
  if (s == "developer") return Role::developer;
  if (s == "operator") return Role::operator_;
  if (s == "admin") return Role::admin;
  return std::nullopt;
}

Actor actor_of(const InboundMessage& msg) {
  return Actor{msg.platform, msg.user, msg.user_email, msg.user_groups, msg.channel, msg.identity_error};
}

IdentityNeeds identity_needs(const PolicySettings& settings, std::string_view platform) {
  IdentityNeeds needs;
  if (!settings.enabled) return needs;
  for (const auto& b : settings.bindings) {
    if (b.platform != "*" && b.platform != platform) continue;
    needs.email = needs.email || !b.emails.empty();
    needs.groups = needs.groups || !b.groups.empty();
  }
  // Team members may be e-mail addresses (teams restrict apps), on every platform.
  for (const auto& [name, team] : settings.teams) {
    for (const auto& m : team.members) needs.email = needs.email || m.find('@') != std::string::npos;
  }
  return needs;
}

namespace {

// Appended to a denial when the adapter could not look the user up: the person asking learns
// that a binding by e-mail or group may exist but was not applied, and why.
std::string lookup_note(const Actor& a) {
  if (a.identity_error.empty()) return "";
  std::string why = a.identity_error.size() > 200 ? a.identity_error.substr(0, 200) + "…" : a.identity_error;
  return " Your e-mail address and groups could not be looked up (" + why +
         "), so role bindings by e-mail or group were not applied.";
}

}  // namespace

Role Policy::role_of(const Actor& a) const {
  if (!settings_.enabled) return Role::admin;
  Role best = settings_.default_role;
  for (const auto& b : settings_.bindings) {
    if (b.platform != "*" && b.platform != a.platform) continue;
    bool match = b.users.count(a.user.str()) || (!a.email.empty() && b.emails.count(a.email)) ||
                 b.channels.count(a.channel.str());
    for (const auto& g : a.groups) match = match || b.groups.count(g);
    if (match && b.role > best) best = b.role;
  }
  return best;
}

Role Policy::required_role(Verb verb) {
  switch (verb) {
    case Verb::list:
    case Verb::describe:
    case Verb::status:
    case Verb::nodes:
    case Verb::events:
    case Verb::usage:
    case Verb::help:
    case Verb::yes:
    case Verb::no: return Role::viewer;
    case Verb::up:
    case Verb::down:
    case Verb::extend:
    case Verb::suspend:
    case Verb::resume:
    case Verb::let_expire:
    case Verb::cancel: return Role::developer;
    case Verb::approve:
    case Verb::deny:
    case Verb::simulate: return Role::admin;
  }
  return Role::admin;
}

std::vector<TeamName> Policy::teams_of(const Actor& a) const {
  std::vector<TeamName> out;
  for (const auto& [team, t] : settings_.teams) {
    if (t.members.count(a.user.str()) || (!a.email.empty() && t.members.count(a.email))) out.push_back(team);
  }
  return out;
}

std::string Policy::admins() const {
  std::string out;
  for (const auto& b : settings_.bindings) {
    if (b.role != Role::admin) continue;
    for (const auto& u : b.users) out += (out.empty() ? "" : ", ") + ("@" + u);
    for (const auto& e : b.emails) out += (out.empty() ? "" : ", ") + e;
  }
  return out.empty() ? "an admin of runbot's configuration" : out;
}

Status Policy::allow(const Actor& a, const Command& cmd, const Environment* env) const {
  if (!settings_.enabled) return ok();
  Role have = role_of(a);
  Role need = required_role(cmd.verb);
  std::string what = std::string("`") + to_string(cmd.verb) + "`";
  // Acting on another person's environment is an operator's job.
  if (env && need == Role::developer && env->owner != a.user && cmd.verb != Verb::extend) {
    need = Role::operator_;
    what += " on " + env->id.str() + " (owned by @" + env->owner.str() + ")";
  }
  if (cmd.verb == Verb::events && cmd.audit) {
    need = Role::operator_;
    what = "`events --audit`";
  }
  if (have >= need) return ok();
  return make_error(Errc::unauthorized, what + " needs the " + to_string(need) + " role; @" + a.user.str() +
                                            " has " + to_string(have) + ". Ask " + admins() + " to grant it." +
                                            lookup_note(a));
}

Status Policy::allow_app(const Actor& a, const AppSpec& app) const {
  if (!settings_.enabled) return ok();
  auto it = settings_.app_teams.find(app.name);
  if (it == settings_.app_teams.end() || it->second.empty()) return ok();
  if (role_of(a) >= Role::admin) return ok();
  for (const auto& t : teams_of(a)) {
    if (it->second.count(t)) return ok();
  }
  std::string teams;
  for (const auto& t : it->second) teams += (teams.empty() ? "" : ", ") + t.str();
  return make_error(Errc::unauthorized, "app " + app.name.str() + " is restricted to team(s) " + teams + "; @" +
                                            a.user.str() + " is not a member. Ask " + admins() + "." + lookup_note(a));
}

std::optional<std::string> Policy::over_quota(const Registry& registry, const UserId& user, const TeamName& team) const {
  if (!settings_.enabled) return std::nullopt;
  int mine = 0, team_count = 0, total = 0;
  for (const auto& [id, e] : registry.environments()) {
    if (e.state == EnvState::deleted || e.state == EnvState::failed) continue;
    ++total;
    if (e.owner == user) ++mine;
    if (!team.empty() && e.team == team) ++team_count;
  }
  const Quotas& q = settings_.quotas;
  if (q.per_user > 0 && mine >= q.per_user) {
    return "@" + user.str() + " already has " + std::to_string(mine) + " of " + std::to_string(q.per_user) + " active environments";
  }
  if (q.per_team > 0 && !team.empty() && team_count >= q.per_team) {
    return "team " + team.str() + " already has " + std::to_string(team_count) + " of " + std::to_string(q.per_team) + " active environments";
  }
  if (q.total > 0 && total >= q.total) {
    return "the cluster already runs " + std::to_string(total) + " of " + std::to_string(q.total) + " environments";
  }
  return std::nullopt;
}

TimePoint month_start(TimePoint t) {
  using namespace std::chrono;
  year_month_day ymd{floor<days>(t)};
  return TimePoint{duration_cast<milliseconds>(sys_days{ymd.year() / ymd.month() / 1}.time_since_epoch())};
}

Money Policy::month_spend(const Registry& registry, const std::map<AppName, AppSpec>& apps, const TeamName& team,
                          TimePoint now) const {
  const TimePoint from = month_start(now);
  Money spend;
  for (const auto& [id, e] : registry.environments()) {
    if (e.team != team) continue;
    auto app = apps.find(e.app);
    if (app == apps.end()) continue;
    spend += cost_between(e, app->second, from, now);
  }
  return spend;
}

std::optional<Money> Policy::budget_of(const TeamName& team) const {
  auto it = settings_.teams.find(team);
  if (it == settings_.teams.end()) return std::nullopt;
  return it->second.monthly_budget;
}

}  // namespace runbot::bot
