#pragma once
// runbot's configuration: one YAML file, environment variable overrides, secrets from the
// environment (${VAR}) or mounted files (${file:/path}). load_config() validates everything and
// names every problem at once, each with its path in the file.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "adapters/mattermost/mattermost_settings.h"
#include "adapters/slack/slack_settings.h"
#include "adapters/teams/teams_settings.h"
#include "bot/outbox.h"
#include "bot/result.h"
#include "bot/settings.h"
#include "deploy/github_dispatch_backend.h"

namespace runbot::app {

struct KafkaConfig {
  std::string brokers;  // empty = the embedded broker (demo only)
  std::map<std::string, std::string> properties;  // passed through to librdkafka (SASL/TLS)
  std::string jobs_topic = "runbot.jobs";
  std::string events_topic = "runbot.events";
  std::string cluster_events_topic = "runbot.cluster-events";
  std::string audit_topic = "runbot.audit";
  std::string state_topic = "runbot.state";  // compacted; used when brokers are real
  std::string group_id = "runbot-bot";
  std::string provisioner_group_id = "runbot-provisioner";
  std::chrono::milliseconds session_timeout{45000};
};

struct ExecConfig {
  std::string program;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  bot::Duration timeout = std::chrono::minutes(15);
  bot::Duration kill_grace = std::chrono::seconds(10);
};

struct ProvisionerConfig {
  std::string backend = "demo";  // "exec", "github-dispatch" or "demo"
  size_t max_concurrent = 4;
  ExecConfig exec;
  deploy::GithubDispatchSettings github;  // provisioner.github, used by github-dispatch
  int demo_nodes = 4;
};

struct Config {
  std::string http_address = "127.0.0.1";
  int http_port = 8080;  // 0 = pick a free port; -1 = no HTTP server
  // Both set: the HTTP server speaks HTTPS (PEM chain, leaf first; PEM key). Both empty: plain.
  std::string http_tls_cert_file;
  std::string http_tls_key_file;
  KafkaConfig kafka;
  std::string state_file = "runbot-state.json";
  ProvisionerConfig provisioner;
  bot::BotSettings bot;
  bot::OutboxSettings outbox;
  std::string console_user;  // empty = $USER
  // What the console says about its user, for role bindings by e-mail and group (the console has
  // no directory to ask).
  std::string console_email;
  std::vector<std::string> console_groups;
  std::string nth_ingest_secret;  // enables POST /ingest/nth when set
  std::optional<slack::SlackSettings> slack;  // the Slack adapter, when `slack:` is configured
  bot::OutboxSettings slack_outbox{1.0, 4};   // Slack allows about 1 message per second per channel
  std::optional<mattermost::MattermostSettings> mattermost;  // the Mattermost adapter, when `mattermost:` is configured
  bot::OutboxSettings mattermost_outbox{5.0, 10};  // Mattermost's limit (when enabled) is 10 req/s per server
  std::optional<teams::TeamsSettings>
      teams;  // the Teams adapter, when `teams:` is configured and enabled
  // Teams allows 7 messages/s, 8/2 s, 60/30 s and 1800/h per conversation: 1.5/s with a burst of 5
  // stays inside the first three, a sliding hour of 1800 keeps the last (see
  // adapters/teams/README.md, "Limits").
  bot::OutboxSettings teams_outbox = [] {
    bot::OutboxSettings s{1.5, 5};
    s.window = std::chrono::hours(1);
    s.window_max = 1800;
    return s;
  }();
  std::string log_format = "text";
  std::string log_level = "info";
  // Valid but risky settings, each "path: why" (e.g. an http:// Mattermost server: the token
  // travels in clear text). They do not fail the load; check-config prints them and runbot logs
  // them at startup.
  std::vector<std::string> warnings;
};

// Problems found while loading: every one, each "path: what is wrong".
struct ConfigErrors {
  std::vector<std::string> problems;
};

// Parses and validates YAML text. `env` supplies ${VAR} values and RUNBOT_* overrides (pass the
// process environment in production, a map in tests).
bot::Result<Config> parse_config(const std::string& yaml, const std::map<std::string, std::string>& env,
                                 ConfigErrors* errors = nullptr);
bot::Result<Config> load_config(const std::string& path, const std::map<std::string, std::string>& env,
                                ConfigErrors* errors = nullptr);

// The embedded default used by `runbot demo`: console chat, embedded Kafka, demo provisioner,
// three sample apps.
const std::string& demo_config_yaml();

std::map<std::string, std::string> process_environment();

}  // namespace runbot::app
