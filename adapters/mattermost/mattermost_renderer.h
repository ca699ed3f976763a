#pragma once
// The Mattermost renderer: pure functions from the neutral message model to the JSON of a post
// (chat-protocols.md §2.2, §2.5). No I/O, no clock, no state: the same input always gives the
// same JSON (golden-tested).
//
// A post is {"message": <Markdown>, "props": {"attachments": [...]}} without channel_id/root_id
// (the adapter adds them). The message has the title in bold and the text; the attachment (only
// when there are fields, code lines or buttons) has a severity colour, the fields, the code lines
// in a fenced block, and the buttons. Link buttons ("open") become a Markdown link in the
// attachment text (legacy attachments have no link buttons); every other button is an
// interactive action whose integration POSTs {action, value, sig} to `action_url`, where `sig`
// is sign_action(secret, action, value). Without an action_url the buttons are listed with the
// command a user can type instead. A message over kMaxPostChars is split into several posts, in
// order; the attachment rides on the last.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bot/message.h"

namespace runbot::mattermost {

struct RenderOptions {
  std::string action_url;     // the button integration URL; empty = no interactive buttons
  std::string action_secret;  // HMAC key for the buttons' context
};

std::vector<nlohmann::json> render(const bot::Message& message, const RenderOptions& options);

// The same message as one Markdown string (title, text, fields, code): for ephemeral_text.
std::string render_markdown(const bot::Message& message);

}  // namespace runbot::mattermost
