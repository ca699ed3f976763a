#pragma once
// ExecBackend: runs a configured program (a script calling helm, kubectl, terraform...) per job:
//
//   <program> <args...> <verb> <env-id> <app.provisioner_args...>
//
// spawned directly with posix_spawn (never through a shell), in its own process group, stdin
// from /dev/null, with a clean environment: PATH and HOME from runbot, `settings.env`, the app's
// provisioner_env, then RUNBOT_VERB, RUNBOT_ENV, RUNBOT_APP, RUNBOT_PR, RUNBOT_NAMESPACE,
// RUNBOT_IMAGE, RUNBOT_VALUES (JSON object of --set values), RUNBOT_TTL_SECONDS,
// RUNBOT_EXPIRES_AT (RFC 3339), RUNBOT_REQUESTED_BY, RUNBOT_JOB_ID, RUNBOT_JANITOR_TTL ("8h") and
// RUNBOT_JANITOR_EXPIRES ("2026-11-26T20:00:00Z"), the kube-janitor annotation values.
//
// Its stdout and stderr share one pipe, read line by line in the order written. Progress lines
// (anything else is a log line, of which the last `log_tail_lines` are kept):
//   runbot:stage <name> [<i>/<n>] [message...]
//   runbot:url <url>
//   runbot:node <name> capacity=<spot|on-demand> type=<instance-type> zone=<zone>
// A stage name cannot contain spaces (use dashes). Exit status 0 is success.
//
// Timeout and cancel(): SIGTERM to the process group, SIGKILL after `kill_grace`.
//
// Threading: callbacks run on the io_context passed in (run it from one thread). The
// io_context must outlive the backend and every RunningJob; destroying a RunningJob before it
// finished kills the process group with SIGKILL and reaps it without further callbacks. Spawn
// failures are reported through on_done.
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "deploy/backend.h"

namespace boost::asio {
class io_context;
}

namespace runbot::deploy {

struct ExecSettings {
  std::string program;                     // absolute path, or a name looked up in PATH
  std::vector<std::string> args;           // before <verb> <env-id>
  std::map<std::string, std::string> env;  // extra environment for every job
  std::chrono::milliseconds timeout{std::chrono::minutes(15)};
  std::chrono::milliseconds kill_grace{std::chrono::seconds(10)};
  size_t log_tail_lines = 20;
};

// One parsed output line of the line protocol.
struct ProgressLine {
  enum class Type { log, stage, url, node };
  Type type = Type::log;
  std::string stage;
  int index = 0;
  int count = 0;
  std::string text;  // stage message, url, or the log line itself
  bot::NodeInfo node;
};
// Classifies one output line (without its newline). Malformed protocol lines are log lines.
ProgressLine parse_progress_line(std::string_view line);

class ExecBackend final : public Backend {
 public:
  ExecBackend(boost::asio::io_context& io, ExecSettings settings);
  ~ExecBackend() override;

  std::unique_ptr<RunningJob> start(const bot::Job& job, const bot::AppSpec& app,
                                    JobObserver observer) override;
  std::string kind() const override { return "exec"; }

  // The argv and environment a job would get (exposed for tests and `check-config`).
  std::vector<std::string> argv_for(const bot::Job& job, const bot::AppSpec& app) const;
  std::map<std::string, std::string> env_for(const bot::Job& job, const bot::AppSpec& app) const;

 private:
  boost::asio::io_context& io_;
  ExecSettings settings_;
};

}  // namespace runbot::deploy
