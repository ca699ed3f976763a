#include "adapters/teams/jwt_validator.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <utility>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <spdlog/spdlog.h>

#include "adapters/teams/teams_log.h"

namespace runbot::teams {

using nlohmann::json;

namespace {

bot::Error reject(std::string what) {
  return bot::make_error(bot::Errc::unauthorized, "teams jwt: " + what);
}

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// A kid is echoed in messages and logs: keep it short and printable, since the sender chose it.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
  return out;
}

const EVP_MD* digest_for(std::string_view alg) {
  if (alg == "RS256") return EVP_sha256();
  if (alg == "RS384") return EVP_sha384();
  if (alg == "RS512") return EVP_sha512();
  return nullptr;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::optional<std::int64_t> numeric_date(const json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end()) return std::nullopt;
  if (it->is_number_integer()) return it->get<std::int64_t>();
  if (it->is_number_float()) return static_cast<std::int64_t>(it->get<double>());
  return std::nullopt;
}

struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

}  // namespace

// ---------------------------------------------------------------------------- base64url

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  const auto at = [&](std::size_t k) {
    return static_cast<unsigned>(static_cast<unsigned char>(bytes[k]));
  };
  for (; i + 3 <= bytes.size(); i += 3) {
    const unsigned v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (bytes.size() - i == 1) {
    const unsigned v = at(i) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (bytes.size() - i == 2) {
    const unsigned v = (at(i) << 16) | (at(i + 1) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  unsigned acc = 0;
  int bits = 0;
  for (char c : text) {
    const int v = sextet(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  // Leftover bits must be zero, or two different texts would decode to the same bytes.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

// ---------------------------------------------------------------------------- JwkKey

bot::Result<JwkKey> JwkKey::from_json(const json& jwk) {
  const auto bad = [](std::string why) {
    return bot::make_error(bot::Errc::invalid_argument, "teams jwk: " + why);
  };
  if (!jwk.is_object()) return bad("entry is not an object");
  const auto str = [&](const char* k) -> std::optional<std::string> {
    auto it = jwk.find(k);
    if (it == jwk.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  const auto kid = str("kid");
  if (!kid || kid->empty()) return bad("no kid");
  if (str("kty").value_or("") != "RSA") return bad("kty is not RSA (kid " + printable(*kid) + ")");
  if (jwk.contains("use") && str("use").value_or("") != "sig")
    return bad("use is not sig (kid " + printable(*kid) + ")");
  const auto n_text = str("n");
  const auto e_text = str("e");
  if (!n_text || !e_text) return bad("n or e missing (kid " + printable(*kid) + ")");
  const auto n = base64url_decode(*n_text);
  const auto e = base64url_decode(*e_text);
  if (!n || !e || n->empty() || e->empty() || e->size() > 8) {
    return bad("n or e is not base64url (kid " + printable(*kid) + ")");
  }
  JwkKey key;
  key.kid_ = *kid;
  if (auto it = jwk.find("endorsements"); it != jwk.end()) {
    if (!it->is_array()) return bad("endorsements is not an array (kid " + printable(*kid) + ")");
    std::vector<std::string> list;
    for (const auto& x : *it) {
      if (x.is_string()) list.push_back(x.get<std::string>());
    }
    key.endorsements_ = std::move(list);
  }

  BnPtr bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n->data()),
                       static_cast<int>(n->size()), nullptr));
  BnPtr bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e->data()),
                       static_cast<int>(e->size()), nullptr));
  if (!bn_n || !bn_e) return bad("cannot read n/e");
  if (BN_num_bits(bn_n.get()) < 2048)
    return bad("modulus under 2048 bits (kid " + printable(*kid) + ")");
  if (!BN_is_odd(bn_e.get()) || BN_is_one(bn_e.get()))
    return bad("bad exponent (kid " + printable(*kid) + ")");

  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM* params = nullptr;
  EVP_PKEY_CTX* ctx = nullptr;
  EVP_PKEY* pkey = nullptr;
  bool ok = bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n.get()) == 1 &&
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e.get()) == 1 &&
            (params = OSSL_PARAM_BLD_to_param(bld)) != nullptr &&
            (ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr)) != nullptr &&
            EVP_PKEY_fromdata_init(ctx) == 1 &&
            EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  if (!ok || !pkey) {
    EVP_PKEY_free(pkey);
    return bad("OpenSSL refused the RSA key (kid " + printable(*kid) + ")");
  }
  key.pkey_ = std::shared_ptr<evp_pkey_st>(pkey, EVP_PKEY_free);
  return key;
}

