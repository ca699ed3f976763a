#pragma once
// CloudEvents 1.0 over Kafka for runbot's own records (cluster-events.md §1).
//
// Encoding is binary mode: the value is the JSON data written by bot::to_json, the attributes
// travel as headers ce_specversion=1.0, ce_id, ce_source, ce_type, ce_subject, ce_time (RFC 3339),
// ce_partitionkey, plus content-type=application/json. The Kafka key equals ce_partitionkey (the
// environment id), so every record of one environment lands on one partition, in order.
//
//   bot::Job             type io.runbot.job.<verb>.v1     id = job.id     subject = env
//   bot::LifecycleEvent  type io.runbot.env.<kind>.v1     id = event.id   subject = env
//   bot::ClusterEvent    type io.runbot.cluster.<kind>.v1 id = dedupe_key subject = node name
//
// Decoding accepts binary and structured mode (content-type starting with
// application/cloudevents, case-insensitive: the value is the whole event with `data`), checks
// specversion 1.0, the required attributes and the type prefix, and returns an
// Errc::invalid_argument Error whose message says exactly what is wrong. Pure functions: no I/O,
// no clock; callable from any thread.
#include <optional>
#include <string>
#include <string_view>

#include "bot/model.h"
#include "bot/result.h"
#include "events/record.h"

namespace runbot::events {

inline constexpr std::string_view kJobTypePrefix = "io.runbot.job.";
inline constexpr std::string_view kLifecycleTypePrefix = "io.runbot.env.";
inline constexpr std::string_view kClusterTypePrefix = "io.runbot.cluster.";
inline constexpr std::string_view kTypeSuffix = ".v1";

// What to hand to KafkaProducer::produce.
struct EncodedRecord {
  std::string key;
  std::optional<std::string> value;
  Headers headers;
};

// `source` is the CloudEvents source of the bot instance, e.g. "/runbot/bot".
EncodedRecord encode_job(const bot::Job& job, std::string_view source);
// ce_source = event.source, or "/runbot/provisioner" if that is empty.
EncodedRecord encode_lifecycle(const bot::LifecycleEvent& event);
// ce_source = event.source, or `fallback_source` if that is empty; ce_id = dedupe_key.
EncodedRecord encode_cluster_event(const bot::ClusterEvent& event, std::string_view fallback_source);

// The attributes of a decoded CloudEvent (data excluded), for logs and dedupe (source + id).
struct CloudEventAttributes {
  std::string id;
  std::string source;
  std::string type;
  std::string subject;
  std::string time;
  bool structured = false;
};

// True if the record claims to be a CloudEvent: a content-type starting with
// application/cloudevents (structured) or a ce_specversion header (binary).
bool is_cloudevent(const Record& record);

bot::Result<bot::Job> decode_job(const Record& record);
bot::Result<bot::LifecycleEvent> decode_lifecycle(const Record& record);
bot::Result<bot::ClusterEvent> decode_cluster_cloudevent(const Record& record);
// Only the attributes; fails like the decoders above on missing or malformed attributes.
bot::Result<CloudEventAttributes> decode_attributes(const Record& record);

}  // namespace runbot::events
