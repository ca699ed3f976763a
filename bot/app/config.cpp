#include "bot/app/config.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "adapters/common/url.h"

extern char** environ;

namespace runbot::app {
namespace {

using bot::Duration;

// Walks one YAML mapping, converting values and collecting every problem (and warning) with its
// path.
class Walker {
 public:
  Walker(std::vector<std::string>& problems, std::vector<std::string>& warnings,
         const std::map<std::string, std::string>& env)
      : problems_(problems), warnings_(warnings), env_(env) {}

  void problem(const std::string& path, const std::string& what) { problems_.push_back(path + ": " + what); }
  // Valid, but worth an operator's attention (printed by check-config and logged at startup).
  void warning(const std::string& path, const std::string& what) { warnings_.push_back(path + ": " + what); }
  bool has_problem(const std::string& path) const {
    return std::any_of(problems_.begin(), problems_.end(),
                       [&](const std::string& p) { return p.rfind(path + ": ", 0) == 0; });
  }

  // Checks that `node` is a mapping with only `known` keys.
  bool mapping(const YAML::Node& node, const std::string& path, const std::set<std::string>& known) {
    if (!node || node.IsNull()) return false;
    if (!node.IsMap()) {
      problem(path, "must be a mapping");
      return false;
    }
    for (const auto& kv : node) {
      std::string key = kv.first.as<std::string>();
      if (!known.empty() && !known.count(key)) {
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        problem(join(path, key), "unknown key (expected one of: " + list + ")");
      }
    }
    return true;
  }

  // Expands ${VAR} and ${file:/path}; a missing variable or unreadable file is a problem.
  std::string expand(const std::string& raw, const std::string& path) {
    std::string out;
    size_t i = 0;
    while (i < raw.size()) {
      auto start = raw.find("${", i);
      if (start == std::string::npos) {
        out += raw.substr(i);
        break;
      }
      out += raw.substr(i, start - i);
      auto end = raw.find('}', start);
      if (end == std::string::npos) {
        problem(path, "unterminated ${ in value");
        return out;
      }
      std::string name = raw.substr(start + 2, end - start - 2);
      if (name.rfind("file:", 0) == 0) {
        std::ifstream f(name.substr(5));
        if (!f) {
          problem(path, "cannot read secret file '" + name.substr(5) + "'");
        } else {
          std::stringstream ss;
          ss << f.rdbuf();
          std::string v = ss.str();
          while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
          out += v;
        }
      } else {
        auto it = env_.find(name);
        if (it == env_.end()) {
          problem(path, "environment variable " + name + " is not set");
        } else {
          out += it->second;
        }
      }
      i = end + 1;
    }
    return out;
  }

  std::optional<std::string> str(const YAML::Node& parent, const std::string& key, const std::string& path) {
    const YAML::Node n = parent[key];
    if (!n || n.IsNull()) return std::nullopt;
    if (!n.IsScalar()) {
      problem(join(path, key), "must be a string");
      return std::nullopt;
    }
    return expand(n.Scalar(), join(path, key));
  }

  std::optional<long long> integer(const YAML::Node& parent, const std::string& key, const std::string& path,
                                   long long min, long long max) {
    auto s = str(parent, key, path);
    if (!s) return std::nullopt;
    try {
      size_t used = 0;
      long long v = std::stoll(*s, &used);
      if (used != s->size()) throw std::invalid_argument("trailing");
      if (v < min || v > max) {
        problem(join(path, key), "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " + *s);
        return std::nullopt;
      }
      return v;
    } catch (const std::exception&) {
      problem(join(path, key), "must be a whole number, got '" + *s + "'");
      return std::nullopt;
    }
  }

  std::optional<double> number(const YAML::Node& parent, const std::string& key, const std::string& path, double min) {
    auto s = str(parent, key, path);
    if (!s) return std::nullopt;
    try {
      size_t used = 0;
      double v = std::stod(*s, &used);
      if (used != s->size()) throw std::invalid_argument("trailing");
      if (v < min) {
        problem(join(path, key), "must be at least " + std::to_string(min) + ", got " + *s);
        return std::nullopt;
      }
      return v;
    } catch (const std::exception&) {
      problem(join(path, key), "must be a number, got '" + *s + "'");
      return std::nullopt;
    }
  }

  std::optional<bool> boolean(const YAML::Node& parent, const std::string& key, const std::string& path) {
    auto s = str(parent, key, path);
    if (!s) return std::nullopt;
    if (*s == "true" || *s == "yes" || *s == "on") return true;
    if (*s == "false" || *s == "no" || *s == "off") return false;
    problem(join(path, key), "must be true or false, got '" + *s + "'");
    return std::nullopt;
  }

  std::optional<Duration> duration(const YAML::Node& parent, const std::string& key, const std::string& path) {
    auto s = str(parent, key, path);
    if (!s) return std::nullopt;
    auto d = bot::parse_duration(*s);
    if (!d) {
      problem(join(path, key), d.error().message);
      return std::nullopt;
    }
    return *d;
  }

  std::optional<std::vector<std::string>> strings(const YAML::Node& parent, const std::string& key, const std::string& path) {
    const YAML::Node n = parent[key];
    if (!n || n.IsNull()) return std::nullopt;
    if (!n.IsSequence()) {
      problem(join(path, key), "must be a list");
      return std::nullopt;
    }
    std::vector<std::string> out;
    for (size_t i = 0; i < n.size(); ++i) {
      std::string p = join(path, key) + "[" + std::to_string(i) + "]";
      if (!n[i].IsScalar()) {
        problem(p, "must be a string");
        continue;
      }
      out.push_back(expand(n[i].Scalar(), p));
    }
    return out;
  }

