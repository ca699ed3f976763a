#pragma once
// KafkaStateStore: bot::StateStore on a compacted Kafka topic (`runbot.state`), for
// installations with a real broker (the embedded default keeps bot/app's file store).
//
// Record layout (cluster-events.md §6.5): one record per key, the value a plain JSON object (not a
// CloudEvent), headers `content-type: application/json` and `runbot-state-version: 1`.
//   key `env/<id>`     -> that environment's object from the snapshot's "environments" array
//   key `outbox/<id>`  -> a queued chat message (the snapshot's "outboxItems"), by delivery id
//   key `registry`     -> everything else (nodes, dedupe memory, audit, keyed reply ids, ...)
//   null value         -> tombstone: the environment is gone, the message was sent
// Queued messages are records of their own so that a backlog of thousands of messages is not
// produced again with every save: a save carries the new and changed ones and a tombstone for
// each one sent.
// save() produces only the keys whose value changed since the last save (or that load() found
// on the topic), and a tombstone for each environment that disappeared. load() reads every
// partition from the beginning up to the high watermark taken at the call, lets the last value
// per key win (a tombstone deletes: the mock cluster and a not-yet-compacted broker keep every
// version) and rebuilds one snapshot that bot::Registry::restore() accepts.
//
// Ownership: created by bot/app (or a test) with KafkaStateStore::create(); owns its own
// KafkaProducer (idempotent, murmur2_random, zstd, message.max.bytes raised for the registry
// record) and, during load() only, a short-lived consumer. Must be destroyed before `io`.
//
// Threading: save(), healthy(), flush() and the delivery callbacks run on the thread running
// `io` (the bot's executor). load() and flush() block the calling thread; they are for startup
// and shutdown. Not thread-safe.
//
// Consistency: each key is replaced atomically and records of one key stay in order (one
// partition per key). A save touching several keys is not atomic across partitions: after a
// crash mid-save some keys may hold the new value and others the old one.
//
// Errors: create() fails with Errc::invalid_argument naming a bad property. save() fails only
// for a snapshot that is not the Registry's JSON (invalid_argument); delivery failures are
// logged, make healthy() false until a later save is fully delivered, and the failed keys are
// produced again by the next save. load() fails with invalid_argument naming
// topic/partition/offset for a record it cannot use, with timeout when the topic cannot be read
// up to its high watermark in time, and with unavailable/unauthorized for broker problems.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "bot/result.h"
#include "bot/state_store.h"
#include "events/kafka_settings.h"
#include "events/record.h"

namespace boost::asio {
class io_context;
}

