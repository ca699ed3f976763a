#pragma once
// The Slack renderer: pure functions from the neutral message model to Block Kit JSON, following
// chat-protocols.md §1.10 (blocks, limits) and §1.11 (button action ids and values). No I/O, no
// clock, no state: the same message always gives the same JSON (golden-tested).
//
// Buttons: `action_id` is bot::Button::action ("open", "extend", "down", "retry", "let_expire",
// "confirm") and `value` is bot::Button::value; link buttons ("open") carry `url`. The adapter maps
// a click back with bot::command_for_button(action_id, value). Slack wants action ids unique within
// an actions block, so two buttons with the same action (the confirmation's Yes/No both use
// "confirm") are put in consecutive actions blocks; action_id is never rewritten.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bot/message.h"

namespace runbot::slack {

// Slack limits the renderer keeps to (characters are Unicode code points, not bytes).
inline constexpr std::size_t kMaxBlocksPerPayload = 50;
inline constexpr std::size_t kMaxSectionTextChars = 3000;
inline constexpr std::size_t kMaxFieldsPerSection = 10;
inline constexpr std::size_t kMaxFieldTextChars = 2000;
inline constexpr std::size_t kMaxHeaderChars = 150;
inline constexpr std::size_t kMaxContextTextChars = 2000;
inline constexpr std::size_t kMaxActionsElements = 25;
inline constexpr std::size_t kMaxButtonTextChars = 75;
inline constexpr std::size_t kMaxButtonValueChars = 2000;
inline constexpr std::size_t kMaxButtonUrlChars = 3000;
inline constexpr std::size_t kMaxFallbackTextChars = 40000;
// Serialized JSON of one payload's blocks. Slack documents per-block limits only, but rejects
// messages with `msg_blocks_too_long` at about 13 000 characters of blocks (bolt-js #2509), counting
// more than the text values (#2867); the renderer counts each block's whole JSON and stays below.
inline constexpr std::size_t kMaxBlockCharsPerPayload = 12000;

// Payloads for chat.postMessage / chat.update without `channel`, `ts` or `thread_ts`: each is
// {"text": <fallback>, "blocks": [...]}. `text` is bot::to_plain_text() escaped, with mentions
// resolved, and never empty. A message over Slack's limits (50 blocks, 3000 characters per section
// text, about 13 000 characters of blocks) is split into several payloads, in order, rather than
// rejected or cut; continuations start with "<title> (part k of n)" and the buttons are in the
// last. Most messages give exactly one. A status card (NoticeKind::status_card) is laid out to be
// edited in place: header, optional context, fields, buttons, no block ids, and field values over
// 500 characters shortened with a visible "…" so that it is one payload.
std::vector<nlohmann::json> render(const bot::Message& message);

// Slack's mrkdwn escaping of user-provided text: & < > become &amp; &lt; &gt;.
std::string escape_mrkdwn(std::string_view text);

// Escapes `text` and turns "@U024BE7LH" (a Slack user id) into the mention "<@U024BE7LH>".
std::string to_mrkdwn(std::string_view text);

// Whether `id` looks like a Slack user id ("U024BE7LH", "W0123ABCDE"): U or W, then upper-case
// letters and digits, at least one digit, 7 to 21 characters in all.
bool is_slack_user_id(std::string_view id);

}  // namespace runbot::slack
