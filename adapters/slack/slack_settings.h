#pragma once
// SlackSettings: what the Slack adapter needs from the configuration (config key `slack:`).
#include <chrono>
#include <cstddef>
#include <string>

namespace runbot::slack {

struct SlackSettings {
  std::string app_token;   // xapp-…: apps.connections.open (Socket Mode)
  std::string bot_token;   // xoxb-…: Web API calls
  std::string api_base_url = "https://slack.com/api";  // tests point it at a local fake
  std::string ca_file;     // PEM bundle to verify the server; empty = system default
  int connections = 2;     // Socket Mode connections held at once (Slack allows up to 10)
  std::chrono::milliseconds ping_interval{10000};      // client ping on each socket
  std::chrono::milliseconds idle_timeout{30000};       // reconnect when nothing arrived for this long
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{30000};
  std::chrono::milliseconds request_timeout{10000};    // Web API calls
  std::string slash_command = "/ephemeral";
  // Added for the transport (adapters/slack/README.md):
  std::chrono::milliseconds connect_timeout{10000};    // apps.connections.open → hello
  std::string slash_response_type = "ephemeral";       // "ephemeral" or "in_channel" for slash answers
  // A larger Socket Mode frame is skipped (logged, counted in SlackStats::oversized); the socket
  // stays open. Slack's payloads for big messages and views reach a MiB and more.
  std::size_t max_message_bytes = std::size_t{16} << 20;
  std::size_t dedupe_capacity = 10000;                 // envelope/event/trigger ids remembered for dedupe
  std::size_t ack_memory_bytes = std::size_t{2} << 20; // ack payloads remembered to answer redeliveries
  // After a refresh, how long the old socket stays open (still acking) once its replacement said
  // hello, unless Slack closes it first. Slack sends `warning` about 10 s before it closes.
  std::chrono::milliseconds retire_grace{10000};
  // Identity lookups for role bindings by e-mail or group (adapters/slack/README.md, "Who is
  // asking"). Set by the composition root from the policy (bot::identity_needs), not by hand:
  // users.info for the e-mail (scopes users:read, users:read.email), usergroups.list for groups
  // (usergroups:read). Both false: no lookups, every message is handled at once.
  bool lookup_email = false;
  bool lookup_groups = false;
  std::chrono::milliseconds identity_cache_ttl{600000};  // config `slack.identity_cache`
  std::chrono::milliseconds identity_deadline{2000};     // a slower lookup counts as failed
  std::size_t identity_cache_capacity = 10000;           // users remembered
};

}  // namespace runbot::slack
