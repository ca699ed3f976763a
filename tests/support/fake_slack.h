#pragma once
// FakeSlack: a loopback Slack for component tests and the benchmark (chat-protocols.md §1).
// HTTPS and WSS on 127.0.0.1, port 0, with a certificate from TestCa:
//
//   POST /api/apps.connections.open  app token → {"ok":true,"url":"wss://127.0.0.1:<port>/link/?ticket=…"}
//   GET  /link/?ticket=…             the Socket Mode socket (single-use ticket); sends hello
//   POST /api/auth.test              bot token → user_id, team
//   POST /api/chat.postMessage | chat.update | chat.postEphemeral
//   POST /respond/<id>               a response_url
//   POST /api/conversations.history | conversations.replies   (form fields channel, ts, limit,
//        cursor, include_all_metadata) over the messages posted so far, newest first / root first,
//        with each message's `metadata` only when include_all_metadata=true (as Slack does); at
//        most `limit` per page (default 100 / 1000, at most 1000), has_more and
//        response_metadata.next_cursor for the rest
//   POST /api/users.info             form `user=U…` → the user object; profile.email only with the
//                                    users:read.email scope; missing_scope without users:read;
//                                    user_not_found for an unknown id
//   POST /api/usergroups.list        form (include_users=true adds `users`) → every user group;
//                                    missing_scope without usergroups:read; plan_upgrade_required
//                                    when the workspace has no user groups
//
// Scopes are in FakeSlackSettings::scopes; users and user groups are added with add_user() and
// add_usergroup(). users.info and usergroups.list do not accept JSON bodies (a JSON body is a
// problem), as Slack documents.
//
// Wrong or missing tokens get ok:false invalid_auth / not_authed (HTTP 200, as Slack does).
// fail_next()/rate_limit_next()/fail_status_next() inject ok:false errors, HTTP 429 with
// Retry-After and other HTTP statuses (method "response_url" for response_url posts); delay_next() holds a method's answer back for a while.
//
// It records everything runbot sends (acks per socket with their latency, Web API calls,
// response_url posts) and checks payload shapes against §1: an ack must be a JSON object whose
// envelope_id was delivered on that same socket, a payload only where accepts_response_payload
// was true, chat.* bodies need channel and text/blocks, thread_ts and chat.update's ts must name
// a message it returned. Every violation is appended to `problems` (tests assert it stays empty).
//
// Ownership and executor: borrows an io_context (it may be the test's own, or one run by another
// thread for the benchmark); every method must be called on that io_context's thread.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/tls_test_ca.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace runbot::testing {

struct FakeSlackSettings {
  std::string app_token = "xapp-1-test";
  std::string bot_token = "xoxb-test";
  std::string bot_user_id = "UBOT";
  std::string team = "acme";
  std::string app_id = "A0001";
  bool send_hello = true;
  // The bot token's scopes (checked by users.info and usergroups.list only).
  std::set<std::string> scopes{"chat:write", "commands", "app_mentions:read", "im:history",
                               "users:read", "users:read.email", "usergroups:read"};
  bool usergroups_plan = true;  // false: usergroups.list answers plan_upgrade_required
  // As Slack does: when a socket ends, the envelopes it delivered that were not acknowledged are
  // sent again, with the same envelope_id, on another open socket (or the next one to say hello).
  bool redeliver_unacked = true;
  // Every N-th ack that reaches the fake is lost with its socket: the fake drops the socket
  // (no close frame) as if it died before the ack got through, so the envelope is redelivered
  // (0 = never).
  int lose_ack_and_drop_every = 0;
};

struct FakeEnvelopeOptions {
  std::string envelope_id;      // empty = a fresh one
  int retry_attempt = 0;
  std::string retry_reason;
  std::optional<bool> accepts_response_payload;  // default: true for slash_commands only
  std::string trigger_id;       // slash commands and clicks; empty = a fresh one
};

class FakeSlack {
 public:
  using Clock = std::chrono::steady_clock;

