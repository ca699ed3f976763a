#include "adapters/mattermost/mattermost_renderer.h"

#include "adapters/mattermost/mattermost_protocol.h"
#include "bot/command.h"

namespace runbot::mattermost {

using nlohmann::json;

namespace {

const char* color_of(bot::Severity s) {
  switch (s) {
    case bot::Severity::success: return "#2eb886";
    case bot::Severity::warning: return "#daa038";
    case bot::Severity::danger: return "#a30200";
    case bot::Severity::info: break;
  }
  return "#439fe0";
}

const char* style_of(const std::string& action) {
  if (action == "down") return "danger";
  if (action == "extend" || action == "retry" || action == "approve") return "primary";
  if (action == "confirm") return "default";
  return "default";
}

// Button ids must be unique per post and are safest alphanumeric.
std::string button_id(const std::string& action, std::size_t index) {
  std::string id;
  for (char c : action) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) id += c;
  }
  return (id.empty() ? "button" : id) + std::to_string(index);
}

std::string head(const bot::Message& m) {
  std::string out;
  if (!m.title.empty()) out = "**" + m.title + "**";
  if (!m.text.empty()) out += (out.empty() ? "" : "\n") + m.text;
  return out;
}

std::string code_block(const std::vector<std::string>& lines) {
  if (lines.empty()) return "";
  std::string out = "```\n";
  for (const auto& l : lines) out += l + "\n";
  return out + "```";
}

// Splits `text` into chunks of at most `limit` bytes, at line ends where possible.
std::vector<std::string> split(const std::string& text, std::size_t limit) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (text.size() - pos > limit) {
    std::size_t cut = text.rfind('\n', pos + limit);
    if (cut == std::string::npos || cut <= pos) {
      cut = pos + limit;
      while (cut > pos && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // UTF-8 boundary
    }
    out.push_back(text.substr(pos, cut - pos));
    pos = cut < text.size() && text[cut] == '\n' ? cut + 1 : cut;
  }
  out.push_back(text.substr(pos));
  return out;
}

}  // namespace

std::string render_markdown(const bot::Message& m) {
  std::string out = head(m);
  for (const auto& f : m.fields) out += (out.empty() ? "" : "\n") + ("**" + f.label + ":** " + f.value);
  if (!m.code.empty()) out += (out.empty() ? "" : "\n") + code_block(m.code);
  if (out.empty()) out = bot::to_plain_text(m);
  return out;
}

std::vector<json> render(const bot::Message& m, const RenderOptions& options) {
  json attachment = json::object();
  std::string att_text;
  std::string hints;
  json actions = json::array();
  std::size_t index = 0;
  for (const auto& b : m.buttons) {
    ++index;
    if (!b.url.empty()) {
      att_text += (att_text.empty() ? "" : " · ") + ("[" + b.label + "](" + b.url + ")");
      continue;
    }
    if (options.action_url.empty()) {
      if (auto cmd = bot::command_for_button(b.action, b.value)) {
        hints += (hints.empty() ? "" : " · ") + (b.label + ": `" + *cmd + "`");
      }
      continue;
    }
    actions.push_back({{"id", button_id(b.action, index)},
                       {"name", b.label},
                       {"type", "button"},
                       {"style", style_of(b.action)},
                       {"integration",
                        {{"url", options.action_url},
                         {"context", {{"action", b.action}, {"value", b.value},
                                      {"sig", sign_action(options.action_secret, b.action, b.value)}}}}}});
  }
  if (!hints.empty()) att_text += (att_text.empty() ? "" : "\n") + ("Type instead of clicking: " + hints);
  const std::string code = code_block(m.code);
  if (!code.empty()) att_text = code + (att_text.empty() ? "" : "\n" + att_text);
  json fields = json::array();
  for (const auto& f : m.fields) fields.push_back({{"title", f.label}, {"value", f.value}, {"short", f.value.size() < 40}});
  const bool has_attachment = !fields.empty() || !att_text.empty() || !actions.empty();

  std::string message = head(m);
  if (message.empty()) message = bot::to_plain_text(m);
  // Room for the attachment's text too: the server counts the message only, but a whole post
  // that size is unreadable anyway.
  std::vector<std::string> chunks = split(message, kMaxPostChars - 200);
  if (att_text.size() > kMaxPostChars - 200) {
    // A very long code block: it goes out as messages of its own, before the attachment.
    for (auto& c : split(code, kMaxPostChars - 200)) chunks.push_back(std::move(c));
    att_text = att_text.substr(code.size());
    if (!att_text.empty() && att_text.front() == '\n') att_text.erase(0, 1);
  }
  std::vector<json> out;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    json post{{"message", chunks[i]}};
    if (i + 1 == chunks.size() && has_attachment) {
      attachment["fallback"] = bot::to_plain_text(m).substr(0, 2000);
      attachment["color"] = color_of(m.severity);
      if (!att_text.empty()) attachment["text"] = att_text;
      if (!fields.empty()) attachment["fields"] = fields;
      if (!actions.empty()) attachment["actions"] = actions;
      post["props"] = {{"attachments", json::array({attachment})}};
    } else {
      post["props"] = json::object();
    }
    out.push_back(std::move(post));
  }
  return out;
}

}  // namespace runbot::mattermost
