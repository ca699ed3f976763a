#pragma once
// Strong string ids so that an EnvId cannot be passed where a UserId is expected.
#include <compare>
#include <functional>
#include <ostream>
#include <string>

namespace runbot::bot {

template <class Tag>
class StrongId {
 public:
  StrongId() = default;
  explicit StrongId(std::string value) : value_(std::move(value)) {}
  const std::string& str() const { return value_; }
  bool empty() const { return value_.empty(); }
  auto operator<=>(const StrongId&) const = default;
  bool operator==(const StrongId&) const = default;
  friend std::ostream& operator<<(std::ostream& os, const StrongId& id) { return os << id.value_; }

 private:
  std::string value_;
};

using EnvId = StrongId<struct EnvIdTag>;          // "<app>-pr-<n>", a DNS-1123 label
using AppName = StrongId<struct AppNameTag>;      // catalog key, e.g. "front-end"
using UserId = StrongId<struct UserIdTag>;        // platform user id ("U024BE7LH", "alice")
using ChannelId = StrongId<struct ChannelIdTag>;  // platform channel id
using JobId = StrongId<struct JobIdTag>;          // unique per job
using NodeName = StrongId<struct NodeNameTag>;    // Kubernetes node name
using TeamName = StrongId<struct TeamNameTag>;

}  // namespace runbot::bot

template <class Tag>
struct std::hash<runbot::bot::StrongId<Tag>> {
  size_t operator()(const runbot::bot::StrongId<Tag>& id) const noexcept {
    return std::hash<std::string>{}(id.str());
  }
};
