#pragma once
// JwtValidator: checks the bearer JWT the Bot Connector puts on every inbound activity
// (chat-protocols.md §3.4) with OpenSSL 3 only. An activity may be trusted, and its serviceUrl may
// receive the bot's own token (BotConnector::trust_service_url), only after validate() succeeded.
//
// Checks, in order; each failure is Errc::unauthorized with a message "teams jwt: <which check>"
// that never contains the token (nor any claim value the sender chose, except the kid):
//   scheme `Bearer` → three base64url parts → header JSON with alg RS256/RS384/RS512 and a kid →
//   payload JSON object → signature by the JWKS key with that kid → iss == settings.issuer →
//   aud == settings.app_id (string or array) → exp/nbf within clock_skew → the key's
//   `endorsements` (when the key has that array) contain the activity's channelId → the
//   `serviceurl` claim (name compared case-insensitively) equals the activity's serviceUrl.
//
// Keys: OpenID metadata → jwks_uri → JWKS, fetched through the HttpsClient on first use and cached
// for keys_ttl. A token whose kid is not cached triggers a refetch at once (the Bot Framework has
// started signing with a new key), with three guards so that forged tokens cannot make runbot hit
// the key endpoint more often:
// - single flight: validations that need keys while a fetch is in flight wait for that one fetch
//   (a kid it does not know waits for the next one, since a fetch already in flight may have
//   read the JWKS before the key was published: a kid counts as looked up only by a fetch that
//   started after its token arrived);
// - a global floor, min_refresh_interval (5 s) between fetch starts: a validation that needs a
//   fetch within it (a kid not looked up yet, or no keys after a failed fetch) waits for the next
//   allowed fetch, at most the floor away, instead of being refused; at most max_waiting wait,
//   more get unavailable;
// - a negative cache: a kid still unknown after a successful fetch, or one the JWKS stopped
//   serving, gets unauthorized at once, without a fetch, for unknown_kid_ttl (5 min; at most
//   unknown_kid_capacity kids, the soonest to expire forgotten first).
// A wait is at most the floor plus one fetch (fetch_timeout), or two fetches for a kid that joined
// one in flight. A token whose kid is cached waits only for the refresh of expired keys (keys_ttl).
// When expired keys cannot be refreshed, the old ones stay in use. When no keys can be had at all,
// validations fail with Errc::unavailable ("teams jwt: signing keys unavailable: …"), logged once
// per failed fetch: the adapter should answer 503 then, and 401 for unauthorized.
//
// Threading and callbacks: not thread-safe; call it on the io_context thread. `done` runs exactly
// once, on the io_context thread, and never inside validate(): outcomes known without I/O are
// delivered through clock.call_at(clock.now(), …) (so with tests/support/fake_clock.h the test must
// run due timers), the others from the HttpsClient's callback. Destroying the validator drops
// pending validations without calling their `done`.
//
// Time: exp/nbf are compared with `clock`, which must run at real speed (not the demo's --speed).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "adapters/common/https_client.h"
#include "adapters/teams/teams_settings.h"
#include "bot/clock.h"
#include "bot/result.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace runbot::teams {

struct VerifiedToken {
  std::string app_id;       // the audience that matched (settings.app_id)
  std::string service_url;  // the activity's serviceUrl, now proven to come from the Bot Connector
  bot::TimePoint expires;   // the token's exp
};

// ---- pure helpers (no I/O), public for unit tests ----

// base64url without padding (RFC 7515 §2). decode also accepts trailing '=' padding; it refuses
// other characters and impossible lengths.
std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);

// One RSA signing key from a JWKS. Immutable; cheap to copy (the EVP_PKEY is shared).
class JwkKey {
 public:
  // From one JWKS entry: kty "RSA", kid, n and e (base64url big-endian), optional endorsements
  // (array of strings). Refuses (invalid_argument, naming the field) other key types, a `use`
  // other than "sig", malformed n/e and moduli under 2048 bits.
  static bot::Result<JwkKey> from_json(const nlohmann::json& jwk);

  const std::string& kid() const { return kid_; }
  // The key's endorsements, or nullopt when the JWK has no endorsements array.
  const std::optional<std::vector<std::string>>& endorsements() const { return endorsements_; }
  int bits() const;
  // Whether `signature` is `alg` ("RS256", "RS384", "RS512") over `signing_input` by this key.
  bool verify(std::string_view alg, std::string_view signing_input,
              std::string_view signature) const;

 private:
  std::string kid_;
  std::optional<std::vector<std::string>> endorsements_;
  std::shared_ptr<evp_pkey_st> pkey_;
};

// The usable keys of a JWKS document ({"keys":[…]}). Entries that are not usable RSA signing keys
// are skipped (`skipped` counts them); a document that is not a JWKS is invalid_argument.
struct JwksParse {
  std::vector<JwkKey> keys;
  int skipped = 0;
};
bot::Result<JwksParse> parse_jwks(std::string_view body);

// A compact JWS split and decoded, not yet verified.
struct ParsedJwt {
  nlohmann::json header;      // an object
  nlohmann::json claims;      // an object
  std::string signing_input;  // "<header b64>.<payload b64>"
  std::string signature;      // raw bytes
  std::string alg;
  std::string kid;
};
// Splits "Bearer <jwt>" and checks its structure (scheme, three parts, base64url, JSON objects,
// allowed alg, kid present). Errors are unauthorized "teams jwt: …".
bot::Result<ParsedJwt> parse_bearer(std::string_view authorization_header);

// The claim checks after the signature: iss, aud, exp/nbf (with skew), serviceurl. `now` is the
// validator's clock. Errors are unauthorized "teams jwt: …". Gives exp.
bot::Result<bot::TimePoint> check_claims(const nlohmann::json& claims,
                                         const TeamsAuthSettings& settings, bot::TimePoint now,
                                         std::string_view service_url);

// The endorsement check: passes when the key has no endorsements array, or when it lists
// `channel_id` (which must then not be empty).
bot::Status check_endorsement(const JwkKey& key, std::string_view channel_id);

// ---- the validator ----

class JwtValidator {
 public:
  using Callback = std::function<void(bot::Result<VerifiedToken>)>;

  // Borrows `http` and `clock`, which must outlive the validator.
  JwtValidator(common::HttpsClient& http, TeamsAuthSettings settings, bot::Clock& clock);
  ~JwtValidator();
  JwtValidator(const JwtValidator&) = delete;
  JwtValidator& operator=(const JwtValidator&) = delete;

  // Validates the Authorization header of an activity whose channelId and serviceUrl are given.
  void validate(std::string authorization_header, std::string channel_id, std::string service_url,
                Callback done);

  // Starts a key fetch now, if none is in flight and the keys are missing or expired (e.g. at
  // startup, so the first activity does not wait). Optional.
  void prefetch();

  std::uint64_t keys_fetches() const;  // fetch rounds started (metadata + JWKS)
  std::uint64_t fetch_failures() const;
  std::size_t keys_cached() const;
  std::uint64_t accepted() const;
  std::uint64_t rejected() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace runbot::teams
