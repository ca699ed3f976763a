#include "bot/model_json.h"

#include <nlohmann/json.hpp>

namespace runbot::bot {
namespace {

using nlohmann::json;

// Reads fields of one JSON object and remembers the first problem, so decoders stay linear.
class Reader {
 public:
  Reader(const json& j, std::string what) : j_(j), what_(std::move(what)) {
    if (!j_.is_object()) fail("", "is not a JSON object");
  }

  std::string str(const char* key, bool required = true) {
    const json* v = find(key, required);
    if (!v) return {};
    if (!v->is_string()) return fail(key, "must be a string"), std::string{};
    return v->get<std::string>();
  }

  std::optional<std::int64_t> integer(const char* key, bool required = false) {
    const json* v = find(key, required);
    if (!v) return std::nullopt;
    if (!v->is_number_integer()) return fail(key, "must be an integer"), std::nullopt;
    return v->get<std::int64_t>();
  }

  std::optional<TimePoint> time(const char* key, bool required = false) {
    std::string s = str(key, required);
    if (s.empty()) return std::nullopt;
    auto t = parse_time(s);
    if (!t) return fail(key, t.error().message), std::nullopt;
    return *t;
  }

  std::vector<std::string> strings(const char* key) {
    std::vector<std::string> out;
    const json* v = find(key, false);
    if (!v) return out;
    if (!v->is_array()) return fail(key, "must be an array of strings"), out;
    for (const auto& e : *v) {
      if (!e.is_string()) return fail(key, "must be an array of strings"), out;
      out.push_back(e.get<std::string>());
    }
    return out;
  }

  std::map<std::string, std::string> string_map(const char* key) {
    std::map<std::string, std::string> out;
    const json* v = find(key, false);
    if (!v) return out;
    if (!v->is_object()) return fail(key, "must be an object of strings"), out;
    for (const auto& [k, e] : v->items()) {
      if (!e.is_string()) return fail(key, "must be an object of strings"), out;
      out[k] = e.get<std::string>();
    }
    return out;
  }

  const json* find(const char* key, bool required) {
    if (!j_.is_object()) return nullptr;
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) {
      if (required) fail(key, "is missing");
      return nullptr;
    }
    return &*it;
  }

  void fail(const std::string& key, const std::string& why) {
    if (error_) return;
    error_ = make_error(Errc::invalid_argument,
                        what_ + (key.empty() ? "" : " field '" + key + "'") + " " + why);
  }

  bool ok() const { return !error_.has_value(); }
  Error error() const { return *error_; }

 private:
  const json& j_;
  std::string what_;
  std::optional<Error> error_;
};

void put_time(json& j, const char* key, const std::optional<TimePoint>& t) {
  if (t) j[key] = format_time(*t);
}

}  // namespace

json to_json(const NodeInfo& n) {
  json j{{"name", n.name.str()}, {"capacityType", to_string(n.capacity)}};
  if (!n.instance_type.empty()) j["instanceType"] = n.instance_type;
  if (!n.zone.empty()) j["zone"] = n.zone;
  return j;
}

Result<NodeInfo> node_from_json(const json& j) {
  Reader r(j, "node");
  NodeInfo n;
  n.name = NodeName{r.str("name")};
  n.capacity = capacity_type_from_string(r.str("capacityType", false));
  n.instance_type = r.str("instanceType", false);
  n.zone = r.str("zone", false);
  if (!r.ok()) return r.error();
  if (n.name.empty()) return make_error(Errc::invalid_argument, "node field 'name' is empty");
  return n;
}

json to_json(const Job& job) {
  json j{{"id", job.id.str()},           {"verb", to_string(job.verb)},
         {"env", job.env.str()},         {"app", job.app.str()},
         {"pr", job.pr},                 {"namespace", job.namespace_name},
         {"requestedBy", job.requested_by.str()}, {"requestedAt", format_time(job.requested_at)}};
  if (job.ttl) j["ttlSeconds"] = std::chrono::duration_cast<std::chrono::seconds>(*job.ttl).count();
  put_time(j, "expiresAt", job.expires_at);
  if (!job.image.empty()) j["image"] = job.image;
  if (!job.values.empty()) j["values"] = job.values;
  if (!job.reason.empty()) j["reason"] = job.reason;
  return j;
}

