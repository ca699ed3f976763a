// Kubernetes Events (cluster-events.md §2-§5, §7 step 3). See cluster_decoder.h for the table.
#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>

#include "events/decoder_detail.h"
#include "events/event_time.h"

namespace runbot::events::detail {
namespace {

using bot::ClusterEventKind;
using std::chrono::minutes;

constexpr std::string_view kJanitor = "kube-janitor";
constexpr std::string_view kNth = "aws-node-termination-handler";
constexpr std::string_view kKarpenter = "karpenter";
constexpr std::string_view kAutoscaler = "cluster-autoscaler";
constexpr minutes kSpotWarning{2};  // EC2 sends the spot interruption warning two minutes ahead

bool one_of(std::string_view s, std::initializer_list<std::string_view> set) {
  return std::find(set.begin(), set.end(), s) != set.end();
}

bool contains_ci(std::string_view hay, std::string_view needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
         }) != hay.end();
}

// The time written after `marker` in a free-text message, up to `stop` (or the end).
std::optional<bot::TimePoint> time_in_message(std::string_view message, std::string_view marker,
                                              std::string_view stop = {}) {
  auto at = message.find(marker);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = message.substr(at + marker.size());
  if (!stop.empty()) rest = rest.substr(0, rest.find(stop));
  auto t = parse_event_time(trim(rest));
  return t ? std::optional<bot::TimePoint>(*t) : std::nullopt;
}

// Pod warning reasons from the kubelet, scheduler and controllers; any other `Warning` on a Pod
// counts too.
bool pod_warning_reason(std::string_view reason) {
  return one_of(reason, {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull", "FailedScheduling",
                         "OOMKilled", "OOMKilling", "BackOff", "Failed", "FailedMount", "FailedAttachVolume",
                         "FailedCreatePodSandBox", "FailedKillPod", "Unhealthy", "Evicted", "InspectFailed",
                         "FailedPreStopHook", "FailedPostStartHook", "NotTriggerScaleUp"});
}

// Everything the classifiers need, read once.
struct Event {
  std::string reason, type, message, component, host, reporting_component, reporting_instance;
  std::string kind, name, object_namespace, event_namespace, uid;
  std::optional<std::int64_t> count;
  std::optional<bot::TimePoint> time;
  bool resmoio = false;
  std::string label(std::string_view) const;
  std::string annotation(std::string_view) const;
  const json* labels = nullptr;       // involvedObject.labels (resmoio/opsgenie enrichment)
  const json* annotations = nullptr;  // the Event's own metadata.annotations (NTH puts node data there)
};

std::string lookup(const json* m, std::string_view name) {
  if (!m || !m->is_object()) return {};
  auto it = m->find(name);
  return it != m->end() && it->is_string() ? it->get<std::string>() : std::string{};
}
std::string Event::label(std::string_view n) const { return lookup(labels, n); }
std::string Event::annotation(std::string_view n) const { return lookup(annotations, n); }

std::string first_of(std::initializer_list<std::string> values) {
  for (const auto& v : values) {
    if (!v.empty()) return v;
  }
  return {};
}

// Node facts from the Node's labels (the exporter copies them onto involvedObject) and NTH's
// Event annotations, which win.
void fill_node(bot::ClusterEvent& e, const Event& ev) {
  e.node.instance_type = first_of({ev.annotation("instance-type"), ev.label("node.kubernetes.io/instance-type"),
                                   ev.label("beta.kubernetes.io/instance-type")});
  e.node.zone = first_of({ev.annotation("availability-zone"), ev.label("topology.kubernetes.io/zone"),
                          ev.label("failure-domain.beta.kubernetes.io/zone")});
  std::string lifecycle = first_of({ev.annotation("instance-life-cycle"), ev.label("karpenter.sh/capacity-type"),
                                    ev.label("eks.amazonaws.com/capacityType")});
  if (auto c = bot::capacity_type_from_string(lifecycle); c != bot::CapacityType::unknown) e.node.capacity = c;
}

