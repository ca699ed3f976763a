#pragma once
// Domain time: wall-clock instants with millisecond precision, std::chrono durations everywhere.
// Parsing and formatting of the durations users type ("8h", "1h30m", "2d") and of RFC 3339.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "bot/result.h"

namespace runbot::bot {

using Duration = std::chrono::milliseconds;
using TimePoint = std::chrono::sys_time<std::chrono::milliseconds>;

// "90s", "30m", "8h", "2d", "1h30m", "1w". Rejects empty, zero-free garbage, negative and
// overflowing input with a message that says what is accepted.
Result<Duration> parse_duration(std::string_view text);

// Short human form: "45s", "12m", "3h 20m", "2d 4h".
std::string format_duration(Duration d);

// RFC 3339 / ISO 8601 UTC with milliseconds: "2026-11-26T12:00:00.000Z".
std::string format_time(TimePoint t);
// Accepts RFC 3339 with 'Z' or a numeric offset, with or without fractional seconds.
Result<TimePoint> parse_time(std::string_view text);

inline std::int64_t to_millis(TimePoint t) { return t.time_since_epoch().count(); }
inline TimePoint from_millis(std::int64_t ms) { return TimePoint{Duration{ms}}; }

}  // namespace runbot::bot