int JwkKey::bits() const {
  return pkey_ ? EVP_PKEY_get_bits(pkey_.get()) : 0;
}

bool JwkKey::verify(std::string_view alg, std::string_view signing_input,
                    std::string_view signature) const {
  const EVP_MD* md = digest_for(alg);
  if (!md || !pkey_) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (!ctx) return false;
  // RSASSA-PKCS1-v1_5 is the default padding for an RSA key, which is what RS256/384/512 are.
  const bool ok = EVP_DigestVerifyInit(ctx, nullptr, md, nullptr, pkey_.get()) == 1 &&
                  EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()),
                                   signature.size(),
                                   reinterpret_cast<const unsigned char*>(signing_input.data()),
                                   signing_input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

bot::Result<JwksParse> parse_jwks(std::string_view body) {
  const json doc = json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return bot::make_error(bot::Errc::invalid_argument, "teams jwks: not a JSON object");
  }
  auto it = doc.find("keys");
  if (it == doc.end() || !it->is_array()) {
    return bot::make_error(bot::Errc::invalid_argument, "teams jwks: no keys array");
  }
  JwksParse out;
  for (const auto& entry : *it) {
    auto key = JwkKey::from_json(entry);
    if (key) {
      out.keys.push_back(std::move(*key));
    } else {
      ++out.skipped;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------- token checks

bot::Result<ParsedJwt> parse_bearer(std::string_view header) {
  constexpr std::string_view kScheme = "bearer ";
  if (header.empty()) return reject("no Authorization header");
  if (header.size() <= kScheme.size() || lower(header.substr(0, kScheme.size())) != kScheme) {
    return reject("Authorization scheme is not Bearer");
  }
  std::string_view token = header.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\r' || token.back() == '\n'))
    token.remove_suffix(1);
  const auto d1 = token.find('.');
  const auto d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d1 == std::string_view::npos || d2 == std::string_view::npos ||
      token.find('.', d2 + 1) != std::string_view::npos) {
    return reject("token is not three dot-separated parts");
  }
  const auto header_text = base64url_decode(token.substr(0, d1));
  const auto payload_text = base64url_decode(token.substr(d1 + 1, d2 - d1 - 1));
  const auto signature = base64url_decode(token.substr(d2 + 1));
  if (!header_text || !payload_text || !signature) return reject("token part is not base64url");
  if (signature->empty()) return reject("token has no signature");
  ParsedJwt out;
  out.header = json::parse(*header_text, nullptr, false);
  if (out.header.is_discarded() || !out.header.is_object())
    return reject("token header is not a JSON object");
  out.claims = json::parse(*payload_text, nullptr, false);
  if (out.claims.is_discarded() || !out.claims.is_object())
    return reject("token payload is not a JSON object");
  const auto alg = out.header.find("alg");
  if (alg == out.header.end() || !alg->is_string()) return reject("token header has no alg");
  out.alg = alg->get<std::string>();
  if (!digest_for(out.alg)) return reject("token alg is not RS256/RS384/RS512");
  const auto kid = out.header.find("kid");
  if (kid == out.header.end() || !kid->is_string() || kid->get<std::string>().empty()) {
    return reject("token header has no kid");
  }
  out.kid = kid->get<std::string>();
  out.signing_input = std::string(token.substr(0, d2));
  out.signature = std::move(*signature);
  return out;
}

bot::Result<bot::TimePoint> check_claims(const json& claims, const TeamsAuthSettings& settings,
                                         bot::TimePoint now, std::string_view service_url) {
  const auto iss = claims.find("iss");
  if (iss == claims.end() || !iss->is_string() || iss->get<std::string>() != settings.issuer) {
    return reject("issuer is not " + settings.issuer);
  }
  bool audience_ok = false;
  if (auto aud = claims.find("aud"); aud != claims.end()) {
    if (aud->is_string()) {
      audience_ok = !settings.app_id.empty() && aud->get<std::string>() == settings.app_id;
    } else if (aud->is_array()) {
      for (const auto& a : *aud)
        audience_ok = audience_ok || (a.is_string() && !settings.app_id.empty() &&
                                      a.get<std::string>() == settings.app_id);
    }
  }
  if (!audience_ok) return reject("audience is not this bot's app id");
  const auto skew = std::chrono::duration_cast<std::chrono::seconds>(settings.clock_skew).count();
  const std::int64_t now_s =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  const auto exp = numeric_date(claims, "exp");
  if (!exp) return reject("token has no exp");
  if (now_s > *exp + skew) return reject("token expired");
  if (claims.contains("nbf")) {
    const auto nbf = numeric_date(claims, "nbf");
    if (!nbf) return reject("token nbf is not a number");
    if (now_s + skew < *nbf) return reject("token not valid yet (nbf)");
  }
  // The SDK's constant is "serviceurl"; the docs write "serviceUrl": accept any casing.
  const json* claim = nullptr;
  for (auto it = claims.begin(); it != claims.end(); ++it) {
    if (lower(it.key()) == "serviceurl") claim = &it.value();
  }
  if (!claim) return reject("token has no serviceurl claim");
  if (!claim->is_string() || claim->get<std::string>() != service_url) {
    return reject("serviceurl claim does not match the activity's serviceUrl");
  }
  return bot::TimePoint{std::chrono::seconds(*exp)};
}

bot::Status check_endorsement(const JwkKey& key, std::string_view channel_id) {
  const auto& endorsements = key.endorsements();
  if (!endorsements) return bot::ok();
  if (channel_id.empty())
    return reject("activity has no channelId to check against the key's endorsements");
  if (std::find(endorsements->begin(), endorsements->end(), channel_id) == endorsements->end()) {
    return reject("signing key is not endorsed for the activity's channelId");
  }
  return bot::ok();
}

// ---------------------------------------------------------------------------- JwtValidator

struct JwtValidator::Impl : std::enable_shared_from_this<JwtValidator::Impl> {
  Impl(common::HttpsClient& h, TeamsAuthSettings s, bot::Clock& c)
      : http(h), settings(std::move(s)), clock(c) {}

  struct Pending {
    ParsedJwt jwt;
    std::string channel_id;
    std::string service_url;
    Callback done;
    // The fetch round that looks this kid up: the first one to start after the validation
    // arrived. One already in flight may have read the JWKS before the key was published.
    std::uint64_t round = 0;
  };

  common::HttpsClient& http;
  TeamsAuthSettings settings;
  bot::Clock& clock;
  std::vector<JwkKey> keys;
  bool have_keys = false;
  bot::TimePoint keys_expire{};
  std::optional<bot::TimePoint> last_fetch_start;
  bool fetching = false;
  // A fetch is due at last_fetch_start + min_refresh_interval for validations that arrived within
  // the floor (refetch_timer); they wait in `waiting` like those of a fetch in flight.
  bool refetch_scheduled = false;
  bot::TimerId refetch_timer = 0;
  std::string last_fetch_error;      // why the most recent fetch failed, "" after a success
  std::vector<Pending> waiting;      // validations waiting for the fetch in flight or scheduled
  // The negative cache: kids still unknown after a successful fetch, or dropped from the JWKS,
  // until the time given. Tokens with them are refused without a fetch of their own.
  std::map<std::string, bot::TimePoint> unknown_kids;
  bot::DeferredCalls deferred{clock};  // deferred deliveries, cancelled on destruction
  std::uint64_t fetches = 0, failures = 0, n_accepted = 0, n_rejected = 0;

  const JwkKey* find(const std::string& kid) const {
    for (const auto& k : keys) {
      if (k.kid() == kid) return &k;
    }
    return nullptr;
  }

  bool may_refetch() const {
    return !last_fetch_start || clock.now() - *last_fetch_start >= settings.min_refresh_interval;
  }

  bool known_unknown(const std::string& kid) {
    auto it = unknown_kids.find(kid);
    if (it == unknown_kids.end()) return false;
    if (clock.now() >= it->second) {
      unknown_kids.erase(it);
      return false;
    }
    return true;
  }

  void remember_unknown(const std::string& kid) {
    if (settings.unknown_kid_ttl <= std::chrono::seconds::zero() ||
        settings.unknown_kid_capacity == 0) {
      return;
    }
    const auto now = clock.now();
    if (unknown_kids.size() >= settings.unknown_kid_capacity && !unknown_kids.count(kid)) {
      std::erase_if(unknown_kids, [now](const auto& e) { return e.second <= now; });
      if (unknown_kids.size() >= settings.unknown_kid_capacity) {
        // Full of live entries (a flood of made-up kids): forget the one that expires first. The
        // global floor still bounds the fetches a forgotten kid can cause.
        auto oldest = std::min_element(
            unknown_kids.begin(), unknown_kids.end(),
            [](const auto& a, const auto& b) { return a.second < b.second; });
        unknown_kids.erase(oldest);
      }
    }
    unknown_kids[kid] = now + settings.unknown_kid_ttl;
  }

  void deliver(Callback done, bot::Result<VerifiedToken> result) {
    if (result) {
      ++n_accepted;
    } else {
      ++n_rejected;
    }
    done(std::move(result));
  }

  void deliver_later(Callback done, bot::Result<VerifiedToken> result) {
    // Delivered through the clock so that `done` never runs inside validate().
    std::weak_ptr<Impl> weak = weak_from_this();
    deferred.later([weak, done = std::move(done), result = std::move(result)]() mutable {
      if (auto self = weak.lock()) self->deliver(std::move(done), std::move(result));
    });
  }

  bot::Result<VerifiedToken> finish(const Pending& p, const JwkKey& key) {
    if (!key.verify(p.jwt.alg, p.jwt.signing_input, p.jwt.signature)) {
      return reject("signature does not verify with key " + printable(p.jwt.kid));
    }
    auto exp = check_claims(p.jwt.claims, settings, clock.now(), p.service_url);
    if (!exp) return exp.error();
    if (auto st = check_endorsement(key, p.channel_id); !st) return st.error();
    return VerifiedToken{settings.app_id, p.service_url, *exp};
  }

  // With the current keys: the outcome, or nullopt when the key is unknown.
  std::optional<bot::Result<VerifiedToken>> try_finish(const Pending& p) {
    const JwkKey* key = find(p.jwt.kid);
    if (!key) return std::nullopt;
    return finish(p, *key);
  }

  bot::Error unknown_kid(const Pending& p) const {
    return reject("signing key " + printable(p.jwt.kid) + " is not in the Bot Framework's JWKS");
  }

  bot::Error keys_unavailable() const {
    return bot::make_error(bot::Errc::unavailable,
                           "teams jwt: signing keys unavailable: " + last_fetch_error);
  }

  // Puts `p` in line for the fetch in flight or the next one; refuses it when too many wait.
  void wait_for_fetch(Pending p) {
    p.round = fetches + 1;
    if (waiting.size() >= settings.max_waiting) {
      return deliver_later(std::move(p.done),
                           bot::make_error(bot::Errc::unavailable,
                                           "teams jwt: signing keys unavailable: too many "
                                           "validations waiting for a key fetch"));
    }
    waiting.push_back(std::move(p));
  }

  // A fetch at the end of the floor, for the validations that arrived within it.
  void schedule_fetch() {
    if (refetch_scheduled || fetching) return;
    refetch_scheduled = true;
    const bot::TimePoint at =
        last_fetch_start.value_or(clock.now()) + settings.min_refresh_interval;
    log().debug("teams jwt: key fetch deferred to the end of the refresh floor waiting={}",
                waiting.size());
    std::weak_ptr<Impl> weak = weak_from_this();
    refetch_timer = clock.call_at(at, [weak] {
      auto self = weak.lock();
      if (!self) return;
      self->refetch_scheduled = false;
      self->refetch_timer = 0;
      if (!self->fetching && !self->waiting.empty()) self->start_fetch();
    });
  }

  void start_fetch() {
    if (refetch_scheduled) {
      clock.cancel(refetch_timer);
      refetch_scheduled = false;
      refetch_timer = 0;
    }
    fetching = true;
    ++fetches;
    last_fetch_start = clock.now();
    common::HttpClientRequest req;
    req.method = "GET";
    req.url = settings.openid_metadata_url;
    req.timeout = settings.fetch_timeout;
    req.headers.emplace_back("Accept", "application/json");
    std::weak_ptr<Impl> weak = weak_from_this();
    http.request(std::move(req), [weak](bot::Result<common::HttpClientResponse> res) {
      auto self = weak.lock();
      if (!self) return;
      if (!res)
        return self->fetch_done(
            bot::make_error(res.error().code, "openid metadata: " + res.error().message));
      if (res->status != 200) {
        return self->fetch_done(bot::make_error(
            bot::Errc::unavailable, "openid metadata: HTTP " + std::to_string(res->status)));
      }
      const json meta = json::parse(res->body, nullptr, false);
      const auto uri = meta.is_object() ? meta.find("jwks_uri") : meta.end();
      if (!meta.is_object() || uri == meta.end() || !uri->is_string()) {
        return self->fetch_done(
            bot::make_error(bot::Errc::unavailable, "openid metadata has no jwks_uri"));
      }
      self->fetch_jwks(uri->get<std::string>());
    });
  }

  void fetch_jwks(std::string uri) {
    common::HttpClientRequest req;
    req.method = "GET";
    req.url = std::move(uri);
    req.timeout = settings.fetch_timeout;
    req.headers.emplace_back("Accept", "application/json");
    std::weak_ptr<Impl> weak = weak_from_this();
    http.request(std::move(req), [weak](bot::Result<common::HttpClientResponse> res) {
      auto self = weak.lock();
      if (!self) return;
      if (!res)
        return self->fetch_done(bot::make_error(res.error().code, "jwks: " + res.error().message));
      if (res->status != 200) {
        return self->fetch_done(
            bot::make_error(bot::Errc::unavailable, "jwks: HTTP " + std::to_string(res->status)));
      }
      auto parsed = parse_jwks(res->body);
      if (!parsed)
        return self->fetch_done(bot::make_error(bot::Errc::unavailable, parsed.error().message));
      if (parsed->keys.empty())
        return self->fetch_done(
            bot::make_error(bot::Errc::unavailable, "jwks has no usable RSA key"));
      if (parsed->skipped > 0)
        log().info("teams jwt: jwks entries skipped count={}", parsed->skipped);
      self->fetch_done(std::move(parsed->keys));
    });
  }

  void fetch_done(bot::Result<std::vector<JwkKey>> result) {
    fetching = false;
    const bool fetched = result.has_value();
    if (fetched) {
      std::vector<JwkKey> fresh = std::move(*result);
      // A key the Bot Framework stopped serving is known to be gone: its tokens are refused
      // without a fetch of their own.
      for (const auto& old : keys) {
        const bool kept = std::any_of(fresh.begin(), fresh.end(),
                                      [&](const JwkKey& k) { return k.kid() == old.kid(); });
        if (!kept) remember_unknown(old.kid());
      }
      for (const auto& k : fresh) unknown_kids.erase(k.kid());
      keys = std::move(fresh);
      have_keys = true;
      keys_expire = clock.now() + settings.keys_ttl;
      last_fetch_error.clear();
      log().info("teams jwt: signing keys fetched count={}", keys.size());
    } else {
      ++failures;
      last_fetch_error = result.error().message;
      // Expired keys stay in use: the Bot Framework rotates keys slowly, and refusing every
      // activity because login.botframework.com blinked would be worse.
      log().warn("teams jwt: signing key fetch failed error=\"{}\" cached_keys={}",
                 last_fetch_error, keys.size());
    }
    auto list = std::move(waiting);
    waiting.clear();
    for (auto& p : list) {
      if (auto outcome = try_finish(p)) {
        deliver(std::move(p.done), std::move(*outcome));
      } else if (p.round > fetches) {
        // Arrived while this fetch was in flight: its kid was not looked up yet. The next fetch
        // (at the end of the floor) does.
        waiting.push_back(std::move(p));
      } else if (!have_keys) {
        deliver(std::move(p.done), keys_unavailable());
      } else {
        // Looked up and not there: this kid causes no fetch of its own for unknown_kid_ttl. After a
        // failed fetch it was not looked up, so it is not remembered.
        if (fetched) remember_unknown(p.jwt.kid);
        deliver(std::move(p.done), unknown_kid(p));
      }
    }
    if (!waiting.empty()) schedule_fetch();
  }
};

JwtValidator::JwtValidator(common::HttpsClient& http, TeamsAuthSettings settings, bot::Clock& clock)
    : impl_(std::make_shared<Impl>(http, std::move(settings), clock)) {}

JwtValidator::~JwtValidator() {
  impl_->deferred.cancel_all();
  if (impl_->refetch_timer) impl_->clock.cancel(impl_->refetch_timer);
}

void JwtValidator::validate(std::string authorization_header, std::string channel_id,
                            std::string service_url, Callback done) {
  auto& impl = *impl_;
  auto parsed = parse_bearer(authorization_header);
  if (!parsed) return impl.deliver_later(std::move(done), parsed.error());
  Impl::Pending p{std::move(*parsed), std::move(channel_id), std::move(service_url),
                  std::move(done)};

  const bool stale = !impl.have_keys || impl.clock.now() >= impl.keys_expire;
  const bool fetch_pending = impl.fetching || impl.refetch_scheduled;
  // A cached key decides now, unless the keys are stale and may be refreshed first.
  if (impl.find(p.jwt.kid) && (!stale || fetch_pending || !impl.may_refetch())) {
    auto outcome = impl.try_finish(p);
    return impl.deliver_later(std::move(p.done), std::move(*outcome));
  }
  if (!impl.find(p.jwt.kid) && impl.known_unknown(p.jwt.kid)) {
    // Looked up recently and not there: no fetch for it (forged tokens cannot make runbot fetch).
    return impl.deliver_later(std::move(p.done), impl.unknown_kid(p));
  }
  // Keys missing or stale, or a kid not looked up yet: wait for the fetch in flight, start one,
  // or, within the floor since the last one, wait for the next allowed one (at most
  // min_refresh_interval away) rather than refuse a token that may be signed by a new key.
  if (fetch_pending) return impl.wait_for_fetch(std::move(p));
  if (impl.may_refetch()) {
    impl.wait_for_fetch(std::move(p));
    impl.start_fetch();
    return;
  }
  impl.wait_for_fetch(std::move(p));
  impl.schedule_fetch();
}

void JwtValidator::prefetch() {
  const bool stale = !impl_->have_keys || impl_->clock.now() >= impl_->keys_expire;
  if (!impl_->fetching && stale && impl_->may_refetch()) impl_->start_fetch();
}

std::uint64_t JwtValidator::keys_fetches() const {
  return impl_->fetches;
}
std::uint64_t JwtValidator::fetch_failures() const {
  return impl_->failures;
}
std::size_t JwtValidator::keys_cached() const {
  return impl_->keys.size();
}
std::uint64_t JwtValidator::accepted() const {
  return impl_->n_accepted;
}
std::uint64_t JwtValidator::rejected() const {
  return impl_->n_rejected;
}


}  // namespace runbot::teams
