#pragma once
// MattermostSettings: what the Mattermost adapter needs from the configuration (config key
// `mattermost:`). See adapters/mattermost/README.md for each key.
#include <chrono>
#include <cstddef>
#include <string>

namespace runbot::mattermost {

struct MattermostSettings {
  // https://chat.example.com (REST at /api/v4, socket at wss://…/api/v4/websocket); or, inside a
  // cluster, http://mattermost.chat.svc:8065 (socket at ws://…; no TLS, the token in clear text).
  std::string server_url;
  std::string token;       // the bot account's access token (Bearer)
  std::string ca_file;     // PEM bundle to verify the server; empty = system default
  // Whether this replica holds the WebSocket. Mattermost sends every event to every socket, so
  // exactly one replica of a deployment may read; the others set false and only post.
  bool socket = true;
  // The custom slash command's token (Integrations → Slash Commands); empty = endpoint disabled.
  std::string slash_token;
  std::string slash_command = "/ephemeral";
  std::string slash_response_type = "ephemeral";  // or "in_channel"
  // Paths on runbot's HTTP server, and the public URL the Mattermost *server* POSTs button
  // clicks to (must be reachable from it; empty = buttons are rendered without integrations).
  std::string command_path = "/hooks/mattermost/command";
  std::string action_path = "/hooks/mattermost/action";
  std::string action_url;
  // Key for the HMAC in each button's context; empty = derived from `token`.
  std::string action_secret;
  // Mentions in channel threads are answered in the thread (visible) or ephemerally.
  bool ephemeral_mention_replies = false;
  std::chrono::milliseconds ping_interval{30000};     // client ping (the server pings every 60 s)
  std::chrono::milliseconds idle_timeout{100000};     // nothing at all for this long: reconnect
  std::chrono::milliseconds backoff_initial{3000};    // reconnect backoff: 3 s … 5 min, with jitter
  std::chrono::milliseconds backoff_max{300000};
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds request_timeout{10000};   // REST calls
  // A larger event is skipped (the socket stays open); its seq is lost, so runbot connects afresh
  // and catches up over REST, as after any gap.
  std::size_t max_event_bytes = std::size_t{4} << 20;
  std::size_t dedupe_capacity = 10000;                // post ids remembered
  // Identity lookups for role bindings by e-mail or group (README.md, "Who is asking"). Set by
  // the composition root from the policy (bot::identity_needs): GET /users/{id} for the e-mail;
  // team membership and Mattermost groups for groups. Both false: no lookups.
  bool lookup_email = false;
  bool lookup_groups = false;
  std::chrono::milliseconds identity_cache_ttl{600000};  // config `mattermost.identity_cache`
  std::chrono::milliseconds identity_deadline{2000};     // a slower lookup counts as failed
  std::size_t identity_cache_capacity = 10000;           // users remembered
};

}  // namespace runbot::mattermost
