#pragma once
// TeamsAdapter: runbot in Microsoft Teams through the Bot Framework (chat-protocols.md §3). See
// adapters/teams/README.md for the data flow.
//
// Inbound: POST settings.adapter.messaging_path (default /api/messages) on runbot's HTTP server,
// an asynchronous route (live before start(): early activities are held, see route()). For every
// request, before anything else is trusted, just enough JSON is
// read to get channelId and serviceUrl (a body that is not JSON gets 400) and the Authorization
// header is checked by JwtValidator: unauthorized → 401, keys unavailable → 503 (the Bot Connector
// retries), each with one log line that never contains the token. Then the activity is parsed
// (malformed → 400), its serviceUrl is trusted for the bot's token, its conversation reference is
// stored or refreshed, and it is deduplicated by activity id + conversation id for dedupe_ttl
// (Teams redelivers after 15 s; a duplicate gets 200 and nothing else):
// - message: 200 at once, then handled on the next loop turn: text without the bot mention is a
//   command; an Action.Submit click (`value` {action, value}) is bot::command_for_button with
//   is_button = true. Personal chats, group chats and channel threads alike.
// - invoke adaptiveCard/action (an Action.Execute click): the command runs at once and the answer
//   is the HTTP body, {"statusCode":200,"type":"application/vnd.microsoft.activity.message",
//   "value":"<reply>"}. A reply with buttons (the teardown confirmation) is also posted as a card
//   into the conversation, since a toast cannot carry buttons. Errors use
//   application/vnd.microsoft.error.
// - conversationUpdate with the bot in membersAdded: the reference is kept and a hello (with the
//   channel id to put in the config) is posted there.
// - installationUpdate and every other type: 200, nothing else.
//
// Outbound: post() needs a stored conversation reference for the channel (captured from an
// activity there: install the app, mention the bot once; otherwise invalid_argument naming the
// channel). A new thread in a channel is a proactive POST v3/conversations whose id
// "<channel>;messageid=<root>" is the thread id; replies in a thread are sent to that thread
// conversation; personal and group chats get every message in the conversation itself; an edit is
// a PUT of the activity. Errors come from BotConnector (rate_limited/unavailable retryable);
// 403 MessageWritesBlocked marks the reference blocked (stored, logged) and later posts there fail
// with invalid_argument at once, until someone writes to the bot there again. An answer that is
// not in an invoke response comes through the outbox (PostRequest::reply_to) and is posted in the
// conversation and thread the command came from, paced and retried like every post.
//
// Who is asking: with settings.adapter.lookup_email (derived from the policy), every message and
// invoke gets its sender's e-mail address (InboundMessage::user_email) before it reaches the
// handler, from the Bot Connector's GET v3/conversations/{conversation}/members/{user} (`email`,
// else a userPrincipalName with an '@'); cached per user for identity_cache_ttl, one lookup per
// user in flight, cut off at identity_deadline (≤ 3 s, so an uncached invoke still answers within
// Teams' 5 s). A failed lookup sets identity_error, which denials name. Groups are never looked
// up (Entra groups need Microsoft Graph): group bindings do not match Teams users.
//
// References are persisted through the ReferenceStore callbacks (the composition root wires them
// to Bot::adapter_state, keys "teams/conv/<conversation id>"): start() loads them and trusts each
// stored serviceUrl, so proactive notifications work right after a restart.
//
// Ownership and executor: built by the composition root with create(); borrows the io_context,
// which must outlive it. Everything runs on the io_context thread. The inbound handler never runs
// inside post() or route(). Destroying the adapter drops pending callbacks.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "adapters/common/http_server.h"
#include "adapters/teams/teams_settings.h"
#include "bot/chat_adapter.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace runbot::teams {

