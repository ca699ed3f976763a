#include "adapters/slack/socket_mode.h"

#include "bot/command.h"

namespace runbot::slack {

using nlohmann::json;

namespace {

std::string str(const json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

const json& obj(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : kNull;
}

}  // namespace

Frame parse_frame(std::string_view text) {
  Frame f;
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    f.error = "not JSON";
    return f;
  }
  if (!j.is_object()) {
    f.error = "not a JSON object";
    return f;
  }
  f.type = str(j, "type");
  f.envelope_id = str(j, "envelope_id");
  if (f.type == "hello") {
    f.kind = FrameKind::hello;
    if (auto it = j.find("num_connections"); it != j.end() && it->is_number_integer()) f.num_connections = it->get<int>();
    return f;
  }
  if (f.type == "disconnect") {
    f.kind = FrameKind::disconnect;
    f.reason = str(j, "reason");
    return f;
  }
  if (f.type == "events_api" || f.type == "slash_commands" || f.type == "interactive") {
    if (f.envelope_id.empty()) {
      f.error = "envelope without envelope_id";
      return f;
    }
    f.kind = FrameKind::envelope;
    if (auto it = j.find("retry_attempt"); it != j.end() && it->is_number_integer()) f.retry_attempt = it->get<int>();
    f.retry_reason = str(j, "retry_reason");
    if (auto it = j.find("accepts_response_payload"); it != j.end() && it->is_boolean()) {
      f.accepts_response_payload = it->get<bool>();
    }
    if (auto it = j.find("payload"); it != j.end() && it->is_object()) {
      f.payload = std::move(*it);
    } else {
      f.kind = FrameKind::malformed;
      f.error = "envelope without an object payload";
    }
    return f;
  }
  f.kind = FrameKind::unknown;
  return f;
}

std::string clean_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '&') {
      if (text.substr(i, 4) == "&lt;") { out += '<'; i += 3; continue; }
      if (text.substr(i, 4) == "&gt;") { out += '>'; i += 3; continue; }
      if (text.substr(i, 5) == "&amp;") { out += '&'; i += 4; continue; }
    }
    out += text[i];
  }
  auto b = out.find_first_not_of(" \t");
  if (b != std::string::npos && out.compare(b, 2, "<@") == 0) {
    auto close = out.find('>', b);
    if (close != std::string::npos) out.erase(0, close + 1);
  }
  b = out.find_first_not_of(" \t");
  out.erase(0, b == std::string::npos ? out.size() : b);
  return out;
}