  struct Ack {
    int socket = 0;
    std::string envelope_id;
    bool has_payload = false;
    nlohmann::json payload;
    Clock::duration latency{};  // from writing the envelope to reading its ack
  };
  struct ApiCall {
    std::string method;           // "chat.postMessage", "auth.test", "apps.connections.open", ...
    nlohmann::json body;          // parsed JSON body (null for form bodies)
    std::map<std::string, std::string> form;  // decoded form fields (form bodies)
    int status = 200;             // what the fake answered
    std::string error;            // ok:false error it answered, if any
    std::string ts;               // ts it returned for chat.* calls
  };
  struct Response {
    std::string id;               // /respond/<id>
    nlohmann::json body;
  };
  using EnvelopeOptions = FakeEnvelopeOptions;

  FakeSlack(boost::asio::io_context& io, const TestCa& ca, FakeSlackSettings settings = {});
  ~FakeSlack();
  FakeSlack(const FakeSlack&) = delete;
  FakeSlack& operator=(const FakeSlack&) = delete;

  // Binds 127.0.0.1:0 and starts accepting; returns the port. Throws on failure.
  std::uint16_t start();
  void stop();
  std::string api_base_url() const;                    // https://127.0.0.1:<port>/api
  std::string response_url(const std::string& id) const;

  // ---- Socket Mode ----
  // Ids of sockets that are open and got hello, oldest first.
  std::vector<int> open_sockets() const;
  int sockets_accepted() const;
  // Sends an envelope on `socket` (-1: the newest open socket); returns its envelope_id.
  std::string send_envelope(int socket, const std::string& type, nlohmann::json payload, EnvelopeOptions opts = {});
  std::string send_slash(int socket, const std::string& text, const std::string& user = "U0002",
                         const std::string& channel = "C0003", const std::string& user_name = "alice",
                         EnvelopeOptions opts = {});
  std::string send_mention(int socket, const std::string& text, const std::string& user = "U0002",
                           const std::string& channel = "C0003", const std::string& event_id = "",
                           EnvelopeOptions opts = {});
  std::string send_dm(int socket, const std::string& text, const std::string& user = "U0002",
                      const std::string& channel = "D0004", const std::string& event_id = "", EnvelopeOptions opts = {});
  std::string send_block_action(int socket, const std::string& action_id, const std::string& value,
                                const std::string& user = "U0002", const std::string& channel = "C0003",
                                EnvelopeOptions opts = {});
  void send_raw(int socket, std::string text);
  void send_disconnect(int socket, const std::string& reason);
  void ping(int socket);
  // Abrupt: TCP closed without a close frame or TLS close_notify; unacked envelopes are then
  // redelivered (see redeliver_unacked).
  void drop(int socket);
  void close(int socket);  // clean close, code 1000

  // ---- Web API failure injection ----
  void fail_next(const std::string& method, const std::string& error, int count = 1);
  void rate_limit_next(const std::string& method, int retry_after_seconds, int count = 1);
  void fail_status_next(const std::string& method, int http_status, int count = 1);
  void delay_next(const std::string& method, std::chrono::milliseconds delay, int count = 1);

  // ---- the workspace's people ----
  void add_user(const std::string& id, const std::string& email, const std::string& name = "");
  void add_usergroup(const std::string& id, const std::string& handle, std::vector<std::string> members);
  void set_scope(const std::string& scope, bool granted);  // as if the app were reinstalled

  // ---- records ----
  std::vector<Ack> acks;
  std::vector<ApiCall> calls;
  std::vector<Response> responses;
  std::vector<std::string> problems;
  int pings_from_client = 0;
  int redelivered = 0;   // envelopes sent again after their socket ended unacked
  int lost_acks = 0;     // acks lost with their socket (lose_ack_and_drop_every)
  std::function<void(const Ack&)> on_ack;  // called for each ack (the benchmark)

  std::vector<ApiCall> calls_to(const std::string& method) const;
  // Messages chat.postMessage created (what a channel would show), in posting order.
  struct Posted {
    std::string channel, ts, thread_ts, text;
    nlohmann::json metadata;      // as posted (null when none)
  };
  std::vector<Posted> posted;
  int acks_for(const std::string& envelope_id) const;
  const Ack* ack_for(const std::string& envelope_id) const;
  int connections_opened() const;          // successful apps.connections.open calls
  std::map<int, int> acks_per_socket() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace runbot::testing
