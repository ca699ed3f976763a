#include "bot/registry.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "bot/model_json.h"

namespace runbot::bot {
namespace {

using nlohmann::json;
constexpr int kSnapshotVersion = 1;

std::int64_t ms(Duration d) { return d.count(); }
json opt_time(const std::optional<TimePoint>& t) { return t ? json(to_millis(*t)) : json(nullptr); }
std::optional<TimePoint> get_opt_time(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  return from_millis(j[key].get<std::int64_t>());
}

json warnings_to_json(const std::vector<WarningGroup>& groups) {
  json out = json::array();
  for (const auto& g : groups) {
    out.push_back({{"reason", g.reason}, {"object", g.object}, {"message", g.message}, {"count", g.count},
                   {"first", to_millis(g.first)}, {"last", to_millis(g.last)}});
  }
  return out;
}

// [[ms, kind], …]: a few integers a mark, as the snapshot is written often.
json billing_to_json(const std::vector<BillingMark>& marks) {
  json out = json::array();
  for (const auto& m : marks) out.push_back({to_millis(m.time), static_cast<int>(m.kind)});
  return out;
}

std::vector<BillingMark> billing_from_json(const json& j) {
  std::vector<BillingMark> out;
  for (const auto& m : j) {
    const int kind = m.at(1).get<int>();
    if (kind < 0 || kind > static_cast<int>(BilledKind::unbilled)) {
      throw std::runtime_error("unknown billing kind " + std::to_string(kind));
    }
    out.push_back({from_millis(m.at(0).get<std::int64_t>()), static_cast<BilledKind>(kind)});
  }
  return out;
}

json env_to_json(const Environment& e) {
  json threads = json::array();
  for (const auto& t : e.threads) {
    threads.push_back({{"platform", t.platform}, {"channel", t.channel.str()}, {"card", t.card_id}});
  }
  json recent = json::array();
  for (const auto& r : e.recent) recent.push_back({{"t", to_millis(r.time)}, {"text", r.text}, {"warning", r.warning}});
  json nodes = json::array();
  for (const auto& n : e.nodes) nodes.push_back(n.str());
  json warnings = json::array();
  for (const auto& w : e.warnings_sent) warnings.push_back(ms(w));
  return json{{"id", e.id.str()},
              {"app", e.app.str()},
              {"pr", e.pr},
              {"namespace", e.namespace_name},
              {"state", to_string(e.state)},
              {"owner", e.owner.str()},
              {"requester", e.requester.str()},
              {"team", e.team.str()},
              {"createdAt", to_millis(e.created_at)},
              {"readyAt", opt_time(e.ready_at)},
              {"deletedAt", opt_time(e.deleted_at)},
              {"ttlMs", ms(e.ttl)},
              {"expiresAt", opt_time(e.expires_at)},
              {"url", e.url},
              {"image", e.image},
              {"values", e.values},
              {"nodes", nodes},
              {"job", e.current_job.str()},
              {"stage", e.stage},
              {"stageIndex", e.stage_index},
              {"stageCount", e.stage_count},
              {"failureReason", e.failure_reason},
              {"logTail", e.log_tail},
              {"activeMs", ms(e.active_time)},
              {"suspendedMs", ms(e.suspended_time)},
              {"meteredUntil", to_millis(e.metered_until)},
              {"billing", billing_to_json(e.billing)},
              {"lastActivity", to_millis(e.last_activity)},
              {"warningsSent", warnings},
              {"interruptedAt", opt_time(e.interrupted_at)},
              {"recoveryOverdueReported", e.recovery_overdue_reported},
              {"warnings", warnings_to_json(e.warnings)},
              {"threads", threads},
              {"recent", recent},
              {"simulated", e.simulated}};
}

Environment env_from_json(const json& j) {
  Environment e;
  e.id = EnvId{j.at("id").get<std::string>()};
  e.app = AppName{j.at("app").get<std::string>()};
  e.pr = j.at("pr").get<int>();
  e.namespace_name = j.at("namespace").get<std::string>();
  auto state = env_state_from_string(j.at("state").get<std::string>());
  if (!state) throw std::runtime_error("unknown state '" + j.at("state").get<std::string>() + "'");
  e.state = *state;
  e.owner = UserId{j.at("owner").get<std::string>()};
  e.requester = UserId{j.at("requester").get<std::string>()};
  e.team = TeamName{j.at("team").get<std::string>()};
  e.created_at = from_millis(j.at("createdAt").get<std::int64_t>());
  e.ready_at = get_opt_time(j, "readyAt");
  e.deleted_at = get_opt_time(j, "deletedAt");
  e.ttl = Duration{j.at("ttlMs").get<std::int64_t>()};
  e.expires_at = get_opt_time(j, "expiresAt");
  e.url = j.at("url").get<std::string>();
  e.image = j.at("image").get<std::string>();
  e.values = j.at("values").get<std::map<std::string, std::string>>();
  for (const auto& n : j.at("nodes")) e.nodes.emplace_back(n.get<std::string>());
  e.current_job = JobId{j.at("job").get<std::string>()};
  e.stage = j.at("stage").get<std::string>();
  e.stage_index = j.at("stageIndex").get<int>();
  e.stage_count = j.at("stageCount").get<int>();
  e.failure_reason = j.at("failureReason").get<std::string>();
  e.log_tail = j.at("logTail").get<std::vector<std::string>>();
  e.active_time = Duration{j.at("activeMs").get<std::int64_t>()};
  e.suspended_time = Duration{j.at("suspendedMs").get<std::int64_t>()};
  e.metered_until = from_millis(j.at("meteredUntil").get<std::int64_t>());
  // Older snapshots have no history: billed_between() then works from the totals alone.
  if (j.contains("billing")) e.billing = billing_from_json(j.at("billing"));
  e.last_activity = from_millis(j.at("lastActivity").get<std::int64_t>());
  for (const auto& w : j.at("warningsSent")) e.warnings_sent.emplace_back(w.get<std::int64_t>());
  e.interrupted_at = get_opt_time(j, "interruptedAt");
  e.recovery_overdue_reported = j.value("recoveryOverdueReported", false);
  if (j.contains("warnings")) {
    for (const auto& g : j.at("warnings")) {
      e.warnings.push_back({g.at("reason").get<std::string>(), g.at("object").get<std::string>(),
                            g.at("message").get<std::string>(), g.at("count").get<int>(),
                            from_millis(g.at("first").get<std::int64_t>()), from_millis(g.at("last").get<std::int64_t>())});
    }
  }
  for (const auto& t : j.at("threads")) {
    e.threads.push_back({t.at("platform").get<std::string>(), ChannelId{t.at("channel").get<std::string>()},
                         t.at("card").get<std::string>()});
  }
  for (const auto& r : j.at("recent")) {
    e.recent.push_back({from_millis(r.at("t").get<std::int64_t>()), r.at("text").get<std::string>(),
                        r.at("warning").get<bool>()});
  }
  e.simulated = j.at("simulated").get<bool>();
  if (!is_dns1123_label(e.id.str())) throw std::runtime_error("environment id '" + e.id.str() + "' is invalid");
  return e;
}

}  // namespace

Environment* Registry::find(const EnvId& id) {
  auto it = envs_.find(id);
  return it == envs_.end() ? nullptr : &it->second;
}

const Environment* Registry::find(const EnvId& id) const {
  auto it = envs_.find(id);
  return it == envs_.end() ? nullptr : &it->second;
}

Environment& Registry::put(Environment env) {
  EnvId id = env.id;
  return envs_.insert_or_assign(id, std::move(env)).first->second;
}

NodeRecord& Registry::node(const NodeInfo& info, TimePoint now) {
  auto& rec = nodes_[info.name];
  // Keep what we knew when the new report is less specific.
  if (rec.info.name.empty()) rec.info = info;
  if (info.capacity != CapacityType::unknown) rec.info.capacity = info.capacity;
  if (!info.instance_type.empty()) rec.info.instance_type = info.instance_type;
  if (!info.zone.empty()) rec.info.zone = info.zone;
  rec.last_seen = now;
  return rec;
}

NodeRecord* Registry::find_node(const NodeName& name) {
  auto it = nodes_.find(name);
  return it == nodes_.end() ? nullptr : &it->second;
}

void Registry::set_env_nodes(const EnvId& env, const std::vector<NodeInfo>& nodes, TimePoint now) {
  for (auto& [name, rec] : nodes_) rec.envs.erase(env);
  std::vector<NodeName> names;
  for (const auto& n : nodes) {
    node(n, now).envs.insert(env);
    names.push_back(n.name);
  }
  if (auto* e = find(env)) e->nodes = std::move(names);
}

bool Registry::remember_cluster_event(const ClusterEventRecord& record) {
  const std::string& key = record.event.dedupe_key;
  if (!key.empty() && cluster_keys_.count(key)) return false;
  push_cluster_event(record);
  remember_cluster_key(key);
  return true;
}

void Registry::push_cluster_event(ClusterEventRecord record) {
  cluster_events_.push_back(std::move(record));
  cache_.cluster_events.emplace_back();
  while (cluster_events_.size() > kMaxClusterEvents) {
    cluster_events_.pop_front();
    cache_.cluster_events.pop_front();
  }
}

void Registry::remember_cluster_key(const std::string& key) {
  if (key.empty() || !cluster_keys_.insert(key).second) return;
  cluster_key_order_.push_back(key);
  while (cluster_key_order_.size() > kMaxClusterKeys) {
    cluster_keys_.erase(cluster_key_order_.front());
    cluster_key_order_.pop_front();
  }
}

bool Registry::seen_lifecycle(const std::string& id) const { return lifecycle_ids_.count(id) > 0; }

void Registry::mark_lifecycle(const std::string& id) {
  if (id.empty() || !lifecycle_ids_.insert(id).second) return;
  lifecycle_order_.push_back(id);
  while (lifecycle_order_.size() > kMaxLifecycleIds) {
    lifecycle_ids_.erase(lifecycle_order_.front());
    lifecycle_order_.pop_front();
  }
}

void Registry::learn_provisioning_time(const AppName& app, Duration took) {
  auto it = provisioning_times_.find(app);
  if (it == provisioning_times_.end()) {
    provisioning_times_[app] = took;
  } else {
    // Weight the newest run by a third: ETAs follow change without jumping on one outlier.
    it->second = Duration{(it->second.count() * 2 + took.count()) / 3};
  }
}

std::optional<Duration> Registry::expected_provisioning_time(const AppName& app) const {
  auto it = provisioning_times_.find(app);
  if (it == provisioning_times_.end()) return std::nullopt;
  return it->second;
}

void Registry::audit(AuditRecord record) {
  audit_.push_back(std::move(record));
  while (audit_.size() > kMaxAuditRecords) audit_.pop_front();
}

namespace {

json pending_to_json(const PendingRequest& p) {
  json j{{"id", p.id},           {"why", p.why == PendingRequest::Why::quota ? "quota" : "approval"},
         {"reason", p.reason},   {"app", p.app.str()},
         {"pr", p.pr},           {"env", p.env.str()},
         {"image", p.image},     {"values", p.values},
         {"user", p.user.str()}, {"platform", p.platform},
         {"channel", p.channel.str()}, {"at", to_millis(p.at)},
         {"approved", p.approved}};
  if (p.ttl) j["ttlMs"] = p.ttl->count();
  return j;
}

PendingRequest pending_from_json(const json& j) {
  PendingRequest p;
  p.id = j.at("id").get<std::string>();
  p.why = j.at("why").get<std::string>() == "quota" ? PendingRequest::Why::quota : PendingRequest::Why::approval;
  p.reason = j.at("reason").get<std::string>();
  p.app = AppName{j.at("app").get<std::string>()};
  p.pr = j.at("pr").get<int>();
  p.env = EnvId{j.at("env").get<std::string>()};
  p.image = j.at("image").get<std::string>();
  p.values = j.at("values").get<std::map<std::string, std::string>>();
  p.user = UserId{j.at("user").get<std::string>()};
  p.platform = j.at("platform").get<std::string>();
  p.channel = ChannelId{j.at("channel").get<std::string>()};
  p.at = from_millis(j.at("at").get<std::int64_t>());
  p.approved = j.at("approved").get<bool>();
  if (j.contains("ttlMs")) p.ttl = Duration{j.at("ttlMs").get<std::int64_t>()};
  return p;
}

json audit_to_json(const AuditRecord& a) {
  return {{"t", to_millis(a.time)}, {"platform", a.platform}, {"channel", a.channel.str()}, {"user", a.user.str()},
          {"verb", a.verb},         {"args", a.args},         {"outcome", a.outcome},        {"button", a.button}};
}

AuditRecord audit_from_json(const json& j) {
  return {from_millis(j.at("t").get<std::int64_t>()), j.at("platform").get<std::string>(),
          ChannelId{j.at("channel").get<std::string>()}, UserId{j.at("user").get<std::string>()},
          j.at("verb").get<std::string>(), j.at("args").get<std::string>(), j.at("outcome").get<std::string>(),
          j.at("button").get<bool>()};
}

}  // namespace

json audit_record_json(const AuditRecord& a) { return audit_to_json(a); }

const std::string* Registry::adapter_state(const std::string& key) const {
  auto it = adapter_state_.find(key);
  return it == adapter_state_.end() ? nullptr : &it->second;
}

void Registry::set_adapter_state(const std::string& key, std::string value) {
  if (value.empty()) {
    adapter_state_.erase(key);
  } else {
    adapter_state_[key] = std::move(value);
  }
}

namespace {

// Appends `s` as a JSON string: plain ASCII as it is, anything else through nlohmann's escaping.
void append_json_string(std::string& out, const std::string& s) {
  const bool plain = std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; });
  if (plain) {
    out += '"';
    out += s;
    out += '"';
  } else {
    out += json(s).dump();
  }
}

