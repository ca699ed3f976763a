#pragma once
// The domain: apps, jobs, lifecycle events from the provisioner, cluster events from the outside
// world, and the nodes environments run on. Plain value types, no I/O.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bot/money.h"
#include "bot/strong_id.h"
#include "bot/time.h"

namespace runbot::bot {

// One entry of the app catalog (config `apps:`).
struct AppSpec {
  AppName name;
  std::string repo;                          // source repository, e.g. "acme/front-end"
  TeamName team;                             // owning team
  Duration default_ttl = std::chrono::hours(8);
  Duration max_ttl = std::chrono::hours(72);
  Money rate_per_hour = Money::dollars(0.625);  // about $15 per environment-day
  Money suspended_rate_per_hour{};
  std::vector<std::string> channels;         // "<platform>:<channel>", where it announces
  std::vector<std::string> provisioner_args; // extra arguments for the exec backend
  std::map<std::string, std::string> provisioner_env;  // extra environment for the exec backend
  std::string namespace_template = "{env}";  // {env}, {app}, {pr}
  std::string url_template;                  // demo backend: "https://{env}.preview.example.com"
};

enum class JobVerb { up, down, extend, suspend, resume };
const char* to_string(JobVerb v);
std::optional<JobVerb> job_verb_from_string(std::string_view s);

// A request to the provisioner. Its Kafka key is `env`, so jobs for one environment stay ordered.
struct Job {
  JobId id;
  JobVerb verb = JobVerb::up;
  EnvId env;
  AppName app;
  int pr = 0;
  std::string namespace_name;
  UserId requested_by;
  TimePoint requested_at{};
  std::optional<Duration> ttl;               // up, extend
  std::optional<TimePoint> expires_at;       // up, extend: for kube-janitor annotations
  std::string image;                         // up: image tag, empty = default
  std::map<std::string, std::string> values; // up: --set k=v
  std::string reason;                        // down: "user", "ttl", "pr-closed"
  bool operator==(const Job&) const = default;
};

// Where a node's capacity comes from; spot nodes can be interrupted.
enum class CapacityType { unknown, spot, on_demand };
const char* to_string(CapacityType c);
CapacityType capacity_type_from_string(std::string_view s);

struct NodeInfo {
  NodeName name;
  CapacityType capacity = CapacityType::unknown;
  std::string instance_type;
  std::string zone;
  bool operator==(const NodeInfo&) const = default;
};

// What the provisioner reports while it executes a job (CloudEvents `io.runbot.env.<kind>.v1`).
enum class LifecycleKind {
  accepted,      // the provisioner took the job (queued behind others for the environment)
  progress,      // a stage started: `stage`, `stage_index`/`stage_count`, `message`
  ready,         // up finished: `url`, `nodes`
  updated,       // up on an existing environment finished: `url`, `nodes`
  failed,        // `stage`, `reason`, `exit_status`, `log_tail`
  suspended,
  resumed,
  extended,      // TTL annotations rewritten: `expires_at`
  deleted,       // down finished
  cancelled,     // the job was cancelled (down during up)
  rescheduled,   // the environment's pods now run on `nodes`
};
const char* to_string(LifecycleKind k);
std::optional<LifecycleKind> lifecycle_kind_from_string(std::string_view s);

struct LifecycleEvent {
  std::string id;           // unique; CloudEvents id
  std::string source;       // CloudEvents source, e.g. "/runbot/provisioner/demo"
  LifecycleKind kind = LifecycleKind::progress;
  EnvId env;
  JobId job;
  JobVerb verb = JobVerb::up;  // the job this event belongs to
  TimePoint time{};
  std::string stage;
  int stage_index = 0;      // 1-based, 0 = unknown
  int stage_count = 0;
  std::string message;
  std::string url;
  std::string reason;
  std::optional<int> exit_status;
  std::vector<std::string> log_tail;
  std::vector<NodeInfo> nodes;
  std::optional<TimePoint> expires_at;
  bool simulated = false;   // produced by the demo backend
  bool operator==(const LifecycleEvent&) const = default;
};

// Something that happened in the cluster, already classified (events/ decodes the formats).
enum class ClusterEventKind {
  spot_interruption,
  rebalance_recommendation,
  scheduled_maintenance,
  node_termination,      // ASG lifecycle, state change: the node is going away
  pod_warning,           // CrashLoopBackOff, ImagePullBackOff, FailedScheduling, OOMKilled, BackOff
  pod_scheduled,         // a pod of a namespace was placed on `node`
  namespace_expired,     // kube-janitor TTL / expiry
  other,
};
const char* to_string(ClusterEventKind k);

struct ClusterEvent {
  std::string dedupe_key;   // source-specific: CE source+id, NTH EventID, Event uid
  std::string source;       // "aws-node-termination-handler", "kubelet", ...
  ClusterEventKind kind = ClusterEventKind::other;
  TimePoint time{};
  std::optional<TimePoint> deadline;  // when the node goes away
  NodeInfo node;
  std::string namespace_name;
  std::string object;       // "Pod/front-end-7d9f", for warnings
  std::string reason;       // "CrashLoopBackOff", "SpotInterruption", ...
  std::string message;
  bool operator==(const ClusterEvent&) const = default;
};

// "front-end" + 123 -> "front-end-pr-123"; fails if the result is not a DNS-1123 label.
Result<EnvId> make_env_id(const AppName& app, int pr);
bool is_dns1123_label(std::string_view s);

}  // namespace runbot::bot
