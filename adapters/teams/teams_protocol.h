#pragma once
// The Bot Framework wire formats as pure functions (chat-protocols.md §3.3, §3.6–3.8): inbound
// activities, bot-mention stripping, button clicks (Action.Execute invokes and Action.Submit
// messages), conversation references to store for proactive messages, the ids runbot gives to
// Teams messages, invoke response bodies, and the time-bounded dedupe memory.
// No I/O, no clock of its own: unit-tested directly.
#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "bot/chat_adapter.h"
#include "bot/clock.h"
#include "bot/result.h"

namespace runbot::teams {

struct Account {
  std::string id;  // "29:…" (users), "28:<app id>" (bots)
  std::string name;
  std::string aad_object_id;  // the user's Entra object id, when sent
};

struct Conversation {
  std::string id;    // "a:…", "19:…@thread.v2", "19:…@thread.tacv2;messageid=…"
  std::string type;  // "personal", "groupChat", "channel" (conversationType)
  std::string tenant_id;
  std::string name;
  bool is_group = false;
};

struct Activity {
  std::string type;  // "message", "invoke", "conversationUpdate", … as sent
  std::string id;
  std::string service_url;
  std::string channel_id;  // the Bot Framework channel: "msteams"
  Account from;
  Account recipient;  // the bot
  Conversation conversation;
  std::string text;          // as sent
  std::string command_text;  // text without bot mentions, entities decoded, trimmed
  std::string reply_to_id;
  // channelData
  std::string tenant_id;  // channelData.tenant.id, else conversation.tenantId
  std::string team_id;
  std::string team_name;
  std::string teams_channel_id;  // channelData.channel.id ("19:…@thread.tacv2")
  std::string teams_channel_name;
  std::string event_type;  // channelData.eventType ("teamMemberAdded", "channelCreated", …)
  nlohmann::json value;    // Action.Submit data or the invoke payload; null when absent
  std::string name;        // invoke name ("adaptiveCard/action")
  std::vector<Account> members_added;

  // Whether the bot itself is in membersAdded (it was installed or added here).
  bool bot_added() const;
};

// Just what the JWT check needs before anything else is trusted.
struct Envelope {
  std::string channel_id;
  std::string service_url;
  std::string type;  // the activity type when it is a string, else empty (never an error here)
};

// Errors are invalid_argument with a message naming what is wrong ("teams activity: …").
bot::Result<Envelope> parse_envelope(std::string_view body);
// Requires type, a conversation with an id, serviceUrl and channelId; every other field is
// optional (missing strings are empty), but a field present with the wrong JSON type is an error.
bot::Result<Activity> parse_activity(std::string_view body);
bot::Result<Activity> activity_from_json(const nlohmann::json& j);

// Decodes &nbsp; (to a space), &amp; &lt; &gt; &quot; &apos; &#39; and numeric references;
// anything else stays as written.
std::string decode_entities(std::string_view text);

// Removes every `mention` entity's text whose mentioned.id is `bot_id` from `text`, decodes
// entities, collapses runs of spaces and trims.
std::string strip_bot_mentions(std::string_view text, const nlohmann::json& entities,
                               std::string_view bot_id);

// A card button click: from an invoke `adaptiveCard/action` (value.action.{verb,data}) or an
// Action.Submit message (value {action, value}). data.action wins over the verb.
struct ButtonClick {
  std::string action;
  std::string value;
};
std::optional<ButtonClick> button_click(const Activity& activity);

// The conversation (without ";messageid=…"): the Teams channel id for channel threads.
std::string base_conversation_id(std::string_view conversation_id);
// "<channel conversation>;messageid=<root activity id>": how Teams names a channel thread.
std::string thread_conversation_id(std::string_view channel, std::string_view root_activity_id);

// The message a bot::InboundMessage stands for, or the command text of an activity:
// personal and group chats: channel = conversation id, no thread; channels: channel =
// channelData.channel.id (else the base conversation id), thread = the thread conversation id.
bot::InboundMessage to_inbound(const Activity& activity);

// What runbot keeps per conversation (chat-protocols.md §3.6, "Proactive messaging").
struct ConversationRef {
  std::string conversation_id;    // base id: a Teams channel id, "a:…" or a group chat id
  std::string conversation_type;  // "personal", "groupChat", "channel"
  std::string service_url;
  std::string tenant_id;
  std::string bot_id;
  std::string bot_name;
  std::string user_id;  // the last user who wrote there
  std::string channel_id = "msteams";
  std::string team_id;
  bool blocked = false;  // 403 MessageWritesBlocked: nothing is sent until it writes again
  bool operator==(const ConversationRef&) const = default;
};
ConversationRef reference_of(const Activity& activity);
// A compact, stable JSON (same reference → same string, so an unchanged one is not re-saved).
std::string reference_to_json(const ConversationRef& ref);
bot::Result<ConversationRef> reference_from_json(std::string_view text);
// The adapter-state key of a conversation: "teams/conv/<base conversation id>".
std::string reference_key(std::string_view conversation_id);
inline constexpr std::string_view kReferenceKeyPrefix = "teams/conv/";

// runbot's id of a message it posted, which must name both the conversation and the activity
// so that the message can be edited and replied to:
// - a new channel thread: "<channel>;messageid=<root>" (also the thread's conversation id);
// - anything else: "<conversation>|<activity id>".
struct MessageRef {
  std::string conversation;  // where to PUT updates or POST replies
  std::string activity_id;
};
std::string message_id(std::string_view conversation, std::string_view activity_id);
std::optional<MessageRef> parse_message_id(std::string_view id);

// Invoke answers (§3.7): a toast with `text`, or an error.
nlohmann::json invoke_message(std::string text);
nlohmann::json invoke_error(int status, std::string code, std::string message);

// Remembers keys for `ttl` (at most `capacity` of them, oldest forgotten first).
class DedupeWindow {
 public:
  DedupeWindow(bot::Duration ttl, std::size_t capacity)
      : ttl_(ttl), capacity_(capacity == 0 ? 1 : capacity) {}
  // True the first time `key` is seen within the window; false for a repeat.
  bool first_time(const std::string& key, bot::TimePoint now);
  std::size_t size() const { return seen_.size(); }

 private:
  void expire(bot::TimePoint now);
  bot::Duration ttl_;
  std::size_t capacity_;
  std::deque<std::pair<bot::TimePoint, std::string>> order_;
  std::unordered_map<std::string, bot::TimePoint> seen_;
};

}  // namespace runbot::teams
