#pragma once
// Internal to events/: RAII holders for librdkafka handles, configuration building, header
// conversion and the module logger. Only .cpp files in events/ include this header.
#include <librdkafka/rdkafka.h>
#include <spdlog/logger.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bot/result.h"
#include "events/kafka_settings.h"
#include "events/record.h"

namespace runbot::events::detail {

struct ConfDeleter { void operator()(rd_kafka_conf_t* p) const { rd_kafka_conf_destroy(p); } };
struct HandleDeleter { void operator()(rd_kafka_t* p) const { rd_kafka_destroy(p); } };
struct QueueDeleter { void operator()(rd_kafka_queue_t* p) const { rd_kafka_queue_destroy(p); } };
struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* p) const { rd_kafka_topic_partition_list_destroy(p); }
};
struct HeadersDeleter { void operator()(rd_kafka_headers_t* p) const { rd_kafka_headers_destroy(p); } };
struct MessageDeleter { void operator()(rd_kafka_message_t* p) const { rd_kafka_message_destroy(p); } };

using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
using HandlePtr = std::unique_ptr<rd_kafka_t, HandleDeleter>;
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;
using HeadersPtr = std::unique_ptr<rd_kafka_headers_t, HeadersDeleter>;
using MessagePtr = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;

enum class Role { producer, consumer, admin };

// Builds a configuration: bootstrap.servers and client.id, then `defaults` (runbot's tuning,
// which settings.properties may override), then settings.properties, then `role_properties`
// (runbot's invariants win). Installs a log callback that routes librdkafka logs to the module
// logger. Errors name the property and never contain its value.
bot::Result<ConfPtr> make_conf(const KafkaSettings& settings,
                               const std::map<std::string, std::string>& role_properties,
                               const std::map<std::string, std::string>& defaults = {});

// Consumer tuning defaults (overridable through kafka.properties):
//  - queued.max.messages.kbytes=16384: librdkafka prefetches up to 64 MB by default, which was
//    most of runbot's memory under load (240 MB at 300k events); 16 MB bounds it while keeping
//    enough fetched ahead for the benchmark's rates (see README, Benchmarks).
//  - fetch.wait.max.ms=100: how long a broker may hold a fetch while waiting for data (500 ms by
//    default): the event-to-announcement latency's floor.
std::map<std::string, std::string> consumer_defaults();

// Sets one property; error names the property.
bot::Status set_property(rd_kafka_conf_t* conf, const std::string& name, const std::string& value);

// Properties runbot uses for each role (see events/README.md).
std::map<std::string, std::string> producer_properties(const KafkaSettings& settings);
std::map<std::string, std::string> consumer_properties(const KafkaSettings& settings,
                                                       const std::string& group_id);

// Creates a handle; takes ownership of `conf` on success and on failure.
bot::Result<HandlePtr> make_handle(rd_kafka_type_t type, ConfPtr conf, const char* what);

// Kafka error -> project error: transient/retriable errors map to Errc::unavailable/timeout.
bot::Error to_error(rd_kafka_resp_err_t err, const std::string& context);

// Copies a consumed message into a Record (the Record outlives the message).
Record to_record(const rd_kafka_message_t& msg);

// The events module logger ("events"); registered on first use unless bot/app registered one.
spdlog::logger& log();

}  // namespace runbot::events::detail
