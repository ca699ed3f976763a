#pragma once
// SlackWebApi: the Slack Web API calls runbot makes (chat-protocols.md §1.2, §1.8, §1.9), over
// common::HttpsClient. Every call checks `ok`; errors come back as bot::Error values, classified by
// interpret_response() below so the outbox knows whether retrying can help:
//
//   HTTP 429 / error "ratelimited"                         → rate_limited, retry_after = Retry-After
//   HTTP 5xx, network errors, internal_error, fatal_error,
//   service_unavailable                                    → unavailable (request_timeout → timeout)
//   invalid_auth, not_authed, account_inactive,
//   token_revoked, token_expired, missing_scope, …         → unauthorized (not retried)
//   not_in_channel, channel_not_found, msg_too_long, …     → invalid_argument (not retried)
//
// Error messages name the method, Slack's error code and what to do about it; they never contain
// tokens, request bodies or response_urls.
//
// Ownership and executor: borrows the HttpsClient (which must outlive it); callbacks run on the
// client's io_context thread, never inside the call.
#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "adapters/common/https_client.h"
#include "adapters/slack/slack_settings.h"
#include "bot/result.h"

namespace runbot::slack {

class SlackWebApi {
 public:
  using JsonCallback = std::function<void(bot::Result<nlohmann::json>)>;
  using TsCallback = std::function<void(bot::Result<std::string>)>;
  using StatusCallback = std::function<void(bot::Status)>;

  // Keeps the base URL, both tokens and the request timeout from `settings`.
  SlackWebApi(common::HttpsClient& http, const SlackSettings& settings);

  // POST <base>/<method> with a JSON body and the bot token.
  void call(const std::string& method, const nlohmann::json& body, JsonCallback done);
  // POST <base>/<method> with a form-encoded body and the bot token (read methods such as
  // conversations.history take their arguments as form fields).
  void call_form(const std::string& method, const std::vector<std::pair<std::string, std::string>>& fields,
                 JsonCallback done);
  // auth.test with the bot token: the response has user_id (the bot user), team, team_id.
  void auth_test(JsonCallback done);
  // apps.connections.open with the app token: the single-use wss:// URL.
  void connections_open(TsCallback done);
  // chat.postMessage; `payload` is a rendered part ({"text","blocks"}); an empty thread_ts posts at
  // channel level. Gives the new message's ts.
  void post_message(const std::string& channel, const std::string& thread_ts, nlohmann::json payload, TsCallback done);
  // chat.update of message `ts`. Gives the ts.
  void update(const std::string& channel, const std::string& ts, nlohmann::json payload, TsCallback done);
  // chat.postEphemeral to `user`. Gives message_ts.
  void post_ephemeral(const std::string& channel, const std::string& user, const std::string& thread_ts,
                      nlohmann::json payload, TsCallback done);
  // users.info for `user` (form-encoded: the method does not accept JSON). The response's
  // user.profile.email is there only with the users:read.email scope; without users:read the
  // call fails with missing_scope (unauthorized).
  void users_info(const std::string& user, JsonCallback done);
  // usergroups.list with include_users=true: every enabled user group of the workspace with its
  // members (`usergroups[].{id,handle,users}`). Scope usergroups:read; free workspaces answer
  // plan_upgrade_required (invalid_argument).
  void usergroups_list(JsonCallback done);
  // POST to an interaction's or slash command's response_url (no token: the URL is the credential).
  void respond(const std::string& response_url, nlohmann::json payload, StatusCallback done);

  std::uint64_t calls() const { return calls_; }

 private:
  void send(const std::string& url, const std::string& token, const std::string& what, std::string body,
            const char* content_type, JsonCallback done);

  common::HttpsClient& http_;
  std::string base_url_;
  std::string bot_token_;
  std::string app_token_;
  std::chrono::milliseconds timeout_;
  std::uint64_t calls_ = 0;
};

// Classifies one HTTP exchange with Slack. `method` is for messages ("chat.postMessage",
// "response_url"). A 2xx with {"ok":true} (or, for response_url, any non-JSON 2xx body such as
// "ok") is success.
bot::Result<nlohmann::json> interpret_response(const std::string& method, int status,
                                               const std::string& retry_after, const std::string& body);

}  // namespace runbot::slack