  std::optional<std::map<std::string, std::string>> string_map(const YAML::Node& parent, const std::string& key,
                                                               const std::string& path) {
    const YAML::Node n = parent[key];
    if (!n || n.IsNull()) return std::nullopt;
    if (!n.IsMap()) {
      problem(join(path, key), "must be a mapping of strings");
      return std::nullopt;
    }
    std::map<std::string, std::string> out;
    for (const auto& kv : n) {
      std::string k = kv.first.as<std::string>();
      if (!kv.second.IsScalar()) {
        problem(join(join(path, key), k), "must be a string");
        continue;
      }
      out[k] = expand(kv.second.Scalar(), join(join(path, key), k));
    }
    return out;
  }

  static std::string join(const std::string& a, const std::string& b) { return a.empty() ? b : a + "." + b; }

 private:
  std::vector<std::string>& problems_;
  std::vector<std::string>& warnings_;
  const std::map<std::string, std::string>& env_;
};

bool valid_channel_ref(const std::string& s) {
  auto colon = s.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size()) return false;
  std::string platform = s.substr(0, colon);
  return platform == "console" || platform == "slack" || platform == "mattermost" || platform == "teams";
}

void parse_apps(Walker& w, const YAML::Node& apps, Config& c) {
  if (!apps || apps.IsNull()) {
    w.problem("apps", "at least one app is required");
    return;
  }
  if (!w.mapping(apps, "apps", {})) return;
  for (const auto& kv : apps) {
    std::string name = kv.first.as<std::string>();
    std::string path = "apps." + name;
    const YAML::Node a = kv.second;
    if (!bot::is_dns1123_label(name) || name.size() > 50) {
      w.problem(path, "app name must be a DNS-1123 label of at most 50 characters (lower-case letters, digits, '-')");
    }
    if (!w.mapping(a, path, {"repo", "team", "default_ttl", "max_ttl", "rate_per_hour", "suspended_rate_per_hour",
                             "channels", "namespace", "url", "provisioner_args", "provisioner_env", "teams"})) {
      if (!a || a.IsNull()) w.problem(path, "needs at least a repo");
      continue;
    }
    bot::AppSpec app;
    app.name = bot::AppName{name};
    if (auto v = w.str(a, "repo", path)) {
      app.repo = *v;
    } else {
      w.problem(path + ".repo", "is required (e.g. acme/front-end)");
    }
    if (auto v = w.str(a, "team", path)) app.team = bot::TeamName{*v};
    if (auto v = w.duration(a, "default_ttl", path)) app.default_ttl = *v;
    if (auto v = w.duration(a, "max_ttl", path)) app.max_ttl = *v;
    if (app.default_ttl > app.max_ttl) {
      w.problem(path + ".default_ttl", "is " + bot::format_duration(app.default_ttl) + ", over max_ttl " +
                                           bot::format_duration(app.max_ttl));
    }
    if (auto v = w.number(a, "rate_per_hour", path, 0)) app.rate_per_hour = bot::Money::dollars(*v);
    if (auto v = w.number(a, "suspended_rate_per_hour", path, 0)) app.suspended_rate_per_hour = bot::Money::dollars(*v);
    if (auto v = w.strings(a, "channels", path)) {
      for (size_t i = 0; i < v->size(); ++i) {
        if (!valid_channel_ref((*v)[i])) {
          w.problem(path + ".channels[" + std::to_string(i) + "]",
                    "must be <platform>:<channel> with platform console, slack, mattermost or teams, got '" + (*v)[i] + "'");
        }
      }
      app.channels = *v;
    }
    if (auto v = w.str(a, "namespace", path)) app.namespace_template = *v;
    if (auto v = w.str(a, "url", path)) app.url_template = *v;
    if (auto v = w.strings(a, "provisioner_args", path)) app.provisioner_args = *v;
    if (auto v = w.string_map(a, "provisioner_env", path)) app.provisioner_env = *v;
    if (auto v = w.strings(a, "teams", path)) {
      for (const auto& t : *v) c.bot.policy.app_teams[app.name].insert(bot::TeamName{t});
    }
    c.bot.apps[app.name] = std::move(app);
  }
}

void parse_policy(Walker& w, const YAML::Node& p, Config& c) {
  if (!w.mapping(p, "policy", {"enabled", "default_role", "bindings", "quotas", "teams", "approvals_channel"})) return;
  auto& ps = c.bot.policy;
  ps.enabled = true;
  if (auto v = w.boolean(p, "enabled", "policy")) ps.enabled = *v;
  if (auto v = w.str(p, "default_role", "policy")) {
    auto r = bot::role_from_string(*v);
    if (!r) w.problem("policy.default_role", "must be viewer, developer, operator or admin, got '" + *v + "'");
    else ps.default_role = *r;
  }
  if (auto v = w.str(p, "approvals_channel", "policy")) {
    if (!valid_channel_ref(*v)) w.problem("policy.approvals_channel", "must be <platform>:<channel>, got '" + *v + "'");
    ps.approvals_channel = *v;
  }
  if (const auto q = p["quotas"]; w.mapping(q, "policy.quotas", {"per_user", "per_team", "total"})) {
    if (auto v = w.integer(q, "per_user", "policy.quotas", 0, 100000)) ps.quotas.per_user = static_cast<int>(*v);
    if (auto v = w.integer(q, "per_team", "policy.quotas", 0, 100000)) ps.quotas.per_team = static_cast<int>(*v);
    if (auto v = w.integer(q, "total", "policy.quotas", 0, 100000)) ps.quotas.total = static_cast<int>(*v);
  }
  if (const auto b = p["bindings"]; b && !b.IsNull()) {
    if (!b.IsSequence()) {
      w.problem("policy.bindings", "must be a list");
    } else {
      for (size_t i = 0; i < b.size(); ++i) {
        std::string path = "policy.bindings[" + std::to_string(i) + "]";
        if (!w.mapping(b[i], path, {"role", "platform", "users", "emails", "groups", "channels"})) continue;
        bot::RoleBinding rb;
        auto role = w.str(b[i], "role", path);
        auto r = role ? bot::role_from_string(*role) : std::nullopt;
        if (!r) {
          w.problem(path + ".role", "is required: viewer, developer, operator or admin");
          continue;
        }
        rb.role = *r;
        if (auto v = w.str(b[i], "platform", path)) rb.platform = *v;
        if (auto v = w.strings(b[i], "users", path)) rb.users = {v->begin(), v->end()};
        if (auto v = w.strings(b[i], "emails", path)) rb.emails = {v->begin(), v->end()};
        if (auto v = w.strings(b[i], "groups", path)) rb.groups = {v->begin(), v->end()};
        if (auto v = w.strings(b[i], "channels", path)) rb.channels = {v->begin(), v->end()};
        if (rb.users.empty() && rb.emails.empty() && rb.groups.empty() && rb.channels.empty()) {
          w.problem(path, "binds nobody: give users, emails, groups or channels");
        }
        ps.bindings.push_back(std::move(rb));
      }
    }
  }
  if (const auto t = p["teams"]; w.mapping(t, "policy.teams", {})) {
    for (const auto& kv : t) {
      std::string name = kv.first.as<std::string>();
      std::string path = "policy.teams." + name;
      if (!w.mapping(kv.second, path, {"members", "monthly_budget", "channel"})) continue;
      bot::TeamSettings ts;
      if (auto v = w.strings(kv.second, "members", path)) ts.members = {v->begin(), v->end()};
      if (auto v = w.number(kv.second, "monthly_budget", path, 0)) ts.monthly_budget = bot::Money::dollars(*v);
      if (auto v = w.str(kv.second, "channel", path)) {
        if (!valid_channel_ref(*v)) w.problem(path + ".channel", "must be <platform>:<channel>, got '" + *v + "'");
        ts.channel = *v;
      }
      ps.teams[bot::TeamName{name}] = std::move(ts);
    }
  }
}

// `<platform>.identity_cache`: how long a user's e-mail address and groups are remembered. Under a
// second would look a user up on nearly every command; over a day would keep a removed group
// member's rights for too long.
std::optional<Duration> identity_cache(Walker& w, const YAML::Node& n, const std::string& platform) {
  auto v = w.duration(n, "identity_cache", platform);
  if (v && (*v < std::chrono::seconds(1) || *v > std::chrono::hours(24))) {
    w.problem(platform + ".identity_cache", "must be between 1s and 24h, got " + bot::format_duration(*v));
    return std::nullopt;
  }
  return v;
}

// The answer lane of a platform's outbox (or of the default one, under notifications).
void parse_answer_pacing(Walker& w, const YAML::Node& n, const std::string& path, bot::OutboxSettings& o) {
  if (auto v = w.number(n, "answers_per_second", path, 0.01)) o.answers_per_second = *v;
  if (auto v = w.number(n, "answer_burst", path, 1)) o.answer_burst = *v;
  if (auto v = w.integer(n, "answer_max_attempts", path, 0, 1000)) o.answer_max_attempts = static_cast<int>(*v);
}

void parse_slack(Walker& w, const YAML::Node& n, Config& c) {
  if (!w.mapping(n, "slack", {"app_token", "bot_token", "api_base_url", "ca_file", "connections", "ping_interval",
                             "idle_timeout", "request_timeout", "slash_command", "slash_response_type",
                             "messages_per_second", "burst", "answers_per_second", "answer_burst",
                             "answer_max_attempts", "identity_cache"})) {
    return;
  }
  slack::SlackSettings s;
  if (auto v = w.str(n, "app_token", "slack")) s.app_token = *v;
  if (auto v = w.str(n, "bot_token", "slack")) s.bot_token = *v;
  if (s.app_token.rfind("xapp-", 0) != 0) w.problem("slack.app_token", "must be an app-level token (xapp-…) with connections:write");
  if (s.bot_token.rfind("xoxb-", 0) != 0) w.problem("slack.bot_token", "must be a bot token (xoxb-…)");
  if (auto v = w.str(n, "api_base_url", "slack")) {
    if (v->rfind("https://", 0) != 0 && v->rfind("http://", 0) != 0) w.problem("slack.api_base_url", "must be an http(s) URL");
    s.api_base_url = *v;
  }
  if (auto v = w.str(n, "ca_file", "slack")) s.ca_file = *v;
  if (auto v = w.integer(n, "connections", "slack", 1, 10)) s.connections = static_cast<int>(*v);
  if (auto v = w.duration(n, "ping_interval", "slack")) s.ping_interval = *v;
  if (auto v = w.duration(n, "idle_timeout", "slack")) s.idle_timeout = *v;
  if (auto v = w.duration(n, "request_timeout", "slack")) s.request_timeout = *v;
  if (auto v = w.str(n, "slash_command", "slack")) s.slash_command = *v;
  if (auto v = w.str(n, "slash_response_type", "slack")) {
    if (*v != "ephemeral" && *v != "in_channel") w.problem("slack.slash_response_type", "must be ephemeral or in_channel");
    s.slash_response_type = *v;
  }
  if (auto v = identity_cache(w, n, "slack")) s.identity_cache_ttl = *v;
  if (auto v = w.number(n, "messages_per_second", "slack", 0.01)) c.slack_outbox.messages_per_second = *v;
  if (auto v = w.number(n, "burst", "slack", 1)) c.slack_outbox.burst = *v;
  parse_answer_pacing(w, n, "slack", c.slack_outbox);
  c.slack = std::move(s);
}

void parse_mattermost(Walker& w, const YAML::Node& n, Config& c) {
  if (!w.mapping(n, "mattermost", {"server_url", "token", "ca_file", "socket", "slash_token", "slash_command",
                                  "slash_response_type", "command_path", "action_path", "action_url", "action_secret",
                                  "ephemeral_mention_replies", "ping_interval", "idle_timeout", "backoff_initial",
                                  "backoff_max", "request_timeout", "messages_per_second", "burst",
                                  "answers_per_second", "answer_burst", "answer_max_attempts", "identity_cache"})) {
    return;
  }
  mattermost::MattermostSettings s;
  if (auto v = w.str(n, "server_url", "mattermost")) s.server_url = *v;
  if (s.server_url.rfind("http://", 0) == 0) {
    // Inside a cluster the server is often reached as http://mattermost.chat.svc:8065.
    w.warning("mattermost.server_url",
              "is http://: the bot token (and every message) travels in clear text; use https:// unless this "
              "network path is trusted");
  } else if (s.server_url.rfind("https://", 0) != 0) {
    w.problem("mattermost.server_url", "must be the server's https:// (or http://) URL");
  }
  if (auto v = w.str(n, "token", "mattermost")) s.token = *v;
  if (s.token.empty()) w.problem("mattermost.token", "is required (the bot account's access token)");
  if (auto v = w.str(n, "ca_file", "mattermost")) s.ca_file = *v;
  if (auto v = w.boolean(n, "socket", "mattermost")) s.socket = *v;
  if (auto v = w.str(n, "slash_token", "mattermost")) s.slash_token = *v;
  if (auto v = w.str(n, "slash_command", "mattermost")) s.slash_command = *v;
  if (auto v = w.str(n, "slash_response_type", "mattermost")) {
    if (*v != "ephemeral" && *v != "in_channel") w.problem("mattermost.slash_response_type", "must be ephemeral or in_channel");
    s.slash_response_type = *v;
  }
  for (const char* key : {"command_path", "action_path"}) {
    if (auto v = w.str(n, key, "mattermost")) {
      if (v->empty() || v->front() != '/') w.problem(std::string("mattermost.") + key, "must start with /");
      (std::string(key) == "command_path" ? s.command_path : s.action_path) = *v;
    }
  }
  if (auto v = w.str(n, "action_url", "mattermost")) {
    if (v->rfind("https://", 0) != 0 && v->rfind("http://", 0) != 0) w.problem("mattermost.action_url", "must be an http(s) URL");
    s.action_url = *v;
  }
  if (auto v = w.str(n, "action_secret", "mattermost")) s.action_secret = *v;
  if (auto v = w.boolean(n, "ephemeral_mention_replies", "mattermost")) s.ephemeral_mention_replies = *v;
  if (auto v = w.duration(n, "ping_interval", "mattermost")) s.ping_interval = *v;
  if (auto v = w.duration(n, "idle_timeout", "mattermost")) s.idle_timeout = *v;
  if (auto v = w.duration(n, "backoff_initial", "mattermost")) s.backoff_initial = *v;
  if (auto v = w.duration(n, "backoff_max", "mattermost")) s.backoff_max = *v;
  if (auto v = w.duration(n, "request_timeout", "mattermost")) s.request_timeout = *v;
  if (auto v = identity_cache(w, n, "mattermost")) s.identity_cache_ttl = *v;
  if (auto v = w.number(n, "messages_per_second", "mattermost", 0.01)) c.mattermost_outbox.messages_per_second = *v;
  if (auto v = w.number(n, "burst", "mattermost", 1)) c.mattermost_outbox.burst = *v;
  parse_answer_pacing(w, n, "mattermost", c.mattermost_outbox);
  c.mattermost = std::move(s);
}

bool is_https(const std::string& url) {
  return url.rfind("https://", 0) == 0 && url.size() > 8;
}

void parse_teams(Walker& w, const YAML::Node& n, Config& c) {
  if (!w.mapping(n, "teams",
                 {"enabled", "app_id", "app_password", "tenant_id", "token_url",
                  "openid_metadata_url", "messaging_path", "ca_file", "greet_on_install",
                  "request_timeout", "messages_per_second", "burst", "answers_per_second",
                  "answer_burst", "answer_max_attempts", "identity_cache",
                  "graph_url", "graph_scope", "messages_per_hour"})) {
    return;
  }
  teams::TeamsSettings s;
  bool enabled = true;
  if (auto v = w.boolean(n, "enabled", "teams")) enabled = *v;
  if (auto v = w.str(n, "app_id", "teams")) s.auth.app_id = *v;
  if (s.auth.app_id.empty()) {
    w.problem("teams.app_id", "is required (the Microsoft App ID of the Azure Bot, a GUID)");
  } else if (s.auth.app_id.size() != 36 ||
             std::count(s.auth.app_id.begin(), s.auth.app_id.end(), '-') != 4) {
    w.problem("teams.app_id",
              "must be the Microsoft App ID, a GUID like 00000000-0000-0000-0000-000000000000");
  }
  s.connector.app_id = s.auth.app_id;
  if (auto v = w.str(n, "app_password", "teams")) s.connector.app_password = *v;
  // A secret that could not be expanded is already named once.
  if (s.connector.app_password.empty() && !w.has_problem("teams.app_password")) {
    w.problem("teams.app_password",
              "is required (the app registration's client secret, e.g. ${TEAMS_APP_PASSWORD})");
  }
  if (auto v = w.str(n, "tenant_id", "teams")) s.connector.tenant_id = *v;
  if (s.connector.tenant_id.empty()) {
    w.problem("teams.tenant_id",
              "is required (the Entra tenant id of a SingleTenant bot; botframework.com for a "
              "legacy multi-tenant one)");
  }
  if (auto v = w.str(n, "token_url", "teams")) {
    if (!is_https(*v)) w.problem("teams.token_url", "must be an https:// URL");
    s.connector.token_url = *v;
  }
  if (auto v = w.str(n, "openid_metadata_url", "teams")) {
    if (!is_https(*v)) w.problem("teams.openid_metadata_url", "must be an https:// URL");
    s.auth.openid_metadata_url = *v;
  }
  if (auto v = w.str(n, "messaging_path", "teams")) {
    if (v->empty() || v->front() != '/') w.problem("teams.messaging_path", "must start with /");
    s.adapter.messaging_path = *v;
  }
  if (auto v = w.str(n, "ca_file", "teams")) {
    if (!std::ifstream(*v)) w.problem("teams.ca_file", "cannot read '" + *v + "'");
    s.adapter.ca_file = *v;
  }
  if (auto v = w.str(n, "graph_url", "teams")) {
    auto url = common::parse_url(*v);
    if (!is_https(*v) || !url) {
      w.problem("teams.graph_url", "must be an https:// URL like https://graph.microsoft.com/v1.0");
    } else {
      s.graph.url = *v;
      // Each Microsoft cloud's Graph takes tokens for its own origin.
      s.graph.scope = "https://" + url->host +
                      (url->port == 443 ? "" : ":" + std::to_string(url->port)) + "/.default";
    }
  }
  if (auto v = w.str(n, "graph_scope", "teams")) s.graph.scope = *v;
  if (auto v = w.boolean(n, "greet_on_install", "teams")) s.adapter.greet_on_install = *v;
  if (auto v = identity_cache(w, n, "teams")) s.adapter.identity_cache_ttl = *v;
  if (auto v = w.duration(n, "request_timeout", "teams")) {
    s.connector.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*v);
    s.auth.fetch_timeout = s.connector.timeout;
  }
  if (auto v = w.number(n, "messages_per_second", "teams", 0.01))
    c.teams_outbox.messages_per_second = *v;
  if (auto v = w.number(n, "burst", "teams", 1)) c.teams_outbox.burst = *v;
  parse_answer_pacing(w, n, "teams", c.teams_outbox);
  if (auto v = w.number(n, "messages_per_hour", "teams", 0)) {
    if (*v != static_cast<double>(static_cast<std::size_t>(*v))) {
      w.problem("teams.messages_per_hour", "must be a whole number (0 = no hourly limit)");
    } else {
      c.teams_outbox.window_max = static_cast<std::size_t>(*v);
    }
  }
  if (enabled) c.teams = std::move(s);
}

