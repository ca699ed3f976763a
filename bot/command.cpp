#include "bot/command.h"

#include <array>
#include <cctype>

namespace runbot::bot {
namespace {

struct VerbInfo {
  Verb verb;
  const char* name;
  const char* usage;
  const char* summary;
};

constexpr std::array<VerbInfo, 19> kVerbs{{
    {Verb::up, "up", "up <app> <pr> [--ttl 8h] [--image TAG] [--set k=v]…",
     "create the environment for a pull request, or update it if it exists"},
    {Verb::down, "down", "down <env>", "tear an environment down (asks for confirmation)"},
    {Verb::extend, "extend", "extend <env> <duration>", "push the expiry out, within the app's maximum TTL"},
    {Verb::suspend, "suspend", "suspend <env>", "scale compute to zero, keeping data"},
    {Verb::resume, "resume", "resume <env>", "bring a suspended environment back"},
    {Verb::list, "list", "list [--mine] [--app A] [--state S]",
     "environments with owner, age, TTL left, URL and cost"},
    {Verb::describe, "describe", "describe <env>", "everything about one environment, with its recent events"},
    {Verb::status, "status", "status",
     "cluster overview: nodes, environments by state, jobs in flight, interruptions, event lag, adapters"},
    {Verb::nodes, "nodes", "nodes", "nodes with capacity type, instance type, zone and the environments on each"},
    {Verb::events, "events", "events [<env>] [--node N] [--since 1h] [--warnings] [--audit]",
     "recent cluster events (--audit: who did what, for operators)"},
    {Verb::usage, "usage", "usage [--team T] [--since 30d]", "environment-hours and cost per team and user"},
    {Verb::help, "help", "help [command]", "usage, with examples"},
    {Verb::yes, "yes", "yes", "confirm the pending action"},
    {Verb::no, "no", "no", "cancel the pending action"},
    {Verb::simulate, "simulate", "simulate spot <node>", "demo only: simulate a spot interruption of a node"},
    {Verb::let_expire, "let-expire", "let-expire <env>", "acknowledge a TTL warning and let the environment expire"},
    {Verb::cancel, "cancel", "cancel <request>", "withdraw a request that waits in the queue or for approval"},
    {Verb::approve, "approve", "approve <request>", "admins: let a request over its team's budget go ahead"},
    {Verb::deny, "deny", "deny <request>", "admins: refuse a request over its team's budget"},
}};

const VerbInfo& info(Verb v) {
  for (const auto& i : kVerbs) {
    if (i.verb == v) return i;
  }
  return kVerbs.back();
}

std::vector<std::string> tokenize(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  char quote = 0;
  bool have = false;
  for (char c : text) {
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else {
        cur += c;
      }
    } else if (c == '"' || c == '\'') {
      quote = c;
      have = true;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      if (have || !cur.empty()) out.push_back(std::move(cur));
      cur.clear();
      have = false;
    } else {
      cur += c;
    }
  }
  if (have || !cur.empty()) out.push_back(std::move(cur));
  return out;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_mention(const std::string& t) {
  if (t.size() > 3 && t.front() == '<' && t[1] == '@' && t.back() == '>') return true;  // Slack <@U123>
  return t == "@runbot" || t == "runbot" || t == "@runbot:";
}

Error bad(const std::string& why) { return make_error(Errc::invalid_argument, why); }

// Splits "--opt=value" into ("--opt", "value") and pulls the value of "--opt value" otherwise.
class Args {
 public:
  explicit Args(std::vector<std::string> tokens) : t_(std::move(tokens)) {}
  bool done() const { return i_ >= t_.size(); }
  const std::string& peek() const { return t_[i_]; }
  std::string next() { return t_[i_++]; }
  Result<std::string> value_of(const std::string& opt, std::string inline_value, bool has_inline) {
    if (has_inline) {
      if (inline_value.empty()) return bad(opt + " needs a value");
      return inline_value;
    }
    if (done() || t_[i_].rfind("--", 0) == 0) return bad(opt + " needs a value");
    return next();
  }

