#pragma once
// KafkaConsumer: a high-level (group) librdkafka consumer bound to the Asio loop, delivering
// records one at a time to a synchronous handler with at-least-once semantics.
//
// Delivery: for each record the handler runs on the loop thread; after it returns (success or
// error) the record's offset + 1 is stored, and librdkafka's auto-commit commits stored offsets
// in the background (and on close()). A record whose handler fails is logged once with
// topic/partition/offset and the reason, counted in skipped_invalid, and the partition moves on
// (no dead-letter topic yet). If the process dies between handling and commit the record is
// delivered again, so handlers must be idempotent.
//
// Config: enable.auto.commit=true, enable.auto.offset.store=false, auto.offset.reset=earliest,
// partition.assignment.strategy=range,roundrobin (eager), enable.partition.eof=false,
// session.timeout.ms=settings.session_timeout, allow.auto.create.topics=true.
//
// Ownership and threading: owned by its binding (KafkaEventSource, KafkaJobSource) or by bot/app;
// all methods must be called on the thread running `io`, and not from inside the handler.
// The loop is woken through a pipe when librdkafka's consumer queue becomes non-empty and drains
// it with zero-timeout polls; a 1 s timer also polls, so an idle consumer keeps its group
// membership (max.poll.interval.ms). Only close() blocks (bounded by the commit round trip).
//
// Errors: create() fails with Errc::invalid_argument naming a bad property or an empty topic
// list. Consumer errors reported by librdkafka are logged (transient ones at warn) and never stop
// the consumer.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bot/result.h"
#include "bot/time.h"
#include "events/kafka_settings.h"
#include "events/record.h"

namespace boost::asio {
class io_context;
}

namespace runbot::events {

struct ConsumerStats {
  std::uint64_t consumed = 0;         // records handed to the handler
  std::uint64_t skipped_invalid = 0;  // of those, records whose handler returned an error
  std::int64_t lag = -1;              // sum over assigned partitions of high watermark - position
  std::optional<bot::TimePoint> last_record;  // wall-clock time the last record was handled
};

class KafkaConsumer {
 public:
  using Handler = std::function<bot::Status(const Record&)>;

  static bot::Result<std::unique_ptr<KafkaConsumer>> create(boost::asio::io_context& io,
                                                            const KafkaSettings& settings,
                                                            std::string group_id,
                                                            std::vector<std::string> topics,
                                                            Handler handler);
  // Closes the consumer if close() was not called (blocks like close()).
  ~KafkaConsumer();
  KafkaConsumer(const KafkaConsumer&) = delete;
  KafkaConsumer& operator=(const KafkaConsumer&) = delete;

  // Leaves the group and commits stored offsets (rd_kafka_consumer_close). Blocks the calling
  // thread for the commit and leave round trips; for shutdown. Idempotent.
  bot::Status close();

  // Backpressure: stops fetching on every assigned partition (and on partitions assigned later)
  // until resume(). Records already fetched may still be handled before the pause takes effect.
  void pause();
  void resume();
  bool paused() const;

  ConsumerStats stats() const;
  // Partitions currently assigned to this member (after the group join completes).
  std::size_t assigned_partitions() const;

 private:
  struct Impl;
  explicit KafkaConsumer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace runbot::events
