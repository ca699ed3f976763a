#pragma once
// Registry: what runbot knows — environments, the nodes they run on, recent cluster events and
// interruptions, learned provisioning times. Fed by commands and events; snapshotted to a
// StateStore. Owned by Bot; used on the bot's executor only (not thread-safe by design).
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "bot/environment.h"
#include "bot/result.h"

namespace runbot::bot {

struct NodeRecord {
  NodeInfo info;
  std::set<EnvId> envs;
  std::optional<TimePoint> interruption_deadline;  // set while an interruption notice is open
  TimePoint last_seen{};
  bool operator==(const NodeRecord&) const = default;
};

struct ClusterEventRecord {
  TimePoint received{};
  ClusterEvent event;
  std::vector<EnvId> affected;
  bool operator==(const ClusterEventRecord&) const = default;
};

class Registry {
 public:
  Environment* find(const EnvId& id);
  const Environment* find(const EnvId& id) const;
  // Adds or replaces an environment record.
  Environment& put(Environment env);
  const std::map<EnvId, Environment>& environments() const { return envs_; }
  std::map<EnvId, Environment>& environments() { return envs_; }

  // Replaces the nodes an environment runs on, keeping the node table in step.
  void set_env_nodes(const EnvId& env, const std::vector<NodeInfo>& nodes, TimePoint now);
  // Records a node without environments (inventory).
  NodeRecord& node(const NodeInfo& info, TimePoint now);
  NodeRecord* find_node(const NodeName& name);
  const std::map<NodeName, NodeRecord>& nodes() const { return nodes_; }

  // Remembers a cluster event (bounded history) and returns whether it is new: the same
  // dedupe key seen before means a redelivery that must not be announced twice.
  bool remember_cluster_event(const ClusterEventRecord& record);
  const std::deque<ClusterEventRecord>& cluster_events() const { return cluster_events_; }

  // Lifecycle event ids already applied (at-least-once delivery makes repeats normal).
  bool seen_lifecycle(const std::string& id) const;
  void mark_lifecycle(const std::string& id);

  // Learned provisioning duration per app (exponentially weighted), for ETAs.
  void learn_provisioning_time(const AppName& app, Duration took);
  std::optional<Duration> expected_provisioning_time(const AppName& app) const;

  // Snapshot for the StateStore, and back. A snapshot from a newer, unknown format is an Error.
  std::string snapshot() const;
  static Result<Registry> restore(const std::string& snapshot);

  bool operator==(const Registry&) const = default;

  static constexpr size_t kMaxClusterEvents = 500;
  static constexpr size_t kMaxLifecycleIds = 4096;

 private:
  std::map<EnvId, Environment> envs_;
  std::map<NodeName, NodeRecord> nodes_;
  std::deque<ClusterEventRecord> cluster_events_;
  std::set<std::string> cluster_keys_;
  std::deque<std::string> lifecycle_order_;
  std::set<std::string> lifecycle_ids_;
  std::map<AppName, Duration> provisioning_times_;
};

}  // namespace runbot::bot
