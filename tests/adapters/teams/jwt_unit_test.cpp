// Pure parts of the Teams JWT check: base64url, JWK → RSA key, JWKS parsing, the Bearer/JWS
// structure, the claim and endorsement checks. Keys are made in the test (TestSigningKey); no I/O.
#include <gtest/gtest.h>

#include "adapters/teams/jwt_validator.h"
#include "tests/support/fake_bot_framework.h"

namespace runbot::teams {
namespace {

using nlohmann::json;
using testing::TestSigningKey;

const TestSigningKey& test_key() {
  static const TestSigningKey key("unit-kid");  // one RSA keygen for the whole file
  return key;
}

std::string b64(std::string_view s) {
  return base64url_encode(s);
}

std::string bearer(const json& header, const json& claims, const std::string& signature = "c2ln") {
  return "Bearer " + b64(header.dump()) + "." + b64(claims.dump()) + "." + signature;
}

void expect_unauthorized(const bot::Result<ParsedJwt>& r, const std::string& part) {
  ASSERT_FALSE(r) << "accepted, expected: " << part;
  EXPECT_EQ(r.error().code, bot::Errc::unauthorized);
  EXPECT_NE(r.error().message.find(part), std::string::npos) << r.error().message;
}

TEST(Base64Url, RoundTripsEveryLengthAndByte) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n = 0; n <= all.size(); n += 1) {
    const std::string in = all.substr(0, n);
    const std::string enc = base64url_encode(in);
    EXPECT_EQ(enc.find_first_of("+/="), std::string::npos) << n;
    auto dec = base64url_decode(enc);
    ASSERT_TRUE(dec) << n;
    EXPECT_EQ(*dec, in) << n;
  }
}

TEST(Base64Url, DecodesKnownVectorsWithAndWithoutPadding) {
  EXPECT_EQ(base64url_decode("aGVsbG8").value_or("?"), "hello");
  EXPECT_EQ(base64url_decode("aGVsbG8=").value_or("?"), "hello");
  EXPECT_EQ(base64url_decode("").value_or("?"), "");
  EXPECT_EQ(base64url_decode("-_8").value_or("?"), std::string("\xfb\xff", 2));
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
}

TEST(Base64Url, RefusesMalformedText) {
  EXPECT_FALSE(base64url_decode("a"));      // impossible length
  EXPECT_FALSE(base64url_decode("abcde"));  // impossible length
  EXPECT_FALSE(base64url_decode("ab+c"));   // standard alphabet, not url-safe
  EXPECT_FALSE(base64url_decode("ab/c"));
  EXPECT_FALSE(base64url_decode("ab c"));
  EXPECT_FALSE(base64url_decode("ab.c"));
  EXPECT_FALSE(base64url_decode("aGVsbG9"));  // non-zero trailing bits
  EXPECT_FALSE(base64url_decode("a=bc"));     // padding in the middle
}

TEST(JwkKey, KeyFromJwkVerifiesSignaturesOfAllRsAlgorithms) {
  auto key = JwkKey::from_json(test_key().jwk(std::vector<std::string>{"msteams", "skype"}));
  ASSERT_TRUE(key) << key.error().message;
  EXPECT_EQ(key->kid(), "unit-kid");
  EXPECT_EQ(key->bits(), 2048);
  ASSERT_TRUE(key->endorsements().has_value());
  EXPECT_EQ(*key->endorsements(), (std::vector<std::string>{"msteams", "skype"}));
  const std::string input = "header.payload";
  for (const std::string alg : {"RS256", "RS384", "RS512"}) {
    const std::string sig = test_key().raw_sign(input, alg);
    EXPECT_TRUE(key->verify(alg, input, sig)) << alg;
    EXPECT_FALSE(key->verify(alg, input + "x", sig)) << alg << " accepted a changed input";
    std::string bent = sig;
    bent[bent.size() / 2] = static_cast<char>(bent[bent.size() / 2] ^ 1);
    EXPECT_FALSE(key->verify(alg, input, bent)) << alg << " accepted a changed signature";
  }
  const std::string sig256 = test_key().raw_sign(input, "RS256");
  EXPECT_FALSE(key->verify("RS384", input, sig256)) << "alg confusion";
  EXPECT_FALSE(key->verify("HS256", input, sig256));
  EXPECT_FALSE(key->verify("none", input, ""));
}

TEST(JwkKey, WithoutEndorsementsArrayHasNone) {
  auto key = JwkKey::from_json(test_key().jwk(std::nullopt));
  ASSERT_TRUE(key) << key.error().message;
  EXPECT_FALSE(key->endorsements().has_value());
}

