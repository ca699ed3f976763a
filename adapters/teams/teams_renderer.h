#pragma once
// The Teams renderer: pure functions from the neutral message model to a Bot Framework message
// activity carrying one Adaptive Card 1.5 (chat-protocols.md §3.6, §3.7). No I/O, no clock, no
// state: the same input always gives the same JSON (golden-tested).
//
// The activity is {"type":"message","summary":…,"attachments":[card]} without conversation,
// from or replyToId (the adapter adds what the connector call needs). The card has:
// - the title as a bold TextBlock coloured by severity (info Default, success Good, warning
//   Warning, danger Attention);
// - the text as a wrapping TextBlock, one per paragraph line;
// - the fields as a FactSet;
// - the code lines as monospace TextBlocks in an emphasis Container;
// - mentions: "@<id>" in title, text or fields becomes "<at>Name</at>" with a matching `mention`
//   entity in the card's msteams.entities (how Teams notifies from a card); a mentioned user not
//   named in the text gets a "cc" line. Only Teams user ids ("29:…", "8:orgid:…") become
//   mentions; any other id stays plain "@id" text (a mention entity with a foreign id is refused);
// - the buttons: "open" with a url is Action.OpenUrl; every other button is Action.Execute with
//   verb = Button::action and data {action, value}, with an Action.Submit fallback carrying the
//   same data (clients below 1.5). The adapter maps a click back with bot::command_for_button().
//
// Size: the serialized activity stays under options.max_bytes (28 KiB of UTF-8 by default, the
// conservative figure of §3.7; the documented limit is about 100 KB of UTF-16). A message over it
// loses its oldest code lines first, then text, then field values, each with a visible note
// saying what was shortened; the title and buttons always survive.
#include <cstddef>
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "bot/message.h"

namespace runbot::teams {

inline constexpr std::size_t kMaxActivityBytes = 28 * 1024;
inline constexpr const char* kAdaptiveCardContentType = "application/vnd.microsoft.card.adaptive";

struct RenderOptions {
  // Display names of Teams users by id, for "<at>Name</at>"; an unknown user shows as its id.
  std::map<std::string, std::string> names;
  std::size_t max_bytes = kMaxActivityBytes;
};

nlohmann::json render(const bot::Message& message, const RenderOptions& options = {});

// The message as plain text, at most `max_chars` code points (an invoke's toast answer).
std::string render_plain(const bot::Message& message, std::size_t max_chars = 2000);

// Whether `id` is a Teams user id that a mention entity can carry: "29:…" (a bot-scoped user
// id) or "8:orgid:…".
bool is_teams_user_id(std::string_view id);

}  // namespace runbot::teams
