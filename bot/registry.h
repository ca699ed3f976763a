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

#include <nlohmann/json.hpp>

#include "bot/environment.h"
#include "bot/result.h"
#include "bot/state_store.h"

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

// A request that cannot start yet: over quota (waits in FIFO order) or over budget (waits for an
// admin's approval).
struct PendingRequest {
  enum class Why { quota, approval };
  std::string id;          // "q-3"
  Why why = Why::quota;
  std::string reason;      // why it waits, as told to the requester
  AppName app;
  int pr = 0;
  EnvId env;
  std::optional<Duration> ttl;
  std::string image;
  std::map<std::string, std::string> values;
  UserId user;
  std::string platform;
  ChannelId channel;
  TimePoint at{};
  bool approved = false;   // an admin approved it; it may still wait for quota
  bool operator==(const PendingRequest&) const = default;
};

// One command or button, allowed or denied: who, where, what, result.
struct AuditRecord {
  TimePoint time{};
  std::string platform;
  ChannelId channel;
  UserId user;
  std::string verb;
  std::string args;
  std::string outcome;     // ok, invalid, rejected, denied
  bool button = false;
  bool operator==(const AuditRecord&) const = default;
};

// The JSON form of an audit record (the audit topic and the snapshot share it).
nlohmann::json audit_record_json(const AuditRecord& a);

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
  // Dedupe memory only (the last kMaxClusterKeys keys), for keys of events no longer listed.
  void remember_cluster_key(const std::string& key);
  const std::deque<ClusterEventRecord>& cluster_events() const { return cluster_events_; }

  // Lifecycle event ids already applied (at-least-once delivery makes repeats normal).
  bool seen_lifecycle(const std::string& id) const;
  void mark_lifecycle(const std::string& id);

  // Learned provisioning duration per app (exponentially weighted), for ETAs.
  void learn_provisioning_time(const AppName& app, Duration took);
  std::optional<Duration> expected_provisioning_time(const AppName& app) const;

  // Requests waiting for quota or approval, oldest first.
  std::deque<PendingRequest>& pending() { return pending_; }
  const std::deque<PendingRequest>& pending() const { return pending_; }
  std::string next_request_id() { return "q-" + std::to_string(++request_seq_); }

  // Recent audit records (bounded), newest last.
  void audit(AuditRecord record);
  const std::deque<AuditRecord>& audit_log() const { return audit_; }

  // Budget alerts already sent: "<team>/<yyyy-mm>/<percent>".
  bool alerted(const std::string& key) const { return budget_alerts_.count(key) > 0; }
  void mark_alerted(const std::string& key) { budget_alerts_.insert(key); }

  // Small opaque records an adapter keeps across restarts (Teams conversation references):
  // key -> value, both chosen by the adapter ("teams/conv/<id>"). An empty value erases.
  const std::string* adapter_state(const std::string& key) const;
  void set_adapter_state(const std::string& key, std::string value);
  const std::map<std::string, std::string>& adapter_states() const { return adapter_state_; }

  // The outbox journal as of the last snapshot, in the form Outbox::restore_journal() reads;
  // null when none. Set from its parts (Outbox::journal_keyed(), Outbox::journal_items()): each
  // queued message is a part of its own in the snapshot (a record of its own on Kafka).
  nlohmann::json outbox_journal() const;
  void set_outbox_journal(const nlohmann::json& keyed, StateSnapshot::Parts items);
  // How far each input partition had been applied when the snapshot was taken (opaque to the
  // registry: the event source's positions), so a restart does not apply re-read input twice.
  const nlohmann::json& input_positions() const { return input_positions_; }
  void set_input_positions(nlohmann::json positions) { input_positions_ = std::move(positions); }

  // Snapshot for the StateStore, and back. A snapshot from a newer, unknown format is an Error.
  // Made often (every few tens of milliseconds under load), so the JSON of each environment and
  // of each listed cluster event is kept between snapshots and made again only when it changed.
  StateSnapshot snapshot_parts() const;
  std::string snapshot() const { return snapshot_parts().whole(); }
  static Result<Registry> restore(const std::string& snapshot);

  bool operator==(const Registry&) const = default;

  static constexpr size_t kMaxClusterEvents = 500;
  static constexpr size_t kMaxLifecycleIds = 4096;
  // Dedupe keys of cluster events, kept longer than the events themselves: a duplicate can be
  // consumed thousands of records after its original when a catch-up interleaves partitions.
  static constexpr size_t kMaxClusterKeys = 4096;
  static constexpr size_t kMaxAuditRecords = 1000;

 private:
  std::map<EnvId, Environment> envs_;
  std::map<NodeName, NodeRecord> nodes_;
  std::deque<ClusterEventRecord> cluster_events_;
  std::set<std::string> cluster_keys_;
  std::deque<std::string> cluster_key_order_;
  std::deque<std::string> lifecycle_order_;
  std::set<std::string> lifecycle_ids_;
  std::map<AppName, Duration> provisioning_times_;
  std::deque<PendingRequest> pending_;
  std::uint64_t request_seq_ = 0;
  std::deque<AuditRecord> audit_;
  std::set<std::string> budget_alerts_;
  std::map<std::string, std::string> adapter_state_;
  nlohmann::json outbox_journal_;  // the journal without its items: {"keyed": [...]}, or null
  StateSnapshot::Parts outbox_items_;
  nlohmann::json input_positions_;

  // JSON kept between snapshots (derived data: never part of equality).
  struct SnapshotCache {
    std::map<EnvId, std::pair<Environment, std::string>> envs;  // as serialized, and its JSON
    std::deque<std::string> cluster_events;  // in step with cluster_events_; empty: not made yet
    bool operator==(const SnapshotCache&) const { return true; }
  };
  mutable SnapshotCache cache_;
  void push_cluster_event(ClusterEventRecord record);
};

}  // namespace runbot::bot