TEST(JwkKey, RefusesMalformedEntries) {
  const json good = test_key().jwk(std::vector<std::string>{"msteams"});
  const auto refused = [](const json& j, const std::string& part) {
    auto r = JwkKey::from_json(j);
    ASSERT_FALSE(r) << j.dump();
    EXPECT_EQ(r.error().code, bot::Errc::invalid_argument);
    EXPECT_NE(r.error().message.find(part), std::string::npos) << r.error().message;
  };
  refused(json::array(), "not an object");
  json j = good;
  j.erase("kid");
  refused(j, "no kid");
  j = good;
  j["kty"] = "EC";
  refused(j, "kty");
  j = good;
  j["use"] = "enc";
  refused(j, "use");
  j = good;
  j["n"] = "not base64url!";
  refused(j, "base64url");
  j = good;
  j.erase("e");
  refused(j, "n or e missing");
  j = good;
  j["n"] = 12345;
  refused(j, "n or e missing");
  j = good;
  j["n"] = base64url_encode(std::string(64, '\xff'));  // 512-bit modulus
  refused(j, "2048");
  j = good;
  j["e"] = base64url_encode(std::string("\x02", 1));  // even exponent
  refused(j, "exponent");
  j = good;
  j["endorsements"] = "msteams";
  refused(j, "endorsements");
}

TEST(Jwks, KeepsUsableKeysAndCountsTheOthers) {
  json doc{{"keys", {test_key().jwk(std::nullopt), json{{"kty", "EC"}, {"kid", "ec1"}}, "junk"}}};
  auto r = parse_jwks(doc.dump());
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->keys.size(), 1u);
  EXPECT_EQ(r->keys[0].kid(), "unit-kid");
  EXPECT_EQ(r->skipped, 2);
  EXPECT_FALSE(parse_jwks("not json"));
  EXPECT_FALSE(parse_jwks("[]"));
  EXPECT_FALSE(parse_jwks(R"({"keys":{}})"));
  EXPECT_FALSE(parse_jwks(R"({"other":[]})"));
}

TEST(ParseBearer, AcceptsAWellFormedToken) {
  const json claims{{"iss", "x"}};
  const std::string token = test_key().sign(claims);
  auto r = parse_bearer("Bearer " + token);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->alg, "RS256");
  EXPECT_EQ(r->kid, "unit-kid");
  EXPECT_EQ(r->claims, claims);
  EXPECT_EQ(r->signing_input, token.substr(0, token.rfind('.')));
  EXPECT_EQ(r->signature.size(), 256u);
}

TEST(ParseBearer, RefusesEachMalformedShapeWithItsReason) {
  const json h{{"alg", "RS256"}, {"kid", "k"}, {"typ", "JWT"}};
  const json c{{"iss", "x"}};
  expect_unauthorized(parse_bearer(""), "no Authorization header");
  expect_unauthorized(parse_bearer("Basic dXNlcjpwdw=="), "scheme is not Bearer");
  expect_unauthorized(parse_bearer("Bearer"), "scheme is not Bearer");
  expect_unauthorized(parse_bearer("Bearer abc.def"), "three dot-separated parts");
  expect_unauthorized(parse_bearer("Bearer a.b.c.d"), "three dot-separated parts");
  expect_unauthorized(parse_bearer("Bearer a+b.c.d"), "not base64url");
  expect_unauthorized(parse_bearer("Bearer " + b64("{nope") + "." + b64(c.dump()) + ".c2ln"),
                      "header is not a JSON object");
  expect_unauthorized(parse_bearer("Bearer " + b64("[1]") + "." + b64(c.dump()) + ".c2ln"),
                      "header is not a JSON object");
  expect_unauthorized(parse_bearer(bearer(h, json::array())), "payload is not a JSON object");
  expect_unauthorized(parse_bearer("Bearer " + b64(h.dump()) + "." + b64(c.dump()) + "."),
                      "no signature");
  expect_unauthorized(parse_bearer(bearer(json{{"kid", "k"}}, c)), "no alg");
  expect_unauthorized(parse_bearer(bearer(json{{"alg", "none"}, {"kid", "k"}}, c)),
                      "RS256/RS384/RS512");
  expect_unauthorized(parse_bearer(bearer(json{{"alg", "HS256"}, {"kid", "k"}}, c)),
                      "RS256/RS384/RS512");
  expect_unauthorized(parse_bearer(bearer(json{{"alg", "RS256"}}, c)), "no kid");
  expect_unauthorized(parse_bearer(bearer(json{{"alg", "RS256"}, {"kid", ""}}, c)), "no kid");
}

