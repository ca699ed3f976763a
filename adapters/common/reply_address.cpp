#include "adapters/common/reply_address.h"

#include <nlohmann/json.hpp>

namespace runbot::common {

namespace {
const char* via_name(ReplyAddress::Via v) {
  switch (v) {
    case ReplyAddress::Via::response_url: return "response_url";
    case ReplyAddress::Via::post: return "post";
    case ReplyAddress::Via::ephemeral: return "ephemeral";
  }
  return "post";
}
}  // namespace

std::string ReplyAddress::to_json() const {
  nlohmann::json j{{"via", via_name(via)}};
  if (!url.empty()) j["url"] = url;
  if (!type.empty()) j["type"] = type;
  if (!user.empty()) j["user"] = user;
  if (!thread.empty()) j["thread"] = thread;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bot::Result<ReplyAddress> ReplyAddress::parse(const std::string& text) {
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return bot::make_error(bot::Errc::invalid_argument, "reply address is not a JSON object");
  auto field = [&j](const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  ReplyAddress a;
  const std::string via = field("via");
  if (via == "response_url") {
    a.via = Via::response_url;
  } else if (via == "post") {
    a.via = Via::post;
  } else if (via == "ephemeral") {
    a.via = Via::ephemeral;
  } else {
    return bot::make_error(bot::Errc::invalid_argument, "reply address with an unknown way '" + via + "'");
  }
  a.url = field("url");
  a.type = field("type");
  a.user = field("user");
  a.thread = field("thread");
  if (a.via == Via::response_url && a.url.empty()) {
    return bot::make_error(bot::Errc::invalid_argument, "reply address by response_url without a url");
  }
  if (a.via == Via::ephemeral && a.user.empty()) {
    return bot::make_error(bot::Errc::invalid_argument, "ephemeral reply address without a user");
  }
  return a;
}

}  // namespace runbot::common
