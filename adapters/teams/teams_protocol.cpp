#include "adapters/teams/teams_protocol.h"

#include "adapters/common/reply_address.h"

#include <algorithm>
#include <cctype>

namespace runbot::teams {

using nlohmann::json;

namespace {

constexpr std::string_view kMessageIdMarker = ";messageid=";

bot::Error bad(const std::string& what) {
  return bot::make_error(bot::Errc::invalid_argument, "teams activity: " + what);
}

// Reads an optional string member; a present non-string is an error (recorded in `error`).
class Reader {
 public:
  std::string str(const json& obj, const char* key, const std::string& path) {
    if (!obj.is_object()) return "";
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return "";
    if (!it->is_string()) {
      fail(path + key + " must be a string");
      return "";
    }
    return it->get<std::string>();
  }
  // An optional object member: null json when absent; an error when present and not an object.
  const json& obj(const json& parent, const char* key, const std::string& path) {
    static const json kNull;
    if (!parent.is_object()) return kNull;
    auto it = parent.find(key);
    if (it == parent.end() || it->is_null()) return kNull;
    if (!it->is_object()) {
      fail(path + key + " must be an object");
      return kNull;
    }
    return *it;
  }
  Account account(const json& parent, const char* key) {
    const json& a = obj(parent, key, "");
    return {str(a, "id", std::string(key) + "."), str(a, "name", std::string(key) + "."),
            str(a, "aadObjectId", std::string(key) + ".")};
  }
  void fail(std::string why) {
    if (error.empty()) error = std::move(why);
  }
  std::string error;
};

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

void append_utf8(std::string& out, unsigned long cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// A numeric reference's code point, if it is a valid one ("#39", "#x27").
std::optional<unsigned long> numeric_entity(std::string_view name) {
  if (name.size() < 2 || name[0] != '#') return std::nullopt;
  const bool hex = name[1] == 'x' || name[1] == 'X';
  const std::string_view digits = name.substr(hex ? 2 : 1);
  if (digits.empty() || digits.size() > 6) return std::nullopt;
  unsigned long cp = 0;
  for (char c : digits) {
    int d = -1;
    if (c >= '0' && c <= '9') d = c - '0';
    if (hex && c >= 'a' && c <= 'f') d = c - 'a' + 10;
    if (hex && c >= 'A' && c <= 'F') d = c - 'A' + 10;
    if (d < 0) return std::nullopt;
    cp = cp * (hex ? 16 : 10) + static_cast<unsigned long>(d);
  }
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
  return cp;
}

std::string collapse_spaces(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == ' ' || c == '\t') {
      space = true;
      continue;
    }
    if (space && !out.empty() && out.back() != '\n') out += ' ';
    space = false;
    out += c;
  }
  return trim(out);
}

}  // namespace

bool Activity::bot_added() const {
  return !recipient.id.empty() &&
         std::any_of(members_added.begin(), members_added.end(),
                     [&](const Account& a) { return a.id == recipient.id; });
}

bot::Result<Envelope> parse_envelope(std::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return bad("body is not JSON");
  if (!j.is_object()) return bad("body is not a JSON object");
  Reader r;
  Envelope e{r.str(j, "channelId", ""), r.str(j, "serviceUrl", ""), ""};
  if (!r.error.empty()) return bad(r.error);
  // Only to tell an invoke (answered within 5 s) from the rest before start(); parse_activity
  // checks the field properly after the token.
  if (auto it = j.find("type"); it != j.end() && it->is_string()) e.type = it->get<std::string>();
  return e;
}

bot::Result<Activity> parse_activity(std::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return bad("body is not JSON");
  return activity_from_json(j);
}

