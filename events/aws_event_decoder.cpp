// Raw AWS payloads (cluster-events.md §4.5, §0.7): EventBridge envelopes, direct ASG lifecycle
// messages, and IMDS documents. See cluster_decoder.h for the table.
#include <algorithm>
#include <chrono>

#include "events/decoder_detail.h"
#include "events/event_time.h"

namespace runbot::events::detail {
namespace {

using bot::ClusterEventKind;
constexpr std::chrono::minutes kSpotWarning{2};

// EventBridge and ASG messages know the instance, not the Kubernetes node: the node name stays
// empty and the instance goes into `object` ("Instance/i-0123...").
void instance_only(bot::ClusterEvent& e, const std::string& instance_id) { e.object = "Instance/" + instance_id; }

bool terminating_state(std::string_view s) {
  return s == "stopping" || s == "stopped" || s == "shutting-down" || s == "terminated";
}

// NTH acts on these IMDS scheduled-event codes only (§4.2).
bool actionable_code(std::string_view code) {
  return code == "instance-stop" || code == "instance-retirement" || code == "instance-reboot" ||
         code == "system-reboot";
}

bot::Result<bot::ClusterEvent> lifecycle(bot::ClusterEvent e, std::string_view transition, const std::string& asg,
                                         const std::string& instance) {
  instance_only(e, instance);
  if (transition == "autoscaling:EC2_INSTANCE_TERMINATING") {
    e.kind = ClusterEventKind::node_termination;
    e.reason = "ASGLifecycle";
    e.deadline = e.time;
    e.message = "ASG " + asg + " is terminating instance " + instance;
  } else if (transition == "autoscaling:EC2_INSTANCE_LAUNCHING") {
    e.kind = ClusterEventKind::other;
    e.reason = "ASGLaunchLifecycle";
    e.message = "ASG " + asg + " is launching instance " + instance;
  } else {
    e.kind = ClusterEventKind::other;  // autoscaling:TEST_NOTIFICATION and anything new: nothing to warn about
    e.reason = transition == "autoscaling:TEST_NOTIFICATION" ? "TestNotification" : std::string(transition);
    e.message = "ASG " + asg + ": " + std::string(transition);
  }
  return e;
}

}  // namespace

bool looks_like_eventbridge(const json& j) { return j.is_object() && j.contains("detail-type") && j.contains("source"); }

bot::Result<bot::ClusterEvent> decode_eventbridge(const json& j, const DecodeContext& ctx) {
  const std::string what = "eventbridge event at " + ctx.where;
  Fields f(j, what);
  std::string id = f.str({"id"});
  std::string type = f.str({"detail-type"});
  std::string source = f.str({"source"});
  auto time = f.time({"time"});
  const json* detail = f.object({"detail"});
  if (f.error()) return f.as_error();
  if (id.empty() && !ctx.dedupe_override) return invalid(what + ": field 'id' is missing or empty");
  if (!time) return invalid(what + ": field 'time' is missing");
  if (!detail) return invalid(what + ": field 'detail' is missing");

  bot::ClusterEvent e;
  e.dedupe_key = ctx.dedupe_override.value_or(id);
  e.source = source;
  e.time = *time;
  auto need_instance = [&](std::initializer_list<std::string_view> path) -> bot::Result<std::string> {
    std::string instance = f.str(path);
    if (f.error()) return f.as_error();
    if (instance.empty()) return invalid(what + ": field '" + path_name(path) + "' is missing or empty");
    return instance;
  };

  if (type == "EC2 Spot Instance Interruption Warning") {
    auto instance = need_instance({"detail", "instance-id"});
    if (!instance) return instance.error();
    std::string action = f.str({"detail", "instance-action"});
    instance_only(e, *instance);
    e.kind = ClusterEventKind::spot_interruption;
    e.reason = "SpotInterruption";
    e.node.capacity = bot::CapacityType::spot;
    e.deadline = *time + kSpotWarning;  // `time` is when the warning was sent
    e.message = "Spot interruption warning for instance " + *instance + (action.empty() ? "" : " (action " + action + ")");
  } else if (type == "EC2 Instance Rebalance Recommendation") {
    auto instance = need_instance({"detail", "instance-id"});
    if (!instance) return instance.error();
    instance_only(e, *instance);
    e.kind = ClusterEventKind::rebalance_recommendation;
    e.reason = "RebalanceRecommendation";
    e.node.capacity = bot::CapacityType::spot;
    e.message = "Rebalance recommendation for instance " + *instance;
  } else if (type == "EC2 Instance State-change Notification") {
    auto instance = need_instance({"detail", "instance-id"});
    if (!instance) return instance.error();
    std::string state = f.str({"detail", "state"});
    if (f.error()) return f.as_error();
    if (state.empty()) return invalid(what + ": field 'detail.state' is missing or empty");
    instance_only(e, *instance);
    e.reason = "StateChange";
    e.message = "Instance " + *instance + " went into " + state;
    // NTH drains only on these states; pending/running are a node coming up.
    if (terminating_state(state)) {
      e.kind = ClusterEventKind::node_termination;
      e.deadline = *time;
    }
  } else if (type == "EC2 Instance-terminate Lifecycle Action" || type == "EC2 Instance-launch Lifecycle Action") {
    auto instance = need_instance({"detail", "EC2InstanceId"});
    if (!instance) return instance.error();
    std::string transition = f.str({"detail", "LifecycleTransition"});
    std::string asg = f.str({"detail", "AutoScalingGroupName"});
    if (f.error()) return f.as_error();
    return lifecycle(std::move(e), transition, asg, *instance);
  } else if (type == "AWS Health Event") {
    std::string service = f.str({"detail", "service"});
    std::string category = f.str({"detail", "eventTypeCategory"});
    e.reason = f.str({"detail", "eventTypeCode"});
    auto start = f.time({"detail", "startTime"});
    std::vector<std::string> instances;
    if (const json* entities = f.find({"detail", "affectedEntities"})) {
      if (!entities->is_array()) return invalid(what + ": field 'detail.affectedEntities' must be an array");
      for (const auto& ent : *entities) {
        if (ent.is_object() && ent.contains("entityValue") && ent["entityValue"].is_string()) {
          instances.push_back(ent["entityValue"].get<std::string>());
        }
      }
    }
    if (const json* desc = f.find({"detail", "eventDescription"}); desc && desc->is_array() && !desc->empty()) {
      const json& d0 = (*desc)[0];
      if (d0.is_object() && d0.contains("latestDescription") && d0["latestDescription"].is_string()) {
        e.message = trim(d0["latestDescription"].get<std::string>());
      }
    }
    if (f.error()) return f.as_error();
    if (service != "EC2" || category != "scheduledChange") {
      e.message = "AWS Health " + category + " for " + service + (e.message.empty() ? "" : ": " + e.message);
      return e;  // other: only EC2 scheduled changes move nodes
    }
    if (instances.empty()) return invalid(what + ": AWS Health scheduledChange names no instance (detail.affectedEntities)");
    if (!start) return invalid(what + ": field 'detail.startTime' is missing");
    instance_only(e, instances.front());
    if (instances.size() > 1) {
      e.message += " (" + std::to_string(instances.size() - 1) + " more instances affected)";
    }
    e.kind = ClusterEventKind::scheduled_maintenance;
    e.deadline = *start;
  } else {
    return invalid("unrecognised record: EventBridge detail-type '" + type + "' (source '" + source + "') at " +
                   ctx.where + " is not a node event runbot knows");
  }
  return e;
}

bool looks_like_asg_message(const json& j) {
  return j.is_object() && j.contains("LifecycleTransition") && (j.contains("EC2InstanceId") || j.contains("RequestId"));
}

bot::Result<bot::ClusterEvent> decode_asg_message(const json& j, const DecodeContext& ctx) {
  const std::string what = "asg lifecycle message at " + ctx.where;
  Fields f(j, what);
  std::string transition = f.str({"LifecycleTransition"});
  std::string instance = f.str({"EC2InstanceId"});
  std::string asg = f.str({"AutoScalingGroupName"});
  std::string request = f.str({"RequestId"});
  std::string token = f.str({"LifecycleActionToken"});
  auto time = f.time({"Time"});
  if (f.error()) return f.as_error();
  if (transition.empty()) return invalid(what + ": field 'LifecycleTransition' is missing or empty");
  if (!time) time = ctx.record_time;
  if (!time) return invalid(what + ": field 'Time' is missing");
  bot::ClusterEvent e;
  e.dedupe_key = ctx.dedupe_override.value_or(!request.empty() ? "asg/" + request : "asg/" + token);
  if (e.dedupe_key == "asg/") return invalid(what + ": neither 'RequestId' nor 'LifecycleActionToken' is set");
  e.source = "aws.autoscaling";
  e.time = *time;
  if (instance.empty() && transition != "autoscaling:TEST_NOTIFICATION") {
    return invalid(what + ": field 'EC2InstanceId' is missing or empty");
  }
  return lifecycle(std::move(e), transition, asg, instance);
}

bool looks_like_sns(const json& j) {
  return j.is_object() && j.contains("Message") && j["Message"].is_string() && j.contains("Type");
}

bool looks_like_imds(const json& j) {
  if (j.is_array()) return j.empty() || (j[0].is_object() && j[0].contains("EventId"));
  if (!j.is_object()) return false;
  return (j.contains("action") && j.contains("time") && j.size() == 2) || (j.contains("noticeTime") && j.size() == 1) ||
         (j.contains("EventId") && j.contains("Code") && j.contains("NotBefore"));
}

bot::Result<bot::ClusterEvent> decode_imds(const json& j, const DecodeContext& ctx) {
  const std::string what = "imds document at " + ctx.where;
  bot::ClusterEvent e;
  e.source = "ec2-imds";
  e.node.name = bot::NodeName{ctx.key.value_or("")};
  const std::string node = e.node.name.empty() ? "unknown-node" : e.node.name.str();
  if (!e.node.name.empty()) e.object = "Node/" + node;

  if (j.is_object() && j.contains("action")) {  // /latest/meta-data/spot/instance-action
    Fields f(j, what);
    std::string action = f.str({"action"});
    auto time = f.time({"time"});
    if (f.error()) return f.as_error();
    if (!time) return invalid(what + ": field 'time' is missing");
    e.kind = ClusterEventKind::spot_interruption;
    e.reason = "SpotInterruption";
    e.node.capacity = bot::CapacityType::spot;
    e.deadline = *time;  // IMDS: when the action happens
    e.time = ctx.record_time.value_or(*time);
    e.message = "Spot instance-action " + action + " at " + bot::format_time(*time);
    e.dedupe_key = ctx.dedupe_override.value_or("imds-spot-itn/" + node + "/" + bot::format_time(*time));
    return e;
  }
  if (j.is_object() && j.contains("noticeTime")) {  // /latest/meta-data/events/recommendations/rebalance
    Fields f(j, what);
    auto time = f.time({"noticeTime"});
    if (f.error()) return f.as_error();
    if (!time) return invalid(what + ": field 'noticeTime' is missing");
    e.kind = ClusterEventKind::rebalance_recommendation;
    e.reason = "RebalanceRecommendation";
    e.node.capacity = bot::CapacityType::spot;
    e.time = *time;
    e.message = "Rebalance recommendation at " + bot::format_time(*time);
    e.dedupe_key = ctx.dedupe_override.value_or("imds-rebalance/" + node + "/" + bot::format_time(*time));
    return e;
  }
  // /latest/meta-data/events/maintenance/scheduled: an array (the mock prints one object).
  json events = j.is_array() ? j : json::array({j});
  e.reason = "ScheduledEvent";
  if (events.empty()) {
    if (!ctx.record_time) return invalid(what + ": empty scheduled-event list and no record time");
    e.time = *ctx.record_time;
    e.message = "No scheduled maintenance events";
    e.dedupe_key = ctx.dedupe_override.value_or("imds-scheduled/" + node + "/none/" + bot::format_time(e.time));
    return e;
  }
  struct Item {
    std::string id, code, state, description;
    bot::TimePoint not_before;
    std::optional<bot::TimePoint> not_after;
  };
  std::optional<Item> chosen;
  std::optional<Item> first;
  size_t index = 0;
  for (const auto& item : events) {
    if (!item.is_object()) return invalid(what + ": scheduled event #" + std::to_string(index) + " is not an object");
    Fields f(item, what + " (scheduled event #" + std::to_string(index) + ")");
    ++index;
    Item it;
    it.id = f.str({"EventId"});
    it.code = f.str({"Code"});
    it.state = f.str({"State"});
    it.description = trim(f.str({"Description"}));
    auto nb = f.time({"NotBefore"});
    it.not_after = f.time({"NotAfter"});
    if (f.error()) return f.as_error();
    if (it.id.empty()) return invalid(f.what() + ": field 'EventId' is missing or empty");
    if (!nb) return invalid(f.what() + ": field 'NotBefore' is missing");
    it.not_before = *nb;
    if (!first) first = it;
    const bool active = it.state != "completed" && it.state != "canceled";
    if (active && actionable_code(it.code) && (!chosen || it.not_before < chosen->not_before)) chosen = it;
  }
  const Item& it = chosen ? *chosen : *first;
  if (chosen) {
    e.kind = ClusterEventKind::scheduled_maintenance;
    e.deadline = it.not_before;
  }  // else other: completed, canceled or a code NTH does not act on
  e.time = ctx.record_time.value_or(it.not_before);
  e.message = it.code + " will occur between " + bot::format_time(it.not_before) + " and " +
              (it.not_after ? bot::format_time(*it.not_after) : std::string("?")) + " because " + it.description +
              (it.state.empty() ? "" : " (state " + it.state + ")");
  e.dedupe_key = ctx.dedupe_override.value_or(it.id + "/" + it.state);
  return e;
}

}  // namespace runbot::events::detail
