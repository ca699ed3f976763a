#pragma once
// The Mattermost wire formats as pure functions (chat-protocols.md §2.3–2.5): WebSocket events
// (with the post double-decoded), which posts the bot reacts to, the authentication challenge,
// slash command forms, button requests and their signatures, and the bounded dedupe memory.
// No I/O, no clock: unit-tested directly.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "bot/chat_adapter.h"

namespace runbot::mattermost {

// Client frames over this size are never sent (the server's read limit, SocketMaxMessageSizeKb).
inline constexpr std::size_t kMaxClientFrameBytes = 8 * 1024;
// Posts longer than this are refused by the server (5.0+); the renderer splits below it.
inline constexpr std::size_t kMaxPostChars = 16383;
// The post props that carry runbot's delivery id (the outbox's, stable across restarts) and the
// part index of a message split into several posts, so a resend after a crash can find it.
inline constexpr const char* kDeliveryIdProp = "runbot_delivery_id";
inline constexpr const char* kDeliveryPartProp = "runbot_delivery_part";

// A post as decoded from `posted.data.post` or a REST post list.
struct Post {
  std::string id;
  std::string user_id;
  std::string channel_id;
  std::string root_id;
  std::string message;
  std::string type;          // "" for user posts; "system_…" for system posts
  std::int64_t create_at = 0;  // epoch milliseconds
  bool from_bot = false;     // props.from_bot == "true"
  std::string delivery_id;   // props.runbot_delivery_id ("" on posts runbot did not tag)
  int delivery_part = -1;    // props.runbot_delivery_part (-1 when absent)
};

enum class EventKind {
  hello,      // data.connection_id
  posted,     // post (parsed a second time), channel_type, sender_name
  reply,      // a response to a client action ({"status","seq_reply"})
  other,      // a valid event runbot does not act on (typing, status_change, …)
  malformed,  // not JSON, no event/seq, or a `posted` whose post is not a JSON object string
};

struct Event {
  EventKind kind = EventKind::malformed;
  std::string event;            // as sent
  std::optional<std::int64_t> seq;  // absent on replies
  std::string connection_id;    // hello
  std::string server_version;   // hello
  Post post;                    // posted
  std::string channel_type;     // posted: O, P, D, G
  std::string sender_name;      // posted: "@alice"
  std::string status;           // reply: "OK" / "FAIL"
  std::int64_t seq_reply = 0;   // reply
  std::string error;            // why it is malformed, or a FAIL reply's message
};

Event parse_event(std::string_view text);

// Parses one post object (from the socket after the second decode, or from REST).
std::optional<Post> parse_post(const nlohmann::json& j);

// The posts of a REST post list ({"order": [ids], "posts": {id: post}}), in `order`'s order;
// ids missing from `posts` and unparseable posts are skipped.
std::vector<Post> parse_post_list(const nlohmann::json& list);

// Adds runbot_delivery_id / runbot_delivery_part to a rendered post's props (kept: the
// attachments); a post without props gets them.
void tag_delivery(nlohmann::json& post, const std::string& delivery_id, std::size_t part);

// What a post asks of the bot.
struct Inbound {
  bool act = false;
  bot::InboundMessage message;    // platform "mattermost"; thread = root_id, or the post's id
  bool direct = false;            // channel_type "D"
  std::string ignored_because;    // when !act, for the debug log
};

// Posts from the bot itself (`bot_user_id`), system posts and other bots' posts are ignored; in
// a DM (channel_type "D") every post counts; elsewhere only posts that mention "@<bot_name>"
// (case-insensitive, as a whole word), with the mention stripped from the text.
Inbound to_inbound(const Post& post, const std::string& channel_type, const std::string& sender_name,
                   const std::string& bot_user_id, const std::string& bot_name);

// Removes the first "@<bot_name>" (whole word, case-insensitive) and trims; nullopt if absent.
std::optional<std::string> strip_mention(std::string_view text, std::string_view bot_name);

// {"seq":N,"action":"authentication_challenge","data":{"token":"…"}}
std::string challenge_json(std::int64_t seq, const std::string& token);

// application/x-www-form-urlencoded → map (last value wins; '+' is a space).
std::map<std::string, std::string> parse_form(std::string_view body);

// The HMAC-SHA256 (hex) that authenticates a button's context: over "action\nvalue".
std::string sign_action(const std::string& secret, std::string_view action, std::string_view value);

// A button click as POSTed to the integration URL.
struct ActionRequest {
  std::string user_id;
  std::string user_name;
  std::string channel_id;
  std::string post_id;
  std::string action;  // context.action
  std::string value;   // context.value
  std::string sig;     // context.sig
};
std::optional<ActionRequest> parse_action_request(std::string_view body, std::string* error);

// Remembers the last `capacity` keys; insert() returns false for a key it still remembers.
class DedupeSet {
 public:
  explicit DedupeSet(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}
  bool insert(const std::string& key);
  bool contains(const std::string& key) const { return keys_.count(key) != 0; }

 private:
  std::size_t capacity_;
  std::deque<std::string> order_;
  std::unordered_set<std::string> keys_;
};

}  // namespace runbot::mattermost
