#pragma once
// Environment: one app's full stack for one pull request, and its lifecycle state machine.
//
//   requested → provisioning → ready ⇄ updating      ready → suspended → ready
//   provisioning → failed      any → tearing_down → deleted      ready → expired → deleted
//
// plus the recoveries a user needs: a failed or deleted environment can be requested again.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bot/model.h"

namespace runbot::bot {

enum class EnvState { requested, provisioning, ready, updating, suspended, failed, expired, tearing_down, deleted };
const char* to_string(EnvState s);
std::optional<EnvState> env_state_from_string(std::string_view s);

// Whether the lifecycle allows moving from `from` to `to`.
bool can_transition(EnvState from, EnvState to);
// States that count as alive (billed, listed by default).
bool is_active(EnvState s);

// What an environment is billed as while in a state: running, suspended, or nothing (failed,
// deleted: nothing runs).
enum class BilledKind : std::uint8_t { active, suspended, unbilled };
BilledKind billed_kind(EnvState s);

// From `time` on, until the next mark, the environment was billed as `kind`.
struct BillingMark {
  TimePoint time{};
  BilledKind kind = BilledKind::active;
  bool operator==(const BillingMark&) const = default;
};
inline constexpr size_t kBillingMarks = 64;

// Billed time inside a window.
struct BilledTime {
  Duration active{};
  Duration suspended{};
  bool operator==(const BilledTime&) const = default;
};

// Where an environment's thread lives on one channel: the status card is the thread root.
struct ThreadRef {
  std::string platform;
  ChannelId channel;
  std::string card_id;  // platform message id of the status card; empty until posted
  bool operator==(const ThreadRef&) const = default;
};

// Something that happened to an environment, kept for `describe` and `events`.
struct EnvEventRecord {
  TimePoint time{};
  std::string text;
  bool warning = false;
  bool operator==(const EnvEventRecord&) const = default;
};

// Repeated warning events of one kind on one object, announced as one message that is updated.
struct WarningGroup {
  std::string reason;   // "CrashLoopBackOff"
  std::string object;   // "Pod/front-end-7d9f"
  std::string message;  // the latest message
  int count = 0;
  TimePoint first{};
  TimePoint last{};
  bool operator==(const WarningGroup&) const = default;
};

struct Environment {
  EnvId id;
  AppName app;
  int pr = 0;
  std::string namespace_name;
  EnvState state = EnvState::requested;
  UserId owner;
  UserId requester;
  TeamName team;
  TimePoint created_at{};
  std::optional<TimePoint> ready_at;
  std::optional<TimePoint> deleted_at;
  Duration ttl{};
  std::optional<TimePoint> expires_at;
  std::string url;
  std::string image;
  std::map<std::string, std::string> values;
  std::vector<NodeName> nodes;
  JobId current_job;
  std::string stage;              // last reported stage
  int stage_index = 0;
  int stage_count = 0;
  std::string failure_reason;
  std::vector<std::string> log_tail;
  // Cost metering: time spent in billed states, so cost = rate × minutes.
  Duration active_time{};
  Duration suspended_time{};
  TimePoint metered_until{};
  // Each change of billed kind, oldest first, the newest kBillingMarks (transition() appends).
  // Before the first mark only totals are known: active_time/suspended_time less what the marks
  // cover. Empty for environments restored from snapshots older than the history.
  std::vector<BillingMark> billing;
  TimePoint last_activity{};
  std::vector<Duration> warnings_sent;  // TTL warnings already given for the current expiry
  std::optional<TimePoint> interrupted_at;  // an interruption hit it and it has not recovered yet
  bool recovery_overdue_reported = false;   // "did not recover" was said for this interruption
  std::vector<WarningGroup> warnings;       // grouped warning events, newest groups last
  std::vector<ThreadRef> threads;
  std::vector<EnvEventRecord> recent;   // newest last, bounded
  bool simulated = false;
  bool operator==(const Environment&) const = default;
};

// Moves `env` to `to` if the lifecycle allows it, metering cost up to `now` first. Returns an
// Error (conflict) naming both states when the move is illegal; `env` is then unchanged.
Status transition(Environment& env, EnvState to, TimePoint now);

// Brings active/suspended time up to `now` for the current state.
void meter(Environment& env, TimePoint now);

// Cost so far at the app's rates (does not modify env).
Money cost_of(const Environment& env, const AppSpec& app, TimePoint now);

// Active and suspended time inside [from, to), the current state continuing past metered_until.
// Exact for a window that starts at or after the first billing mark, or that covers the whole
// time before it. Of a window that starts inside the time before the first mark (history
// trimmed, or restored from an old snapshot), that part is counted active as far as the totals
// allow, then suspended: it errs high, never low, while running costs more than suspended.
BilledTime billed_between(const Environment& env, TimePoint from, TimePoint to);

// Cost of billed_between() at the app's rates; from created_at to now it equals cost_of().
Money cost_between(const Environment& env, const AppSpec& app, TimePoint from, TimePoint to);

// Appends to env.recent, keeping the newest kRecentEvents.
void remember(Environment& env, TimePoint t, std::string text, bool warning = false);
inline constexpr size_t kRecentEvents = 50;

}  // namespace runbot::bot
