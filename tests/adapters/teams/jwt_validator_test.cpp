// JwtValidator against FakeBotFramework on loopback (HTTPS with a CA made in the test): tokens
// signed by the fake's RSA keys, keys fetched through OpenID metadata → JWKS, time from a
// FakeClock.
#include <algorithm>
#include <iostream>
#include <memory>
#include <optional>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "adapters/common/https_client.h"
#include "adapters/teams/jwt_validator.h"
#include "tests/adapters/common/run_until.h"
#include "tests/support/fake_bot_framework.h"
#include "tests/support/fake_clock.h"

namespace runbot::teams {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::FakeBotFramework;

class JwtValidatorTest : public ::testing::Test {
 protected:
  JwtValidatorTest() {
    fake.start();
    settings.app_id = fake.settings().app_id;
    settings.openid_metadata_url = fake.openid_metadata_url();
    settings.fetch_timeout = 3000ms;
    validator.emplace(http, settings, clock);
  }
  ~JwtValidatorTest() override { EXPECT_TRUE(fake.problems.empty()) << fake.problems.front(); }

  static testing::FakeBotFrameworkSettings fake_settings(testing::FakeClock& c) {
    testing::FakeBotFrameworkSettings s;
    s.now = [&c] { return c.now(); };
    return s;
  }
  static std::shared_ptr<common::TlsContext> tls(const testing::TestCa& ca) {
    auto t = common::TlsContext::create(ca.ca_file);
    if (!t) throw std::runtime_error(t.error().message);
    return *t;
  }

  template <class Pred>
  bool until(Pred p) {
    return common::testing::run_until(io, [&] {
      clock.run_due();
      return p();
    });
  }

  // Validates and waits for the one outcome; checks that `done` ran neither inline nor twice.
  bot::Result<VerifiedToken> validate(const std::string& authorization, const json& activity) {
    std::optional<bot::Result<VerifiedToken>> out;
    int calls = 0;
    validator->validate(authorization, activity.value("channelId", ""),
                        activity.value("serviceUrl", ""), [&](bot::Result<VerifiedToken> r) {
                          ++calls;
                          out.emplace(std::move(r));
                        });
    EXPECT_EQ(calls, 0) << "done ran inside validate()";
    EXPECT_TRUE(until([&] { return out.has_value(); })) << "no outcome";
    clock.run_due();
    io.poll();
    EXPECT_EQ(calls, 1);
    if (!out) return bot::make_error(bot::Errc::internal, "no outcome");
    return *out;
  }

  // A validation left running: its outcome, and how many times `done` ran.
  struct Outcome {
    std::optional<bot::Result<VerifiedToken>> result;
    int calls = 0;
  };
  std::shared_ptr<Outcome> start_validation(const std::string& authorization,
                                            const json& activity) {
    auto out = std::make_shared<Outcome>();
    validator->validate(authorization, activity.value("channelId", ""),
                        activity.value("serviceUrl", ""), [out](bot::Result<VerifiedToken> r) {
                          ++out->calls;
                          out->result.emplace(std::move(r));
                        });
    return out;
  }
  // Runs what is due now and lets a key fetch in flight reach the fake, without moving the clock.
  void settle() {
    clock.run_due();
    // A fetch round ends with a JWKS request, or with a failure before it.
    until([&] {
      return fake.keys_requests() + static_cast<int>(validator->fetch_failures()) >=
             static_cast<int>(validator->keys_fetches());
    });
    io.poll();
    clock.run_due();
  }
  static bool refused_as_unknown(const Outcome& o) {
    return o.result && !*o.result && o.result->error().code == bot::Errc::unauthorized &&
           o.result->error().message.find("is not in the Bot Framework's JWKS") !=
               std::string::npos;
  }