template <typename Range, typename Append>
void append_array(std::string& out, const char* name, const Range& items, Append append) {
  out += ",\"";
  out += name;
  out += "\":[";
  bool first = true;
  for (const auto& item : items) {
    if (!first) out += ',';
    first = false;
    append(item);
  }
  out += ']';
}

}  // namespace

StateSnapshot Registry::snapshot_parts() const {
  StateSnapshot out;
  // Environments: the kept JSON unless the environment changed since it was made.
  decltype(cache_.envs) envs_json;
  out.environments.reserve(envs_.size());
  for (const auto& [id, e] : envs_) {
    auto node = cache_.envs.extract(id);
    if (node.empty() || !(node.mapped().first == e)) {
      node = decltype(cache_.envs)::node_type{};
      envs_json.emplace(id, std::make_pair(e, env_to_json(e).dump()));
    } else {
      envs_json.insert(std::move(node));
    }
    out.environments.emplace_back(id.str(), envs_json.at(id).second);
  }
  cache_.envs = std::move(envs_json);

  json nodes = json::array();
  for (const auto& [name, n] : nodes_) {
    json envs_on = json::array();
    for (const auto& e : n.envs) envs_on.push_back(e.str());
    nodes.push_back({{"info", to_json(n.info)},
                     {"envs", envs_on},
                     {"deadline", opt_time(n.interruption_deadline)},
                     {"lastSeen", to_millis(n.last_seen)}});
  }
  json times = json::object();
  for (const auto& [app, d] : provisioning_times_) times[app.str()] = ms(d);
  json pending = json::array();
  for (const auto& p : pending_) pending.push_back(pending_to_json(p));
  json audit = json::array();
  for (const auto& a : audit_) audit.push_back(audit_to_json(a));
  std::string& r = out.registry;
  r = json{{"version", kSnapshotVersion},
           {"pending", pending},
           {"requestSeq", request_seq_},
           {"audit", audit},
           {"budgetAlerts", budget_alerts_},
           {"adapterState", adapter_state_},
           {"inputPositions", input_positions_},
           {"nodes", nodes},
           {"provisioningMs", times}}
          .dump();
  r.pop_back();  // the closing brace: the long lists follow, written without a JSON tree
  r += ",\"outbox\":";
  r += outbox_journal_.dump();
  out.outbox = outbox_items_;
  // Cluster events: each one's JSON is made once, at the first snapshot that lists it.
  size_t i = 0;
  append_array(r, "clusterEvents", cluster_events_, [&](const ClusterEventRecord& rec) {
    std::string& cached = cache_.cluster_events[i++];
    if (cached.empty()) {
      json affected = json::array();
      for (const auto& e : rec.affected) affected.push_back(e.str());
      cached = json{{"received", to_millis(rec.received)}, {"event", to_json(rec.event)}, {"affected", affected}}.dump();
    }
    r += cached;
  });
  auto str = [&](const std::string& s) { append_json_string(r, s); };
  append_array(r, "lifecycleIds", lifecycle_order_, str);
  append_array(r, "clusterKeys", cluster_key_order_, str);
  r += '}';
  return out;
}

