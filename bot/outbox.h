#pragma once
// Outbox: per-channel delivery queues between the announcer and the chat adapters.
//
// - Order: one message in flight per channel, FIFO, so an environment's thread reads in order.
// - Threads: the first message for an environment in a channel posts its status card (the thread
//   root); later card updates edit it in place; replies go into its thread.
// - Rate limits: a token bucket per channel (Slack allows about 1 message/s per channel), a peer's
//   Retry-After, and capped exponential backoff on retryable errors. Nothing is dropped for being
//   slow: messages wait.
// - Coalescing: a card update that is still queued is replaced by a newer one for the same card;
//   when a channel's queue is longer than `coalesce_after`, a routine reply (progress, update,
//   requested, queued, warnings) or a storm notice (interruption, recovered) for an environment
//   is merged into that environment's newest queued reply if it is of those kinds too, which then
//   goes out as one digest listing every update in order, with every mention and the highest
//   severity of its parts (at most `digest_max` parts: a full digest takes no more, so neither
//   a message nor the work per merge grows without bound). Likewise the on-call channel's interruption summaries become one
//   digest listing every node and its environments. Ready, failed, expiry and other notices with
//   buttons always stand alone. A queued lazy card absorbs later refreshes of the same card.
//   Nothing is dropped, and a backlog stays bounded by the environments, not the events.
// - Keyed replies: a reply with a key (e.g. grouped warnings) is posted once in the thread and
//   edited in place afterwards, like the card.
// - Answers: a command's answer that does not ride in-band (answer()) waits in a lane of its own
//   in the asker's channel, ahead of the channel's announcements: it waits at most for the one
//   message in flight there, never behind a backlog of digests. Answers keep their order, are
//   never merged, have a token bucket of their own (answers_per_second, answer_burst), share the
//   channel's Retry-After block and hourly window, and are not held for a snapshot (the command
//   they answer is not read again after a crash). After answer_max_attempts failed tries they
//   are given up on (logged with the reason and counted).
// - Permanent errors (unauthorized, invalid_argument) are logged and counted
//   (runbot_messages_failed_total{platform,reason}), and the queue moves on.
// - Journal: what is queued (and which message was in flight) goes into the bot's state snapshot
//   (journal()/restore_journal()), so a crash loses nothing that was announced. Each message has
//   a delivery id that survives restarts; the one in flight at the crash is sent again flagged
//   maybe_delivered, and adapters that can find it by that id (Slack) do not post it twice.
//   With hold_until_durable (the bot turns it on when it has a state store) a new message is not
//   sent before a snapshot holding it is durable (release_through()): otherwise a crash after
//   sending it but before the snapshot would announce its cause again when the input is re-read.
//   For the same reason a reply merged into a queued digest holds that digest back again until a
//   snapshot with the new content is durable. A maybe_delivered message is never changed (no
//   merge, no newer card or count in its place): if the lookup finds it, that is the end of it, so
//   newer content goes into a message of its own (for cards and keyed replies, an edit).
//
// Driven by an injected Clock (real time; the demo's speed-up does not apply to rate limits).
// Used on the bot's executor only.
#include <deque>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "bot/chat_adapter.h"
#include "bot/clock.h"
#include "bot/metrics.h"

namespace runbot::bot {

struct OutboxSettings {
  double messages_per_second = 1.0;  // per channel
  double burst = 4;                  // tokens a quiet channel may spend at once
  Duration retry_base = std::chrono::seconds(1);
  Duration retry_max = std::chrono::seconds(60);
  size_t coalesce_after = 3;         // queued messages in a channel before replies are merged
  size_t digest_max = 50;            // parts in one digest; a full digest takes no more
  // A second, long limit per channel on top of the bucket: at most `window_max` posts and edits in
  // any `window` (a sliding window; 0 = none). Teams: 1800 per hour per conversation.
  Duration window{};
  size_t window_max = 0;
  // The answer lane (see "Answers" above).
  double answers_per_second = 10.0;  // per channel
  double answer_burst = 20;
  int answer_max_attempts = 10;      // tries of one answer before it is given up on (0 = no limit)
};

class Outbox {
 public:
  // Called when a status card was posted, so its id can be kept across restarts.
  using CardPosted = std::function<void(const EnvId&, const std::string& platform, const ChannelId&,
                                        const std::string& card_id)>;