// Teams destinations are conversation ids: "19:…@thread.tacv2" (a channel), "19:…@thread.v2"
// (a group chat) or "a:…" (a personal chat).
void check_teams_destination(Walker& w, const std::string& path, const std::string& where,
                             const Config& c) {
  if (where.rfind("teams:", 0) != 0) return;
  const std::string id = where.substr(6);
  if (!c.teams) {
    w.problem(path, "names a Teams conversation, but there is no enabled teams: section");
    return;
  }
  const bool channel_or_group = id.rfind("19:", 0) == 0 && id.find("@thread.") != std::string::npos;
  if (!channel_or_group && id.rfind("a:", 0) != 0) {
    w.problem(
        path,
        "must be a Teams channel id like teams:19:…@thread.tacv2 (runbot posts \"Id for runbot's "
        "config\" when it is added to a team), got '" +
            where + "'");
  }
}

void check_teams_destinations(Walker& w, const Config& c) {
  for (const auto& [name, app] : c.bot.apps) {
    for (std::size_t i = 0; i < app.channels.size(); ++i) {
      check_teams_destination(w, "apps." + name.str() + ".channels[" + std::to_string(i) + "]",
                              app.channels[i], c);
    }
  }
  check_teams_destination(w, "notifications.oncall_channel", c.bot.oncall_channel, c);
  check_teams_destination(w, "policy.approvals_channel", c.bot.policy.approvals_channel, c);
  for (const auto& [team, settings] : c.bot.policy.teams) {
    check_teams_destination(w, "policy.teams." + team.str() + ".channel", settings.channel, c);
  }
}