bot::Result<Activity> activity_from_json(const json& j) {
  if (!j.is_object()) return bad("body is not a JSON object");
  Reader r;
  Activity a;
  a.type = r.str(j, "type", "");
  a.id = r.str(j, "id", "");
  a.service_url = r.str(j, "serviceUrl", "");
  a.channel_id = r.str(j, "channelId", "");
  a.from = r.account(j, "from");
  a.recipient = r.account(j, "recipient");
  const json& conv = r.obj(j, "conversation", "");
  a.conversation.id = r.str(conv, "id", "conversation.");
  a.conversation.type = r.str(conv, "conversationType", "conversation.");
  a.conversation.tenant_id = r.str(conv, "tenantId", "conversation.");
  a.conversation.name = r.str(conv, "name", "conversation.");
  if (conv.is_object() && conv.contains("isGroup")) {
    if (conv["isGroup"].is_boolean()) {
      a.conversation.is_group = conv["isGroup"].get<bool>();
    } else if (!conv["isGroup"].is_null()) {
      r.fail("conversation.isGroup must be a boolean");
    }
  }
  a.text = r.str(j, "text", "");
  a.reply_to_id = r.str(j, "replyToId", "");
  a.name = r.str(j, "name", "");
  const json& data = r.obj(j, "channelData", "");
  a.tenant_id = r.str(r.obj(data, "tenant", "channelData."), "id", "channelData.tenant.");
  const json& team = r.obj(data, "team", "channelData.");
  a.team_id = r.str(team, "id", "channelData.team.");
  a.team_name = r.str(team, "name", "channelData.team.");
  const json& channel = r.obj(data, "channel", "channelData.");
  a.teams_channel_id = r.str(channel, "id", "channelData.channel.");
  a.teams_channel_name = r.str(channel, "name", "channelData.channel.");
  a.event_type = r.str(data, "eventType", "channelData.");
  if (a.tenant_id.empty()) a.tenant_id = a.conversation.tenant_id;
  if (j.contains("value")) a.value = j["value"];

  json entities = json::array();
  if (auto it = j.find("entities"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) {
      r.fail("entities must be an array");
    } else {
      entities = *it;
    }
  }
  if (auto it = j.find("membersAdded"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) {
      r.fail("membersAdded must be an array");
    } else {
      for (const auto& m : *it) {
        if (!m.is_object()) {
          r.fail("membersAdded entries must be objects");
          continue;
        }
        a.members_added.push_back({r.str(m, "id", "membersAdded[]."),
                                   r.str(m, "name", "membersAdded[]."),
                                   r.str(m, "aadObjectId", "membersAdded[].")});
      }
    }
  }
  if (!r.error.empty()) return bad(r.error);
  if (a.type.empty()) return bad("type is missing");
  if (a.conversation.id.empty()) return bad("conversation.id is missing");
  if (a.service_url.empty()) return bad("serviceUrl is missing");
  if (a.channel_id.empty()) return bad("channelId is missing");
  a.command_text = strip_bot_mentions(a.text, entities, a.recipient.id);
  return a;
}

std::string decode_entities(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '&') {
      out += text[i];
      continue;
    }
    const auto semi = text.find(';', i + 1);
    if (semi == std::string_view::npos || semi - i > 10) {
      out += '&';
      continue;
    }
    const std::string_view name = text.substr(i + 1, semi - i - 1);
    if (name == "nbsp") {
      out += ' ';
    } else if (name == "amp") {
      out += '&';
    } else if (name == "lt") {
      out += '<';
    } else if (name == "gt") {
      out += '>';
    } else if (name == "quot") {
      out += '"';
    } else if (name == "apos") {
      out += '\'';
    } else if (auto cp = numeric_entity(name)) {
      append_utf8(out, *cp == 0xA0 ? ' ' : *cp);
    } else {
      out += '&';
      continue;
    }
    i = semi;
  }
  return out;
}

std::string strip_bot_mentions(std::string_view text, const json& entities,
                               std::string_view bot_id) {
  std::string out(text);
  if (entities.is_array() && !bot_id.empty()) {
    for (const auto& e : entities) {
      if (!e.is_object() || e.value("type", json()) != "mention") continue;
      const json& mentioned = e.contains("mentioned") ? e["mentioned"] : json();
      if (!mentioned.is_object() || !mentioned.contains("id") || mentioned["id"] != bot_id)
        continue;
      if (!e.contains("text") || !e["text"].is_string()) continue;
      const std::string tag = e["text"].get<std::string>();
      if (tag.empty()) continue;
      for (auto p = out.find(tag); p != std::string::npos; p = out.find(tag, p))
        out.replace(p, tag.size(), " ");
    }
  }
  return collapse_spaces(decode_entities(out));
}

std::optional<ButtonClick> button_click(const Activity& a) {
  const json* data = nullptr;
  std::string verb;
  if (a.type == "invoke") {
    if (a.name != "adaptiveCard/action" || !a.value.is_object()) return std::nullopt;
    const json& action = a.value.contains("action") ? a.value["action"] : a.value;
    if (!action.is_object()) return std::nullopt;
    if (action.contains("verb") && action["verb"].is_string())
      verb = action["verb"].get<std::string>();
    if (action.contains("data")) data = &action["data"];
  } else if (a.type == "message") {
    if (!a.value.is_object()) return std::nullopt;
    data = &a.value;
  } else {
    return std::nullopt;
  }
  ButtonClick click;
  click.action = verb;
  if (data && data->is_object()) {
    if (auto it = data->find("action"); it != data->end() && it->is_string())
      click.action = it->get<std::string>();
    if (auto it = data->find("value"); it != data->end() && it->is_string())
      click.value = it->get<std::string>();
  }
  if (click.action.empty()) return std::nullopt;
  return click;
}

std::string base_conversation_id(std::string_view conversation_id) {
  return std::string(conversation_id.substr(0, conversation_id.find(kMessageIdMarker)));
}

std::string thread_conversation_id(std::string_view channel, std::string_view root_activity_id) {
  return base_conversation_id(channel) + std::string(kMessageIdMarker) +
         std::string(root_activity_id);
}

