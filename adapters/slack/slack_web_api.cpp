#include "adapters/slack/slack_web_api.h"

#include <cctype>
#include <charconv>
#include <map>

#include <spdlog/spdlog.h>

#include "adapters/common/url.h"
#include "adapters/slack/slack_log.h"

namespace runbot::slack {

using nlohmann::json;

namespace {

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::chrono::milliseconds parse_retry_after(const std::string& value) {
  long long seconds = 0;
  const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec != std::errc{} || seconds < 0) return std::chrono::seconds(1);  // 429 without a usable header
  return std::chrono::seconds(std::min(seconds, 3600LL));
}

struct Known {
  bot::Errc code;
  const char* hint;
};

const std::map<std::string, Known, std::less<>>& known_errors() {
  static const std::map<std::string, Known, std::less<>> k{
      {"invalid_auth", {bot::Errc::unauthorized, "the token is not valid: check slack.bot_token / slack.app_token"}},
      {"not_authed", {bot::Errc::unauthorized, "no token was sent: set slack.bot_token / slack.app_token"}},
      {"account_inactive", {bot::Errc::unauthorized, "the app's user or workspace was deactivated"}},
      {"token_revoked", {bot::Errc::unauthorized, "the token was revoked: reinstall the app and update the token"}},
      {"token_expired", {bot::Errc::unauthorized, "the token expired: rotate it"}},
      {"no_permission", {bot::Errc::unauthorized, "the token lacks permission for this call"}},
      {"not_allowed_token_type", {bot::Errc::unauthorized, "wrong kind of token (xapp- for Socket Mode, xoxb- for the Web API)"}},
      {"missing_scope", {bot::Errc::unauthorized, "the app lacks a scope: add it in the app settings and reinstall"}},
      {"access_denied", {bot::Errc::unauthorized, "access denied"}},
      {"forbidden_team", {bot::Errc::unauthorized, "the workspace is not allowed"}},
      {"not_in_channel", {bot::Errc::invalid_argument, "the bot is not a member of the channel: invite it"}},
      {"channel_not_found", {bot::Errc::invalid_argument, "wrong channel id, or a private channel the bot cannot see"}},
      {"is_archived", {bot::Errc::invalid_argument, "the channel is archived"}},
      {"msg_too_long", {bot::Errc::invalid_argument, "the message text is too long"}},
      {"msg_blocks_too_long", {bot::Errc::invalid_argument, "the message blocks are too long"}},
      {"invalid_blocks", {bot::Errc::invalid_argument, "Slack rejected the blocks"}},
      {"no_text", {bot::Errc::invalid_argument, "the message has no text"}},
      {"message_not_found", {bot::Errc::invalid_argument, "the message to edit does not exist"}},
      {"cant_update_message", {bot::Errc::invalid_argument, "the message cannot be edited by this token"}},
      {"edit_window_closed", {bot::Errc::invalid_argument, "the message can no longer be edited"}},
      {"user_not_in_channel", {bot::Errc::invalid_argument, "the user is not in the channel"}},
      {"expired_url", {bot::Errc::invalid_argument, "the response_url expired (30 minutes, 5 uses)"}},
      {"user_not_found", {bot::Errc::invalid_argument, "no such user in this workspace"}},
      {"user_not_visible", {bot::Errc::invalid_argument, "the user is not visible to the bot"}},
      {"plan_upgrade_required", {bot::Errc::invalid_argument, "the workspace's plan has no user groups"}},
      {"internal_error", {bot::Errc::unavailable, "Slack internal error"}},
      {"fatal_error", {bot::Errc::unavailable, "Slack fatal error"}},
      {"service_unavailable", {bot::Errc::unavailable, "Slack is unavailable"}},
      {"request_timeout", {bot::Errc::timeout, "Slack timed out"}},
  };
  return k;
}

}  // namespace

bot::Result<json> interpret_response(const std::string& method, const int status, const std::string& retry_after,
                                     const std::string& body) {
  const std::string where = "slack " + method + ": ";
  if (status == 429) {
    bot::Error e = bot::make_error(bot::Errc::rate_limited, where + "rate limited (HTTP 429)");
    e.retry_after = parse_retry_after(retry_after);
    return e;
  }
  if (status >= 500) return bot::make_error(bot::Errc::unavailable, where + "HTTP " + std::to_string(status));
  if (status == 408) return bot::make_error(bot::Errc::timeout, where + "HTTP 408");
  json j = json::parse(body, nullptr, false);
  const bool is_json = !j.is_discarded() && j.is_object();
  if (status < 200 || status >= 300) {
    // response_url answers 404 "expired_url" style errors in the body, sometimes as text.
    std::string code = is_json && j.value("error", json()).is_string() ? j["error"].get<std::string>() : "";
    const auto errc = (status == 401 || status == 403) ? bot::Errc::unauthorized : bot::Errc::invalid_argument;
    return bot::make_error(errc, where + "HTTP " + std::to_string(status) + (code.empty() ? "" : " " + code));
  }
  if (!is_json) {
    if (method == "response_url") return json::object();
    return bot::make_error(bot::Errc::unavailable, where + "response is not a JSON object");
  }
  auto ok = j.find("ok");
  if (ok == j.end() || !ok->is_boolean()) {
    if (method == "response_url") return j;
    return bot::make_error(bot::Errc::unavailable, where + "response has no \"ok\" field");
  }
  if (ok->get<bool>()) return j;
  const std::string code = j.value("error", json()).is_string() ? j["error"].get<std::string>() : "unknown_error";
  if (code == "ratelimited") {
    bot::Error e = bot::make_error(bot::Errc::rate_limited, where + "ratelimited");
    e.retry_after = parse_retry_after(retry_after);
    return e;
  }
  std::string message = where + code;
  bot::Errc errc = bot::Errc::invalid_argument;  // unknown codes: payload or configuration problems
  if (auto it = known_errors().find(code); it != known_errors().end()) {
    errc = it->second.code;
    message += " (" + std::string(it->second.hint) + ")";
  }
  if (code == "missing_scope") {
    const std::string needed = j.value("needed", json()).is_string() ? j["needed"].get<std::string>() : "?";
    const std::string provided = j.value("provided", json()).is_string() ? j["provided"].get<std::string>() : "?";
    message += " needed=" + needed + " provided=" + provided;
  }
  return bot::make_error(errc, std::move(message));
}