// http.tls_cert_file / http.tls_key_file: both or neither, each readable. Whether they hold a
// matching certificate and key is checked when the server starts (HttpServer::start).
void parse_http_tls(Walker& w, const YAML::Node& http, Config& c) {
  auto file = [&](const std::string& key, std::string& out) {
    auto v = w.str(http, key, "http");
    if (!v) return;
    if (v->empty()) {
      w.problem("http." + key, "must not be empty (leave out both TLS keys for plain HTTP)");
    } else if (!std::ifstream(*v)) {
      w.problem("http." + key, "cannot read '" + *v + "'");
    }
    out = *v;
  };
  file("tls_cert_file", c.http_tls_cert_file);
  file("tls_key_file", c.http_tls_key_file);
  const bool cert = !c.http_tls_cert_file.empty() || w.has_problem("http.tls_cert_file");
  const bool key = !c.http_tls_key_file.empty() || w.has_problem("http.tls_key_file");
  if (cert && !key) {
    w.problem("http.tls_key_file", "is required when http.tls_cert_file is set (the certificate's private key)");
  }
  if (key && !cert) {
    w.problem("http.tls_cert_file", "is required when http.tls_key_file is set (the certificate chain)");
  }
}

// provisioner.github: checked fully only when the github-dispatch backend uses it, so an exec
// setup may keep a prepared section around.
void parse_github_dispatch(Walker& w, const YAML::Node& g, Config& c) {
  const std::string path = "provisioner.github";
  const bool used = c.provisioner.backend == "github-dispatch";
  if (!w.mapping(g, path,
                 {"api_url", "repository", "token", "event_type_prefix", "webhook_secret",
                  "webhook_path", "ca_file", "timeout"})) {
    if (used) {
      w.problem(path, "is required when provisioner.backend is github-dispatch (repository, token, "
                      "webhook_secret)");
    }
    return;
  }
  auto& s = c.provisioner.github;
  if (auto v = w.str(g, "api_url", path)) s.api_url = *v;
  if (auto v = w.str(g, "repository", path)) s.repository = *v;
  if (auto v = w.str(g, "token", path)) s.token = *v;
  if (auto v = w.str(g, "event_type_prefix", path)) s.event_type_prefix = *v;
  if (auto v = w.str(g, "webhook_secret", path)) s.webhook_secret = *v;
  if (auto v = w.str(g, "webhook_path", path)) s.webhook_path = *v;
  if (auto v = w.str(g, "ca_file", path)) s.ca_file = *v;
  if (auto v = w.duration(g, "timeout", path)) s.timeout = *v;
  if (!used) return;
  auto url = common::parse_url(s.api_url);
  if (!url || url->scheme != "https") {
    w.problem(path + ".api_url", "must be an https:// URL, got '" + s.api_url + "'");
  }
  const auto slash = s.repository.find('/');
  const bool repo_ok =
      slash != std::string::npos && slash > 0 && slash + 1 < s.repository.size() &&
      s.repository.find('/', slash + 1) == std::string::npos &&
      std::all_of(s.repository.begin(), s.repository.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' ||
               ch == '.' || ch == '/';
      });
  if (s.repository.empty() && !w.has_problem(path + ".repository")) {
    w.problem(path + ".repository", "is required (owner/name of the repository whose workflow deploys)");
  } else if (!repo_ok && !w.has_problem(path + ".repository")) {
    w.problem(path + ".repository", "must be owner/name, got '" + s.repository + "'");
  }
  if (s.token.empty() && !w.has_problem(path + ".token")) {
    w.problem(path + ".token", "is required (e.g. ${GITHUB_TOKEN}: a token that may write the repository's contents)");
  }
  if (s.webhook_secret.empty() && !w.has_problem(path + ".webhook_secret")) {
    w.problem(path + ".webhook_secret", "is required: the secret of the repository's workflow-run webhook");
  } else if (!s.webhook_secret.empty() && s.webhook_secret.size() < 16) {
    w.problem(path + ".webhook_secret", "must be at least 16 characters");
  }
  if (s.webhook_path.empty() || s.webhook_path.front() != '/') {
    w.problem(path + ".webhook_path", "must start with /, got '" + s.webhook_path + "'");
  } else {
    const std::set<std::string> taken{"/healthz", "/readyz", "/metrics", "/ingest/nth"};
    const bool teams = c.teams && c.teams->adapter.messaging_path == s.webhook_path;
    if (taken.count(s.webhook_path) || teams) {
      w.problem(path + ".webhook_path", "'" + s.webhook_path + "' is already one of runbot's own paths");
    }
  }
  // GitHub allows event types of up to 100 characters; the longest verb is "suspend".
  if (s.event_type_prefix.size() > 93) {
    w.problem(path + ".event_type_prefix", "must be at most 93 characters (event types are limited to 100)");
  }
  if (s.timeout <= Duration::zero() && !w.has_problem(path + ".timeout")) {
    w.problem(path + ".timeout", "must be positive");
  }
  if (!s.ca_file.empty() && !std::ifstream(s.ca_file)) {
    w.problem(path + ".ca_file", "cannot read '" + s.ca_file + "'");
  }
}

