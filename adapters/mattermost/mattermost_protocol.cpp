#include "adapters/mattermost/mattermost_protocol.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

#include "adapters/common/secrets.h"

namespace runbot::mattermost {

using nlohmann::json;

namespace {

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

std::optional<std::int64_t> int_of(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<std::int64_t>();
}

bool word_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) || c == '_' || c == '-' || c == '.';
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
               hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::optional<Post> parse_post(const json& j) {
  if (!j.is_object()) return std::nullopt;
  Post p;
  p.id = str(j, "id");
  if (p.id.empty()) return std::nullopt;
  p.user_id = str(j, "user_id");
  p.channel_id = str(j, "channel_id");
  p.root_id = str(j, "root_id");
  p.message = str(j, "message");
  p.type = str(j, "type");
  p.create_at = int_of(j, "create_at").value_or(0);
  if (auto props = j.find("props"); props != j.end() && props->is_object()) {
    auto fb = props->find("from_bot");
    p.from_bot = fb != props->end() && ((fb->is_string() && fb->get<std::string>() == "true") ||
                                        (fb->is_boolean() && fb->get<bool>()));
    p.delivery_id = str(*props, kDeliveryIdProp);
    // The server keeps props as generic JSON (Go re-encodes the number runbot sends as an
    // integer); a string of digits is accepted too.
    if (auto part = props->find(kDeliveryPartProp); part != props->end()) {
      if (part->is_number_integer()) {
        const auto n = part->get<std::int64_t>();
        if (n >= 0 && n < 1000000) p.delivery_part = static_cast<int>(n);
      } else if (part->is_string()) {
        const auto& text = part->get_ref<const std::string&>();
        int n = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
        if (ec == std::errc{} && end == text.data() + text.size() && n >= 0) p.delivery_part = n;
      }
    }
  }
  return p;
}

std::vector<Post> parse_post_list(const json& list) {
  std::vector<Post> out;
  if (!list.is_object()) return out;
  const auto order = list.find("order");
  const auto posts = list.find("posts");
  if (order == list.end() || !order->is_array() || posts == list.end() || !posts->is_object()) return out;
  for (const auto& id : *order) {
    if (!id.is_string()) continue;
    const auto it = posts->find(id.get<std::string>());
    if (it == posts->end()) continue;
    if (auto p = parse_post(*it)) out.push_back(std::move(*p));
  }
  return out;
}

void tag_delivery(json& post, const std::string& delivery_id, std::size_t part) {
  json& props = post["props"];
  if (!props.is_object()) props = json::object();
  props[kDeliveryIdProp] = delivery_id;
  props[kDeliveryPartProp] = part;
}

Event parse_event(std::string_view text) {
  Event e;
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    e.error = "not a JSON object";
    return e;
  }
  if (j.contains("seq_reply")) {
    e.kind = EventKind::reply;
    e.status = str(j, "status");
    e.seq_reply = int_of(j, "seq_reply").value_or(0);
    if (auto err = j.find("error"); err != j.end() && err->is_object()) e.error = str(*err, "message");
    return e;
  }
  e.event = str(j, "event");
  e.seq = int_of(j, "seq");
  if (e.event.empty()) {
    e.error = "no event name";
    return e;
  }
  if (!e.seq) {
    e.error = "no seq";
    return e;
  }
  const json empty = json::object();
  const json& data = j.contains("data") && j["data"].is_object() ? j["data"] : empty;
  if (e.event == "hello") {
    e.connection_id = str(data, "connection_id");
    e.server_version = str(data, "server_version");
    e.kind = EventKind::hello;
    return e;
  }
  if (e.event != "posted") {
    e.kind = EventKind::other;
    return e;
  }
  const std::string raw = str(data, "post");
  json post = json::parse(raw, nullptr, false);
  auto p = post.is_discarded() ? std::nullopt : parse_post(post);
  if (!p) {
    e.error = "posted: data.post is not a JSON-encoded post";
    return e;
  }
  e.post = std::move(*p);
  e.channel_type = str(data, "channel_type");
  e.sender_name = str(data, "sender_name");
  e.kind = EventKind::posted;
  return e;
}