TEST(ParseBearer, MessagesNeverContainTheToken) {
  const std::string body =
      b64(R"({"alg":"HS256","kid":"k"})") + "." + b64(R"({"secret":"s3cr3t"})") + ".c2lnbmF0dXJl";
  auto r = parse_bearer("Bearer " + body);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.find("c2lnbmF0dXJl"), std::string::npos);
  EXPECT_EQ(r.error().message.find("s3cr3t"), std::string::npos);
}

class CheckClaims : public ::testing::Test {
 protected:
  CheckClaims() { settings.app_id = "app-guid"; }
  json valid() const {
    return json{{"iss", "https://api.botframework.com"},
                {"aud", "app-guid"},
                {"serviceurl", kService},
                {"nbf", now_s - 10},
                {"exp", now_s + 3600}};
  }
  bot::Result<bot::TimePoint> check(const json& c) const {
    return check_claims(c, settings, now, kService);
  }
  void refused(const json& c, const std::string& part) const {
    auto r = check(c);
    ASSERT_FALSE(r) << c.dump();
    EXPECT_EQ(r.error().code, bot::Errc::unauthorized);
    EXPECT_NE(r.error().message.find(part), std::string::npos) << r.error().message;
  }

  static constexpr const char* kService = "https://smba.trafficmanager.net/amer/";
  TeamsAuthSettings settings;
  std::int64_t now_s = 1'800'000'000;
  bot::TimePoint now{std::chrono::seconds(now_s)};
};

TEST_F(CheckClaims, ValidClaimsGiveTheExpiry) {
  auto r = check(valid());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, bot::TimePoint{std::chrono::seconds(now_s + 3600)});
}

TEST_F(CheckClaims, IssuerMustMatch) {
  auto c = valid();
  c["iss"] = "https://sts.windows.net/evil/";
  refused(c, "issuer");
  c.erase("iss");
  refused(c, "issuer");
}

TEST_F(CheckClaims, AudienceMayBeAStringOrAnArrayContainingTheAppId) {
  auto c = valid();
  c["aud"] = json::array({"other", "app-guid"});
  EXPECT_TRUE(check(c));
  c["aud"] = json::array({"other"});
  refused(c, "audience");
  c["aud"] = "other-guid";
  refused(c, "audience");
  c.erase("aud");
  refused(c, "audience");
  settings.app_id.clear();  // a missing app id must not match an empty audience
  c["aud"] = "";
  refused(c, "audience");
}

TEST_F(CheckClaims, ExpiryAndNotBeforeAllowFiveMinutesOfSkew) {
  auto c = valid();
  c["exp"] = now_s - 299;
  EXPECT_TRUE(check(c)) << "inside the skew";
  c["exp"] = now_s - 301;
  refused(c, "expired");
  c["exp"] = "tomorrow";
  refused(c, "no exp");
  c.erase("exp");
  refused(c, "no exp");
  c = valid();
  c["nbf"] = now_s + 299;
  EXPECT_TRUE(check(c)) << "inside the skew";
  c["nbf"] = now_s + 301;
  refused(c, "not valid yet");
  c["nbf"] = "later";
  refused(c, "nbf");
  c.erase("nbf");
  EXPECT_TRUE(check(c)) << "nbf is optional";
}

TEST_F(CheckClaims, ServiceUrlClaimNameIsCaseInsensitiveButItsValueMustMatch) {
  auto c = valid();
  c.erase("serviceurl");
  c["serviceUrl"] = kService;
  EXPECT_TRUE(check(c));
  c.erase("serviceUrl");
  c["SERVICEURL"] = kService;
  EXPECT_TRUE(check(c));
  c["SERVICEURL"] = "https://evil.example.com/amer/";
  refused(c, "serviceurl claim does not match");
  c["SERVICEURL"] = 7;
  refused(c, "serviceurl claim does not match");
  c.erase("SERVICEURL");
  refused(c, "no serviceurl claim");
}

TEST(CheckEndorsement, KeyEndorsementsMustListTheChannel) {
  auto endorsed = JwkKey::from_json(test_key().jwk(std::vector<std::string>{"msteams"}));
  auto other = JwkKey::from_json(test_key().jwk(std::vector<std::string>{"slack", "webchat"}));
  auto none = JwkKey::from_json(test_key().jwk(std::nullopt));
  ASSERT_TRUE(endorsed && other && none);
  EXPECT_TRUE(check_endorsement(*endorsed, "msteams"));
  EXPECT_TRUE(check_endorsement(*none, "msteams"));
  auto r = check_endorsement(*other, "msteams");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, bot::Errc::unauthorized);
  EXPECT_NE(r.error().message.find("not endorsed"), std::string::npos);
  EXPECT_FALSE(check_endorsement(*endorsed, ""));
  EXPECT_FALSE(check_endorsement(*endorsed, "MSTEAMS"));
}

}  // namespace
}  // namespace runbot::teams