  Outbox(OutboxSettings settings, Clock& clock, Metrics& metrics);

  // Per-platform settings override (Teams allows more than Slack).
  void set_platform_settings(const std::string& platform, OutboxSettings settings);
  void add_adapter(ChatAdapter& adapter);
  void on_card_posted(CardPosted cb) { card_posted_ = std::move(cb); }
  // Tells the outbox about a card that already exists (restored from state).
  void known_card(const std::string& platform, const ChannelId& channel, const EnvId& env, std::string card_id);

  // Posts or edits `env`'s status card in `channel`.
  void card(const std::string& platform, const ChannelId& channel, const EnvId& env, Message card);
  // The same, rendered only when it is sent (through the renderer set below): a queued card then
  // costs a few bytes and always shows the newest state.
  void card(const std::string& platform, const ChannelId& channel, const EnvId& env);
  using CardRenderer = std::function<Message(const EnvId&)>;
  void set_card_renderer(CardRenderer renderer) { card_renderer_ = std::move(renderer); }
  // Replies in `env`'s thread (after its card exists).
  void reply(const std::string& platform, const ChannelId& channel, const EnvId& env, Message message);
  // Posts `message` in `env`'s thread the first time `key` is used there, and edits that same
  // message for later calls with the same key.
  void keyed_reply(const std::string& platform, const ChannelId& channel, const EnvId& env, const std::string& key,
                   Message message);
  // Posts a message on its own, outside any environment thread.
  void post(const std::string& platform, const ChannelId& channel, Message message);
  // Answers the command `to`, which came in through `via`: in-band when `via` can
  // (ChatAdapter::answer_in_band), else queued in the answer lane of to.channel and sent through
  // the platform's adapter with PostRequest::reply_to = to.reply_to. The one path every command
  // answer takes.
  void answer(ChatAdapter& via, const InboundMessage& to, Message message);

  // See "Journal" above. Off by default (nothing persisted: send at once).
  void hold_until_durable(bool on) { hold_ = on; }
  // The journal's high-water mark: messages queued so far. Take it with journal() and pass it to
  // release_through() once that snapshot is durable.
  std::uint64_t journal_mark() const { return id_seq_; }
  void release_through(std::uint64_t mark);

  // Runs whenever the journal changes (a message queued, sent or given up on).
  void on_change(std::function<void()> cb) { changed_ = std::move(cb); }
  // The journal as one JSON object: {"items": [message...], "keyed": [...]}; each message object
  // carries its delivery id, platform, channel and queue order.
  nlohmann::json journal() const;
  // Its parts, for the state snapshot: each queued message's JSON by delivery id (kept from one
  // snapshot to the next until the message changes: under load thousands of queued messages are
  // the same as in the previous snapshot), and the keyed replies' ids.
  std::vector<std::pair<std::string, std::string>> journal_items() const;
  nlohmann::json journal_keyed() const;
  // Queues the messages of a journal (before start(): they are sent once adapters are attached).
  // Accepts journal()'s form and the older {"channels": [{platform, channel, items}]} form.
  // An unusable journal is an Error and queues nothing.
  Status restore_journal(const nlohmann::json& journal);
  // Starts delivering what restore_journal() queued (channels of platforms without an adapter are
  // dropped with an error log, as any message for them would be).
  void start();

  size_t pending() const;
  size_t pending(const std::string& platform, const ChannelId& channel) const;

