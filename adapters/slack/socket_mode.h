#pragma once
// Socket Mode protocol, as pure functions (chat-protocols.md §1.3–1.5, §1.7, §1.11): parsing the
// frames Slack sends, turning an envelope into a bot::InboundMessage, building acks, and the
// bounded dedupe memory. No I/O, no clock: unit-tested directly.
#include <cstddef>
#include <deque>
#include <initializer_list>
#include <memory>
#include <unordered_map>
#include <string>
#include <string_view>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "bot/chat_adapter.h"

namespace runbot::slack {

enum class FrameKind {
  hello,       // right after connect
  disconnect,  // Slack is about to close this socket; see `reason`
  envelope,    // events_api / slash_commands / interactive
  unknown,     // valid JSON with a type we do not handle (acked if it has an envelope_id)
  malformed,   // not JSON, not an object, or an envelope without envelope_id
};

struct Frame {
  FrameKind kind = FrameKind::malformed;
  std::string type;                 // the frame's "type", as sent
  std::string envelope_id;
  int retry_attempt = 0;
  std::string retry_reason;
  bool accepts_response_payload = false;
  nlohmann::json payload;           // envelope payload (object), or null
  std::string reason;               // disconnect reason
  int num_connections = 0;          // hello
  std::string error;                // why a frame is malformed
};

Frame parse_frame(std::string_view text);

// What an envelope asks the adapter to do.
struct Inbound {
  enum class Kind { ignore, slash, event, button } kind = Kind::ignore;
  bot::InboundMessage message;   // platform "slack"; for buttons, text is the equivalent command
  std::string response_url;      // slash commands and interactions
  std::string event_id;          // events_api: the dedupe key across redeliveries
  // Slash commands and clicks: the same for a command delivered again under a new envelope_id
  // (its first ack did not reach Slack in time), so the dedupe key for those.
  std::string trigger_id;
  std::string ts;                // events: the message's own ts (a mention's answer threads on it)
  bool direct = false;           // a direct message (channel_type "im")
  std::string ignored_because;   // for Kind::ignore, for the debug log
};

// `bot_user_id` is the bot's own user id (auth.test's user_id); messages from it, from any bot
// (bot_id) and messages with a subtype (edits, joins, bot_message …) are ignored. In channels only
// app_mention counts; plain `message` events count in DMs only.
Inbound to_inbound(const Frame& frame, const std::string& bot_user_id);

// {"envelope_id":"…"} or {"envelope_id":"…","payload":{…}}.
std::string ack_json(const std::string& envelope_id);
std::string ack_json(const std::string& envelope_id, const nlohmann::json& payload);

// "&lt;" "&gt;" "&amp;" back to characters, and a leading "<@U…>" mention removed.
std::string clean_text(std::string_view text);

// Remembers the last `capacity` keys; insert() returns false for a key it still remembers.
class DedupeSet {
 public:
  explicit DedupeSet(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}
  bool insert(const std::string& key);
  bool contains(const std::string& key) const { return keys_.count(key) != 0; }
  std::size_t size() const { return keys_.size(); }

 private:
  std::size_t capacity_;
  std::deque<std::string> order_;
  std::unordered_set<std::string> keys_;
};

// Remembers the ack each envelope got (by envelope_id) and the answer each command or click got
// (by trigger_id), so that a redelivery is answered again the same way without anything running
// twice: a socket that died before its ack reached Slack makes Slack send the same envelope on
// another socket. Bounded by `capacity` keys and `max_bytes` of remembered payloads (the oldest
// are forgotten first); keys without a payload cost a few dozen bytes.
class AckMemory {
 public:
  AckMemory(std::size_t capacity, std::size_t max_bytes);
  // The ack payload remembered for `key` (JSON text; "" = acked without one), or null.
  const std::string* find(const std::string& key) const;
  // Remembers `payload` for each non-empty key (the same text is shared, not copied).
  void remember(std::initializer_list<std::string> keys, std::string payload);
  std::size_t size() const { return entries_.size(); }
  std::size_t bytes() const { return bytes_; }

 private:
  std::size_t capacity_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  std::deque<std::string> order_;
  std::unordered_map<std::string, std::shared_ptr<const std::string>> entries_;
};

}  // namespace runbot::slack
