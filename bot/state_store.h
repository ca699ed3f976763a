#pragma once
// StateStore: where the registry is kept across restarts (a local file in the embedded default,
// a compacted Kafka topic with a real broker in a later issue).
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
};

}  // namespace runbot::bot
