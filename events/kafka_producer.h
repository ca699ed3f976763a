#pragma once
// KafkaProducer: an idempotent librdkafka producer bound to the Asio loop.
//
// Ownership: created by bot/app (or a test) and shared by reference with KafkaJobQueue and
// KafkaEventPublisher; must outlive them. Threading: every method must be called on the thread
// running `io`; `done` callbacks run there too, from the delivery report, never inline from
// produce(). Delivery reports are drained with zero-timeout polls when librdkafka's queue wakes
// the loop through a pipe, so the loop never blocks (except in flush(), meant for shutdown).
//
// Errors: create() fails with Errc::invalid_argument naming a bad property. produce() completes
// with the delivery result: ok, or an Error whose is_retryable() says whether producing again
// can help (queue full / broker down -> unavailable, message.timeout.ms -> timeout).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "bot/result.h"
#include "events/kafka_settings.h"
#include "events/record.h"

namespace boost::asio {
class io_context;
}

namespace runbot::events {

class KafkaProducer {
 public:
  // Config: enable.idempotence=true, partitioner=murmur2_random, linger.ms=5,
  // message.timeout.ms=settings.message_timeout, plus settings.properties.
  static bot::Result<std::unique_ptr<KafkaProducer>> create(boost::asio::io_context& io,
                                                            const KafkaSettings& settings);
  // Purges what is still queued; their `done` callbacks are dropped, not called.
  // Call flush() first for a graceful shutdown.
  ~KafkaProducer();
  KafkaProducer(const KafkaProducer&) = delete;
  KafkaProducer& operator=(const KafkaProducer&) = delete;

  // Queues one record; an empty `key` produces a null key (partition chosen at random), `value`
  // nullopt a null value (a tombstone on compacted topics).
  // `done` runs exactly once on the loop thread (unless the producer is destroyed first).
  void produce(const std::string& topic, const std::string& key, std::optional<std::string> value,
               const Headers& headers, std::function<void(bot::Status)> done);

  // Blocks the calling thread until every queued record has its delivery report (running the
  // `done` callbacks) or `timeout` passes. For shutdown. Returns Errc::timeout if records remain.
  bot::Status flush(std::chrono::milliseconds timeout);

  // Records produced but not yet reported.
  std::uint64_t in_flight() const;

 private:
  struct Impl;
  explicit KafkaProducer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace runbot::events