Result<Job> job_from_json(const json& j) {
  Reader r(j, "job");
  Job job;
  job.id = JobId{r.str("id")};
  auto verb = r.str("verb");
  job.env = EnvId{r.str("env")};
  job.app = AppName{r.str("app")};
  auto pr = r.integer("pr", true);
  job.namespace_name = r.str("namespace", false);
  job.requested_by = UserId{r.str("requestedBy", false)};
  job.requested_at = r.time("requestedAt").value_or(TimePoint{});
  if (auto ttl = r.integer("ttlSeconds")) job.ttl = std::chrono::seconds(*ttl);
  job.expires_at = r.time("expiresAt");
  job.image = r.str("image", false);
  job.values = r.string_map("values");
  job.reason = r.str("reason", false);
  if (!r.ok()) return r.error();
  auto v = job_verb_from_string(verb);
  if (!v) return make_error(Errc::invalid_argument, "job field 'verb' has unknown value '" + verb + "'");
  job.verb = *v;
  if (!pr || *pr < 0 || *pr > 1'000'000'000) {
    return make_error(Errc::invalid_argument, "job field 'pr' is out of range");
  }
  job.pr = static_cast<int>(*pr);
  if (!is_dns1123_label(job.env.str())) {
    return make_error(Errc::invalid_argument, "job field 'env' is not a DNS-1123 label");
  }
  if (job.id.empty()) return make_error(Errc::invalid_argument, "job field 'id' is empty");
  return job;
}

json to_json(const LifecycleEvent& e) {
  json j{{"id", e.id},           {"source", e.source},         {"kind", to_string(e.kind)},
         {"env", e.env.str()},   {"job", e.job.str()},          {"verb", to_string(e.verb)},
         {"time", format_time(e.time)}};
  if (!e.stage.empty()) j["stage"] = e.stage;
  if (e.stage_index) j["stageIndex"] = e.stage_index;
  if (e.stage_count) j["stageCount"] = e.stage_count;
  if (!e.message.empty()) j["message"] = e.message;
  if (!e.url.empty()) j["url"] = e.url;
  if (!e.reason.empty()) j["reason"] = e.reason;
  if (e.exit_status) j["exitStatus"] = *e.exit_status;
  if (!e.log_tail.empty()) j["logTail"] = e.log_tail;
  if (!e.nodes.empty()) {
    json nodes = json::array();
    for (const auto& n : e.nodes) nodes.push_back(to_json(n));
    j["nodes"] = std::move(nodes);
  }
  put_time(j, "expiresAt", e.expires_at);
  if (e.simulated) j["simulated"] = true;
  return j;
}

Result<LifecycleEvent> lifecycle_from_json(const json& j) {
  Reader r(j, "lifecycle event");
  LifecycleEvent e;
  e.id = r.str("id");
  e.source = r.str("source", false);
  auto kind = r.str("kind");
  e.env = EnvId{r.str("env")};
  e.job = JobId{r.str("job", false)};
  auto verb = r.str("verb", false);
  e.time = r.time("time", true).value_or(TimePoint{});
  e.stage = r.str("stage", false);
  e.stage_index = static_cast<int>(r.integer("stageIndex").value_or(0));
  e.stage_count = static_cast<int>(r.integer("stageCount").value_or(0));
  e.message = r.str("message", false);
  e.url = r.str("url", false);
  e.reason = r.str("reason", false);
  if (auto s = r.integer("exitStatus")) e.exit_status = static_cast<int>(*s);
  e.log_tail = r.strings("logTail");
  e.expires_at = r.time("expiresAt");
  if (const json* s = r.find("simulated", false)) e.simulated = s->is_boolean() && s->get<bool>();
  if (const json* nodes = r.find("nodes", false)) {
    if (!nodes->is_array()) {
      r.fail("nodes", "must be an array");
    } else {
      for (const auto& n : *nodes) {
        auto node = node_from_json(n);
        if (!node) return make_error(Errc::invalid_argument, "lifecycle event " + node.error().message);
        e.nodes.push_back(*node);
      }
    }
  }
  if (!r.ok()) return r.error();
  auto k = lifecycle_kind_from_string(kind);
  if (!k) return make_error(Errc::invalid_argument, "lifecycle event field 'kind' has unknown value '" + kind + "'");
  e.kind = *k;
  if (!verb.empty()) {
    auto v = job_verb_from_string(verb);
    if (!v) return make_error(Errc::invalid_argument, "lifecycle event field 'verb' has unknown value '" + verb + "'");
    e.verb = *v;
  }
  if (!is_dns1123_label(e.env.str())) {
    return make_error(Errc::invalid_argument, "lifecycle event field 'env' is not a DNS-1123 label");
  }
  return e;
}

