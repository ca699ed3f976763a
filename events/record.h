#pragma once
// Record: one consumed Kafka message, copied out of librdkafka so it can be decoded and kept
// without any librdkafka type. Headers keep their order; duplicates are allowed (Kafka permits
// them), lookups return the last one, as the CloudEvents Kafka binding expects.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bot/time.h"

namespace runbot::events {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Record {
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  std::optional<std::string> key;    // nullopt = null key
  std::optional<std::string> value;  // nullopt = null value (tombstone)
  Headers headers;                   // a header with a null value is stored as ""
  std::optional<bot::TimePoint> timestamp;  // create/log-append time, if the record has one

  // The last header named `name` (ASCII case-insensitive), or nullptr.
  const std::string* header(std::string_view name) const;
  // "topic/partition@offset", for logs and error messages.
  std::string where() const;
};

}  // namespace runbot::events
