#include "adapters/common/secrets.h"

#include <gtest/gtest.h>

namespace runbot::common {
namespace {

TEST(Secrets, HmacSha256MatchesTheRfc4231Vector) {
  // RFC 4231, test case 2.
  EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(hmac_sha256_hex("k", "").size(), 64u);
  EXPECT_NE(hmac_sha256_hex("k", "down\nx"), hmac_sha256_hex("k", "down\ny"));
}

TEST(Secrets, ConstantTimeEqualComparesWholeStrings) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
  EXPECT_FALSE(constant_time_equal("abc", "ab"));
  EXPECT_FALSE(constant_time_equal("", "a"));
}

}  // namespace
}  // namespace runbot::common
