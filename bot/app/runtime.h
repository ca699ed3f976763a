#pragma once
// The composition root's entry points: the only code that names concrete adapters, the Kafka
// clients and the provisioner backends. main.cpp parses the command line and calls one of these.
#include <optional>
#include <string>

namespace runbot::app {

struct RunOptions {
  std::string config_path;             // empty = embedded default (demo only)
  double speed = 1.0;                  // demo: the bot's clock runs this many times faster
  std::string user;                    // console user; empty = config or $USER
  std::optional<int> http_port;        // overrides the config
  std::optional<std::string> state_file;
  bool fresh = false;                  // ignore saved state
  bool console = false;                // `run`: also attach the console adapter
  bool with_provisioner = false;       // `run`: run the provisioner in-process too
  std::optional<std::string> log_level;
};

// `runbot demo`: console chat, in-process Kafka (unless kafka.brokers is set), demo provisioner.
int run_demo(const RunOptions& options);
// `runbot run --config FILE`: the bot against a real Kafka.
int run_bot(const RunOptions& options);
// `runbot provisioner --config FILE`: consumes jobs, runs the backend, emits lifecycle events.
int run_provisioner(const RunOptions& options);
// `runbot check-config FILE`: prints every problem, exit 0 when there is none; warnings (valid
// but risky settings, such as an http:// Mattermost server) are printed and do not fail it.
int check_config(const std::string& path);

}  // namespace runbot::app
