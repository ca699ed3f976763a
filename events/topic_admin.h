#pragma once
// ensure_topics: creates runbot's topics on a real cluster if they do not exist yet, so consumers
// can join their groups even where brokers do not auto-create topics. Runs at startup and blocks
// for at most `timeout` (it is not for the event loop). Errors: unavailable when the cluster does
// not answer in time, unauthorized/invalid_argument when it refuses; an existing topic is fine.
#include <chrono>
#include <map>
#include <string>

#include "bot/result.h"
#include "events/kafka_settings.h"

namespace runbot::events {

bot::Status ensure_topics(const KafkaSettings& settings, int partitions = 4, int replication = -1,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30));

// ensure_compacted_topic: creates `topic` if it does not exist, with cleanup.policy=compact and
// the settings a state topic needs (compacted_topic_configs(), `overrides` win). If the topic
// exists, checks with DescribeConfigs that its cleanup.policy includes compact and fails with
// invalid_argument (saying how to fix it) when it does not: a delete-policy topic would lose the
// state after retention. Real clusters only (the mock has no Admin API: use
// EmbeddedBroker::create_topic). Blocks for at most about twice `timeout`; errors as
// ensure_topics.
bot::Status ensure_compacted_topic(const KafkaSettings& settings, const std::string& topic, int partitions = 4,
                                   int replication = -1,
                                   const std::map<std::string, std::string>& overrides = {},
                                   std::chrono::milliseconds timeout = std::chrono::seconds(30));

// The topic configs ensure_compacted_topic() creates with: cleanup.policy=compact,
// min.compaction.lag.ms=60000 (a new value is never compacted away within a minute),
// delete.retention.ms=86400000 (tombstones stay a day), segment.ms=3600000 (so compaction can
// run hourly instead of after the 7-day default segment roll), max.message.bytes=8388608 (the
// registry record can be large; matches StateTopicSettings::max_record_bytes).
std::map<std::string, std::string> compacted_topic_configs();

}  // namespace runbot::events
