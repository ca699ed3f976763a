#include "bot/environment.h"

#include <array>

namespace runbot::bot {
namespace {

constexpr std::array<std::pair<EnvState, const char*>, 9> kStates{{
    {EnvState::requested, "requested"},
    {EnvState::provisioning, "provisioning"},
    {EnvState::ready, "ready"},
    {EnvState::updating, "updating"},
    {EnvState::suspended, "suspended"},
    {EnvState::failed, "failed"},
    {EnvState::expired, "expired"},
    {EnvState::tearing_down, "tearing_down"},
    {EnvState::deleted, "deleted"},
}};

}  // namespace

const char* to_string(EnvState s) {
  for (const auto& [v, name] : kStates) {
    if (v == s) return name;
  }
  return "unknown";
}

std::optional<EnvState> env_state_from_string(std::string_view s) {
  for (const auto& [v, name] : kStates) {
    if (s == name) return v;
  }
  return std::nullopt;
}

bool can_transition(EnvState from, EnvState to) {
  using S = EnvState;
  if (from == to) return false;
  // Any living state can be torn down.
  if (to == S::tearing_down) return from != S::deleted;
  switch (from) {
    case S::requested: return to == S::provisioning || to == S::failed;
    case S::provisioning: return to == S::ready || to == S::failed;
    case S::ready: return to == S::updating || to == S::suspended || to == S::expired;
    case S::updating: return to == S::ready || to == S::failed;
    case S::suspended: return to == S::ready || to == S::expired;
    case S::failed: return to == S::requested || to == S::provisioning;
    case S::expired: return to == S::deleted;
    case S::tearing_down: return to == S::deleted || to == S::failed;
    case S::deleted: return to == S::requested;
  }
  return false;
}

bool is_active(EnvState s) {
  return s != EnvState::deleted;
}

void meter(Environment& env, TimePoint now) {
  if (now <= env.metered_until) return;
  Duration elapsed = now - env.metered_until;
  switch (env.state) {
    case EnvState::suspended: env.suspended_time += elapsed; break;
    case EnvState::deleted:
    case EnvState::failed: break;  // nothing runs: not billed (cost_of mirrors this)
    default: env.active_time += elapsed; break;
  }
  env.metered_until = now;
}

Status transition(Environment& env, EnvState to, TimePoint now) {
  if (!can_transition(env.state, to)) {
    return make_error(Errc::conflict, env.id.str() + " is " + to_string(env.state) +
                                          " and cannot become " + to_string(to));
  }
  meter(env, now);
  env.state = to;
  return ok();
}

Money cost_of(const Environment& env, const AppSpec& app, TimePoint now) {
  Duration active = env.active_time;
  Duration suspended = env.suspended_time;
  if (now > env.metered_until) {
    Duration pending = now - env.metered_until;
    if (env.state == EnvState::suspended) {
      suspended += pending;
    } else if (env.state != EnvState::deleted && env.state != EnvState::failed) {
      active += pending;
    }
  }
  return cost_for(app.rate_per_hour, active) + cost_for(app.suspended_rate_per_hour, suspended);
}

void remember(Environment& env, TimePoint t, std::string text, bool warning) {
  env.recent.push_back({t, std::move(text), warning});
  if (env.recent.size() > kRecentEvents) {
    env.recent.erase(env.recent.begin(), env.recent.begin() + static_cast<long>(env.recent.size() - kRecentEvents));
  }
}

}  // namespace runbot::bot
