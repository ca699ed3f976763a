#pragma once
// KafkaSettings: how runbot reaches Kafka. A plain value (filled by bot/app from config), copied
// into every producer and consumer. Free of librdkafka types; the conversion to an
// rd_kafka_conf_t lives in events/ (see rdkafka_util.h) so nothing else includes librdkafka.
#include <chrono>
#include <map>
#include <string>

#include "bot/result.h"

namespace runbot::events {

struct KafkaSettings {
  struct Topics {
    std::string jobs = "runbot.jobs";                       // bot -> provisioner (CE binary mode)
    std::string events = "runbot.events";                   // provisioner -> bot (CE binary mode)
    std::string cluster_events = "runbot.cluster-events";   // NTH webhook JSON, or runbot CEs
  };

  std::string brokers;                  // bootstrap.servers, e.g. "127.0.0.1:9092"
  std::string client_id = "runbot";
  // Pass-through librdkafka properties (security.protocol, sasl.*, ssl.*, ...). Applied after the
  // defaults but before the per-role properties runbot relies on (idempotence, manual offset
  // store, ...), which therefore cannot be overridden here. Values are never logged.
  std::map<std::string, std::string> properties;
  Topics topics;
  std::chrono::milliseconds session_timeout{45000};    // consumers: session.timeout.ms
  std::chrono::milliseconds message_timeout{300000};   // producer: message.timeout.ms
};

// Builds the librdkafka configuration for a producer and a consumer from `settings` and returns
// the first problem (unknown or invalid property, named; the value is never repeated), or ok().
// Use it at startup to stop with one clear message before anything connects.
bot::Status check_kafka_settings(const KafkaSettings& settings);

}  // namespace runbot::events
