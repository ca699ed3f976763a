#pragma once
// ensure_topics: creates runbot's topics on a real cluster if they do not exist yet, so consumers
// can join their groups even where brokers do not auto-create topics. Runs at startup and blocks
// for at most `timeout` (it is not for the event loop). Errors: unavailable when the cluster does
// not answer in time, unauthorized/invalid_argument when it refuses; an existing topic is fine.
#include <chrono>

#include "bot/result.h"
#include "events/kafka_settings.h"

namespace runbot::events {

bot::Status ensure_topics(const KafkaSettings& settings, int partitions = 4, int replication = -1,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace runbot::events
