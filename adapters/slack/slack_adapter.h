#pragma once
// SlackAdapter: runbot in Slack over Socket Mode (inbound) and the Web API (outbound), following
// chat-protocols.md §1. See adapters/slack/README.md for the data flow.
//
// Inbound: holds `settings.connections` Socket Mode sockets (apps.connections.open with the app
// token, then wss). Every envelope is acked on the socket that delivered it before any work;
// slash commands are answered in the ack itself: the handler runs synchronously and the answer
// it gives (answer_in_band) is rendered into the ack payload (`response_type` from settings); an
// answer longer than one part goes through the outbox to response_url instead. events_api
// (app_mention, DMs) and interactive (block_actions → bot::command_for_button, is_button = true)
// are acked, then handled; their answers go through the outbox (PostRequest::reply_to) to
// response_url (buttons), chat.postMessage (DMs) or chat.postEphemeral in the mention's thread
// (thread_ts = the mention's thread, or the mention itself), so every answer is retried on 429
// and 5xx. Redeliveries are answered again and run once: the ack each envelope got is remembered
// by envelope_id, and by trigger_id for slash commands and clicks (Slack may deliver one again
// under a new envelope_id when the first ack was late), so a redelivery gets the same ack
// payload; events are also deduped by event_id (last `dedupe_capacity` ids, acks up to
// `ack_memory_bytes`). The bot's own messages, other bots' and message
// subtypes are ignored. Malformed frames, unknown types and oversized frames are logged and
// survived: a frame over settings.max_message_bytes (16 MiB) is skipped and counted, unacked (an
// Events API envelope comes again), and its socket goes on delivering and acking the rest.
//
// Connections: `disconnect` warning/refresh_requested opens a replacement first; the old socket
// keeps delivering and acking until Slack closes it, or until `retire_grace` after the
// replacement's hello, when runbot closes it (a close frame would make later envelopes
// unackable). `link_disabled` stops reconnecting, makes healthy() false and problem() say why. Any other
// close reconnects with capped exponential backoff and jitter (backoff_initial … backoff_max),
// honouring Retry-After from apps.connections.open. A socket silent for idle_timeout is replaced.
//
// Outbound: post() renders with slack::render(); a new card (empty thread) is a channel-level
// chat.postMessage whose ts is the message id and thread root; replies use thread_ts = thread;
// edits use chat.update on `edit`. Message ids are Slack `ts` strings (the channel is always in
// the PostRequest). Extra rendered parts follow in order in the same thread; when a later part
// fails, the error goes back to the outbox and its retry (same delivery id) resumes at that part,
// so nothing is lost and nothing is posted twice.
//
// Who is asking: with settings.lookup_email/lookup_groups (derived from the policy), every
// inbound message waits for its user's e-mail (users.info) and groups (usergroups.list, handles
// and ids) before it reaches the handler; answers are cached per user for identity_cache_ttl,
// one lookup per user in flight, a slower lookup than identity_deadline or a failed one
// delivers the message with identity_error set. A slash command from a user not in the cache is
// acked empty at once and answered through its response_url. Without lookups nothing waits.
//
// Ownership and executor: built by the composition root with create(); borrows the io_context,
// which must outlive it. Everything runs on the io_context thread; handlers and post()
// completions run on it and never inside a call. Destroying the adapter drops pending callbacks.
//
// Errors: create() fails (invalid_argument) on bad settings or an unreadable CA bundle.
// start_checked() reports whether Slack accepted the tokens. Web API errors are classified as in
// slack_web_api.h; an unauthorized one also shows in problem() until a later call succeeds.
// Tokens, ticket URLs and response_urls are never logged.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "adapters/slack/slack_settings.h"
#include "bot/chat_adapter.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace runbot::slack {

struct SlackStats {
  std::uint64_t envelopes = 0;       // envelopes received (duplicates included)
  std::uint64_t acks = 0;            // acks queued on a socket
  std::uint64_t duplicates = 0;      // envelopes acked but not handled again
  std::uint64_t handled = 0;         // inbound messages given to the handler
  std::uint64_t ignored = 0;         // envelopes acked and deliberately ignored
  std::uint64_t malformed = 0;       // frames that were not valid Socket Mode frames
  std::uint64_t unknown = 0;         // frames of a type runbot does not handle
  std::uint64_t oversized = 0;       // frames over max_message_bytes, skipped (socket kept)
  std::uint64_t connects = 0;        // sockets that reached hello
  std::uint64_t refreshes = 0;       // disconnect warning/refresh_requested handled
  std::uint64_t open_sockets = 0;    // sockets open now (hello received)
  std::uint64_t posts = 0;           // post() calls
  std::uint64_t post_failures = 0;   // post() calls that ended with an error
  std::uint64_t already_posted = 0;  // maybe_delivered posts found in the channel, not sent again
  std::uint64_t identity_waits = 0;  // inbound messages that waited for (or used) the identity cache
  std::uint64_t deferred = 0;        // slash commands acked empty, answered through response_url
  std::uint64_t answered_again = 0;  // redeliveries acked again with the first delivery's answer
};

class SlackAdapter final : public bot::ChatAdapter {
 public:
  // Validates `settings` (tokens present with the right prefixes, 1 ≤ connections ≤ 10,
  // a readable CA bundle) and builds the adapter; nothing is sent before start().
  static bot::Result<std::unique_ptr<SlackAdapter>> create(boost::asio::io_context& io, SlackSettings settings);
  ~SlackAdapter() override;
  SlackAdapter(const SlackAdapter&) = delete;
  SlackAdapter& operator=(const SlackAdapter&) = delete;

  std::string platform() const override { return "slack"; }
  // start_checked(handler, nullptr): failures are logged and show in healthy()/problem().
  void start(InboundHandler handler) override;
  // Calls auth.test (bot token) and opens the sockets (app token). `started` runs once: ok after
  // auth.test succeeded and the first socket said hello; an error naming the rejected token
  // (unauthorized, not retryable: the caller should exit); or a retryable error when Slack could
  // not be reached at the first attempt (the adapter keeps trying in the background).
  // A null handler keeps the current one; calling it again (bot::Bot::attach calls start()) only
  // replaces the handler.
  void start_checked(InboundHandler handler, std::function<void(bot::Status)> started);
  // Registers the startup callback alone (before or after start; if the outcome is already known
  // it runs soon, from the io_context). Lets main use bot::Bot::attach() and still check tokens.
  void on_started(std::function<void(bot::Status)> started);
  void post(bot::PostRequest request, std::function<void(bot::Result<bot::PostResult>)> done) override;
  // The answer to the slash command being handled rides in its ack when it fits one part.
  bool answer_in_band(const bot::InboundMessage& to, const bot::Message& message) override;
  // Closes the sockets (code 1000) and stops reconnecting; posts in flight still complete.
  void stop() override;
  // Started, not stopped, Socket Mode not disabled, no credential problem, ≥ 1 socket open.
  bool healthy() const override;
  // Why the adapter is unhealthy, one line for /readyz ("" when healthy).
  std::string problem() const;
  SlackStats stats() const;
  // The bot's own user id (from auth.test), once known.
  std::string bot_user_id() const;

  struct Impl;

 private:
  explicit SlackAdapter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace runbot::slack
