#pragma once
// Timestamps as cluster-event producers write them (cluster-events.md §0.7, §4.3, §4.5):
//   RFC 3339          "2026-11-20T14:20:00Z", "2024-03-02T07:42:57.123456Z", "...+01:00"
//                     (Kubernetes, EventBridge `time`, IMDS spot `time`, NTH toJson)
//   RFC 1123          "Sat, 05 Jun 2016 15:10:09 GMT"  (AWS Health `startTime`)
//   IMDS scheduled    "2 Jan 2006 15:04:05 GMT"        (`NotBefore`, `NotAfter`)
//   Go time.String()  "2026-11-20 14:20:00 +0000 UTC"  (NTH default webhook template and some
//                     NTH Description texts; fractional seconds and a " m=+1.2" suffix allowed)
// Zones accepted after the clock: GMT, UTC, Z, or a numeric offset (+hhmm / +hh:mm), optionally
// followed by a zone abbreviation. Precision is truncated to milliseconds (bot::TimePoint).
// Pure functions, callable from any thread.
#include <string_view>

#include "bot/result.h"
#include "bot/time.h"

namespace runbot::events {

// Errc::invalid_argument naming the text and the accepted layouts when nothing matches.
bot::Result<bot::TimePoint> parse_event_time(std::string_view text);

// Go's zero time ("0001-01-01T00:00:00Z", "0001-01-01 00:00:00 +0000 UTC"): means "not set".
bool is_go_zero_time(std::string_view text);

}  // namespace runbot::events