bot::Result<bot::ClusterEvent> janitor(bot::ClusterEvent e, const Event& ev, const std::string& what) {
  if (!one_of(ev.reason, {"TimeToLiveExpired", "ExpiryTimeReached", "DeleteNotification"})) return e;
  e.kind = ClusterEventKind::namespace_expired;
  // A Namespace is cluster-scoped: the namespace is the object itself.
  e.namespace_name = ev.kind == "Namespace" ? ev.name : first_of({ev.object_namespace, ev.event_namespace});
  if (e.namespace_name.empty()) return invalid(what + ": kube-janitor " + ev.reason + " names no namespace");
  if (ev.reason == "DeleteNotification") {
    e.deadline = time_in_message(ev.message, "will be deleted at ", " ");
  } else {
    e.deadline = e.time;  // posted just before the delete
  }
  return e;
}

// NTH's Kubernetes Events (§4.4), LOG_FORMAT_VERSION 1 and 2.
bot::Result<bot::ClusterEvent> nth(bot::ClusterEvent e, const Event& ev, const std::string& what) {
  static constexpr std::array<std::string_view, 7> kInterruptions{
      "SpotInterruption", "RebalanceRecommendation", "ScheduledEvent", "StateChange", "ASGLifecycle",
      "SQSTermination",   "UnknownInterruption"};
  if (std::find(kInterruptions.begin(), kInterruptions.end(), ev.reason) == kInterruptions.end()) {
    return e;  // Cordon, CordonAndDrain, PreDrain, ..., their *Error variants, MonitorError
  }
  e.node.name = bot::NodeName{first_of({ev.kind == "Node" ? ev.name : std::string{}, ev.host,
                                        ev.annotation("local-hostname")})};
  if (e.node.name.empty()) return invalid(what + ": NTH " + ev.reason + " event names no node");
  e.object = "Node/" + e.node.name.str();
  e.namespace_name.clear();  // NTH's Events live in "default"; they are about the node
  std::string reason = ev.reason;
  if (reason == "SQSTermination") {
    // v1 gives every queue-mode interruption this reason; the Description tells them apart.
    reason = contains_ci(ev.message, "spot interruption") || contains_ci(ev.message, "spot itn") ? "SpotInterruption"
             : contains_ci(ev.message, "rebalance recommendation")                               ? "RebalanceRecommendation"
             : contains_ci(ev.message, "scheduled") || contains_ci(ev.message, "health")          ? "ScheduledEvent"
                                                                                                 : "SQSTermination";
  }
  if (reason == "SpotInterruption") {
    e.kind = ClusterEventKind::spot_interruption;
    e.node.capacity = bot::CapacityType::spot;
    if (ev.message.starts_with("Spot ITN received")) {
      // IMDS mode: the message carries the interruption time itself.
      e.deadline = time_in_message(ev.message, "interrupted at ");
    } else {
      // Queue mode: the time in the message (or the Event's) is when the warning was sent.
      auto sent = time_in_message(ev.message, " at ");
      e.deadline = sent.value_or(e.time) + kSpotWarning;
    }
    if (!e.deadline) e.deadline = e.time + kSpotWarning;
  } else if (reason == "RebalanceRecommendation") {
    e.kind = ClusterEventKind::rebalance_recommendation;
    e.node.capacity = bot::CapacityType::spot;
  } else if (reason == "ScheduledEvent") {
    e.kind = ClusterEventKind::scheduled_maintenance;
    e.deadline = time_in_message(ev.message, " between ", " and ");
  } else {
    e.kind = ClusterEventKind::node_termination;  // StateChange, ASGLifecycle, SQSTermination, Unknown
    e.deadline = e.time;                          // NTH is cordoning and draining now
  }
  return e;
}