struct TeamsStats {
  std::uint64_t requests = 0;     // POSTs to the messaging endpoint
  std::uint64_t rejected = 0;     // refused by the JWT check (401)
  std::uint64_t unavailable = 0;  // answered 503 because signing keys could not be had
  std::uint64_t early_held = 0;     // arrived before start() (or behind such ones) and were held
  std::uint64_t early_refused = 0;  // 503: held past early_hold / the invoke deadline, or over
                                    // early_capacity, or still held at stop()
  std::uint64_t malformed = 0;    // 400: not JSON or not an activity
  std::uint64_t duplicates = 0;   // redelivered activities
  std::uint64_t handled = 0;      // inbound messages given to the handler
  std::uint64_t invokes = 0;      // adaptiveCard/action invokes answered
  std::uint64_t deferred_invokes = 0;  // invokes that waited for their user's e-mail lookup
  std::uint64_t installs = 0;     // conversationUpdates that added the bot
  std::uint64_t ignored = 0;      // other activity types
  std::uint64_t posts = 0;
  std::uint64_t post_failures = 0;
  std::uint64_t blocked = 0;  // 403 MessageWritesBlocked seen
  std::uint64_t name_lookups = 0;  // conversation members asked for a mentioned user's name
};

class TeamsAdapter final : public bot::ChatAdapter {
 public:
  // Where conversation references live between restarts.
  struct ReferenceStore {
    // Every stored entry as (key, value); keys start with "teams/conv/".
    std::function<std::vector<std::pair<std::string, std::string>>()> load;
    std::function<void(const std::string& key, const std::string& value)> save;
  };

  // Validates `settings` (app id, password, tenant, https URLs, a readable CA bundle, a path
  // starting with '/') and builds the adapter; nothing is sent before start(). Errors:
  // invalid_argument naming every problem.
  static bot::Result<std::unique_ptr<TeamsAdapter>> create(boost::asio::io_context& io,
                                                           TeamsSettings settings);
  ~TeamsAdapter() override;
  TeamsAdapter(const TeamsAdapter&) = delete;
  TeamsAdapter& operator=(const TeamsAdapter&) = delete;

  // Before start(): how references are loaded and saved. Without one they live in memory only.
  void set_reference_store(ReferenceStore store);

  std::string platform() const override { return "teams"; }
  // Loads stored references (trusting their service URLs) and fetches the signing keys ahead of
  // the first activity, then hands on the activities that arrived before it (see route()), in
  // arrival order, on the next loop turn.
  void start(InboundHandler handler) override;
  void post(bot::PostRequest request,
            std::function<void(bot::Result<bot::PostResult>)> done) override;
  // An invoke being handled right now carries its answer in the HTTP body (an answer with
  // buttons is also posted: returns false for it).
  bool answer_in_band(const bot::InboundMessage& to, const bot::Message& message) override;
  // Activities that arrive after stop(), or are still held from before start(), get 503; posts in
  // flight still complete.
  void stop() override;
  bool healthy() const override;
  // Why the adapter is unhealthy, one line for /readyz ("" when healthy).
  std::string problem() const;
  TeamsStats stats() const;
  // Whether a conversation reference is known for `conversation` (a channel or chat id).
  bool has_reference(const std::string& conversation) const;

  // Routes POST settings.adapter.messaging_path to the adapter. The route may be live before
  // start(): an activity that arrives before it has its token checked at once (401 right away
  // for a bad one) and is held until start() gives the handler; what arrives after start() while
  // held ones are still waiting queues behind them, so activities reach the handler in arrival
  // order. Bounds: at most settings.adapter.early_capacity held (more get 503 at once), each for
  // at most early_hold (then 503); an invoke is answered within early_invoke_deadline of its
  // arrival (503 when its command has not answered by then, and the command then does not run).
  // Each 503 is logged once. The route holds only a weak reference: once the adapter is
  // destroyed, activities get 503.
  void route(common::HttpServer& server);

  struct Impl;

 private:
  explicit TeamsAdapter(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace runbot::teams
