#pragma once
// The Slack renderer: pure functions from the neutral message model to Block Kit JSON, following
// chat-protocols.md §1.10 (blocks, limits) and §1.11 (button action ids and values).
//
// Buttons: `action_id` is bot::Button::action ("open", "extend", "down", "retry", "let_expire",
// "confirm") and `value` is bot::Button::value; link buttons ("open") carry `url`. The adapter maps
// a click back with bot::command_for_button(action_id, value).
#include <vector>

#include <nlohmann/json.hpp>

#include "bot/message.h"

namespace runbot::slack {

// Payloads for chat.postMessage / chat.update without `channel`, `ts` or `thread_ts`: each is
// {"text": <plain-text fallback>, "blocks": [...]}. A message over Slack's limits (50 blocks,
// 3000 characters per section text, 40000 characters of text) is split into several payloads,
// in order, rather than rejected; most messages give exactly one.
std::vector<nlohmann::json> render(const bot::Message& message);

}  // namespace runbot::slack
