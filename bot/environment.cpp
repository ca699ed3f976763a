#include "bot/environment.h"

#include <algorithm>
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

BilledKind billed_kind(EnvState s) {
  switch (s) {
    case EnvState::suspended: return BilledKind::suspended;
    case EnvState::deleted:
    case EnvState::failed: return BilledKind::unbilled;  // nothing runs
    default: return BilledKind::active;
  }
}

namespace {

void add(BilledTime& t, BilledKind kind, Duration d) {
  if (kind == BilledKind::active) t.active += d;
  if (kind == BilledKind::suspended) t.suspended += d;
}

// What the marks and the current state say about [from, to), from the first mark on.
BilledTime known_between(const Environment& env, TimePoint from, TimePoint to) {
  BilledTime out;
  auto span = [&](BilledKind kind, TimePoint a, TimePoint b) {
    a = std::max(a, from);
    b = std::min(b, to);
    if (a < b) add(out, kind, b - a);
  };
  for (size_t i = 0; i < env.billing.size(); ++i) {
    TimePoint next = i + 1 < env.billing.size() ? env.billing[i + 1].time : env.metered_until;
    span(env.billing[i].kind, env.billing[i].time, std::min(next, env.metered_until));
  }
  span(billed_kind(env.state), env.metered_until, TimePoint::max());
  return out;
}

}  // namespace

void meter(Environment& env, TimePoint now) {
  if (now <= env.metered_until) return;
  Duration elapsed = now - env.metered_until;
  switch (billed_kind(env.state)) {
    case BilledKind::active: env.active_time += elapsed; break;
    case BilledKind::suspended: env.suspended_time += elapsed; break;
    case BilledKind::unbilled: break;
  }
  env.metered_until = now;
}

Status transition(Environment& env, EnvState to, TimePoint now) {
  if (!can_transition(env.state, to)) {
    return make_error(Errc::conflict, env.id.str() + " is " + to_string(env.state) +
                                          " and cannot become " + to_string(to));
  }
  meter(env, now);
  if (billed_kind(to) != billed_kind(env.state)) {
    // At metered_until, not now: marks stay in order even if the clock stepped back.
    env.billing.push_back({env.metered_until, billed_kind(to)});
    if (env.billing.size() > kBillingMarks) {
      // What falls off stays in active_time/suspended_time: billed_between() derives it.
      env.billing.erase(env.billing.begin(),
                        env.billing.begin() + static_cast<long>(env.billing.size() - kBillingMarks));
    }
  }
  env.state = to;
  return ok();
}

Money cost_of(const Environment& env, const AppSpec& app, TimePoint now) {
  BilledTime t{env.active_time, env.suspended_time};
  if (now > env.metered_until) add(t, billed_kind(env.state), now - env.metered_until);
  return cost_for(app.rate_per_hour, t.active) + cost_for(app.suspended_rate_per_hour, t.suspended);
}

BilledTime billed_between(const Environment& env, TimePoint from, TimePoint to) {
  if (to <= from) return {};
  const TimePoint first_mark =
      env.billing.empty() ? env.metered_until : std::min(env.billing.front().time, env.metered_until);
  BilledTime out = known_between(env, std::max(from, first_mark), to);
  // Before the first mark: the lifetime totals less what the marks account for.
  const BilledTime marked = known_between(env, first_mark, env.metered_until);
  const BilledTime before{std::max(env.active_time - marked.active, Duration::zero()),
                          std::max(env.suspended_time - marked.suspended, Duration::zero())};
  if (from <= std::min(env.created_at, first_mark) && to >= first_mark) {
    out.active += before.active;
    out.suspended += before.suspended;
  } else {
    const Duration part = std::min(to, first_mark) - std::max(from, env.created_at);
    if (part > Duration::zero()) {
      const Duration active = std::min(before.active, part);
      out.active += active;
      out.suspended += std::min(before.suspended, part - active);
    }
  }
  return out;
}

Money cost_between(const Environment& env, const AppSpec& app, TimePoint from, TimePoint to) {
  const BilledTime t = billed_between(env, from, to);
  return cost_for(app.rate_per_hour, t.active) + cost_for(app.suspended_rate_per_hour, t.suspended);
}

void remember(Environment& env, TimePoint t, std::string text, bool warning) {
  env.recent.push_back({t, std::move(text), warning});
  if (env.recent.size() > kRecentEvents) {
    env.recent.erase(env.recent.begin(), env.recent.begin() + static_cast<long>(env.recent.size() - kRecentEvents));
  }
}

}  // namespace runbot::bot