json to_json(const ClusterEvent& e) {
  json j{{"dedupeKey", e.dedupe_key}, {"source", e.source}, {"kind", to_string(e.kind)},
         {"time", format_time(e.time)}, {"node", to_json(e.node)}};
  put_time(j, "deadline", e.deadline);
  if (!e.namespace_name.empty()) j["namespace"] = e.namespace_name;
  if (!e.object.empty()) j["object"] = e.object;
  if (!e.reason.empty()) j["reason"] = e.reason;
  if (!e.message.empty()) j["message"] = e.message;
  return j;
}

Result<ClusterEvent> cluster_event_from_json(const json& j) {
  Reader r(j, "cluster event");
  ClusterEvent e;
  e.dedupe_key = r.str("dedupeKey");
  e.source = r.str("source", false);
  auto kind = r.str("kind");
  e.time = r.time("time").value_or(TimePoint{});
  e.deadline = r.time("deadline");
  e.namespace_name = r.str("namespace", false);
  e.object = r.str("object", false);
  e.reason = r.str("reason", false);
  e.message = r.str("message", false);
  if (const json* n = r.find("node", false)) {
    // A cluster event about a namespace or pod may carry no node at all, or one with no name.
    if (n->is_object() && n->contains("name") && !(*n)["name"].is_string()) {
      r.fail("node", "field 'name' must be a string");
    } else if (n->is_object() && n->contains("name") && !(*n)["name"].get<std::string>().empty()) {
      auto node = node_from_json(*n);
      if (!node) return make_error(Errc::invalid_argument, "cluster event " + node.error().message);
      e.node = *node;
    }
  }
  if (!r.ok()) return r.error();
  static const std::map<std::string, ClusterEventKind, std::less<>> kinds{
      {"spot_interruption", ClusterEventKind::spot_interruption},
      {"rebalance_recommendation", ClusterEventKind::rebalance_recommendation},
      {"scheduled_maintenance", ClusterEventKind::scheduled_maintenance},
      {"node_termination", ClusterEventKind::node_termination},
      {"pod_warning", ClusterEventKind::pod_warning},
      {"pod_scheduled", ClusterEventKind::pod_scheduled},
      {"namespace_expired", ClusterEventKind::namespace_expired},
      {"other", ClusterEventKind::other}};
  auto it = kinds.find(kind);
  if (it == kinds.end()) return make_error(Errc::invalid_argument, "cluster event field 'kind' has unknown value '" + kind + "'");
  e.kind = it->second;
  return e;
}

json to_json(const Message& m) {
  json fields = json::array();
  for (const auto& f : m.fields) fields.push_back({f.label, f.value});
  json buttons = json::array();
  for (const auto& b : m.buttons) buttons.push_back({{"label", b.label}, {"action", b.action}, {"value", b.value}, {"url", b.url}});
  json mentions = json::array();
  for (const auto& u : m.mentions) mentions.push_back(u.str());
  return json{{"kind", to_string(m.kind)},
              {"severity", static_cast<int>(m.severity)},
              {"title", m.title},
              {"text", m.text},
              {"fields", fields},
              {"code", m.code},
              {"buttons", buttons},
              {"mentions", mentions}};
}

Result<Message> message_from_json(const json& j) {
  try {
    Message m;
    const std::string kind = j.at("kind").get<std::string>();
    bool known = false;
    for (int k = 0; k <= static_cast<int>(NoticeKind::confirmation); ++k) {
      if (kind == to_string(static_cast<NoticeKind>(k))) {
        m.kind = static_cast<NoticeKind>(k);
        known = true;
        break;
      }
    }
    if (!known) return make_error(Errc::invalid_argument, "message: unknown kind '" + kind + "'");
    int severity = j.at("severity").get<int>();
    if (severity < 0 || severity > static_cast<int>(Severity::danger)) {
      return make_error(Errc::invalid_argument, "message: severity out of range");
    }
    m.severity = static_cast<Severity>(severity);
    m.title = j.at("title").get<std::string>();
    m.text = j.at("text").get<std::string>();
    for (const auto& f : j.at("fields")) m.fields.push_back({f.at(0).get<std::string>(), f.at(1).get<std::string>()});
    m.code = j.at("code").get<std::vector<std::string>>();
    for (const auto& b : j.at("buttons")) {
      m.buttons.push_back({b.at("label").get<std::string>(), b.at("action").get<std::string>(),
                           b.at("value").get<std::string>(), b.at("url").get<std::string>()});
    }
    for (const auto& u : j.at("mentions")) m.mentions.emplace_back(u.get<std::string>());
    return m;
  } catch (const json::exception& e) {
    return make_error(Errc::invalid_argument, std::string("message: ") + e.what());
  }
}

}  // namespace runbot::bot
