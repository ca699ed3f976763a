#pragma once
// StateStore: where the registry is kept across restarts (a local file in the embedded default,
// a compacted Kafka topic with a real broker in a later issue).
#include <functional>
#include <optional>
#include <string>

#include "bot/result.h"

namespace runbot::bot {

class StateStore {
 public:
  virtual ~StateStore() = default;
  // The last saved snapshot, or nullopt when there is none yet. A corrupt store is an Error.
  virtual Result<std::optional<std::string>> load() = 0;
  // Saves a snapshot atomically: after a crash either the old or the new one is there.
  virtual Status save(const std::string& snapshot) = 0;
  // Runs `durable` once everything saved so far would be found by load() after a crash. A store
  // that writes synchronously (the file) runs it at once; the Kafka store when the broker
  // acknowledged every record of the saves so far. Callers use it to commit input offsets only
  // behind durable state.
  virtual void when_durable(std::function<void()> durable) { durable(); }
};

}  // namespace runbot::bot
