#pragma once
// RecordingPublisher: a bot::EventPublisher that keeps everything published, in order, and
// reports delivery at once (inline). Header-only so a test can use it without linking anything.
#include <string>
#include <utility>
#include <vector>

#include "bot/event_sink.h"

namespace runbot::testing {

class RecordingPublisher final : public bot::EventPublisher {
 public:
  struct ClusterRecord {
    std::string key;
    std::string value;
  };

  void publish(const bot::LifecycleEvent& event, std::function<void(bot::Status)> done) override {
    events.push_back(event);
    if (done) done(bot::ok());
  }
  void publish_cluster_record(std::string key, std::string json_value,
                              std::function<void(bot::Status)> done) override {
    records.push_back(ClusterRecord{std::move(key), std::move(json_value)});
    if (done) done(bot::ok());
  }

  // Events of `env` (all environments when empty).
  std::vector<bot::LifecycleEvent> of(const bot::EnvId& env) const {
    std::vector<bot::LifecycleEvent> out;
    for (const auto& e : events) {
      if (env.empty() || e.env == env) out.push_back(e);
    }
    return out;
  }
  // Kinds of the events of `env`, e.g. {accepted, progress, ready}.
  std::vector<bot::LifecycleKind> kinds(const bot::EnvId& env = {}) const {
    std::vector<bot::LifecycleKind> out;
    for (const auto& e : of(env)) out.push_back(e.kind);
    return out;
  }

  std::vector<bot::LifecycleEvent> events;
  std::vector<ClusterRecord> records;
};

}  // namespace runbot::testing
