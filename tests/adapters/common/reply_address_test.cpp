// ReplyAddress: what the adapters write into InboundMessage::reply_to reads back the same, and
// anything else is refused with the reason.
#include "adapters/common/reply_address.h"

#include <gtest/gtest.h>

namespace runbot::common {
namespace {

using Via = ReplyAddress::Via;

TEST(ReplyAddress, EveryWayReadsBackAsItWasWritten) {
  for (const ReplyAddress& a : {ReplyAddress{Via::response_url, "https://hooks.slack.test/r/1", "in_channel", "", ""},
                                ReplyAddress{Via::post, "", "", "", "1714557600.000100"},
                                ReplyAddress{Via::post, "", "", "", ""},
                                ReplyAddress{Via::ephemeral, "", "", "U0002", "1714557600.000200"}}) {
    auto back = ReplyAddress::parse(a.to_json());
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->via, a.via);
    EXPECT_EQ(back->url, a.url);
    EXPECT_EQ(back->type, a.type);
    EXPECT_EQ(back->user, a.user);
    EXPECT_EQ(back->thread, a.thread);
    EXPECT_EQ(back->findable(), a.via == Via::post) << "only visible posts can be looked for";
  }
}

TEST(ReplyAddress, AnythingElseIsRefusedWithTheReason) {
  auto not_json = ReplyAddress::parse("not json");
  ASSERT_FALSE(not_json);
  EXPECT_EQ(not_json.error().code, bot::Errc::invalid_argument);
  EXPECT_NE(ReplyAddress::parse(R"({"via":"carrier-pigeon"})").error().message.find("carrier-pigeon"), std::string::npos);
  EXPECT_FALSE(ReplyAddress::parse(R"({"via":"response_url"})")) << "no url";
  EXPECT_FALSE(ReplyAddress::parse(R"({"via":"ephemeral","thread":"1"})")) << "no user";
  EXPECT_FALSE(ReplyAddress::parse("[]"));
}

}  // namespace
}  // namespace runbot::common