std::optional<std::string> strip_mention(std::string_view text, std::string_view bot_name) {
  if (bot_name.empty()) return std::nullopt;
  const std::string needle = "@" + std::string(bot_name);
  auto lower = [](std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
  };
  const std::string hay = lower(text);
  const std::string n = lower(needle);
  for (std::size_t pos = hay.find(n); pos != std::string::npos; pos = hay.find(n, pos + 1)) {
    const bool start_ok = pos == 0 || !word_char(text[pos - 1]);
    const std::size_t end = pos + n.size();
    // "@runbot." or "@runbot:" at the end of a word still counts; "@runbot2" does not.
    const bool end_ok = end >= text.size() || !(std::isalnum(static_cast<unsigned char>(text[end])) ||
                                                text[end] == '_' || text[end] == '-');
    if (!start_ok || !end_ok) continue;
    std::string before = trim(text.substr(0, pos));
    std::string_view after_view = text.substr(end);
    if (!after_view.empty() && (after_view.front() == ':' || after_view.front() == ',')) after_view.remove_prefix(1);
    std::string after = trim(after_view);
    return before.empty() || after.empty() ? before + after : before + " " + after;
  }
  return std::nullopt;
}

Inbound to_inbound(const Post& post, const std::string& channel_type, const std::string& sender_name,
                   const std::string& bot_user_id, const std::string& bot_name) {
  Inbound in;
  if (!bot_user_id.empty() && post.user_id == bot_user_id) {
    in.ignored_because = "own post";
    return in;
  }
  if (post.type.rfind("system_", 0) == 0) {
    in.ignored_because = "system post";
    return in;
  }
  if (post.from_bot) {
    in.ignored_because = "another bot";
    return in;
  }
  std::string text;
  if (channel_type == "D") {
    text = strip_mention(post.message, bot_name).value_or(trim(post.message));
    in.direct = true;
  } else if (auto stripped = strip_mention(post.message, bot_name)) {
    text = std::move(*stripped);
  } else {
    in.ignored_because = "no mention";
    return in;
  }
  in.act = true;
  in.message.platform = "mattermost";
  in.message.channel = bot::ChannelId{post.channel_id};
  in.message.user = bot::UserId{post.user_id};
  in.message.user_name = sender_name.rfind('@', 0) == 0 ? sender_name.substr(1) : sender_name;
  in.message.text = std::move(text);
  in.message.thread = post.root_id.empty() ? post.id : post.root_id;
  return in;
}

std::string challenge_json(std::int64_t seq, const std::string& token) {
  return json{{"seq", seq}, {"action", "authentication_challenge"}, {"data", {{"token", token}}}}.dump();
}

std::map<std::string, std::string> parse_form(std::string_view body) {
  std::map<std::string, std::string> out;
  while (!body.empty()) {
    const auto amp = body.find('&');
    const std::string_view pair = body.substr(0, amp);
    body = amp == std::string_view::npos ? std::string_view{} : body.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    out[url_decode(pair.substr(0, eq))] = eq == std::string_view::npos ? "" : url_decode(pair.substr(eq + 1));
  }
  return out;
}

std::string sign_action(const std::string& secret, std::string_view action, std::string_view value) {
  return common::hmac_sha256_hex(secret, std::string(action) + "\n" + std::string(value));
}

std::optional<ActionRequest> parse_action_request(std::string_view body, std::string* error) {
  json j = json::parse(body, nullptr, false);
  auto fail = [error](const char* why) -> std::optional<ActionRequest> {
    if (error) *error = why;
    return std::nullopt;
  };
  if (j.is_discarded() || !j.is_object()) return fail("body is not a JSON object");
  ActionRequest a;
  a.user_id = str(j, "user_id");
  a.user_name = str(j, "user_name");
  a.channel_id = str(j, "channel_id");
  a.post_id = str(j, "post_id");
  auto ctx = j.find("context");
  if (ctx == j.end() || !ctx->is_object()) return fail("no context");
  a.action = str(*ctx, "action");
  a.value = str(*ctx, "value");
  a.sig = str(*ctx, "sig");
  if (a.user_id.empty() || a.action.empty()) return fail("no user_id or context.action");
  return a;
}

bool DedupeSet::insert(const std::string& key) {
  if (!keys_.insert(key).second) return false;
  order_.push_back(key);
  while (order_.size() > capacity_) {
    keys_.erase(order_.front());
    order_.pop_front();
  }
  return true;
}

}  // namespace runbot::mattermost