std::string StateSnapshot::whole() const {
  std::string out;
  size_t size = registry.size() + 64;
  for (const auto& [id, e] : environments) size += e.size() + 1;
  for (const auto& [id, m] : outbox) size += m.size() + 1;
  out.reserve(size);
  out = registry;
  if (out.empty() || out.back() != '}') return out;  // not an object: restore() will say so
  out.pop_back();
  if (out.size() > 1) out += ',';
  auto append = [&out](const char* name, const Parts& parts) {
    out += '"';
    out += name;
    out += "\":[";
    for (size_t i = 0; i < parts.size(); ++i) {
      if (i > 0) out += ',';
      out += parts[i].second;
    }
    out += ']';
  };
  append("environments", environments);
  out += ',';
  append("outboxItems", outbox);
  out += '}';
  return out;
}

void Registry::set_outbox_journal(const nlohmann::json& keyed, StateSnapshot::Parts items) {
  outbox_journal_ = json{{"keyed", keyed}};
  outbox_items_ = std::move(items);
}

nlohmann::json Registry::outbox_journal() const {
  if (outbox_journal_.is_null()) return nullptr;
  json j = outbox_journal_;
  json items = json::array();
  for (const auto& [id, text] : outbox_items_) items.push_back(json::parse(text));
  j["items"] = std::move(items);
  return j;
}

