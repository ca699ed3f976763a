#pragma once
// SlackSettings: what the Slack adapter needs from the configuration (config key `slack:`).
#include <chrono>
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
};

}  // namespace runbot::slack
