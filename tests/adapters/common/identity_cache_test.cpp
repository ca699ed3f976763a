// IdentityCache on a FakeClock with a lookup the test completes by hand: what is remembered for
// how long, who waits for which lookup, and what a user gets when the platform does not answer.
#include "adapters/common/identity_cache.h"

#include <gtest/gtest.h>

#include "tests/support/fake_clock.h"

namespace runbot::common {
namespace {

using namespace std::chrono_literals;

class IdentityCacheTest : public ::testing::Test {
 protected:
  IdentityCacheTest() { reset({}); }

  void reset(IdentityCacheSettings s) {
    cache = std::make_unique<IdentityCache>(
        s, clock,
        [this](const std::string& user, IdentityCache::Done done) {
          asked.push_back(user);
          pending.emplace_back(user, std::move(done));
        },
        "test");
  }

  // Completes the oldest pending lookup with `id`.
  void answer(Identity id) {
    ASSERT_FALSE(pending.empty());
    auto done = std::move(pending.front().second);
    pending.erase(pending.begin());
    done(id);
  }

  std::vector<Identity> got;
  IdentityCache::Done record() {
    return [this](const Identity& id) { got.push_back(id); };
  }

  testing::FakeClock clock;
  std::vector<std::string> asked;
  std::vector<std::pair<std::string, IdentityCache::Done>> pending;
  std::unique_ptr<IdentityCache> cache;
};

TEST_F(IdentityCacheTest, ConcurrentRequestsForOneUserShareOneLookupAndTheResultIsKeptForTheTtl) {
  cache->get("U1", record());
  cache->get("U1", record());
  cache->get("U2", record());
  EXPECT_EQ(asked, (std::vector<std::string>{"U1", "U2"})) << "one lookup per user in flight";
  answer({"a@acme.dev", {"sre", "S01"}, ""});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].email, "a@acme.dev");
  EXPECT_EQ(got[1].groups, (std::vector<std::string>{"sre", "S01"}));
  ASSERT_TRUE(cache->cached("U1"));
  answer({"b@acme.dev", {}, ""});
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2].email, "b@acme.dev");

  got.clear();
  clock.advance(9min);
  cache->get("U1", record());
  EXPECT_TRUE(got.empty()) << "a cached answer is still delivered from the executor, not inline";
  clock.run_due();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].email, "a@acme.dev");
  EXPECT_EQ(asked.size(), 2u) << "no new lookup within the TTL";

  clock.advance(1min);
  EXPECT_FALSE(cache->cached("U1")) << "expired after 10 minutes";
  cache->get("U1", record());
  EXPECT_EQ(asked.size(), 3u);
}

TEST_F(IdentityCacheTest, AHangingLookupIsAnsweredAtTheDeadlineAndItsLateResultIsStillRemembered) {
  cache->get("U1", record());
  clock.advance(1999ms);
  EXPECT_TRUE(got.empty());
  clock.advance(1ms);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].error, "no answer within 2000 ms");
  EXPECT_TRUE(got[0].email.empty());
  // The late answer fills the cache; the waiter is not called twice.
  answer({"a@acme.dev", {}, ""});
  EXPECT_EQ(got.size(), 1u);
  ASSERT_TRUE(cache->cached("U1"));
  EXPECT_EQ(cache->cached("U1")->email, "a@acme.dev");
}

TEST_F(IdentityCacheTest, AFailureIsRememberedOnlyBrieflySoTheNextCommandTriesAgain) {
  cache->get("U1", record());
  answer({"", {}, "slack users.info: missing_scope"});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].error, "slack users.info: missing_scope");
  ASSERT_TRUE(cache->cached("U1")) << "not a lookup per command while it keeps failing";
  clock.advance(59s);
  EXPECT_TRUE(cache->cached("U1"));
  clock.advance(1s);
  EXPECT_FALSE(cache->cached("U1"));
  cache->get("U1", record());
  EXPECT_EQ(asked.size(), 2u);
}

TEST_F(IdentityCacheTest, TheOldestUserIsForgottenWhenTheCacheIsFull) {
  IdentityCacheSettings s;
  s.capacity = 2;
  reset(s);
  for (const char* u : {"U1", "U2", "U3"}) {
    cache->get(u, record());
    answer({std::string(u) + "@acme.dev", {}, ""});
  }
  EXPECT_EQ(cache->size(), 2u);
  EXPECT_FALSE(cache->cached("U1"));
  EXPECT_TRUE(cache->cached("U2"));
  EXPECT_TRUE(cache->cached("U3"));
}

}  // namespace
}  // namespace runbot::common