 private:
  std::vector<std::string> t_;
  size_t i_ = 0;
};

Result<EnvId> parse_env(const std::string& s) {
  std::string id = lower(s);
  if (!is_dns1123_label(id)) {
    return bad("'" + s + "' is not an environment id (expected <app>-pr-<number>, e.g. front-end-pr-123)");
  }
  return EnvId{id};
}

}  // namespace

const char* to_string(Verb v) { return info(v).name; }

std::optional<Verb> verb_from_string(std::string_view s) {
  for (const auto& i : kVerbs) {
    if (s == i.name) return i.verb;
  }
  return std::nullopt;
}

const char* usage_of(Verb v) { return info(v).usage; }
const char* summary_of(Verb v) { return info(v).summary; }

const std::vector<Verb>& listed_verbs() {
  static const std::vector<Verb> verbs{Verb::up,     Verb::down,   Verb::extend,  Verb::suspend, Verb::resume,
                                       Verb::list,   Verb::describe, Verb::status, Verb::nodes,  Verb::events,
                                       Verb::usage,  Verb::cancel, Verb::approve, Verb::deny,   Verb::help};
  return verbs;
}

std::vector<std::string> examples_of(Verb v) {
  switch (v) {
    case Verb::up: return {"up front-end pr-123", "up front-end 123 --ttl 4h --image sha-3f2c9e1", "up api pr-7 --set replicas=2 --set debug=true"};
    case Verb::down: return {"down front-end-pr-123"};
    case Verb::extend: return {"extend front-end-pr-123 4h"};
    case Verb::suspend: return {"suspend front-end-pr-123"};
    case Verb::resume: return {"resume front-end-pr-123"};
    case Verb::list: return {"list", "list --mine", "list --app front-end --state ready"};
    case Verb::describe: return {"describe front-end-pr-123"};
    case Verb::status: return {"status"};
    case Verb::nodes: return {"nodes"};
    case Verb::events: return {"events", "events front-end-pr-123 --since 30m", "events --node ip-10-0-1-17 --warnings"};
    case Verb::usage: return {"usage", "usage --team web --since 7d"};
    case Verb::help: return {"help", "help up"};
    case Verb::cancel: return {"cancel q-3"};
    case Verb::approve: return {"approve q-3"};
    case Verb::deny: return {"deny q-3"};
    case Verb::simulate: return {"simulate spot <node from `nodes`>"};
    default: return {};
  }
}

std::optional<std::string> command_for_button(std::string_view action, std::string_view value) {
  const std::string v(value);
  if (action == "extend") return "extend " + v;
  if (action == "down") return "down " + v;
  if (action == "retry") return "up " + v;
  if (action == "let_expire") return "let-expire " + v;
  if (action == "confirm" && (v == "yes" || v == "no")) return v;
  if (action == "approve") return "approve " + v;
  if (action == "deny") return "deny " + v;
  if (action == "cancel") return "cancel " + v;
  return std::nullopt;
}

Result<int> parse_pr(std::string_view text) {
  std::string s = lower(std::string(text));
  if (s.rfind("pr-", 0) == 0) {
    s = s.substr(3);
  } else if (s.rfind("pr", 0) == 0) {
    s = s.substr(2);
  } else if (!s.empty() && s[0] == '#') {
    s = s.substr(1);
  }
  if (s.empty() || s.size() > 9) return bad("'" + std::string(text) + "' is not a pull request number (e.g. pr-123 or 123)");
  int n = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) {
      return bad("'" + std::string(text) + "' is not a pull request number (e.g. pr-123 or 123)");
    }
    n = n * 10 + (c - '0');
  }
  if (n == 0) return bad("pull request number must be positive");
  return n;
}

