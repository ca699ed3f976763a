#pragma once
// StateStore: where the registry is kept across restarts (a local file in the embedded default,
// a compacted Kafka topic with a real broker in a later issue).
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bot/result.h"

namespace runbot::bot {

// A Registry snapshot in parts, as Registry::snapshot_parts() makes it: stores that keep each
// environment in a record of its own (Kafka) use the parts as they are, without parsing.
struct StateSnapshot {
  using Parts = std::vector<std::pair<std::string, std::string>>;  // id -> a JSON object
  std::string registry;  // a JSON object: everything else
  Parts environments;    // by environment id, in id order
  Parts outbox;          // the outbox journal's queued messages, by delivery id
  // The one-document form (the registry object with "environments" and "outboxItems" arrays)
  // that Registry::restore() reads.
  std::string whole() const;
};

class StateStore {
 public:
  virtual ~StateStore() = default;
  // The last saved snapshot, or nullopt when there is none yet. A corrupt store is an Error.
  virtual Result<std::optional<std::string>> load() = 0;
  // Saves a snapshot atomically: after a crash either the old or the new one is there.
  virtual Status save(const std::string& snapshot) = 0;
  // The same from parts; by default save(parts.whole()).
  virtual Status save_parts(const StateSnapshot& parts) { return save(parts.whole()); }
  // Runs `durable` once everything saved so far would be found by load() after a crash. A store
  // that writes synchronously (the file) runs it at once; the Kafka store when the broker
  // acknowledged every record of the saves so far. Callers use it to commit input offsets only
  // behind durable state.
  virtual void when_durable(std::function<void()> durable) { durable(); }
};

}  // namespace runbot::bot