  void expect_rejected(const std::string& authorization, const json& activity,
                       const std::string& part) {
    auto r = validate(authorization, activity);
    ASSERT_FALSE(r) << "accepted; expected a rejection mentioning: " << part;
    EXPECT_EQ(r.error().code, bot::Errc::unauthorized) << r.error().message;
    EXPECT_NE(r.error().message.find(part), std::string::npos) << r.error().message;
    // The token (or any piece of it) never appears in the message.
    const auto space = authorization.find(' ');
    const std::string token =
        space == std::string::npos ? authorization : authorization.substr(space + 1);
    if (token.size() > 16) {
      EXPECT_EQ(r.error().message.find(token.substr(token.size() - 16)), std::string::npos)
          << r.error().message;
    }
  }

  boost::asio::io_context io;
  testing::TestCa ca = testing::TestCa::make();
  testing::FakeClock clock{bot::TimePoint{std::chrono::seconds(1'800'000'000)}};
  FakeBotFramework fake{io, ca, fake_settings(clock)};
  common::HttpsClient http{io, tls(ca)};
  TeamsAuthSettings settings;
  std::optional<JwtValidator> validator;
};

TEST_F(JwtValidatorTest, ValidTokenIsAcceptedAndKeysAreFetchedOnce) {
  const json activity = fake.make_activity("deploy api");
  auto r = validate("Bearer " + fake.token_for(activity), activity);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->app_id, fake.settings().app_id);
  EXPECT_EQ(r->service_url, fake.service_url());
  EXPECT_EQ(r->expires, clock.now() + 3600s);
  EXPECT_EQ(fake.metadata_requests(), 1);
  EXPECT_EQ(fake.keys_requests(), 1);

  auto again = validate("Bearer " + fake.token_for(activity), activity);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(validator->keys_fetches(), 1u) << "keys are cached";
  EXPECT_EQ(fake.keys_requests(), 1);
  EXPECT_EQ(validator->accepted(), 2u);
}

TEST_F(JwtValidatorTest, ForgedSignatureIsRejected) {
  const json activity = fake.make_activity("hi");
  expect_rejected("Bearer " + fake.forge(fake.claims_for(activity)), activity,
                  "signature does not verify");
  EXPECT_EQ(validator->rejected(), 1u);
}

TEST_F(JwtValidatorTest, TamperedClaimsAreRejected) {
  const json activity = fake.make_activity("hi");
  const std::string token = fake.token_for(activity);
  auto claims = fake.claims_for(activity);
  claims["aud"] = "someone-else";
  const std::string other = fake.sign(claims);
  // The valid signature with another payload.
  const std::string spliced = token.substr(0, token.find('.')) +
                              other.substr(other.find('.'), other.rfind('.') - other.find('.')) +
                              token.substr(token.rfind('.'));
  expect_rejected("Bearer " + spliced, activity, "signature does not verify");
}

TEST_F(JwtValidatorTest, WrongAudienceIsRejected) {
  const json activity = fake.make_activity("hi");
  auto claims = fake.claims_for(activity);
  claims["aud"] = "00000000-0000-0000-0000-000000000000";
  expect_rejected("Bearer " + fake.sign(claims), activity, "audience");
}

TEST_F(JwtValidatorTest, WrongIssuerIsRejected) {
  const json activity = fake.make_activity("hi");
  auto claims = fake.claims_for(activity);
  claims["iss"] = "https://sts.windows.net/f8cdef31-a31e-4b4a-93e4-5f571e91255a/";
  expect_rejected("Bearer " + fake.sign(claims), activity, "issuer");
}

TEST_F(JwtValidatorTest, ExpiredTokenIsRejectedOnlyBeyondTheSkew) {
  const json activity = fake.make_activity("hi");
  const std::string token = fake.token_for(activity);  // exp = now + 1 h
  clock.advance(3600s + 299s);
  ASSERT_TRUE(validate("Bearer " + token, activity)) << "inside the 5-minute skew";
  clock.advance(2s);
  expect_rejected("Bearer " + token, activity, "expired");
}

TEST_F(JwtValidatorTest, NotYetValidTokenIsRejected) {
  const json activity = fake.make_activity("hi");
  auto claims = fake.claims_for(activity);
  const auto now_s =
      std::chrono::duration_cast<std::chrono::seconds>(clock.now().time_since_epoch()).count();
  claims["nbf"] = now_s + 600;
  expect_rejected("Bearer " + fake.sign(claims), activity, "not valid yet");
}

TEST_F(JwtValidatorTest, MissingOrGarbledHeaderIsRejectedWithoutFetchingKeys) {
  const json activity = fake.make_activity("hi");
  const std::string token = fake.token_for(activity);
  expect_rejected("", activity, "no Authorization header");
  expect_rejected("Basic " + token, activity, "scheme is not Bearer");
  expect_rejected("Bearer " + token.substr(0, token.rfind('.')), activity,
                  "three dot-separated parts");
  expect_rejected("Bearer !!" + token, activity, "not base64url");
  EXPECT_EQ(validator->keys_fetches(), 0u) << "malformed tokens cost no fetch";
  EXPECT_EQ(fake.keys_requests(), 0);
}

TEST_F(JwtValidatorTest, ServiceUrlClaimMustMatchTheActivity) {
  json activity = fake.make_activity("hi");
  const std::string token = fake.token_for(activity);
  activity["serviceUrl"] =
      "https://evil.example.com/amer/";  // the activity claims another destination
  expect_rejected("Bearer " + token, activity, "serviceurl claim does not match");
}

TEST_F(JwtValidatorTest, KeyWithoutTheChannelsEndorsementIsRejected) {
  fake.set_endorsements(std::vector<std::string>{"slack", "webchat"});
  const json activity = fake.make_activity("hi");
  expect_rejected("Bearer " + fake.token_for(activity), activity, "not endorsed");
}

TEST_F(JwtValidatorTest, KeyWithoutEndorsementsArrayIsAccepted) {
  fake.set_endorsements(std::nullopt);
  const json activity = fake.make_activity("hi");
  auto r = validate("Bearer " + fake.token_for(activity), activity);
  EXPECT_TRUE(r) << r.error().message;
}

TEST_F(JwtValidatorTest, UnknownKidTriggersOneRefetchThenAccepts) {
  const json activity = fake.make_activity("hi");
  ASSERT_TRUE(validate("Bearer " + fake.token_for(activity), activity));
  clock.advance(settings.min_refresh_interval + 1s);
  const std::string kid = fake.add_unpublished_key();
  fake.publish_key(kid);  // served now, but not in the validator's cache
  auto r = validate("Bearer " + fake.sign(fake.claims_for(activity), kid), activity);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(validator->keys_fetches(), 2u);
  EXPECT_EQ(fake.keys_requests(), 2);
}

TEST_F(JwtValidatorTest, UnknownKidsWithinTheRefreshIntervalCauseOneFetchOnly) {
  const json activity = fake.make_activity("hi");
  ASSERT_TRUE(validate("Bearer " + fake.token_for(activity), activity));
  clock.advance(settings.min_refresh_interval + 1s);
  const std::string kid = fake.add_unpublished_key();  // never served
  expect_rejected("Bearer " + fake.sign(fake.claims_for(activity), kid), activity,
                  "is not in the Bot Framework's JWKS");
  EXPECT_EQ(fake.keys_requests(), 2) << "the first unknown kid refetches";
  clock.advance(10s);
  expect_rejected("Bearer " + fake.sign(fake.claims_for(activity), kid), activity,
                  "is not in the Bot Framework's JWKS");
  EXPECT_EQ(validator->keys_fetches(), 2u)
      << "the second one, 10 s later, does not: that kid was looked up (negative cache)";
  EXPECT_EQ(fake.keys_requests(), 2);
}

TEST_F(JwtValidatorTest, ConcurrentValidationsWaitForOneFetch) {
  const json activity = fake.make_activity("hi");
  int accepted = 0;
  for (int i = 0; i < 4; ++i) {
    validator->validate("Bearer " + fake.token_for(activity), "msteams", fake.service_url(),
                        [&](bot::Result<VerifiedToken> r) { accepted += r ? 1 : 0; });
  }
  ASSERT_TRUE(until([&] { return accepted == 4; }));
  EXPECT_EQ(validator->keys_fetches(), 1u);
  EXPECT_EQ(fake.metadata_requests(), 1);
  EXPECT_EQ(fake.keys_requests(), 1);
}

TEST_F(JwtValidatorTest, RotatedKeyIsPickedUpAndTheDroppedOneStopsWorking) {
  const json activity = fake.make_activity("hi");
  const std::string old_kid = fake.current_kid();
  ASSERT_TRUE(validate("Bearer " + fake.token_for(activity), activity));
  clock.advance(settings.min_refresh_interval + 1s);
  const std::string new_kid = fake.rotate_key(/*keep_old=*/false);
  ASSERT_NE(new_kid, old_kid);
  auto r = validate("Bearer " + fake.token_for(activity), activity);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(validator->keys_fetches(), 2u);
  expect_rejected("Bearer " + fake.sign(fake.claims_for(activity), old_kid), activity,
                  "signing key " + old_kid + " is not in the Bot Framework's JWKS");
}

TEST_F(JwtValidatorTest, RotationThatKeepsTheOldKeyAcceptsBoth) {
  const json activity = fake.make_activity("hi");
  const std::string old_kid = fake.current_kid();
  ASSERT_TRUE(validate("Bearer " + fake.token_for(activity), activity));
  clock.advance(settings.min_refresh_interval + 1s);
  fake.rotate_key(/*keep_old=*/true);
  EXPECT_TRUE(validate("Bearer " + fake.token_for(activity), activity));
  EXPECT_TRUE(validate("Bearer " + fake.sign(fake.claims_for(activity), old_kid), activity));
  EXPECT_EQ(validator->keys_fetches(), 2u);
}

TEST_F(JwtValidatorTest, KeysAreRefetchedAfterTheirTtl) {
  const json activity = fake.make_activity("hi");
  ASSERT_TRUE(validate("Bearer " + fake.token_for(activity), activity));
  clock.advance(settings.keys_ttl - 1s);
  ASSERT_TRUE(validate("Bearer " + fake.token_for(activity), activity));
  EXPECT_EQ(validator->keys_fetches(), 1u);
  clock.advance(2s);
  ASSERT_TRUE(validate("Bearer " + fake.token_for(activity), activity));
  EXPECT_EQ(validator->keys_fetches(), 2u);
}

TEST_F(JwtValidatorTest, FailedFetchRejectsWithAClearMessageAndIsRetriedLater) {
  fake.fail_keys_next(500);
  const json activity = fake.make_activity("hi");
  auto r = validate("Bearer " + fake.token_for(activity), activity);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, bot::Errc::unavailable)
      << "the adapter answers 503, so the connector retries";
  EXPECT_NE(r.error().message.find("signing keys unavailable"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("HTTP 500"), std::string::npos) << r.error().message;
  EXPECT_EQ(validator->fetch_failures(), 1u);
  // Within min_refresh_interval: no new fetch yet; the validation waits for the next allowed one
  // (the floor is short) rather than fail.
  auto again = start_validation("Bearer " + fake.token_for(activity), activity);
  settle();
  EXPECT_FALSE(again->result.has_value());
  EXPECT_EQ(validator->keys_fetches(), 1u);
  clock.advance(settings.min_refresh_interval);
  ASSERT_TRUE(until([&] { return again->result.has_value(); }));
  EXPECT_TRUE(*again->result) << again->result->error().message;
  EXPECT_EQ(validator->keys_fetches(), 2u);
  EXPECT_EQ(again->calls, 1);
}

TEST_F(JwtValidatorTest, ExpiredKeysStayInUseWhenTheRefreshFails) {
  const json activity = fake.make_activity("hi");
  ASSERT_TRUE(validate("Bearer " + fake.token_for(activity), activity));
  clock.advance(settings.keys_ttl + 1s);
  fake.fail_keys_next(503);
  auto r = validate("Bearer " + fake.token_for(activity), activity);
  EXPECT_TRUE(r) << r.error().message;
  EXPECT_EQ(validator->fetch_failures(), 1u);
}

// ---- delivery under faults: key rotation and forged kids (each prints a delivery-under-faults
// line: lost = a genuine token not accepted, or a forged one not refused, or no outcome;
// doubled = an outcome delivered twice) ----

TEST_F(JwtValidatorTest, RotationWithinAMinuteOfTheLastFetchIsAcceptedWithOneMoreFetch) {
  // The shipped settings: the floor between fetches is short (it was a minute).
  const json activity = fake.make_activity("hi");
  constexpr int kSent = 10;
  int lost = 0, doubled = 0;
  std::uint64_t fetches_before = 0;
  for (int i = 0; i < kSent; ++i) {
    if (i == kSent / 2) {
      clock.advance(10s);
      fake.rotate_key(/*keep_old=*/false);
      fetches_before = validator->keys_fetches();
    }
    auto o = start_validation("Bearer " + fake.token_for(activity), activity);
    until([&] { return o->result.has_value(); });
    if (!o->result || !*o->result) ++lost;
    if (o->calls > 1) ++doubled;
  }
  std::cout << "delivery-under-faults: case=key-rotation-validator sent=" << kSent
            << " lost=" << lost << " doubled=" << doubled << std::endl;
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(doubled, 0);
  EXPECT_EQ(validator->keys_fetches() - fetches_before, 1u) << "exactly one extra fetch";
  EXPECT_EQ(fake.keys_requests(), 2);
}

TEST_F(JwtValidatorTest, ANewKidWithinTheFloorWaitsForTheNextFetchInsteadOfA401) {
  const json activity = fake.make_activity("hi");
  ASSERT_TRUE(validate("Bearer " + fake.token_for(activity), activity));
  clock.advance(1s);
  fake.rotate_key(/*keep_old=*/false);
  auto o = start_validation("Bearer " + fake.token_for(activity), activity);
  settle();
  EXPECT_FALSE(o->result.has_value()) << "refused within the floor: " << o->result->error().message;
  EXPECT_EQ(validator->keys_fetches(), 1u) << "no fetch within the floor";
  clock.advance(settings.min_refresh_interval - 1s);  // the floor since the last fetch is over
  ASSERT_TRUE(until([&] { return o->result.has_value(); }));
  EXPECT_TRUE(*o->result) << o->result->error().message;
  EXPECT_EQ(validator->keys_fetches(), 2u);
}

TEST_F(JwtValidatorTest, AFloodOfMadeUpKidsFetchesAtMostOncePerFloorAndAllGet401) {
  const json activity = fake.make_activity("hi");
  ASSERT_TRUE(validate("Bearer " + fake.token_for(activity), activity));
  clock.advance(61s);  // nothing fetched for a while
  const std::uint64_t fetches_before = validator->keys_fetches();
  constexpr int kRounds = 20;          // one fake second each
  constexpr int kForgedPerRound = 10;  // 200 in all, each with a kid of its own
  std::vector<std::shared_ptr<Outcome>> forged, genuine;
  int kid = 0;
  for (int round = 0; round < kRounds; ++round) {
    for (int k = 0; k < kForgedPerRound; ++k) {
      forged.push_back(start_validation(
          "Bearer " + fake.forge(fake.claims_for(activity), "made-up-" + std::to_string(++kid)),
          activity));
    }
    // Meanwhile the Bot Framework rotates its key and goes on sending genuine activities.
    if (round == 1) fake.rotate_key(/*keep_old=*/false);
    if (round >= 1)
      genuine.push_back(start_validation("Bearer " + fake.token_for(activity), activity));
    settle();
    clock.advance(1s);
  }
  clock.advance(settings.min_refresh_interval);  // a fetch deferred to the end of the floor
  const auto decided = [](const std::vector<std::shared_ptr<Outcome>>& all) {
    return std::all_of(all.begin(), all.end(), [](const auto& o) { return o->result.has_value(); });
  };
  ASSERT_TRUE(until([&] {
    clock.run_due();
    return decided(forged) && decided(genuine);
  }));
  int lost = 0, doubled = 0;
  for (const auto& o : forged) {
    if (!refused_as_unknown(*o)) ++lost;
    if (o->calls > 1) ++doubled;
  }
  for (const auto& o : genuine) {
    if (!o->result || !*o->result) ++lost;
    if (o->calls > 1) ++doubled;
  }
  const std::uint64_t fetches = validator->keys_fetches() - fetches_before;
  std::cout << "delivery-under-faults: case=unknown-kid-flood sent="
            << forged.size() + genuine.size() << " lost=" << lost << " doubled=" << doubled
            << std::endl;
  std::cout << "unknown-kid-flood: key fetches " << fetches << " in " << kRounds << " s"
            << std::endl;
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(doubled, 0);
  // One at the start, then at most one per floor over the 20 s (+ the floor).
  const auto floor_s =
      std::chrono::duration_cast<std::chrono::seconds>(settings.min_refresh_interval).count();
  EXPECT_GE(fetches, 2u) << "the rotation needs a fetch after the first one";
  EXPECT_LE(fetches, static_cast<std::uint64_t>(1 + kRounds / floor_s + 1));
  EXPECT_EQ(fake.keys_requests(), static_cast<int>(1 + fetches));
}

TEST_F(JwtValidatorTest, ARepeatedMadeUpKidIsRefusedFromTheNegativeCacheWithoutAFetch) {
  const json activity = fake.make_activity("hi");
  ASSERT_TRUE(validate("Bearer " + fake.token_for(activity), activity));
  clock.advance(settings.min_refresh_interval + 1s);
  const std::string token = "Bearer " + fake.forge(fake.claims_for(activity), "made-up-kid");
  expect_rejected(token, activity, "is not in the Bot Framework's JWKS");
  EXPECT_EQ(validator->keys_fetches(), 2u) << "looked up once";
  // The same kid again, every 2.4 s for two minutes: from the negative cache, no fetch at all.
  constexpr int kSent = 50;
  int lost = 0, doubled = 0;
  for (int i = 0; i < kSent; ++i) {
    clock.advance(2400ms);
    auto o = start_validation(token, activity);
    settle();
    if (!refused_as_unknown(*o)) ++lost;
    if (o->calls > 1) ++doubled;
  }
  std::cout << "delivery-under-faults: case=unknown-kid-repeat sent=" << kSent << " lost=" << lost
            << " doubled=" << doubled << std::endl;
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(doubled, 0);
  EXPECT_EQ(validator->keys_fetches(), 2u);
  EXPECT_EQ(fake.keys_requests(), 2);
  // Once the negative cache forgets it, the kid is looked up again (once).
  clock.advance(settings.unknown_kid_ttl);
  expect_rejected(token, activity, "is not in the Bot Framework's JWKS");
  EXPECT_EQ(validator->keys_fetches(), 3u);
}

TEST_F(JwtValidatorTest, DestroyingTheValidatorDropsPendingValidations) {
  const json activity = fake.make_activity("hi");
  bool called = false;
  validator->validate("Bearer " + fake.token_for(activity), "msteams", fake.service_url(),
                      [&](bot::Result<VerifiedToken>) { called = true; });
  validator->validate("", "msteams", fake.service_url(),
                      [&](bot::Result<VerifiedToken>) { called = true; });
  validator.reset();
  ASSERT_TRUE(until([&] { return fake.metadata_requests() >= 1; }));
  // Let the answer come back to the client: nothing may be delivered any more.
  common::testing::run_until(
      io, [] { return false; }, 300ms);
  clock.run_due();
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace runbot::teams