// Karpenter (§5.1). Interruption events arrive twice, on the NodeClaim and on the Node; only
// the Node one names the node, so the NodeClaim one stays `other`.
bot::Result<bot::ClusterEvent> karpenter(bot::ClusterEvent e, const Event& ev) {
  if (ev.kind != "Node") return e;
  e.node.name = bot::NodeName{ev.name};
  e.namespace_name.clear();
  if (ev.reason == "SpotInterrupted") {
    e.kind = ClusterEventKind::spot_interruption;
    e.node.capacity = bot::CapacityType::spot;
    e.deadline = e.time + kSpotWarning;  // estimated: Karpenter reacts as the warning arrives
  } else if (ev.reason == "SpotRebalanceRecommendation") {
    e.kind = ClusterEventKind::rebalance_recommendation;
    e.node.capacity = bot::CapacityType::spot;
  } else if (one_of(ev.reason, {"InstanceStopping", "InstanceTerminating", "TerminatingOnInterruption"})) {
    e.kind = ClusterEventKind::node_termination;
    e.deadline = e.time;
  } else if (one_of(ev.reason, {"InstanceUnhealthy", "CapacityReservationInstanceInterrupted", "DisruptionTerminating"})) {
    e.kind = ClusterEventKind::node_termination;
  }
  return e;
}

// cluster-autoscaler (§5.2): a Node ScaleDown takes the node away; a Pod NotTriggerScaleUp
// means it stays Pending (classified by the pod rules).
bot::Result<bot::ClusterEvent> autoscaler(bot::ClusterEvent e, const Event& ev) {
  if (ev.kind == "Node" && ev.reason == "ScaleDown") {
    e.kind = ClusterEventKind::node_termination;
    e.node.name = bot::NodeName{ev.name};
    e.namespace_name.clear();
  }
  return e;
}

// "Successfully assigned pr-1234/webapp-7c9d8f6b5-x2xkq to ip-10-0-3-17.ec2.internal"
std::string scheduled_node(std::string_view message) {
  if (!message.starts_with("Successfully assigned ")) return {};
  auto to = message.rfind(" to ");
  if (to == std::string_view::npos) return {};
  std::string node = trim(message.substr(to + 4));
  return node.find(' ') == std::string::npos ? node : std::string{};
}

bot::Result<bot::ClusterEvent> pod(bot::ClusterEvent e, const Event& ev, const std::string& what) {
  if (ev.kind != "Pod") return e;
  if (ev.reason == "Scheduled") {
    std::string node = scheduled_node(ev.message);
    if (node.empty()) return invalid(what + ": Scheduled message does not name a node: '" + ev.message + "'");
    e.kind = ClusterEventKind::pod_scheduled;
    e.node.name = bot::NodeName{node};
    return e;
  }
  if (pod_warning_reason(ev.reason) || ev.type == "Warning") {
    e.kind = ClusterEventKind::pod_warning;
    // The kubelet reports from the node it runs on.
    if (ev.component == "kubelet" && !ev.host.empty()) {
      e.node.name = bot::NodeName{ev.host};
    } else if (ev.reporting_component == "kubelet" && !ev.reporting_instance.empty()) {
      e.node.name = bot::NodeName{ev.reporting_instance};
    }
  }
  return e;
}

}  // namespace

bool looks_like_k8s_event(const json& j) {
  return j.is_object() && j.contains("involvedObject") && j.contains("reason");
}

