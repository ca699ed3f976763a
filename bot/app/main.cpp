// runbot's command line. Everything else lives in runtime.cpp.
#include <iostream>

#include <CLI/CLI.hpp>

#include "bot/app/runtime.h"

int main(int argc, char** argv) {
  CLI::App cli{"runbot: per-pull-request environments on Kubernetes, from chat"};
  cli.require_subcommand(1);
  runbot::app::RunOptions opts;
  std::string check_path;
  std::optional<int> port;

  auto add_common = [&](CLI::App* sub) {
    sub->add_option("--http-port", port, "HTTP port for /healthz, /readyz, /metrics (0 = any free port, -1 = none)");
    sub->add_option("--state-file", opts.state_file, "where the registry is saved between runs");
    sub->add_option("--log-level", opts.log_level, "trace, debug, info, warn, error")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  };

  auto* demo = cli.add_subcommand("demo", "console chat + in-process Kafka + demo provisioner, nothing else needed");
  demo->add_option("--config", opts.config_path, "YAML config instead of the embedded default")->check(CLI::ExistingFile);
  demo->add_option("--speed", opts.speed, "run the clock N times faster (TTLs and stages play out in seconds)")
      ->check(CLI::Range(0.01, 100000.0));
  demo->add_option("--user", opts.user, "who you are in the console (default: $USER)");
  demo->add_flag("--fresh", opts.fresh, "start with no saved environments");
  add_common(demo);

  auto* run = cli.add_subcommand("run", "the bot against a real Kafka cluster");
  run->add_option("--config", opts.config_path, "YAML config")->required()->check(CLI::ExistingFile);
  run->add_flag("--console", opts.console, "also take commands from this terminal");
  run->add_flag("--with-provisioner", opts.with_provisioner, "run the provisioner in this process too");
  run->add_option("--user", opts.user, "who you are in the console");
  add_common(run);

  auto* prov = cli.add_subcommand("provisioner", "consume jobs from Kafka and run the configured backend");
  prov->add_option("--config", opts.config_path, "YAML config")->required()->check(CLI::ExistingFile);
  add_common(prov);

  auto* check = cli.add_subcommand("check-config", "validate a YAML config and name every problem");
  check->add_option("file", check_path, "the YAML config")->required();

  CLI11_PARSE(cli, argc, argv);
  opts.http_port = port;
  if (*demo) return runbot::app::run_demo(opts);
  if (*run) return runbot::app::run_bot(opts);
  if (*prov) return runbot::app::run_provisioner(opts);
  if (*check) return runbot::app::check_config(check_path);
  return 2;
}
