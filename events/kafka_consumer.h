#pragma once
// KafkaConsumer: a high-level (group) librdkafka consumer bound to the Asio loop, delivering
// records one at a time to a synchronous handler with at-least-once semantics.
//
// Delivery: for each record the handler runs on the loop thread; after it returns ok the
// record's offset + 1 is stored (or, with defer_offset_store, kept until commit_through()), and
// librdkafka's auto-commit commits stored offsets in the background (and on close()). A record whose handler fails is logged once with
// topic/partition/offset and the reason and counted in skipped_invalid; then
//  * without a dead-letter topic: its offset is stored and the partition moves on;
//  * with one (ConsumerOptions::dead_letter.enabled): the record is produced to
//    "<topic><suffix>" (".dlq") with the same key, value and ce_* / content-type headers plus
//    dlq.original.topic, dlq.original.partition, dlq.original.offset, dlq.error.class (the
//    bot::Errc name, e.g. "invalid_argument"), dlq.error.message, dlq.attempts (handler
//    attempts, "1") and dlq.first_failure_ts (RFC 3339, ms). The partition is paused and later
//    records of it are held back until the DLQ delivery report succeeds; only then is the
//    offset stored, counted in dead_lettered, and the held-back records handled in order. A
//    failed DLQ delivery is logged and produced again after a backoff (doubling from
//    dead_letter.retry_backoff up to dead_letter.max_backoff), for as long as it takes: the
//    partition does not move past a record that is in neither place. Other partitions go on.
//    If the partition is revoked meanwhile, the wait is abandoned; its next owner handles the
//    record again (it may reach the DLQ twice: DLQ readers dedupe on dlq.original.*).
// If the process dies between handling and commit the record is delivered again, so handlers
// must be idempotent.
//
// Config: enable.auto.commit=true, enable.auto.offset.store=false, auto.offset.reset=earliest,
// partition.assignment.strategy=range,roundrobin (eager), enable.partition.eof=true (an idle
// partition's lag is then 0, not unknown, even when nothing was consumed from it in this run),
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
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "bot/result.h"
#include "bot/time.h"
#include "events/kafka_settings.h"
#include "events/record.h"

namespace boost::asio {
class io_context;
}

namespace runbot::events {

// One subscribed topic's share of ConsumerStats.
struct TopicStats {
  std::uint64_t consumed = 0;                 // records of this topic handed to the handler
  std::int64_t lag = -1;                      // sum over its assigned partitions, -1 = unknown
  std::optional<bot::TimePoint> last_record;  // wall-clock time its last record was handled
};

struct ConsumerStats {
  std::uint64_t consumed = 0;         // records handed to the handler
  std::uint64_t skipped_invalid = 0;  // of those, records whose handler returned an error
  std::uint64_t dead_lettered = 0;    // of those, records confirmed delivered to the DLQ
  std::uint64_t dead_letter_retries = 0;  // DLQ deliveries that failed (each produced again later)
  std::uint64_t skipped_applied = 0;  // records below skip_applied() positions, not handed over
  std::size_t held_partitions = 0;    // partitions paused behind a DLQ delivery right now
  std::int64_t lag = -1;              // sum over assigned partitions of high watermark - position
  std::optional<bot::TimePoint> last_record;  // wall-clock time the last record was handled
  // Per subscribed topic (every subscribed topic has an entry, lag -1 until known).
  std::map<std::string, TopicStats> topics;
};

// Where records the handler rejects go (§6.5). Off by default.
struct DeadLetterSettings {
  bool enabled = false;
  std::string suffix = ".dlq";                     // DLQ topic = original topic + suffix
  std::chrono::milliseconds retry_backoff{250};    // first wait after a failed DLQ delivery
  std::chrono::milliseconds max_backoff{30000};    // the wait doubles up to this
};

struct ConsumerOptions {
  DeadLetterSettings dead_letter;
  // Offsets of handled records are not stored right away but at commit_through(): the caller
  // stores them once the effects of those records are durable (bot state written), so a crash
  // can never commit past a record whose effect was lost.
  bool defer_offset_store = false;
};

class KafkaConsumer {
 public:
  using Handler = std::function<bot::Status(const Record&)>;
  // Per (topic, partition): an offset (the next record to handle).
  using Positions = std::map<std::pair<std::string, std::int32_t>, std::int64_t>;

  // With options.dead_letter.enabled the consumer also owns an idempotent KafkaProducer built
  // from `settings` (same brokers and pass-through properties) for the DLQ.
  static bot::Result<std::unique_ptr<KafkaConsumer>> create(boost::asio::io_context& io,
                                                            const KafkaSettings& settings,
                                                            std::string group_id,
                                                            std::vector<std::string> topics,
                                                            Handler handler,
                                                            ConsumerOptions options = {});
  // Closes the consumer if close() was not called (blocks like close()).
  ~KafkaConsumer();
  KafkaConsumer(const KafkaConsumer&) = delete;
  KafkaConsumer& operator=(const KafkaConsumer&) = delete;

  // Leaves the group and commits stored offsets (rd_kafka_consumer_close). First waits (up to
  // 5 s) for DLQ deliveries still in flight, storing the offsets of those that succeed; held-back
  // records are not handled. Blocks the calling thread for the commit and leave round trips;
  // for shutdown. Idempotent.
  bot::Status close();

  // Backpressure: stops fetching on every assigned partition (and on partitions assigned later)
  // until resume(). Records already fetched may still be handled before the pause takes effect.
  // resume() leaves partitions that wait for a DLQ delivery paused.
  void pause();
  void resume();
  bool paused() const;

  // With ConsumerOptions::defer_offset_store: marks everything handled so far (records and
  // dead-lettered ones) and returns the mark's number; commit_through(n) stores the offsets of
  // every mark up to n (to be committed by auto-commit or close()). Without the option offsets
  // are stored at once and these do nothing (checkpoint() returns 0).
  std::uint64_t checkpoint();
  void commit_through(std::uint64_t mark);
  // Offsets handled but not stored yet (deferred), over all partitions.
  std::size_t deferred_partitions() const;

  // Per partition, the offset after the last record whose handling is complete (handler ok, or
  // confirmed in the DLQ): what a state snapshot taken now has applied. Kept with the state, it
  // tells the next run which re-read records that state already holds.
  Positions positions() const;
  // Records below `applied` (positions() saved with the state this run started from) had their
  // effects in that state: after a crash they are read again (committed offsets lag the state),
  // but are not handed to the handler nor dead-lettered again; their offsets are stored as if
  // handled, and they count in ConsumerStats::skipped_applied. A partition whose end is below
  // its saved position (deleted and created again since) is not skipped. Call before records
  // arrive.
  void skip_applied(Positions applied);

  ConsumerStats stats() const;
  // Partitions currently assigned to this member (after the group join completes).
  std::size_t assigned_partitions() const;

 private:
  struct Impl;
  explicit KafkaConsumer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Positions as the bot's state keeps them (BotHooks::input_positions): {"<topic>": {"<partition>":
// offset}}. Reading skips (with a warning) entries it cannot use; anything not an object is none.
nlohmann::json positions_to_json(const KafkaConsumer::Positions& positions);
KafkaConsumer::Positions positions_from_json(const nlohmann::json& j);

}  // namespace runbot::events
