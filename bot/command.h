#pragma once
// The command grammar, one for every platform: "/ephemeral <verb> …", "@runbot <verb> …", a DM or a
// console line. parse_command() turns text into a typed Command or an Error whose message is a
// one-line reason; usage_of() gives the correct usage to show with it.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bot/environment.h"
#include "bot/result.h"

namespace runbot::bot {

enum class Verb {
  up, down, extend, suspend, resume, list, describe, status, nodes, events, usage, help,
  yes, no, simulate, let_expire, cancel, approve, deny
};
const char* to_string(Verb v);
std::optional<Verb> verb_from_string(std::string_view s);

struct Command {
  Verb verb = Verb::help;
  // up
  AppName app;
  int pr = 0;
  std::optional<Duration> ttl;
  std::string image;
  std::map<std::string, std::string> values;
  // down, extend, suspend, resume, describe, events
  EnvId env;
  // extend
  Duration duration{};
  // list
  bool mine = false;
  std::optional<AppName> filter_app;
  std::optional<EnvState> filter_state;
  // events
  std::optional<NodeName> node;
  std::optional<Duration> since;
  bool warnings = false;
  bool audit = false;       // events --audit
  // cancel, approve, deny: a queued or pending request id ("q-3")
  std::string request;
  // usage
  std::optional<TeamName> team;
  // help
  std::optional<Verb> topic;
  // simulate (demo only): "simulate spot <node>"
  std::string simulate_kind;
};

// Parses one command. Leading "/ephemeral", "ephemeral" and bot mentions ("@runbot", "<@U123>")
// are stripped. An Error's message says precisely what is wrong (unknown verb, missing or extra
// argument, bad duration, PR that is not a number, bad --set, unknown option).
Result<Command> parse_command(std::string_view text);

// "up <app> <pr> [--ttl 8h] [--image TAG] [--set k=v]…"
const char* usage_of(Verb v);
// One line describing what the verb does.
const char* summary_of(Verb v);
// Worked examples for `help <verb>`.
std::vector<std::string> examples_of(Verb v);
// The verbs listed by `help`, in order (hidden ones such as yes/no/simulate excluded).
const std::vector<Verb>& listed_verbs();

// The command a button click stands for, so clicks go through the same parsing and permission
// checks as typed commands. `action` and `value` are bot::Button's. Nullopt for link buttons
// ("open") and unknown actions.
std::optional<std::string> command_for_button(std::string_view action, std::string_view value);

// "pr-123", "PR-123", "#123", "123" -> 123.
Result<int> parse_pr(std::string_view text);

}  // namespace runbot::bot
