#pragma once
// BotConnector: the Bot Connector REST calls runbot makes (chat-protocols.md §3.5, §3.6), over
// common::HttpsClient, with the bot's OAuth2 client-credentials token.
//
// Token: POST form-urlencoded to the tenant's token endpoint; cached until `refresh_before` its
// expiry; one refresh at a time (callers that need a token while it is being fetched wait for it).
// A 401 from the connector refreshes the token once and retries the call once.
//
// Trust: the bot's token goes only to service URLs passed to trust_service_url() (from validated
// activities, or restored conversation references). A call to any other URL fails with
// invalid_argument ("teams connector: untrusted service url") without network I/O. URLs are
// compared without trailing slashes, scheme and host case-insensitively.
//
// Paths:
// <serviceUrl>/v3/conversations[/{conversationId}/(activities[/{activityId}]|members/{userId})],
// every segment percent-encoded (only A-Z a-z 0-9 - . _ ~ stay as they are), no double slash.
//
// Errors (interpret_connector_response below), so that the outbox (which retries) knows what to do;
// the connector itself never retries except the single 401 refresh:
//   429                       → rate_limited, retry_after = Retry-After, else the backoff hint
//   412, 5xx, network         → unavailable (timeout for deadlines), retry_after = backoff hint
//   401 (after the retry)     → unauthorized
//   403 errorCode 209 /
//       MessageWritesBlocked  → invalid_argument, is_blocked_error() is true: the user blocked or
//                               uninstalled the bot in that conversation; stop sending there
//   413                       → invalid_argument "message too big"
//   404 of get_member         → not_found (the user is not a member of that conversation)
//   other 4xx                 → invalid_argument naming the status (408 → timeout)
//   token endpoint 400/401    → unauthorized (check app_id / app_password / tenant_id)
// The backoff hint is 2 s · 2^(n-1) capped at 20 s, ±20 % jitter, where n counts consecutive
// retryable failures of that conversation (§3.9). Messages never contain tokens, secrets or bodies
// we sent.
//
// Ownership and executor: borrows the HttpsClient and the clock (both must outlive it); not
// thread-safe; every callback runs exactly once on the io_context thread and never inside the call
// (refusals without I/O are delivered through clock.call_at(clock.now(), …)). Destroying the
// connector drops pending calls without calling their callbacks.
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "adapters/common/https_client.h"
#include "adapters/teams/teams_settings.h"
#include "bot/clock.h"
#include "bot/result.h"

namespace runbot::teams {

// Percent-encodes one path segment (RFC 3986 unreserved characters stay).
std::string encode_path_segment(std::string_view segment);

// <service_url without trailing '/'>/v3/conversations[/<seg>…]
std::string connector_url(std::string_view service_url,
                          std::initializer_list<std::string_view> segments);

// The backoff hint for the n-th consecutive retryable failure (n >= 1); `jitter` in [0, 1) maps
// to a factor 0.8 … 1.2.
std::chrono::milliseconds backoff_hint(int consecutive_failures, double jitter);

// Classifies one connector response. `what` names the call for messages ("send", "reply", …);
// `hint` is the retry_after to use for retryable statuses without a Retry-After. 2xx gives the
// parsed JSON body (an empty object for an empty or non-JSON body). `service` starts every message
// (Microsoft Graph answers errors in the same shape: "teams graph").
bot::Result<nlohmann::json> interpret_connector_response(
    const std::string& what, int status, const std::string& retry_after, const std::string& body,
    std::chrono::milliseconds hint, std::string_view service = "teams connector");

// Whether `error` says the bot was blocked or uninstalled in the conversation (403
// MessageWritesBlocked). The adapter should stop sending there and forget the conversation.
bool is_blocked_error(const bot::Error& error);

// ClientCredentials: one OAuth2 client-credentials token for one scope (§3.5), shared by the Bot
// Connector (scope api.botframework.com) and the Graph client (scope graph.microsoft.com). POSTs
// form-urlencoded to the token endpoint; caches the token until `refresh_before` its expiry (half-way
// for short-lived tokens); one request at a time, callers that need a token meanwhile wait for it.
// Token endpoint errors: 400/401 → unauthorized (check app_id/app_password/tenant_id), 429 →
// rate_limited, 5xx → unavailable (retry_after from Retry-After or a backoff hint). `what` names
// the token in messages and logs ("teams token"); messages never contain the secret or the token.
//
// Borrows the HttpsClient and the clock; not thread-safe. get() calls `done` inside the call when
// a fresh token is cached, else once the request is answered. Destroying it drops waiting callers.
class ClientCredentials {
 public:
  using TokenCallback = std::function<void(bot::Result<std::string>)>;
  using Random = std::function<double()>;  // uniform in [0, 1)

  // settings.token_url must be set (BotConnector fills the tenant's default).
  ClientCredentials(common::HttpsClient& http, ConnectorSettings settings, std::string scope,
                    std::string what, bot::Clock& clock, Random random);
  ~ClientCredentials();
  ClientCredentials(const ClientCredentials&) = delete;
  ClientCredentials& operator=(const ClientCredentials&) = delete;

  void get(TokenCallback done);
  // Forgets the cached token when it is still `used` (a service answered 401 to it).
  void invalidate(const std::string& used);
  std::uint64_t requests() const;  // token endpoint requests sent

  struct State;

 private:
  std::shared_ptr<State> state_;
};

// The token endpoint of `settings`: token_url, else the tenant's v2.0 endpoint at
// login.microsoftonline.com.
std::string token_url_of(const ConnectorSettings& settings);

class BotConnector {
 public:
  using IdCallback = std::function<void(bot::Result<std::string>)>;
  using JsonCallback = std::function<void(bot::Result<nlohmann::json>)>;
  using Random = std::function<double()>;  // uniform in [0, 1)

  // `random` feeds the jitter; empty = a std::mt19937 seeded from std::random_device.
  BotConnector(common::HttpsClient& http, ConnectorSettings settings, bot::Clock& clock,
               Random random = {});
  ~BotConnector();
  BotConnector(const BotConnector&) = delete;
  BotConnector& operator=(const BotConnector&) = delete;

  // Allows the bot's token to be sent to `service_url` from now on.
  void trust_service_url(const std::string& service_url);
  bool is_trusted(const std::string& service_url) const;

  // POST v3/conversations/{id}/activities → the new activity's id.
  void send(const std::string& service_url, const std::string& conversation_id,
            nlohmann::json activity, IdCallback done);
  // POST v3/conversations/{id}/activities/{replyToId}; sets activity.replyToId when absent → id.
  void reply(const std::string& service_url, const std::string& conversation_id,
             const std::string& reply_to_id, nlohmann::json activity, IdCallback done);
  // PUT v3/conversations/{id}/activities/{activityId} → id (activity_id when the answer has none).
  void update(const std::string& service_url, const std::string& conversation_id,
              const std::string& activity_id, nlohmann::json activity, IdCallback done);
  // POST v3/conversations → the whole answer ({"id", "activityId"?, …}).
  void create_conversation(const std::string& service_url, nlohmann::json params,
                           JsonCallback done);

  // GET v3/conversations/{id}/members/{userId} → the member's TeamsChannelAccount ({"id", "name",
  // "aadObjectId", "email", "userPrincipalName", "tenantId", …}). Needs no Graph permission.
  void get_member(const std::string& service_url, const std::string& conversation_id,
                  const std::string& user_id, JsonCallback done);

  std::uint64_t token_requests() const;  // token endpoint requests sent
  std::uint64_t calls() const;           // connector requests sent (retries included)

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace runbot::teams