bot::Result<bot::ClusterEvent> decode_k8s_event(const json& j, const DecodeContext& ctx) {
  const std::string what = "k8s event at " + ctx.where;
  Fields f(j, what);
  Event ev;
  ev.reason = f.str({"reason"});
  ev.type = f.str({"type"});
  ev.message = trim(f.str({"message"}));
  ev.component = f.str({"source", "component"});
  ev.host = f.str({"source", "host"});
  ev.reporting_component = f.str({"reportingComponent"});
  ev.reporting_instance = f.str({"reportingInstance"});
  if (ev.component.empty()) ev.component = ev.reporting_component;
  ev.uid = f.str({"metadata", "uid"});
  ev.event_namespace = f.str({"metadata", "namespace"});
  ev.annotations = f.object({"metadata", "annotations"});
  const json* involved = f.object({"involvedObject"});
  ev.kind = f.str({"involvedObject", "kind"});
  ev.name = f.str({"involvedObject", "name"});
  ev.object_namespace = f.str({"involvedObject", "namespace"});
  ev.labels = f.object({"involvedObject", "labels"});
  ev.count = f.integer({"count"});
  if (!ev.count) ev.count = f.integer({"series", "count"});
  // Occurrence time: legacy lastTimestamp, then the events.k8s.io fields (§2.1).
  for (auto path : {std::initializer_list<std::string_view>{"lastTimestamp"}, {"series", "lastObservedTime"},
                    {"eventTime"}, {"firstTimestamp"}, {"metadata", "creationTimestamp"}}) {
    auto t = f.time(path);
    if (t && !ev.time) ev.time = t;
  }
  if (f.error()) return f.as_error();
  if (ev.reason.empty()) return invalid(what + ": field 'reason' is missing or empty");
  if (!involved) return invalid(what + ": field 'involvedObject' is missing");
  if (!ev.time) ev.time = ctx.envelope_time ? ctx.envelope_time : ctx.record_time;
  if (!ev.time) {
    return invalid(what + ": no time (lastTimestamp, series.lastObservedTime, eventTime, firstTimestamp and "
                          "metadata.creationTimestamp are all unset)");
  }
  // resmoio always writes clusterName and involvedObject.deleted; the archived opsgenie exporter
  // writes neither and re-exports an Event on every update, so its dedupe key includes count.
  ev.resmoio = j.contains("clusterName") || involved->contains("deleted");

  bot::ClusterEvent e;
  if (ctx.dedupe_override) {
    e.dedupe_key = *ctx.dedupe_override;
  } else {
    if (ev.uid.empty()) return invalid(what + ": field 'metadata.uid' is missing or empty (needed to dedupe)");
    e.dedupe_key = ev.resmoio ? ev.uid : ev.uid + "/" + std::to_string(ev.count.value_or(0));
  }
  e.source = ev.component.empty() ? "kubernetes" : ev.component;
  e.kind = ClusterEventKind::other;
  e.time = *ev.time;
  e.reason = ev.reason;
  e.message = ev.message;
  e.object = ev.kind.empty() ? ev.name : ev.name.empty() ? ev.kind : ev.kind + "/" + ev.name;
  const bool cluster_scoped = one_of(ev.kind, {"Node", "NodeClaim", "Namespace", "NodePool", "PersistentVolume"});
  if (ev.kind == "Namespace") {
    e.namespace_name = ev.name;
  } else if (!cluster_scoped) {
    e.namespace_name = ev.object_namespace.empty() && ev.kind.empty() ? ev.event_namespace : ev.object_namespace;
  }
  if (ev.kind == "Node") {
    e.node.name = bot::NodeName{ev.name};
    fill_node(e, ev);
  }

  bot::Result<bot::ClusterEvent> out = e;
  if (ev.component == kJanitor) {
    out = janitor(std::move(e), ev, what);
  } else if (ev.component == kNth) {
    if (ev.kind == "Node" || ev.kind.empty()) fill_node(e, ev);
    out = nth(std::move(e), ev, what);
  } else if (ev.component == kKarpenter) {
    out = karpenter(std::move(e), ev);
  } else if (ev.component == kAutoscaler) {
    out = autoscaler(std::move(e), ev);
  }
  // Pods: Scheduled and warnings, whoever reported them (kubelet, scheduler, karpenter, CA).
  if (out && out->kind == ClusterEventKind::other) return pod(std::move(*out), ev, what);
  return out;
}

}  // namespace runbot::events::detail