Inbound to_inbound(const Frame& frame, const std::string& bot_user_id) {
  Inbound in;
  in.message.platform = "slack";
  const json& p = frame.payload;
  auto ignore = [&](std::string why) {
    in.kind = Inbound::Kind::ignore;
    in.ignored_because = std::move(why);
    return in;
  };
  if (frame.kind != FrameKind::envelope) return ignore("not an envelope");

  if (frame.type == "slash_commands") {
    in.kind = Inbound::Kind::slash;
    in.message.channel = bot::ChannelId{str(p, "channel_id")};
    in.message.user = bot::UserId{str(p, "user_id")};
    in.message.user_name = str(p, "user_name");
    if (in.message.user_name.empty()) in.message.user_name = in.message.user.str();
    in.message.text = clean_text(str(p, "text"));
    in.response_url = str(p, "response_url");
    in.trigger_id = str(p, "trigger_id");
    if (in.message.channel.empty() || in.message.user.empty()) return ignore("slash command without channel_id or user_id");
    return in;
  }

  if (frame.type == "events_api") {
    in.event_id = str(p, "event_id");
    const json& e = obj(p, "event");
    const std::string type = str(e, "type");
    if (str(p, "type") != "event_callback" || e.is_null()) return ignore("not an event_callback");
    if (!str(e, "subtype").empty()) return ignore("message subtype " + str(e, "subtype"));
    if (!str(e, "bot_id").empty()) return ignore("message from a bot");
    const std::string user = str(e, "user");
    if (user.empty()) return ignore("event without user");
    if (!bot_user_id.empty() && user == bot_user_id) return ignore("the bot's own message");
    const bool im = str(e, "channel_type") == "im";
    if (type == "message" && !im) return ignore("channel message without a mention");
    if (type != "app_mention" && type != "message") return ignore("event type " + type);
    in.kind = Inbound::Kind::event;
    in.direct = im;
    in.message.channel = bot::ChannelId{str(e, "channel")};
    in.message.user = bot::UserId{user};
    in.message.user_name = user;
    in.message.text = clean_text(str(e, "text"));
    in.message.thread = str(e, "thread_ts");
    in.ts = str(e, "ts");
    if (in.message.channel.empty()) return ignore("event without channel");
    return in;
  }

  if (frame.type == "interactive") {
    if (str(p, "type") != "block_actions") return ignore("interaction type " + str(p, "type"));
    const json& user = obj(p, "user");
    const json& channel = obj(p, "channel");
    const json& container = obj(p, "container");
    const json& message = obj(p, "message");
    auto actions = p.find("actions");
    if (actions == p.end() || !actions->is_array() || actions->empty()) return ignore("block_actions without actions");
    const json& action = (*actions)[0];
    auto command = bot::command_for_button(str(action, "action_id"), str(action, "value"));
    if (!command) return ignore("button without a command (link or unknown action " + str(action, "action_id") + ")");
    in.kind = Inbound::Kind::button;
    in.message.is_button = true;
    in.message.text = *command;
    in.message.user = bot::UserId{str(user, "id")};
    in.message.user_name = str(user, "username");
    if (in.message.user_name.empty()) in.message.user_name = str(user, "name");
    if (in.message.user_name.empty()) in.message.user_name = in.message.user.str();
    std::string ch = str(channel, "id");
    if (ch.empty()) ch = str(container, "channel_id");
    in.message.channel = bot::ChannelId{ch};
    in.message.thread = str(message, "thread_ts");
    if (in.message.thread.empty()) in.message.thread = str(container, "thread_ts");
    in.response_url = str(p, "response_url");
    in.trigger_id = str(p, "trigger_id");
    if (in.message.channel.empty() || in.message.user.empty()) return ignore("block_actions without channel or user");
    return in;
  }
  return ignore("envelope type " + frame.type);
}

std::string ack_json(const std::string& envelope_id) {
  return "{\"envelope_id\":" + json(envelope_id).dump(-1, ' ', false, json::error_handler_t::replace) + "}";
}

std::string ack_json(const std::string& envelope_id, const json& payload) {
  return json{{"envelope_id", envelope_id}, {"payload", payload}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool DedupeSet::insert(const std::string& key) {
  if (!keys_.insert(key).second) return false;
  order_.push_back(key);
  if (order_.size() > capacity_) {
    keys_.erase(order_.front());
    order_.pop_front();
  }
  return true;
}

AckMemory::AckMemory(std::size_t capacity, std::size_t max_bytes)
    : capacity_(capacity == 0 ? 1 : capacity), max_bytes_(max_bytes) {}

const std::string* AckMemory::find(const std::string& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : it->second.get();
}

void AckMemory::remember(std::initializer_list<std::string> keys, std::string payload) {
  auto shared = std::make_shared<const std::string>(std::move(payload));
  for (const auto& key : keys) {
    if (key.empty()) continue;
    auto [it, inserted] = entries_.try_emplace(key, shared);
    if (!inserted) {
      bytes_ -= it->second->size();
      it->second = shared;
    } else {
      order_.push_back(key);
    }
    bytes_ += shared->size();
  }
  while (!order_.empty() && (entries_.size() > capacity_ || bytes_ > max_bytes_)) {
    if (auto it = entries_.find(order_.front()); it != entries_.end()) {
      bytes_ -= it->second->size();
      entries_.erase(it);
    }
    order_.pop_front();
  }
}

}  // namespace runbot::slack