Result<Registry> Registry::restore(const std::string& snapshot) {
  Registry r;
  try {
    json j = json::parse(snapshot);
    int version = j.at("version").get<int>();
    if (version != kSnapshotVersion) {
      return make_error(Errc::invalid_argument,
                        "state snapshot has version " + std::to_string(version) + ", this runbot reads version " +
                            std::to_string(kSnapshotVersion));
    }
    for (const auto& e : j.at("environments")) r.put(env_from_json(e));
    for (const auto& n : j.at("nodes")) {
      auto info = node_from_json(n.at("info"));
      if (!info) return info.error();
      NodeRecord rec{*info, {}, get_opt_time(n, "deadline"), from_millis(n.at("lastSeen").get<std::int64_t>())};
      for (const auto& e : n.at("envs")) rec.envs.insert(EnvId{e.get<std::string>()});
      r.nodes_[info->name] = std::move(rec);
    }
    // Keys first, oldest first (snapshots before "clusterKeys" have only the events' own keys).
    const bool with_keys = j.contains("clusterKeys");
    if (with_keys) {
      for (const auto& k : j.at("clusterKeys")) r.remember_cluster_key(k.get<std::string>());
    }
    for (const auto& c : j.at("clusterEvents")) {
      auto ev = cluster_event_from_json(c.at("event"));
      if (!ev) return ev.error();
      ClusterEventRecord rec{from_millis(c.at("received").get<std::int64_t>()), *ev, {}};
      for (const auto& e : c.at("affected")) rec.affected.emplace_back(e.get<std::string>());
      if (with_keys) {
        r.push_cluster_event(std::move(rec));  // its key is among the keys already
      } else {
        r.remember_cluster_event(rec);
      }
    }
    for (const auto& id : j.at("lifecycleIds")) r.mark_lifecycle(id.get<std::string>());
    if (j.contains("pending")) {
      for (const auto& p : j.at("pending")) r.pending_.push_back(pending_from_json(p));
      r.request_seq_ = j.at("requestSeq").get<std::uint64_t>();
      for (const auto& a : j.at("audit")) r.audit_.push_back(audit_from_json(a));
      for (const auto& k : j.at("budgetAlerts")) r.budget_alerts_.insert(k.get<std::string>());
    }
    if (j.contains("outbox")) r.outbox_journal_ = j.at("outbox");  // {"keyed"} (older: with "channels")
    if (j.contains("outboxItems")) {
      for (const auto& m : j.at("outboxItems")) r.outbox_items_.emplace_back(m.at("id").get<std::string>(), m.dump());
      if (r.outbox_journal_.is_null() && !r.outbox_items_.empty()) r.outbox_journal_ = json{{"keyed", json::array()}};
    }
    if (j.contains("inputPositions")) r.input_positions_ = j.at("inputPositions");
    if (j.contains("adapterState")) r.adapter_state_ = j.at("adapterState").get<std::map<std::string, std::string>>();
    for (const auto& [app, d] : j.at("provisioningMs").items()) {
      r.provisioning_times_[AppName{app}] = Duration{d.get<std::int64_t>()};
    }
  } catch (const std::exception& e) {
    return make_error(Errc::invalid_argument, std::string("state snapshot is corrupt: ") + e.what());
  }
  return r;
}

}  // namespace runbot::bot