void apply_overrides(Walker& w, const std::map<std::string, std::string>& env, Config& c) {
  auto get = [&env](const char* name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
  if (auto v = get("RUNBOT_KAFKA_BROKERS")) c.kafka.brokers = *v;
  if (auto v = get("RUNBOT_HTTP_ADDRESS")) c.http_address = *v;
  if (auto v = get("RUNBOT_HTTP_PORT")) {
    try {
      size_t used = 0;
      int port = std::stoi(*v, &used);
      if (used != v->size() || port < -1 || port > 65535) throw std::out_of_range("port");
      c.http_port = port;
    } catch (const std::exception&) {
      w.problem("RUNBOT_HTTP_PORT", "must be a port number from 0 to 65535 (or -1 for none), got '" + *v + "'");
    }
  }
  if (auto v = get("RUNBOT_STATE_FILE")) c.state_file = *v;
  if (auto v = get("RUNBOT_LOG_LEVEL")) c.log_level = *v;
  if (auto v = get("RUNBOT_LOG_FORMAT")) c.log_format = *v;
}

}  // namespace

bot::Result<Config> parse_config(const std::string& yaml, const std::map<std::string, std::string>& env,
                                 ConfigErrors* errors) {
  std::vector<std::string> problems;
  Config c;
  Walker w(problems, c.warnings, env);
  // Many events a second share one snapshot; offsets trail the state by about this much.
  c.bot.state_save_delay = std::chrono::milliseconds(50);
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    problems.push_back("line " + std::to_string(e.mark.line + 1) + ", column " + std::to_string(e.mark.column + 1) +
                       ": not valid YAML: " + e.msg);
  }
  if (problems.empty() && root && !root.IsNull()) {
    if (w.mapping(root, "",
                  {"http", "kafka", "state", "notifications", "provisioner", "apps", "console",
                   "log", "ingest", "policy", "slack", "mattermost", "teams"})) {
      if (const auto http = root["http"];
          w.mapping(http, "http", {"address", "port", "tls_cert_file", "tls_key_file"})) {
        if (auto v = w.str(http, "address", "http")) c.http_address = *v;
        if (auto v = w.integer(http, "port", "http", -1, 65535)) c.http_port = static_cast<int>(*v);
        parse_http_tls(w, http, c);
      }
      if (const auto k = root["kafka"]; w.mapping(k, "kafka", {"brokers", "properties", "topics", "group_id", "provisioner_group_id", "session_timeout"})) {
        if (auto v = w.str(k, "brokers", "kafka")) c.kafka.brokers = *v;
        if (auto v = w.string_map(k, "properties", "kafka")) c.kafka.properties = *v;
        if (auto v = w.str(k, "group_id", "kafka")) c.kafka.group_id = *v;
        if (auto v = w.str(k, "provisioner_group_id", "kafka")) c.kafka.provisioner_group_id = *v;
        if (auto v = w.duration(k, "session_timeout", "kafka")) c.kafka.session_timeout = *v;
        if (const auto t = k["topics"]; w.mapping(t, "kafka.topics", {"jobs", "events", "cluster_events", "audit", "state"})) {
          if (auto v = w.str(t, "state", "kafka.topics")) c.kafka.state_topic = *v;
          if (auto v = w.str(t, "audit", "kafka.topics")) c.kafka.audit_topic = *v;
          if (auto v = w.str(t, "jobs", "kafka.topics")) c.kafka.jobs_topic = *v;
          if (auto v = w.str(t, "events", "kafka.topics")) c.kafka.events_topic = *v;
          if (auto v = w.str(t, "cluster_events", "kafka.topics")) c.kafka.cluster_events_topic = *v;
        }
      }
      if (const auto s = root["state"]; w.mapping(s, "state", {"file", "save_delay_ms"})) {
        if (auto v = w.str(s, "file", "state")) c.state_file = *v;
        if (auto v = w.integer(s, "save_delay_ms", "state", 0, 10000)) c.bot.state_save_delay = std::chrono::milliseconds(*v);
      }
      if (const auto n = root["notifications"];
          w.mapping(n, "notifications", {"ttl_warnings", "oncall_channel", "janitor_enforces_ttl", "messages_per_second",
                                         "answers_per_second", "answer_burst", "answer_max_attempts",
                                         "burst", "confirmation_timeout", "recovery_timeout"})) {
        if (auto v = w.strings(n, "ttl_warnings", "notifications")) {
          c.bot.ttl_warnings.clear();
          for (size_t i = 0; i < v->size(); ++i) {
            auto d = bot::parse_duration((*v)[i]);
            if (!d) {
              w.problem("notifications.ttl_warnings[" + std::to_string(i) + "]", d.error().message);
            } else {
              c.bot.ttl_warnings.push_back(*d);
            }
          }
        }
        if (auto v = w.str(n, "oncall_channel", "notifications")) {
          if (!valid_channel_ref(*v)) {
            w.problem("notifications.oncall_channel", "must be <platform>:<channel>, got '" + *v + "'");
          }
          c.bot.oncall_channel = *v;
        }
        if (auto v = w.boolean(n, "janitor_enforces_ttl", "notifications")) c.bot.janitor_enforces_ttl = *v;
        if (auto v = w.number(n, "messages_per_second", "notifications", 0.01)) c.outbox.messages_per_second = *v;
        if (auto v = w.number(n, "burst", "notifications", 1)) c.outbox.burst = *v;
        parse_answer_pacing(w, n, "notifications", c.outbox);
        if (auto v = w.duration(n, "confirmation_timeout", "notifications")) c.bot.confirmation_timeout = *v;
        if (auto v = w.duration(n, "recovery_timeout", "notifications")) c.bot.recovery_timeout = *v;
      }
      if (const auto p = root["provisioner"];
          w.mapping(p, "provisioner", {"backend", "max_concurrent", "exec", "github", "demo"})) {
        if (auto v = w.str(p, "backend", "provisioner")) {
          if (*v != "exec" && *v != "github-dispatch" && *v != "demo") {
            w.problem("provisioner.backend", "must be exec, github-dispatch or demo, got '" + *v + "'");
          }
          c.provisioner.backend = *v;
        }
        if (auto v = w.integer(p, "max_concurrent", "provisioner", 1, 1000)) c.provisioner.max_concurrent = static_cast<size_t>(*v);
        if (const auto e = p["exec"]; w.mapping(e, "provisioner.exec", {"program", "args", "env", "timeout", "kill_grace"})) {
          if (auto v = w.str(e, "program", "provisioner.exec")) c.provisioner.exec.program = *v;
          if (auto v = w.strings(e, "args", "provisioner.exec")) c.provisioner.exec.args = *v;
          if (auto v = w.string_map(e, "env", "provisioner.exec")) c.provisioner.exec.env = *v;
          if (auto v = w.duration(e, "timeout", "provisioner.exec")) c.provisioner.exec.timeout = *v;
          if (auto v = w.duration(e, "kill_grace", "provisioner.exec")) c.provisioner.exec.kill_grace = *v;
        }
        if (const auto d = p["demo"]; w.mapping(d, "provisioner.demo", {"nodes"})) {
          if (auto v = w.integer(d, "nodes", "provisioner.demo", 1, 64)) c.provisioner.demo_nodes = static_cast<int>(*v);
        }
        if (c.provisioner.backend == "exec" && c.provisioner.exec.program.empty()) {
          w.problem("provisioner.exec.program", "is required when provisioner.backend is exec");
        }
      }
      parse_apps(w, root["apps"], c);
      parse_policy(w, root["policy"], c);
      parse_slack(w, root["slack"], c);
      parse_mattermost(w, root["mattermost"], c);
      parse_teams(w, root["teams"], c);
      if (const auto p = root["provisioner"]; p && p.IsMap()) parse_github_dispatch(w, p["github"], c);
      check_teams_destinations(w, c);
      for (const auto& [app, teams] : c.bot.policy.app_teams) {
        for (const auto& t : teams) {
          if (!c.bot.policy.teams.count(t)) {
            w.problem("apps." + app.str() + ".teams", "team '" + t.str() + "' is not defined under policy.teams");
          }
        }
      }
      // Adapters look users up only for the facts some binding of theirs needs.
      if (c.slack) {
        const auto needs = bot::identity_needs(c.bot.policy, "slack");
        c.slack->lookup_email = needs.email;
        c.slack->lookup_groups = needs.groups;
      }
      if (c.mattermost) {
        const auto needs = bot::identity_needs(c.bot.policy, "mattermost");
        c.mattermost->lookup_email = needs.email;
        c.mattermost->lookup_groups = needs.groups;
      }
      // Teams: e-mail through the Bot Connector, groups through Microsoft Graph.
      if (c.teams) {
        const auto needs = bot::identity_needs(c.bot.policy, "teams");
        c.teams->adapter.lookup_email = needs.email;
        c.teams->adapter.lookup_groups = needs.groups;
      }
      if (const auto in = root["ingest"]; w.mapping(in, "ingest", {"nth_secret"})) {
        if (auto v = w.str(in, "nth_secret", "ingest")) {
          if (v->size() < 16) w.problem("ingest.nth_secret", "must be at least 16 characters");
          c.nth_ingest_secret = *v;
        }
      }
      if (const auto con = root["console"]; w.mapping(con, "console", {"user", "email", "groups"})) {
        if (auto v = w.str(con, "user", "console")) c.console_user = *v;
        if (auto v = w.str(con, "email", "console")) {
          if (!v->empty() && v->find('@') == std::string::npos) {
            w.problem("console.email", "must be an e-mail address, got '" + *v + "'");
          }
          c.console_email = *v;
        }
        if (auto v = w.strings(con, "groups", "console")) c.console_groups = *v;
      }
      if (const auto l = root["log"]; w.mapping(l, "log", {"format", "level"})) {
        if (auto v = w.str(l, "format", "log")) c.log_format = *v;
        if (auto v = w.str(l, "level", "log")) c.log_level = *v;
      }
    }
  } else if (problems.empty()) {
    problems.push_back("the file is empty; it needs at least an apps: section");
  }
  apply_overrides(w, env, c);
  if (c.teams && c.http_port < 0) {
    w.problem(
        "http.port",
        "is -1 (no HTTP server), but teams needs one: the Bot Connector POSTs activities to " +
            c.teams->adapter.messaging_path);
  }
  if (c.provisioner.backend == "github-dispatch" && c.http_port < 0) {
    w.problem("http.port",
              "is -1 (no HTTP server), but the github-dispatch provisioner needs one: GitHub POSTs "
              "workflow_run webhooks to " +
                  c.provisioner.github.webhook_path);
  }
  if (c.log_format != "text" && c.log_format != "json") w.problem("log.format", "must be text or json, got '" + c.log_format + "'");
  static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error", "critical", "off"};
  if (!levels.count(c.log_level)) w.problem("log.level", "must be one of trace, debug, info, warn, error, critical, off");
  if (errors) errors->problems = problems;
  if (!problems.empty()) {
    std::string all = std::to_string(problems.size()) + " problem" + (problems.size() == 1 ? "" : "s") + " in the configuration:";
    for (const auto& p : problems) all += "\n  - " + p;
    return bot::make_error(bot::Errc::invalid_argument, all);
  }
  return c;
}

