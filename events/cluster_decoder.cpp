#include "events/cluster_decoder.h"

#include <nlohmann/json.hpp>

#include <cctype>
#include <chrono>
#include <map>

#include "events/cloudevents.h"

namespace runbot::events {
namespace {

using nlohmann::json;

bot::Error invalid(std::string message) { return bot::make_error(bot::Errc::invalid_argument, std::move(message)); }

struct KindInfo {
  bot::ClusterEventKind kind;
  const char* reason;  // the NTH v2 Kubernetes-event reason for the same kind (§4.4)
};

const std::map<std::string, KindInfo, std::less<>>& nth_kinds() {
  static const std::map<std::string, KindInfo, std::less<>> kinds{
      {"SPOT_ITN", {bot::ClusterEventKind::spot_interruption, "SpotInterruption"}},
      {"REBALANCE_RECOMMENDATION", {bot::ClusterEventKind::rebalance_recommendation, "RebalanceRecommendation"}},
      {"SCHEDULED_EVENT", {bot::ClusterEventKind::scheduled_maintenance, "ScheduledEvent"}},
      {"STATE_CHANGE", {bot::ClusterEventKind::node_termination, "StateChange"}},
      {"ASG_LIFECYCLE", {bot::ClusterEventKind::node_termination, "ASGLifecycle"}},
      {"SQS_TERMINATE", {bot::ClusterEventKind::node_termination, "SQSTermination"}},
      {"ASG_LAUNCH_LIFECYCLE", {bot::ClusterEventKind::other, "ASGLaunchLifecycle"}},
  };
  return kinds;
}

// Reads NTH's Go-named fields; remembers the first problem.
class NthReader {
 public:
  explicit NthReader(const json& j) : j_(j) {}

  std::string str(const char* key) {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return {};
    if (!it->is_string()) {
      fail(std::string("field '") + key + "' must be a string");
      return {};
    }
    return it->get<std::string>();
  }

  // Go's zero time means "not set".
  std::optional<bot::TimePoint> time(const char* key) {
    std::string s = str(key);
    if (s.empty() || s.rfind("0001-01-01T00:00:00", 0) == 0) return std::nullopt;
    auto t = bot::parse_time(s);
    if (!t) {
      fail(std::string("field '") + key + "' is not an RFC 3339 time: '" + s + "'");
      return std::nullopt;
    }
    return *t;
  }

  std::string label(const char* name) {
    auto it = j_.find("NodeLabels");
    if (it == j_.end() || it->is_null()) return {};
    if (!it->is_object()) {
      fail("field 'NodeLabels' must be an object");
      return {};
    }
    auto l = it->find(name);
    return l != it->end() && l->is_string() ? l->get<std::string>() : std::string{};
  }

  void fail(std::string why) {
    if (!error_) error_ = std::move(why);
  }
  const std::optional<std::string>& error() const { return error_; }