Result<Command> parse_command(std::string_view text) {
  auto tokens = tokenize(text);
  size_t skip = 0;
  while (skip < tokens.size() &&
         (is_mention(tokens[skip]) || lower(tokens[skip]) == "/ephemeral" || lower(tokens[skip]) == "ephemeral")) {
    ++skip;
  }
  tokens.erase(tokens.begin(), tokens.begin() + static_cast<long>(skip));
  if (tokens.empty()) return bad("no command given");
  std::string verb_text = lower(tokens.front());
  auto verb = verb_from_string(verb_text);
  if (!verb) return bad("unknown command '" + tokens.front() + "'");
  Command cmd;
  cmd.verb = *verb;
  Args args({tokens.begin() + 1, tokens.end()});
  std::vector<std::string> positional;

  while (!args.done()) {
    std::string tok = args.next();
    if (tok.rfind("--", 0) != 0) {
      positional.push_back(tok);
      continue;
    }
    std::string opt = tok;
    std::string inline_value;
    bool has_inline = false;
    if (auto eq = tok.find('='); eq != std::string::npos) {
      opt = tok.substr(0, eq);
      inline_value = tok.substr(eq + 1);
      has_inline = true;
    }
    auto value = [&]() { return args.value_of(opt, inline_value, has_inline); };
    auto flag = [&]() -> Status {
      if (has_inline) return bad(opt + " takes no value");
      return ok();
    };
    const Verb v = cmd.verb;
    if (v == Verb::up && opt == "--ttl") {
      auto s = value(); if (!s) return s.error();
      auto d = parse_duration(*s); if (!d) return bad("--ttl: " + d.error().message);
      cmd.ttl = *d;
    } else if (v == Verb::up && opt == "--image") {
      auto s = value(); if (!s) return s.error();
      cmd.image = *s;
    } else if (v == Verb::up && opt == "--set") {
      auto s = value(); if (!s) return s.error();
      auto eq = s->find('=');
      if (eq == std::string::npos || eq == 0) return bad("--set expects key=value, got '" + *s + "'");
      cmd.values[s->substr(0, eq)] = s->substr(eq + 1);
    } else if (v == Verb::list && opt == "--mine") {
      if (auto f = flag(); !f) return f.error();
      cmd.mine = true;
    } else if (v == Verb::list && opt == "--app") {
      auto s = value(); if (!s) return s.error();
      cmd.filter_app = AppName{lower(*s)};
    } else if (v == Verb::list && opt == "--state") {
      auto s = value(); if (!s) return s.error();
      auto st = env_state_from_string(lower(*s));
      if (!st) return bad("--state: unknown state '" + *s + "' (requested, provisioning, ready, updating, suspended, failed, expired, tearing_down, deleted)");
      cmd.filter_state = *st;
    } else if (v == Verb::events && opt == "--node") {
      auto s = value(); if (!s) return s.error();
      cmd.node = NodeName{*s};
    } else if ((v == Verb::events || v == Verb::usage) && opt == "--since") {
      auto s = value(); if (!s) return s.error();
      auto d = parse_duration(*s); if (!d) return bad("--since: " + d.error().message);
      cmd.since = *d;
    } else if (v == Verb::events && opt == "--warnings") {
      if (auto f = flag(); !f) return f.error();
      cmd.warnings = true;
    } else if (v == Verb::events && opt == "--audit") {
      if (auto f = flag(); !f) return f.error();
      cmd.audit = true;
    } else if (v == Verb::usage && opt == "--team") {
      auto s = value(); if (!s) return s.error();
      cmd.team = TeamName{*s};
    } else {
      return bad(std::string("unknown option '") + opt + "' for " + to_string(v));
    }
  }

  auto want = [&](size_t min, size_t max) -> Status {
    if (positional.size() < min) return bad(std::string(to_string(cmd.verb)) + ": missing argument");
    if (positional.size() > max) return bad(std::string(to_string(cmd.verb)) + ": unexpected argument '" + positional[max] + "'");
    return ok();
  };

  switch (cmd.verb) {
    case Verb::up: {
      if (auto s = want(2, 2); !s) return s.error();
      cmd.app = AppName{lower(positional[0])};
      auto pr = parse_pr(positional[1]); if (!pr) return pr.error();
      cmd.pr = *pr;
      break;
    }
    case Verb::down:
    case Verb::suspend:
    case Verb::resume:
    case Verb::describe:
    case Verb::let_expire: {
      if (auto s = want(1, 1); !s) return s.error();
      auto env = parse_env(positional[0]); if (!env) return env.error();
      cmd.env = *env;
      break;
    }
    case Verb::extend: {
      if (auto s = want(2, 2); !s) return s.error();
      auto env = parse_env(positional[0]); if (!env) return env.error();
      cmd.env = *env;
      auto d = parse_duration(positional[1]); if (!d) return d.error();
      cmd.duration = *d;
      break;
    }
    case Verb::events: {
      if (auto s = want(0, 1); !s) return s.error();
      if (!positional.empty()) {
        auto env = parse_env(positional[0]); if (!env) return env.error();
        cmd.env = *env;
      }
      break;
    }
    case Verb::help: {
      if (auto s = want(0, 1); !s) return s.error();
      if (!positional.empty()) {
        auto t = verb_from_string(lower(positional[0]));
        if (!t) return bad("no help for unknown command '" + positional[0] + "'");
        cmd.topic = *t;
      }
      break;
    }
    case Verb::cancel:
    case Verb::approve:
    case Verb::deny: {
      if (auto s = want(1, 1); !s) return s.error();
      cmd.request = lower(positional[0]);
      if (cmd.request.rfind("q-", 0) != 0) return bad("'" + positional[0] + "' is not a request id (e.g. q-3, as `list` shows)");
      break;
    }
    case Verb::simulate: {
      if (auto s = want(2, 2); !s) return s.error();
      cmd.simulate_kind = lower(positional[0]);
      if (cmd.simulate_kind != "spot") return bad("simulate: only 'spot' can be simulated");
      cmd.node = NodeName{positional[1]};
      break;
    }
    default:
      if (auto s = want(0, 0); !s) return s.error();
  }
  return cmd;
}

}  // namespace runbot::bot