bot::Result<Config> load_config(const std::string& path, const std::map<std::string, std::string>& env,
                                ConfigErrors* errors) {
  std::ifstream f(path);
  if (!f) {
    if (errors) errors->problems = {path + ": cannot be read"};
    return bot::make_error(bot::Errc::not_found, "cannot read configuration file '" + path + "'");
  }
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_config(ss.str(), env, errors);
}

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

const std::string& demo_config_yaml() {
  static const std::string yaml = R"(# runbot's embedded default: console chat, in-process Kafka, demo provisioner.
http:
  address: 127.0.0.1
  port: 8080
state:
  file: runbot-demo-state.json
notifications:
  ttl_warnings: [30m, 5m]
  oncall_channel: console:oncall
  messages_per_second: 20
  burst: 20
provisioner:
  backend: demo
  max_concurrent: 4
  demo:
    nodes: 4
apps:
  front-end:
    repo: acme/front-end
    team: web
    default_ttl: 8h
    max_ttl: 3d
    rate_per_hour: 0.625
    suspended_rate_per_hour: 0.05
    url: https://{env}.demo.runbot.invalid
  api:
    repo: acme/api
    team: platform
    default_ttl: 4h
    max_ttl: 1d
    rate_per_hour: 0.9
    suspended_rate_per_hour: 0.08
    url: https://{env}.demo.runbot.invalid
  docs:
    repo: acme/docs
    team: web
    default_ttl: 2h
    max_ttl: 12h
    rate_per_hour: 0.12
    url: https://{env}.demo.runbot.invalid
)";
  return yaml;
}

}  // namespace runbot::app
