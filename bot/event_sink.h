#pragma once
// EventSink: what consumers of Kafka (or any EventSource) hand decoded events to. Calls arrive on
// the bot's executor; when a call returns the event is handled and its offset may be stored
// (at-least-once: handlers must be idempotent).
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "bot/model.h"

namespace runbot::bot {

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void on_lifecycle(const LifecycleEvent& event) = 0;
  virtual void on_cluster(const ClusterEvent& event) = 0;
};

// Counters an EventSource exposes for `status` and /metrics.
struct EventSourceStats {
  std::uint64_t consumed = 0;
  std::uint64_t skipped_invalid = 0;
  std::uint64_t dead_lettered = 0;     // of those, records now in the dead-letter topic
  std::int64_t lag = -1;               // records behind the high watermark, -1 = unknown
  std::optional<TimePoint> last_event;
  // Each consumed topic's lag (same meaning as `lag`), by topic name; empty when not known.
  std::map<std::string, std::int64_t> lag_by_topic;
};

// EventSource: something that feeds an EventSink (a Kafka consumer in production).
class EventSource {
 public:
  virtual ~EventSource() = default;
  virtual EventSourceStats stats() const = 0;
};

// EventPublisher: how the provisioner (and the demo cluster) report what happened.
class EventPublisher {
 public:
  virtual ~EventPublisher() = default;
  // Publishes keyed by event.env; `done` runs when delivered or failed for good.
  virtual void publish(const LifecycleEvent& event, std::function<void(Status)> done) = 0;
  // Publishes a raw record to the cluster-events topic (used by the demo cluster to behave like
  // aws-node-termination-handler). `key` may be empty.
  virtual void publish_cluster_record(std::string key, std::string json_value,
                                      std::function<void(Status)> done) = 0;
};

}  // namespace runbot::bot