 private:
  enum class Kind { card, reply, keyed, plain, answer };
  struct Item {
    Kind kind;
    EnvId env;
    Message message;
    std::string key;                // keyed replies
    std::string reply_to;           // answers: the adapter's address of the asker
    bool lazy = false;              // a card rendered at send time
    std::vector<Message> merged;    // replies coalesced into this one, oldest first
    mutable std::vector<std::string> merged_json;  // each part's journal JSON, made once
    int attempts = 0;
    std::string id;                 // delivery id, stable across restarts
    std::uint64_t seq = 0;          // queue order in this run (journal_mark())
    std::uint64_t order = 0;        // queue order in the journal, kept across restarts
    bool released = true;           // in a durable snapshot (or nothing is held): may be sent
    bool maybe_delivered = false;   // in flight when a previous run stopped
    bool sent_as_edit = false;      // the last attempt edited an existing message
    mutable std::string json;       // its journal entry; cleared whenever the content changes
  };
  static nlohmann::json item_json(const std::tuple<std::string, ChannelId>& where, const Item& item,
                                  bool with_merged = true);
  // item_json() as text, from the parts' kept JSON.
  static std::string item_text(const std::tuple<std::string, ChannelId>& where, const Item& item);
  // Adds `message` to the queued `last` (a digest from now on) and holds it again.
  void merge_into(const std::string& platform, Item& last, Message message);
  static Item make_item(Kind kind, EnvId env, Message message) {
    Item item;
    item.kind = kind;
    item.env = std::move(env);
    item.message = std::move(message);
    return item;
  }
  using Key = std::tuple<std::string, ChannelId>;
  struct Channel {
    // std::deque keeps references to its elements valid across push_back and pop_front, so the
    // indexes below can point into it.
    std::deque<Item> queue;
    std::unordered_map<EnvId, Item*> last_of_env;   // the newest queued item of each environment
    std::unordered_map<EnvId, Item*> lazy_card_of;  // a queued lazy card of each environment
    std::unordered_map<EnvId, Item*> last_reply_of; // the newest queued reply of each environment
    std::map<std::pair<EnvId, std::string>, Item*> keyed;  // queued keyed replies
    std::deque<Item> answers;       // the answer lane, sent before `queue`
    bool in_flight = false;
    bool answer_in_flight = false;  // the message in flight is answers.front()
    bool pumping = false;    // inside pump(): a nested call only asks it to go round again
    bool pump_again = false;
    TimerId wake = 0;
    double tokens = 0;
    TimePoint refilled{};
    double answer_tokens = 0;
    TimePoint answer_refilled{};
    TimePoint blocked_until{};
    std::deque<TimePoint> sent;  // send times inside settings.window (only with a window_max)
  };

  void enqueue(const std::string& platform, const ChannelId& channel, Item item);
  // The newest queued item of `env` if it may still change (see open_for_change), or null.
  static Item* waiting_last_of(Channel& ch, const EnvId& env);
  // The item `index` has for `env` if it may still change, or null.
  static Item* waiting_in(Channel& ch, std::unordered_map<EnvId, Item*>& index, const EnvId& env);
  // `item` unless it is in flight or maybe_delivered (then its content is fixed), else null.
  static Item* open_for_change(Channel& ch, Item* item);
  static void pop_front(Channel& ch);
  void pump(const Key& key);
  void pump_once(const Key& key);
  void schedule(const Key& key, TimePoint when);
  void finished(const Key& key, Result<PostResult> result);
  // Logs and counts a message given up on.
  void failed(const std::string& platform, const ChannelId& channel, const Item& item, const Error& err);
  void changed() {
    if (changed_) changed_();
  }
  const OutboxSettings& settings_for(const std::string& platform) const;
  static Message digest(const Item& item);

  OutboxSettings settings_;
  std::map<std::string, OutboxSettings> platform_settings_;
  Clock& clock_;
  Metrics& metrics_;
  std::map<std::string, ChatAdapter*> adapters_;
  std::map<Key, Channel> channels_;
  // Message ids of status cards (key "") and keyed replies, per thread.
  std::map<std::tuple<std::string, ChannelId, EnvId, std::string>, std::string> cards_;
  CardPosted card_posted_;
  CardRenderer card_renderer_;
  std::function<void()> changed_;
  std::string id_prefix_;
  std::uint64_t id_seq_ = 0;
  std::uint64_t order_seq_ = 0;
  bool started_ = true;  // false between restore_journal() and start()
  bool hold_ = false;
};

}  // namespace runbot::bot