namespace runbot::events {

struct StateTopicSettings {
  std::string topic = "runbot.state";
  // Upper bound for load(): metadata, watermarks and reading every partition to its end.
  std::chrono::milliseconds load_timeout{30000};
  // Upper bound for flush() when none is given.
  std::chrono::milliseconds flush_timeout{10000};
  // Largest record the producer accepts (message.max.bytes; keep <= the topic's max.message.bytes).
  int max_record_bytes = 8 * 1024 * 1024;
};

// Pure functions behind the store: splitting a snapshot into records and merging records back.
// No I/O; unit-tested on their own.
namespace state_topic {

inline constexpr const char* kRegistryKey = "registry";
inline constexpr const char* kEnvKeyPrefix = "env/";
inline constexpr const char* kOutboxKeyPrefix = "outbox/";
inline constexpr const char* kVersionHeader = "runbot-state-version";
inline constexpr const char* kVersion = "1";

// key -> value: the latest value of every live key.
using KeyValues = std::map<std::string, std::string>;

struct StateRecord {
  std::string key;
  std::optional<std::string> value;  // nullopt = tombstone
  bool operator==(const StateRecord&) const = default;
};

// Splits a Registry snapshot into `registry`, one `env/<id>` per environment and one
// `outbox/<id>` per queued message (compact JSON, object keys sorted, so an unchanged part gives
// the same bytes). Errors: not a JSON object, "environments" missing or not an array, an
// environment or message without a string "id", or two with the same id (invalid_argument).
bot::Result<KeyValues> split_snapshot(const std::string& snapshot);

// The records that bring a topic holding `last` to `next`: changed or new keys with their value,
// keys of `last` missing from `next` as tombstones, and every key in `force` (its value from
// `next`, or a tombstone). Ordered by key.
std::vector<StateRecord> changed_records(const KeyValues& last, const KeyValues& next,
                                         const std::set<std::string>& force = {});

// Folds one record read from the state topic into `state`: last value wins, a null value erases
// the key. Errors (invalid_argument, naming topic/partition/offset and the key): a null or
// unknown key, a `runbot-state-version` header other than 1, a value that is not a JSON object,
// an `env/<id>` or `outbox/<id>` record whose "id" is not <id>.
bot::Status apply_record(KeyValues& state, const Record& record);

// Rebuilds the snapshot from the folded state: the `registry` object plus an "environments"
// array of the `env/*` objects and an "outboxItems" array of the `outbox/*` objects, in key order
// (each message carries its queue position). No keys -> nullopt. Environments without a
// `registry` record (a crash between the first records) get an empty registry part.
bot::Result<std::optional<std::string>> merge_snapshot(const KeyValues& state);

// The headers every state record carries.
Headers record_headers();

}  // namespace state_topic

class KafkaProducer;

class KafkaStateStore final : public bot::StateStore {
 public:
  // Creates the store and its producer. Does not touch the topic: create it first with
  // ensure_compacted_topic() (real brokers) or EmbeddedBroker::create_topic() (mock).
  static bot::Result<std::unique_ptr<KafkaStateStore>> create(boost::asio::io_context& io,
                                                              const KafkaSettings& settings,
                                                              StateTopicSettings state = {});
  // Destroys the producer: records not yet delivered are dropped. Call flush() first.
  ~KafkaStateStore() override;
  KafkaStateStore(const KafkaStateStore&) = delete;
  KafkaStateStore& operator=(const KafkaStateStore&) = delete;

  // Reads the whole topic (blocking, up to load_timeout) and returns the rebuilt snapshot, or
  // nullopt when the topic is empty or missing. Also remembers what it read, so the next save()
  // produces only differences and tombstones the environments that are gone. Call it before the
  // first save() even when the result is not used (`--fresh`): otherwise save() cannot know
  // which keys on the topic to tombstone.
  bot::Result<std::optional<std::string>> load() override;

  // Produces the changed keys and tombstones (see the header comment) and returns once they are
  // handed to the producer; delivery is reported later through healthy().
  bot::Status save(const std::string& snapshot) override;
  // The same without parsing: the environments' records are the parts as they are.
  bot::Status save_parts(const bot::StateSnapshot& parts) override;
  // Runs `durable` when every save so far is delivered (after a delivery failure: when a later
  // save, which produces the failed keys again, is). Runs at once when nothing is in flight.
  void when_durable(std::function<void()> durable) override;

  // False after a delivery failure, until every record of a later save is delivered.
  bool healthy() const;
  // The last delivery failure, for /readyz; empty while healthy.
  const std::string& problem() const;

  // Blocks until every produced record has its delivery report (or the timeout passes). For
  // shutdown; runs the delivery callbacks. Returns Errc::timeout if records remain.
  bot::Status flush(std::optional<std::chrono::milliseconds> timeout = std::nullopt);

  struct Stats {
    std::uint64_t saves = 0;             // save() calls that produced at least one record
    std::uint64_t records_produced = 0;  // values and tombstones handed to the producer
    std::uint64_t tombstones_produced = 0;
    std::uint64_t records_delivered = 0;  // delivery reports that succeeded
    std::uint64_t delivery_failures = 0;
    std::uint64_t records_loaded = 0;  // records read by the last load()
  };
  Stats stats() const;

  const std::string& topic() const;

 private:
  struct Impl;
  explicit KafkaStateStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace runbot::events
