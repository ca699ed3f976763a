#pragma once
// MattermostAdapter: runbot in Mattermost over the WebSocket API (inbound), REST (outbound), and
// the custom slash command and interactive-button endpoints served on runbot's HTTP server,
// following chat-protocols.md §2. See adapters/mattermost/README.md for the data flow.
//
// Inbound (socket): at start GET /users/me gives the bot's id and username; then one socket to
// wss://<server>/api/v4/websocket (ws:// when server_url is http://), authenticated by the Authorization header on the upgrade (so
// it can resume) and by an authentication_challenge. Every event's `seq` is checked: a replayed
// one (seq below the next expected) is skipped, a gap closes the socket and starts afresh. On
// reconnect (capped exponential backoff with jitter) it asks to resume with connection_id and
// sequence_number = next seq; a lossless resume just continues, a `hello` with a new
// connection_id means events were lost, and the posts since the last one seen are fetched over
// REST for every channel the bot is in (a catch-up). Posts are deduplicated by id, so overlaps
// between replay, catch-up and the live stream are handled once. Posts that mention @<bot> in a
// channel, and every post in a DM, go to the handler; the bot's own, system and other bots' posts
// are ignored. Malformed events are logged and survived. An event over max_event_bytes is skipped
// and treated as a gap (fresh connection, catch-up over REST). With settings.socket false no
// socket is opened (another replica reads; see the README).
//
// Inbound (HTTP): handle_slash() serves the custom slash command (form POST): the token (header
// "Token …" or form field) is compared in constant time (mismatch → 401), the handler runs
// synchronously and its answer (answer_in_band) is returned as the JSON answer (extra parts in
// extra_responses). handle_action() serves button clicks: the context's HMAC is checked (bad →
// 401), the click becomes bot::command_for_button(action, value) with is_button = true, and the
// captured answer is returned as ephemeral_text.
//
// Outbound: post() renders with mattermost::render(); a new card (empty thread) is POST /posts
// whose id is the message id and thread root; replies set root_id = thread; edits use
// PUT /posts/{edit}/patch. Extra parts follow in the same thread; when a later part fails the
// error goes back to the outbox, whose retry (same delivery id) resumes at that part. Every part created for a request with a delivery_id carries it in its props
// (runbot_delivery_id, runbot_delivery_part). A maybe_delivered request that is not an edit is
// first looked for (GET /posts/{thread}/thread, or the channel's newest pages of
// GET /channels/{id}/posts): a part 0 by the bot with that delivery id is reported as
// already_there; when the lookup fails the message is posted anyway (at least once). Answers
// that are not in an HTTP response come through the outbox with PostRequest::reply_to: a mention
// is answered in its thread (or ephemerally, by setting), a DM in the DM, a late slash command
// through its response_url, anything else with an ephemeral post to the requester; so they are
// paced and retried on 429 and 5xx like every post.
//
// Who is asking: with settings.lookup_email/lookup_groups (derived from the policy), every inbound
// message waits for its user's e-mail (GET /users/{id}) and groups (names and ids of the bot's
// teams the user is in, plus Mattermost groups where the server allows) before it reaches the
// handler; cached per user for identity_cache_ttl, one lookup per user in flight, cut off at
// identity_deadline; a failed lookup delivers the message with identity_error set. A slash
// command or click from a user not in the cache gets an empty HTTP answer at once and the real
// one through response_url (slash) or an ephemeral post (click).
//
// Ownership and executor: built by the composition root with create(); borrows the io_context,
// which must outlive it. Everything runs on the io_context thread; handlers and post()
// completions never run inside post(). Destroying the adapter drops pending callbacks.
//
// Errors: create() fails (invalid_argument) on bad settings or an unreadable CA bundle. A
// rejected token (401/403 from users/me or the upgrade) is reported through on_started as
// unauthorized and stops reconnecting; REST errors are classified as in mattermost_rest.h.
// Tokens and button signatures are never logged.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "adapters/common/http_server.h"
#include "adapters/mattermost/mattermost_settings.h"
#include "bot/chat_adapter.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace runbot::mattermost {

struct MattermostStats {
  std::uint64_t events = 0;        // socket events received (replies and malformed included)
  std::uint64_t handled = 0;       // inbound messages given to the handler (HTTP ones included)
  std::uint64_t ignored = 0;       // posts deliberately not acted on
  std::uint64_t duplicates = 0;    // replayed events or posts already handled
  std::uint64_t malformed = 0;     // events that could not be parsed
  std::uint64_t oversized = 0;     // events over max_event_bytes, skipped (then a fresh connection and catch-up)
  std::uint64_t connects = 0;      // sockets opened
  std::uint64_t hellos = 0;        // hello events (fresh connections)
  std::uint64_t resumes = 0;       // reconnects that kept the connection_id (lossless resume)
  std::uint64_t gaps = 0;          // lost events detected (new connection_id or a seq gap)
  std::uint64_t catch_ups = 0;     // REST catch-ups completed
  std::uint64_t caught_up = 0;     // posts handled from a catch-up
  std::uint64_t slash_commands = 0;
  std::uint64_t actions = 0;
  std::uint64_t rejected = 0;      // slash commands or clicks refused (bad token/signature)
  std::uint64_t posts = 0;
  std::uint64_t post_failures = 0;
  std::uint64_t already_posted = 0;  // maybe_delivered posts found already there, not sent again
  std::uint64_t deferred = 0;      // slash commands/clicks answered after their HTTP response
  bool socket_open = false;
};

class MattermostAdapter final : public bot::ChatAdapter {
 public:
  // Validates `settings` (https:// or http:// server_url, token, a readable CA bundle) and builds
  // the adapter; nothing is sent before start(). With an http:// server_url every call, the
  // socket (ws://) and response_urls go without TLS and the token travels in clear text; with
  // https:// plain text is refused throughout.
  static bot::Result<std::unique_ptr<MattermostAdapter>> create(boost::asio::io_context& io, MattermostSettings settings);
  ~MattermostAdapter() override;
  MattermostAdapter(const MattermostAdapter&) = delete;
  MattermostAdapter& operator=(const MattermostAdapter&) = delete;

  std::string platform() const override { return "mattermost"; }
  void start(InboundHandler handler) override;
  // Registers the startup callback: ok once users/me succeeded and (with a socket) the socket is
  // open; unauthorized (not retryable: the caller should exit) for a rejected token; a retryable
  // error when the server could not be reached at the first attempt (it keeps trying).
  void on_started(std::function<void(bot::Status)> started);
  void post(bot::PostRequest request, std::function<void(bot::Result<bot::PostResult>)> done) override;
  // Slash commands and clicks being handled right now carry their answer in the HTTP response.
  bool answer_in_band(const bot::InboundMessage& to, const bot::Message& message) override;
  // Closes the socket and stops reconnecting; posts in flight still complete.
  void stop() override;
  bool healthy() const override;
  // Why the adapter is unhealthy, one line for /readyz ("" when healthy).
  std::string problem() const;
  MattermostStats stats() const;
  std::string bot_user_id() const;

  // The HTTP endpoints (synchronous, on the io_context thread).
  common::HttpResponse handle_slash(const common::HttpRequest& request);
  common::HttpResponse handle_action(const common::HttpRequest& request);
  // Routes POST settings.command_path (when a slash_token is set) and settings.action_path to the
  // handlers above. The adapter must outlive the server's use of the routes.
  void route(common::HttpServer& server);

  struct Impl;

 private:
  explicit MattermostAdapter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace runbot::mattermost
