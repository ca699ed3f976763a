#pragma once
// Announcer: pure functions from an environment and what just happened to it to the neutral
// Message that every adapter renders. No I/O, no clock: `now` is passed in.
#include <optional>
#include <string>

#include "bot/environment.h"
#include "bot/message.h"

namespace runbot::bot::announce {

// The thread's first message, edited in place as the environment changes.
Message status_card(const Environment& env, const AppSpec& app, TimePoint now);

Message requested(const Environment& env, const AppSpec& app, bool update);
Message progress(const Environment& env, const LifecycleEvent& e, TimePoint now, std::optional<Duration> eta);
Message ready(const Environment& env, const AppSpec& app, Duration took, Duration extend_by);
Message updated(const Environment& env, const AppSpec& app);
Message failed(const Environment& env, const AppSpec& app, const LifecycleEvent& e);
Message cancelled(const Environment& env, const LifecycleEvent& e);
Message ttl_warning(const Environment& env, Duration left, Duration extend_by);
Message extended(const Environment& env, const UserId& by, Duration by_how_much);
Message expired(const Environment& env, const AppSpec& app, TimePoint now, bool janitor);
Message deleted(const Environment& env, const AppSpec& app, TimePoint now, const std::string& reason);
Message tearing_down(const Environment& env, const UserId& by);
Message suspended(const Environment& env, const AppSpec& app);
Message resumed(const Environment& env, const AppSpec& app);
Message interruption(const Environment& env, const ClusterEvent& e, TimePoint now);
Message interruption_summary(const ClusterEvent& e, const std::vector<const Environment*>& affected, TimePoint now);
Message recovered(const Environment& env, TimePoint now);
Message not_recovered(const Environment& env, TimePoint now);
// One message for all grouped warnings of an environment (edited in place as they repeat).
Message warnings(const Environment& env, TimePoint now);

// "spot interruption", "rebalance recommendation", ...
std::string describe_kind(ClusterEventKind k);
// "front-end-pr-123" state glyph for plain text: ✔ ✖ ⏳ …
const char* state_glyph(EnvState s);

}  // namespace runbot::bot::announce
