#include "events/cluster_decoder.h"

#include <nlohmann/json.hpp>

#include <cctype>
#include <chrono>
#include <map>

#include "events/cloudevents.h"
#include "events/decoder_detail.h"
#include "events/event_time.h"

namespace runbot::events {
namespace {

using nlohmann::json;
using detail::invalid;

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
    if (s.empty() || is_go_zero_time(s)) return std::nullopt;
    auto t = parse_event_time(s);
    if (!t) {
      fail(std::string("field '") + key + "': " + t.error().message);
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

}  // namespace

bot::Result<bot::ClusterEvent> decode_nth_webhook(std::string_view json_body,
                                                  std::optional<bot::TimePoint> reported_at) {
  json j = json::parse(json_body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid("nth webhook: body is not valid JSON");
  if (!j.is_object()) return invalid("nth webhook: body is not a JSON object");
  return decode_nth(j, reported_at);
}

namespace {

constexpr int kMaxNesting = 3;  // CE -> SNS -> ASG message is the deepest real nesting

bot::Result<bot::ClusterEvent> classify_json(const json& j, const detail::DecodeContext& ctx, int depth);

// §7 (1)/(2) for CloudEvents that are not runbot's own: unwrap `data` and classify it like a
// plain record; the CE's source + id is the dedupe key, its time stands in for a missing one.
bot::Result<bot::ClusterEvent> foreign_cloudevent(const detail::ParsedCloudEvent& ce, const detail::DecodeContext& outer,
                                                  int depth) {
  const std::string which = "cloudevent type '" + ce.attrs.type + "' from '" + ce.attrs.source + "' at " + outer.where;
  if (ce.data_problem) return invalid("unrecognised record: " + which + ": " + *ce.data_problem);
  detail::DecodeContext ctx = outer;
  ctx.dedupe_override = ce.attrs.source + "/" + ce.attrs.id;
  if (!ce.attrs.time.empty()) {
    if (auto t = bot::parse_time(ce.attrs.time)) ctx.envelope_time = *t;
  }
  if (ce.data.is_string()) {
    // A JSON-typed event whose data is a string is just a string (§1.2): not a record we know.
    return invalid("unrecognised record: " + which + ": data is a string, not a JSON object");
  }
  auto inner = classify_json(ce.data, ctx, depth + 1);
  if (!inner) return invalid(inner.error().message.rfind("unrecognised record: ", 0) == 0
                                 ? inner.error().message
                                 : "cloudevent type '" + ce.attrs.type + "': " + inner.error().message);
  return inner;
}

bot::Result<bot::ClusterEvent> cloudevent(const Record& record, const detail::DecodeContext& ctx) {
  auto ce = detail::parse_cloudevent(record);
  if (!ce) return ce.error();
  if (ce->attrs.type.rfind("io.runbot.", 0) == 0) return decode_cluster_cloudevent(record);
  return foreign_cloudevent(*ce, ctx, 0);
}

bot::Result<bot::ClusterEvent> classify_json(const json& j, const detail::DecodeContext& ctx, int depth) {
  if (depth > kMaxNesting) return invalid("unrecognised record: envelopes nested too deep at " + ctx.where);
  if (j.is_object()) {
    if (detail::looks_like_k8s_event(j)) return detail::decode_k8s_event(j, ctx);
    if (detail::looks_like_eventbridge(j)) return detail::decode_eventbridge(j, ctx);
    if (j.contains("EventID") && j.contains("Kind")) {
      auto e = decode_nth(j, ctx.record_time ? ctx.record_time : ctx.envelope_time);
      if (e && ctx.dedupe_override) e->dedupe_key = *ctx.dedupe_override;
      return e;
    }
    if (j.contains("specversion") && j.contains("type") && j.contains("id")) {
      // A structured CloudEvent without its content-type header: what an exporter `layout`
      // writes (§2.2). Re-read it as one.
      Record r;
      r.value = j.dump();
      r.headers = {{"content-type", "application/cloudevents+json"}};
      auto ce = detail::parse_cloudevent(r);
      if (!ce) return invalid("unrecognised record: header-less " + ce.error().message + " at " + ctx.where);
      return foreign_cloudevent(*ce, ctx, depth);
    }
    if (detail::looks_like_sns(j)) {
      json inner = json::parse(j["Message"].get<std::string>(), nullptr, /*allow_exceptions=*/false);
      if (inner.is_discarded()) return invalid("unrecognised record: SNS notification at " + ctx.where + ": Message is not JSON");
      return classify_json(inner, ctx, depth + 1);
    }
    if (detail::looks_like_asg_message(j)) return detail::decode_asg_message(j, ctx);
  }
  if (detail::looks_like_imds(j)) return detail::decode_imds(j, ctx);
  if (!j.is_object()) {
    return invalid("unrecognised record: value at " + ctx.where + " is not a JSON object (" +
                   std::string(j.type_name()) + ")");
  }
  return invalid("unrecognised record: JSON at " + ctx.where +
                 " is not a CloudEvent, Kubernetes Event, EventBridge event, ASG message, IMDS document or NTH "
                 "webhook (keys: " + detail::key_list(j) + ")");
}

}  // namespace

bot::Result<bot::ClusterEvent> decode_cluster_record(const Record& record) try {
  detail::DecodeContext ctx;
  ctx.where = record.where();
  ctx.key = record.key;
  ctx.record_time = record.timestamp;
  if (is_cloudevent(record)) return cloudevent(record, ctx);
  if (!record.value) return invalid("unrecognised record: null value at " + record.where());
  json j = json::parse(*record.value, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    std::string hint = record.value->find("[NTH]") != std::string::npos
                           ? " (looks like NTH's default Slack template; set WEBHOOK_TEMPLATE='{{ toJson . }}')"
                           : "";
    return invalid("unrecognised record: value at " + record.where() + " is not valid JSON" + hint);
  }
  return classify_json(j, ctx, 0);
} catch (const std::exception& ex) {
  // nlohmann throws on type mismatches we did not foresee; a record must never stop the consumer.
  return invalid("unrecognised record: at " + record.where() + ": " + ex.what());
}

}  // namespace runbot::events
