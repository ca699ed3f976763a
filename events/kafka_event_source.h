#pragma once
// KafkaEventSource: bot::EventSource on Kafka. One KafkaConsumer (group "runbot-bot" by default)
// over settings.topics.events and settings.topics.cluster_events. Lifecycle CloudEvents go to
// sink.on_lifecycle, cluster records (decode_cluster_record) to sink.on_cluster. Undecodable
// records are logged once, counted in stats().skipped_invalid and sent to the dead-letter topic
// "<topic>.dlq" (KafkaConsumer, dead_letter enabled); their offset is stored once the DLQ has
// them, and dead_lettered() counts them. Offsets of good records are stored after the sink
// returns (at-least-once: the sink must be idempotent). With `defer_offsets` they are stored only
// at consumer().commit_through() of a checkpoint taken after them: bot/app takes one per state
// snapshot and commits it once the snapshot is durable, and after_record() asks for that snapshot.
//
// Ownership: owned by bot/app; borrows the sink, which must outlive it. Threading: the sink is
// called on the loop thread of `io`; all methods must be called there. Errors: create() fails
// like KafkaConsumer::create.
#include <functional>
#include <memory>
#include <string>

#include "bot/event_sink.h"
#include "events/kafka_consumer.h"
#include "events/kafka_settings.h"

namespace boost::asio {
class io_context;
}

namespace runbot::events {

class KafkaEventSource : public bot::EventSource {
 public:
  static bot::Result<std::unique_ptr<KafkaEventSource>> create(boost::asio::io_context& io,
                                                               const KafkaSettings& settings,
                                                               bot::EventSink& sink,
                                                               std::string group_id = "runbot-bot",
                                                               bool defer_offsets = false);
  // Runs after each record the sink accepted (bot/app: request a state snapshot).
  void set_after_record(std::function<void()> cb) { after_record_ = std::move(cb); }

  // Totals plus lag_by_topic: one entry per subscribed topic (lag -1 until known).
  bot::EventSourceStats stats() const override;
  // Records confirmed in "<topic>.dlq" (bot::EventSourceStats has no field for it yet).
  std::uint64_t dead_lettered() const;
  // Graceful shutdown: commits stored offsets and leaves the group (blocks briefly).
  bot::Status close();
  KafkaConsumer& consumer() { return *consumer_; }

 private:
  KafkaEventSource() = default;
  std::string events_topic_;
  bot::EventSink* sink_ = nullptr;
  std::function<void()> after_record_;
  std::unique_ptr<KafkaConsumer> consumer_;
};

}  // namespace runbot::events
