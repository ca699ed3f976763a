#pragma once
// FakeBotFramework: a loopback Microsoft Bot Framework for component tests (chat-protocols.md
// §3.4–§3.6, §3.9). One HTTPS server (FakeHttpsServer, 127.0.0.1, port 0, TestCa certificate):
//
//   GET  /v1/.well-known/openidconfiguration   {"issuer", "jwks_uri": <this
//   server>/v1/.well-known/keys,
//                                               "id_token_signing_alg_values_supported":["RS256"]}
//   GET  /v1/.well-known/keys                  JWKS: kty RSA, use sig, kid, n, e, endorsements
//   POST /{tenant}/oauth2/v2.0/token           client credentials (form): checks grant_type,
//                                               client_id, client_secret, scope, the tenant and
//                                               the Content-Type; answers access_token/expires_in
//   under the service URL (<server>/amer/):
//   POST v3/conversations                                   → 201 {"id", "activityId"?}
//   POST v3/conversations/{id}/activities                   → 201 {"id"}
//   POST v3/conversations/{id}/activities/{replyToId}       → 201 {"id"} (body's replyToId must
//   match) PUT  v3/conversations/{id}/activities/{activityId}      → 200 {"id"} DELETE
//   v3/conversations/{id}/activities/{activityId}    → 200
//   GET  v3/conversations/{id}/members/{userId}             → 200 TeamsChannelAccount of a member
//                                                              added with add_member(), else 404
// and Microsoft Graph (graph_url() = <server>/graph/v1.0):
//   GET  /graph/v1.0/users/{oid}/transitiveMemberOf/microsoft.graph.group?$select=id,displayName
//        &$top=N&$count=true   (header ConsistencyLevel: eventual) → {"value":[{"@odata.type",
//        "id","displayName"}…], "@odata.nextLink"?} of the groups set with set_groups(), pages of
//        graph_page_size (or $top when smaller); 404 Request_ResourceNotFound for unknown users;
//        403 Authorization_RequestDenied while deny_graph() is on.
// The token endpoint accepts `scope` and `graph_scope` and remembers which one each token is for:
// connector calls need a connector token, Graph calls a Graph token (a mix-up is a problem, 401).
// Connector calls need `Authorization: Bearer <a token this fake issued and did not invalidate>`
// (401 otherwise). Every call is recorded (method, raw path, percent-decoded segments after
// "v3/conversations", JSON body, status answered).
//
// Protocol checks append to `problems` (tests assert it stays empty): a connector call without
// Authorization or with a token never issued, a body that is not a JSON object / an activity
// without `type`, a wrong Content-Type, a path with "//" or a segment with a character that should
// have been percent-encoded, a reply whose replyToId differs from the path, a create_conversation
// without a tenant, a token request with wrong fields, an unknown route.
//
// Failure injection: fail_next() makes the next N connector calls answer a status (429 with an
// optional Retry-After, 412, 502, 504, 401, …); block_next() answers 403 MessageWritesBlocked;
// invalidate_tokens() makes every token issued so far answer 401; fail_keys_next() fails the
// metadata/JWKS endpoints.
//
// Keys and tokens: RSA-2048 keys made with OpenSSL 3 in the test. sign() makes an RS256 JWT with a
// served key; token_for(activity) a valid Bot Connector token for that activity; rotate_key()
// serves a new kid; forge() signs with an unrelated key that is never served.
//
// Client side: post_activity() POSTs an activity to runbot's plain-HTTP endpoint as the Bot
// Connector does.
//
// Ownership and executor: borrows an io_context; every method must be called on its thread.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bot/time.h"
#include "tests/support/tls_test_ca.h"