SlackWebApi::SlackWebApi(common::HttpsClient& http, const SlackSettings& settings)
    : http_(http),
      base_url_(settings.api_base_url),
      bot_token_(settings.bot_token),
      app_token_(settings.app_token),
      timeout_(settings.request_timeout) {
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
}

void SlackWebApi::send(const std::string& url, const std::string& token, const std::string& what, std::string body,
                       const char* content_type, JsonCallback done) {
  common::HttpClientRequest req;
  req.method = "POST";
  req.url = url;
  req.timeout = timeout_;
  req.headers.emplace_back("Content-Type", content_type);
  if (!token.empty()) req.headers.emplace_back("Authorization", "Bearer " + token);
  req.body = std::move(body);
  ++calls_;
  http_.request(std::move(req), [what, done = std::move(done)](bot::Result<common::HttpClientResponse> res) {
    if (!res) {
      bot::Error e = res.error();
      e.message = "slack " + what + ": " + e.message;
      done(std::move(e));
      return;
    }
    done(interpret_response(what, res->status, res->header("retry-after"), res->body));
  });
}

void SlackWebApi::call(const std::string& method, const json& body, JsonCallback done) {
  send(base_url_ + "/" + method, bot_token_, method, dump(body), "application/json; charset=utf-8", std::move(done));
}

void SlackWebApi::call_form(const std::string& method, const std::vector<std::pair<std::string, std::string>>& fields,
                            JsonCallback done) {
  send(base_url_ + "/" + method, bot_token_, method, common::form_encode(fields), "application/x-www-form-urlencoded",
       std::move(done));
}

void SlackWebApi::auth_test(JsonCallback done) {
  send(base_url_ + "/auth.test", bot_token_, "auth.test", "", "application/x-www-form-urlencoded", std::move(done));
}

void SlackWebApi::connections_open(TsCallback done) {
  send(base_url_ + "/apps.connections.open", app_token_, "apps.connections.open", "",
       "application/x-www-form-urlencoded", [done = std::move(done)](bot::Result<json> res) {
         if (!res) return done(res.error());
         if (!res->contains("url") || !(*res)["url"].is_string()) {
           return done(bot::make_error(bot::Errc::unavailable, "slack apps.connections.open: response has no url"));
         }
         done((*res)["url"].get<std::string>());
       });
}

void SlackWebApi::post_message(const std::string& channel, const std::string& thread_ts, json payload, TsCallback done) {
  payload["channel"] = channel;
  if (!thread_ts.empty()) payload["thread_ts"] = thread_ts;
  call("chat.postMessage", payload, [done = std::move(done)](bot::Result<json> res) {
    if (!res) return done(res.error());
    done(res->value("ts", json()).is_string() ? (*res)["ts"].get<std::string>() : std::string{});
  });
}

void SlackWebApi::update(const std::string& channel, const std::string& ts, json payload, TsCallback done) {
  payload["channel"] = channel;
  payload["ts"] = ts;
  call("chat.update", payload, [ts, done = std::move(done)](bot::Result<json> res) {
    if (!res) return done(res.error());
    done(res->value("ts", json()).is_string() ? (*res)["ts"].get<std::string>() : ts);
  });
}

void SlackWebApi::post_ephemeral(const std::string& channel, const std::string& user, const std::string& thread_ts,
                                 json payload, TsCallback done) {
  payload["channel"] = channel;
  payload["user"] = user;
  if (!thread_ts.empty()) payload["thread_ts"] = thread_ts;
  call("chat.postEphemeral", payload, [done = std::move(done)](bot::Result<json> res) {
    if (!res) return done(res.error());
    done(res->value("message_ts", json()).is_string() ? (*res)["message_ts"].get<std::string>() : std::string{});
  });
}

void SlackWebApi::users_info(const std::string& user, JsonCallback done) {
  call_form("users.info", {{"user", user}}, std::move(done));
}

void SlackWebApi::usergroups_list(JsonCallback done) {
  call_form("usergroups.list", {{"include_users", "true"}}, std::move(done));
}

void SlackWebApi::respond(const std::string& response_url, json payload, StatusCallback done) {
  send(response_url, "", "response_url", dump(payload), "application/json; charset=utf-8",
       [done = std::move(done)](bot::Result<json> res) {
         if (!res) return done(res.error());
         done(bot::ok());
       });
}

}  // namespace runbot::slack