 private:
  const json& j_;
  std::optional<std::string> error_;
};

std::string first_non_empty(std::initializer_list<std::string> values) {
  for (const auto& v : values) {
    if (!v.empty()) return v;
  }
  return {};
}

bool queue_mode(const std::string& monitor, const std::string& event_id) {
  if (!monitor.empty()) return monitor == "SQS_MONITOR";
  for (const char* prefix : {"spot-itn-event-", "rebalance-recommendation-event-", "ec2-state-change-event-",
                             "aws-health-scheduled-change-event-", "asg-lifecycle-term-", "asg-launch-lifecycle-"}) {
    if (event_id.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

std::string trim_right(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

bot::Result<bot::ClusterEvent> decode_nth(const json& j, std::optional<bot::TimePoint> reported_at) {
  NthReader r(j);
  bot::ClusterEvent e;
  e.source = kNthSource;
  e.dedupe_key = r.str("EventID");
  std::string kind = r.str("Kind");
  std::string monitor = r.str("Monitor");
  e.message = trim_right(r.str("Description"));
  e.node.name = bot::NodeName{r.str("NodeName")};
  auto start = r.time("StartTime");
  (void)r.time("EndTime");  // validated only; the bot has no use for it yet
  e.node.instance_type = first_non_empty({r.str("InstanceType"), r.str("instanceType"),
                                          r.label("node.kubernetes.io/instance-type"),
                                          r.label("beta.kubernetes.io/instance-type")});
  e.node.zone = first_non_empty({r.str("availabilityZone"), r.label("topology.kubernetes.io/zone"),
                                 r.label("failure-domain.beta.kubernetes.io/zone")});
  std::string lifecycle = first_non_empty({r.str("instanceLifeCycle"), r.label("karpenter.sh/capacity-type"),
                                           r.label("eks.amazonaws.com/capacityType")});
  if (r.error()) return invalid("nth webhook: " + *r.error());
  if (e.dedupe_key.empty()) return invalid("nth webhook: field 'EventID' is missing or empty");
  auto info = nth_kinds().find(kind);
  if (info == nth_kinds().end()) return invalid("nth webhook: unknown Kind '" + kind + "' (EventID " + e.dedupe_key + ")");
  if (e.node.name.empty()) return invalid("nth webhook: field 'NodeName' is missing or empty (EventID " + e.dedupe_key + ")");
  if (!start) return invalid("nth webhook: field 'StartTime' is missing (EventID " + e.dedupe_key + ")");

  e.kind = info->second.kind;
  e.reason = info->second.reason;
  e.object = "Node/" + e.node.name.str();
  e.node.capacity = bot::capacity_type_from_string(lifecycle);
  if (e.kind == bot::ClusterEventKind::spot_interruption || e.kind == bot::ClusterEventKind::rebalance_recommendation) {
    e.node.capacity = bot::CapacityType::spot;
  }

  const bool sqs = queue_mode(monitor, e.dedupe_key);
  e.time = sqs ? *start : reported_at.value_or(*start);
  switch (e.kind) {
    case bot::ClusterEventKind::spot_interruption:
      e.deadline = sqs ? *start + std::chrono::minutes(2) : *start;
      break;
    case bot::ClusterEventKind::scheduled_maintenance:
      if (!sqs) e.deadline = *start;
      break;
    case bot::ClusterEventKind::node_termination:
      e.deadline = *start;
      break;
    default:
      break;
  }
  return e;
}

std::string key_list(const json& j) {
  std::string out;
  int n = 0;
  for (const auto& [k, v] : j.items()) {
    if (n++ == 6) return out + ", ...";
    out += (out.empty() ? "" : ", ") + k;
  }
  return out;
}

}  // namespace

bot::Result<bot::ClusterEvent> decode_nth_webhook(std::string_view json_body,
                                                  std::optional<bot::TimePoint> reported_at) {
  json j = json::parse(json_body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid("nth webhook: body is not valid JSON");
  if (!j.is_object()) return invalid("nth webhook: body is not a JSON object");
  return decode_nth(j, reported_at);
}

bot::Result<bot::ClusterEvent> decode_cluster_record(const Record& record) {
  if (is_cloudevent(record)) return decode_cluster_cloudevent(record);
  if (!record.value) return invalid("unrecognised record: null value at " + record.where());
  json j = json::parse(*record.value, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    std::string hint = record.value->find("[NTH]") != std::string::npos
                           ? " (looks like NTH's default Slack template; set WEBHOOK_TEMPLATE='{{ toJson . }}')"
                           : "";
    return invalid("unrecognised record: value at " + record.where() + " is not valid JSON" + hint);
  }
  if (!j.is_object()) return invalid("unrecognised record: value at " + record.where() + " is not a JSON object");
  if (j.contains("EventID") && j.contains("Kind")) return decode_nth(j, record.timestamp);
  return invalid("unrecognised record: JSON at " + record.where() +
                 " is neither a runbot CloudEvent nor an NTH webhook (keys: " + key_list(j) + ")");
}

}  // namespace runbot::events