struct evp_pkey_st;

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace runbot::testing {

// An RSA-2048 signing key made in the test (OpenSSL 3). Copies share the key.
class TestSigningKey {
 public:
  explicit TestSigningKey(std::string kid);  // generates; throws std::runtime_error on failure
  const std::string& kid() const { return kid_; }
  // {"kty":"RSA","use":"sig","kid","n","e","endorsements":[…]} (no endorsements key when nullopt)
  nlohmann::json jwk(const std::optional<std::vector<std::string>>& endorsements) const;
  // Compact JWS: header {"alg":alg,"typ":"JWT","kid":kid()}, payload `claims`.
  // alg is RS256, RS384 or RS512.
  std::string sign(const nlohmann::json& claims, const std::string& alg = "RS256") const;
  // The same with a header given as is (for malformed-header tests).
  std::string sign_with_header(const nlohmann::json& header, const nlohmann::json& claims) const;
  std::string raw_sign(std::string_view input, const std::string& alg) const;  // signature bytes

 private:
  std::string kid_;
  std::shared_ptr<evp_pkey_st> pkey_;
};

struct FakeBotFrameworkSettings {
  std::string app_id = "6c0b5c6e-1b2f-4c1e-9a57-6f0d8d1a2b3c";
  std::string app_password = "fake-app-password";
  std::string tenant_id = "5e7a0c1d-aaaa-4bbb-8ccc-0123456789ab";
  std::string scope = "https://api.botframework.com/.default";
  std::string graph_scope = "https://graph.microsoft.com/.default";
  int graph_page_size = 100;  // groups per Graph page (Graph's default page size)
  std::string issuer = "https://api.botframework.com";
  std::string service_prefix = "/amer/";  // the service URL's path
  std::optional<std::vector<std::string>> endorsements = std::vector<std::string>{"msteams"};
  int expires_in = 3600;                      // seconds, for issued access tokens
  std::chrono::seconds token_lifetime{3600};  // exp - iat of tokens from token_for()
  // The time put into signed tokens; empty = the system clock. Tests with a FakeClock pass it.
  std::function<bot::TimePoint()> now;
};

class FakeBotFramework {
 public:
  struct Call {
    std::string method;
    std::string path;                   // raw path
    std::vector<std::string> segments;  // percent-decoded, after ".../v3/conversations"
    nlohmann::json body;                // parsed JSON body, or null
    int status = 0;                     // what the fake answered
  };

  FakeBotFramework(boost::asio::io_context& io, const TestCa& ca,
                   FakeBotFrameworkSettings settings = {});
  ~FakeBotFramework();
  FakeBotFramework(const FakeBotFramework&) = delete;
  FakeBotFramework& operator=(const FakeBotFramework&) = delete;

  std::uint16_t start();  // binds 127.0.0.1:0; returns the port
  void stop();
  const FakeBotFrameworkSettings& settings() const;
  std::string base_url() const;             // https://127.0.0.1:<port>
  std::string openid_metadata_url() const;  // <base>/v1/.well-known/openidconfiguration
  std::string token_url() const;            // <base>/<tenant>/oauth2/v2.0/token
  std::string service_url() const;          // <base>/amer/  (trailing slash, like Teams)

  // ---- inbound tokens ----
  std::string current_kid() const;
  // RS256 JWT with the served key `kid` (empty = current).
  std::string sign(const nlohmann::json& claims, const std::string& kid = "") const;
  // Signed by a key that is never served, under `kid` (empty = current kid).
  std::string forge(const nlohmann::json& claims, const std::string& kid = "") const;
  // Valid claims for `activity`: iss, aud = app id, serviceurl = activity.serviceUrl, nbf/iat =
  // now - 1 min, exp = now + token_lifetime (now from settings.now).
  nlohmann::json claims_for(const nlohmann::json& activity) const;
  std::string token_for(const nlohmann::json& activity) const;  // sign(claims_for(activity))
  // A message activity as the Bot Connector sends it (serviceUrl = service_url()).
  nlohmann::json make_activity(const std::string& text,
                               const std::string& conversation_id = "a:1fake-personal-chat") const;
  // Serves a new key (returns its kid); the old one stays served when keep_old.
  std::string rotate_key(bool keep_old = true);
  // Adds a key that is not served yet and returns its kid; publish_key() then serves it.
  std::string add_unpublished_key();
  void publish_key(const std::string& kid);
  void set_endorsements(
      std::optional<std::vector<std::string>> endorsements);  // for all served keys
  int metadata_requests() const;
  int keys_requests() const;
  void fail_keys_next(int status, int count = 1);

  // ---- outbound token endpoint ----
  int token_requests() const;
  std::vector<std::string> issued_tokens() const;
  void set_expires_in(int seconds);
  void invalidate_tokens();  // every token issued so far now gets 401

  // ---- connector failure injection ----
  // The next `count` connector calls answer `status`; retry_after_seconds >= 0 adds Retry-After.
  void fail_next(int status, int count = 1, int retry_after_seconds = -1);
  void block_next(int count = 1);  // 403 {"errorCode":209,"message":"{…MessageWritesBlocked…}"}
  void too_big_next(int count = 1);  // 413 MessageSizeTooBig

  // ---- conversation members ----
  // Serves `user_id` in `conversation` (the decoded path segment) with `email` and
  // `userPrincipalName` (each omitted when empty) and the display name `name`.
  void add_member(const std::string& conversation, const std::string& user_id,
                  const std::string& email, const std::string& upn = "",
                  const std::string& name = "Fake User");
  int member_requests() const;  // GET …/members/{userId} calls that passed the token check

  // ---- Microsoft Graph ----
  std::string graph_url() const;  // <base>/graph/v1.0
  // The groups (id, displayName) user `object_id` is a transitive member of.
  void set_groups(const std::string& object_id,
                  std::vector<std::pair<std::string, std::string>> groups);
  void deny_graph(bool deny);  // 403 Authorization_RequestDenied, as without the permission
  void fail_graph_next(int status, int count = 1);  // the next Graph calls answer `status`
  int graph_requests() const;  // Graph calls that passed the token check (pages included)

  // ---- client side: the Bot Connector calling runbot ----
  // POSTs `activity` to `url` (http://…, runbot's endpoint) with Authorization: `authorization`
  // (omitted when empty); done(status, body), status 0 on a connection failure.
  void post_activity(const std::string& url, const nlohmann::json& activity,
                     const std::string& authorization,
                     std::function<void(int status, std::string body)> done);

  // ---- records ----
  std::vector<Call> calls;  // connector calls only
  std::vector<std::string> problems;
  std::vector<Call> calls_to(const std::string& method) const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace runbot::testing