bot::InboundMessage to_inbound(const Activity& a) {
  bot::InboundMessage m;
  m.platform = "teams";
  m.user = bot::UserId{a.from.id};
  m.user_name = a.from.name;
  m.text = a.command_text;
  if (a.conversation.type == "channel") {
    m.channel = bot::ChannelId{a.teams_channel_id.empty() ? base_conversation_id(a.conversation.id)
                                                          : a.teams_channel_id};
    // A top-level post that mentions the bot starts its own thread, named by its own id.
    m.thread = a.conversation.id.find(kMessageIdMarker) != std::string::npos || a.id.empty()
                   ? a.conversation.id
                   : thread_conversation_id(a.conversation.id, a.id);
  } else {
    m.channel = bot::ChannelId{a.conversation.id};
  }
  // Answers that do not ride in an invoke response go into the conversation and thread the
  // command came from.
  m.reply_to = common::ReplyAddress{common::ReplyAddress::Via::post, "", "", "", m.thread}.to_json();
  return m;
}

ConversationRef reference_of(const Activity& a) {
  ConversationRef r;
  r.conversation_id = a.conversation.type == "channel" && !a.teams_channel_id.empty()
                          ? a.teams_channel_id
                          : base_conversation_id(a.conversation.id);
  r.conversation_type = a.conversation.type;
  r.service_url = a.service_url;
  r.tenant_id = a.tenant_id;
  r.bot_id = a.recipient.id;
  r.bot_name = a.recipient.name;
  r.user_id = a.from.id;
  r.channel_id = a.channel_id;
  r.team_id = a.team_id;
  return r;
}

std::string reference_to_json(const ConversationRef& r) {
  json j = {{"serviceUrl", r.service_url},
            {"conversation",
             {{"id", r.conversation_id},
              {"conversationType", r.conversation_type},
              {"tenantId", r.tenant_id}}},
            {"bot", {{"id", r.bot_id}, {"name", r.bot_name}}},
            {"user", {{"id", r.user_id}}},
            {"channelId", r.channel_id}};
  if (!r.team_id.empty()) j["teamId"] = r.team_id;
  if (r.blocked) j["blocked"] = true;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

bot::Result<ConversationRef> reference_from_json(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return bot::make_error(bot::Errc::invalid_argument,
                           "teams conversation reference: not a JSON object");
  }
  Reader r;
  ConversationRef ref;
  ref.service_url = r.str(j, "serviceUrl", "");
  const json& conv = r.obj(j, "conversation", "");
  ref.conversation_id = r.str(conv, "id", "conversation.");
  ref.conversation_type = r.str(conv, "conversationType", "conversation.");
  ref.tenant_id = r.str(conv, "tenantId", "conversation.");
  const json& b = r.obj(j, "bot", "");
  ref.bot_id = r.str(b, "id", "bot.");
  ref.bot_name = r.str(b, "name", "bot.");
  ref.user_id = r.str(r.obj(j, "user", ""), "id", "user.");
  ref.channel_id = r.str(j, "channelId", "");
  ref.team_id = r.str(j, "teamId", "");
  if (auto it = j.find("blocked"); it != j.end()) ref.blocked = it->is_boolean() && it->get<bool>();
  if (!r.error.empty())
    return bot::make_error(bot::Errc::invalid_argument, "teams conversation reference: " + r.error);
  if (ref.conversation_id.empty() || ref.service_url.empty()) {
    return bot::make_error(bot::Errc::invalid_argument,
                           "teams conversation reference: needs serviceUrl and conversation.id");
  }
  return ref;
}

std::string reference_key(std::string_view conversation_id) {
  return std::string(kReferenceKeyPrefix) + base_conversation_id(conversation_id);
}

std::string message_id(std::string_view conversation, std::string_view activity_id) {
  return std::string(conversation) + "|" + std::string(activity_id);
}

std::optional<MessageRef> parse_message_id(std::string_view id) {
  if (const auto bar = id.rfind('|'); bar != std::string_view::npos) {
    if (bar == 0 || bar + 1 == id.size()) return std::nullopt;
    return MessageRef{std::string(id.substr(0, bar)), std::string(id.substr(bar + 1))};
  }
  const auto marker = id.find(kMessageIdMarker);
  if (marker == std::string_view::npos || marker == 0 ||
      marker + kMessageIdMarker.size() == id.size())
    return std::nullopt;
  return MessageRef{std::string(id), std::string(id.substr(marker + kMessageIdMarker.size()))};
}

json invoke_message(std::string text) {
  return {{"statusCode", 200},
          {"type", "application/vnd.microsoft.activity.message"},
          {"value", std::move(text)}};
}

json invoke_error(int status, std::string code, std::string message) {
  return {{"statusCode", status},
          {"type", "application/vnd.microsoft.error"},
          {"value", {{"code", std::move(code)}, {"message", std::move(message)}}}};
}

void DedupeWindow::expire(bot::TimePoint now) {
  while (!order_.empty() && (order_.front().first + ttl_ <= now || order_.size() > capacity_)) {
    auto it = seen_.find(order_.front().second);
    if (it != seen_.end() && it->second == order_.front().first) seen_.erase(it);
    order_.pop_front();
  }
}

bool DedupeWindow::first_time(const std::string& key, bot::TimePoint now) {
  expire(now);
  if (seen_.count(key)) return false;
  seen_[key] = now;
  order_.emplace_back(now, key);
  expire(now);
  return true;
}

}  // namespace runbot::teams
