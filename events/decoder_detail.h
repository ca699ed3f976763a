#pragma once
// Internal to events/: the pieces decode_cluster_record is built from, one per source family,
// and a lenient field reader for JSON written by Go programs. Only events/*.cpp and the unit
// tests include this header.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "bot/model.h"
#include "bot/result.h"
#include "events/cloudevents.h"
#include "events/record.h"

namespace runbot::events::detail {

using nlohmann::json;

// What the classifiers know about the record beyond the JSON value.
struct DecodeContext {
  std::string where;                              // "topic/partition@offset", for messages
  std::optional<std::string> key;                 // the Kafka key
  std::optional<bot::TimePoint> record_time;      // the Kafka timestamp
  // Set when the JSON came wrapped in a CloudEvent: §7 dedupes CEs on source + id, and the CE
  // time stands in for a missing occurrence time.
  std::optional<std::string> dedupe_override;
  std::optional<bot::TimePoint> envelope_time;
};

inline bot::Error invalid(std::string message) {
  return bot::make_error(bot::Errc::invalid_argument, std::move(message));
}

// Reads fields by path, remembering the first problem. Absent and JSON null are the same
// ("not set"). Tolerates what an exporter `layout` does to values: numbers and booleans may
// arrive as strings ("1", "false"), and "" means not set.
class Fields {
 public:
  Fields(const json& root, std::string what) : root_(root), what_(std::move(what)) {}

  // nullptr if absent/null; fails if an intermediate is not an object.
  const json* find(std::initializer_list<std::string_view> path);
  // "" if absent; fails unless a string (numbers are accepted and printed).
  std::string str(std::initializer_list<std::string_view> path);
  // nullopt if absent or ""; fails unless an integer or a string of digits.
  std::optional<std::int64_t> integer(std::initializer_list<std::string_view> path);
  // nullopt if absent, "" or Go's zero time; fails unless one of parse_event_time's layouts.
  std::optional<bot::TimePoint> time(std::initializer_list<std::string_view> path);
  // nullptr if absent; fails unless an object.
  const json* object(std::initializer_list<std::string_view> path);
  // Value of key `name` in the string map at `path` ("" if absent or not a string).
  std::string map_value(std::initializer_list<std::string_view> path, std::string_view name);

  void fail(std::string why) {
    if (!error_) error_ = std::move(why);
  }
  const std::optional<std::string>& error() const { return error_; }
  // "<what>: <first problem>"
  bot::Error as_error() const { return invalid(what_ + ": " + error_.value_or("?")); }
  const std::string& what() const { return what_; }

 private:
  const json& root_;
  std::string what_;
  std::optional<std::string> error_;
};

std::string path_name(std::initializer_list<std::string_view> path);
// At most six top-level key names, for "unrecognised record" messages.
std::string key_list(const json& j);
std::string trim(std::string_view s);

// A CloudEvent split into its attributes and its data. Fails only on the attributes (the same
// messages as decode_job & co.); a data problem is reported in `data_problem` so that a caller
// can say which event it was about.
struct ParsedCloudEvent {
  CloudEventAttributes attrs;
  std::string datacontenttype;              // "" if absent (binary mode: the content-type header)
  json data;                                 // valid only without data_problem
  std::optional<std::string> data_problem;   // e.g. "cloudevent: event has no data"
};
bot::Result<ParsedCloudEvent> parse_cloudevent(const Record& record);

// Kubernetes core/v1 Event as written by kubernetes-event-exporter (resmoio or opsgenie) or
// any other plain JSON writer: cluster-events.md §2-§5, classified per §7 (3).
bool looks_like_k8s_event(const json& j);
bot::Result<bot::ClusterEvent> decode_k8s_event(const json& j, const DecodeContext& ctx);

// AWS payloads (§4.5): EventBridge envelopes, direct ASG->SQS lifecycle messages, SNS
// notifications wrapping either, and the three IMDS documents.
bool looks_like_eventbridge(const json& j);
bot::Result<bot::ClusterEvent> decode_eventbridge(const json& j, const DecodeContext& ctx);
bool looks_like_asg_message(const json& j);
bot::Result<bot::ClusterEvent> decode_asg_message(const json& j, const DecodeContext& ctx);
bool looks_like_sns(const json& j);
bool looks_like_imds(const json& j);
bot::Result<bot::ClusterEvent> decode_imds(const json& j, const DecodeContext& ctx);

}  // namespace runbot::events::detail
