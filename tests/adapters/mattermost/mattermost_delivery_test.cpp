// Exactly-once posting across a crash on Mattermost: every post runbot creates carries its
// delivery id in its props, and a maybe_delivered post is first looked for (in its thread, or in
// the channel's newest pages) and reported as already there instead of being posted again.
// MattermostAdapter over FakeMattermost, which keeps props and serves the post lists as the
// server does. The socket is off: only REST matters here.
#include <optional>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "adapters/mattermost/mattermost_adapter.h"
#include "tests/adapters/common/run_until.h"
#include "tests/support/fake_mattermost.h"

namespace runbot::mattermost {
namespace {

using namespace std::chrono_literals;
using common::testing::run_until;
using nlohmann::json;
using testing::FakeMattermost;

constexpr const char* kAlice = "aliceuserid000000000000000";
constexpr const char* kChannel = "chan-deploys";

class MattermostDelivery : public ::testing::Test {
 protected:
  MattermostDelivery() { fake.start(); }

  // Starts the adapter; with `wait`, until users/me has answered.
  void start(bool wait = true) {
    MattermostSettings s;
    s.server_url = fake.server_url();
    s.token = "mm-bot-token";
    s.ca_file = ca.ca_file;
    s.socket = false;
    s.request_timeout = 3000ms;
    auto a = MattermostAdapter::create(io, std::move(s));
    ASSERT_TRUE(a) << a.error().message;
    adapter = std::move(*a);
    adapter->on_started([this](bot::Status st) { started = std::move(st); });
    adapter->start([](const bot::InboundMessage&) {});
    if (!wait) return;
    ASSERT_TRUE(run_until(io, [&] { return started.has_value(); }));
    ASSERT_TRUE(*started) << started->error().message;
  }

  bot::PostRequest request(const std::string& delivery, const std::string& thread = "") {
    bot::PostRequest r;
    r.channel = bot::ChannelId{kChannel};
    r.thread = thread;
    r.delivery_id = delivery;
    r.message.kind = thread.empty() ? bot::NoticeKind::status_card : bot::NoticeKind::reply;
    r.message.title = "message " + delivery;
    return r;
  }

  bot::Result<bot::PostResult> post(bot::PostRequest r) {
    std::optional<bot::Result<bot::PostResult>> out;
    adapter->post(std::move(r), [&](bot::Result<bot::PostResult> res) { out = std::move(res); });
    EXPECT_TRUE(run_until(io, [&] { return out.has_value(); })) << "no post result";
    if (!out) return bot::make_error(bot::Errc::timeout, "test: no post result");
    return std::move(*out);
  }

  std::size_t lookups() const {
    std::size_t n = 0;
    for (const auto& c : fake.calls) {
      const bool channel_posts = c.path.rfind("/api/v4/channels/", 0) == 0;
      const bool thread = c.path.size() > 7 && c.path.substr(c.path.size() - 7) == "/thread";
      if (c.method == "GET" && (channel_posts || thread)) ++n;
    }
    return n;
  }

  void TearDown() override {
    if (adapter) adapter->stop();
    EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
  }

  testing::TestCa ca = testing::TestCa::make();
  boost::asio::io_context io;
  FakeMattermost fake{io, ca};
  std::unique_ptr<MattermostAdapter> adapter;
  std::optional<bot::Status> started;
};

TEST_F(MattermostDelivery, AResentTopLevelPostAlreadyInTheChannelIsReportedNotPostedAgain) {
  start();
  auto card = post(request("d-card"));
  ASSERT_TRUE(card) << card.error().message;
  ASSERT_EQ(fake.bot_posts().size(), 1u);
  EXPECT_EQ(fake.bot_posts()[0]["props"]["runbot_delivery_id"], "d-card");
  EXPECT_EQ(fake.bot_posts()[0]["props"]["runbot_delivery_part"], 0);
  // After it: 250 posts (so the card is on the second page of 200), one of them someone else's
  // copying runbot's props, which must not count.
  for (int i = 0; i < 250; ++i) fake.post_silently(kAlice, kChannel, "chatter " + std::to_string(i));
  const std::string decoy = fake.post_silently(kAlice, kChannel, "copied", "",
                                               {{"runbot_delivery_id", "d-card"}, {"runbot_delivery_part", 0}});

  auto again_req = request("d-card");
  again_req.maybe_delivered = true;
  auto again = post(again_req);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(again->already_there);
  EXPECT_EQ(again->message_id, card->message_id);
  EXPECT_NE(again->message_id, decoy);
  EXPECT_EQ(fake.bot_posts().size(), 1u) << "nothing posted twice";
  const auto pages = fake.calls_to("GET", std::string("/api/v4/channels/") + kChannel + "/posts");
  ASSERT_EQ(pages.size(), 2u);
  EXPECT_EQ(pages[0].query, "page=0&per_page=200");
  EXPECT_EQ(pages[1].query, "page=1&per_page=200");
  EXPECT_EQ(adapter->stats().already_posted, 1u);
}

TEST_F(MattermostDelivery, AResentReplyAlreadyInItsThreadIsReportedNotPostedAgain) {
  start();
  auto card = post(request("d-card"));
  ASSERT_TRUE(card) << card.error().message;
  auto reply = post(request("d-reply", card->message_id));
  ASSERT_TRUE(reply) << reply.error().message;
  ASSERT_EQ(fake.bot_posts().size(), 2u);
  EXPECT_EQ(fake.bot_posts()[1]["root_id"], card->message_id);
  EXPECT_EQ(fake.bot_posts()[1]["props"]["runbot_delivery_id"], "d-reply");
  fake.post_as(kAlice, kChannel, "thanks", card->message_id);

  auto again_req = request("d-reply", card->message_id);
  again_req.maybe_delivered = true;
  auto again = post(again_req);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(again->already_there);
  EXPECT_EQ(again->message_id, reply->message_id);
  EXPECT_EQ(fake.bot_posts().size(), 2u) << "nothing posted twice";
  ASSERT_EQ(fake.calls_to("GET", "/api/v4/posts/" + card->message_id + "/thread").size(), 1u);
  EXPECT_TRUE(fake.calls_to("GET", "/api/v4/channels/").empty()) << "a reply is looked for in its thread only";
}

// As after a real crash: the earlier process's post is on the server, and the new adapter is
// asked to resend before its own users/me has answered (so it asks for the bot's id itself).
TEST_F(MattermostDelivery, AfterARestartThePostOfTheEarlierProcessIsFoundByTheBotsId) {
  const std::string bot = testing::FakeMattermostSettings{}.bot_user_id;
  const std::string earlier = fake.post_silently(bot, kChannel, "before the crash", "",
                                                 {{"runbot_delivery_id", "d-7"}, {"runbot_delivery_part", 0},
                                                  {"from_bot", "true"}});
  fake.post_silently(kAlice, kChannel, "after it");
  start(false);
  auto req = request("d-7");
  req.maybe_delivered = true;
  auto r = post(req);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->already_there);
  EXPECT_EQ(r->message_id, earlier);
  EXPECT_TRUE(fake.bot_posts().empty());
  EXPECT_EQ(fake.calls_to("GET", "/api/v4/users/me").size(), 2u) << "the start's and the lookup's";
  EXPECT_EQ(lookups(), 1u);
}

TEST_F(MattermostDelivery, AResentPostThatIsNotThereIsPostedOnceWithItsDeliveryIdInEveryPart) {
  start();
  auto req = request("d-long");
  for (int i = 0; i < 3000; ++i) req.message.code.push_back("line " + std::to_string(i) + " of a very long log tail");
  req.maybe_delivered = true;
  auto r = post(req);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->already_there);
  const auto posts = fake.bot_posts();
  ASSERT_GT(posts.size(), 1u) << "the message is split into several posts";
  for (std::size_t i = 0; i < posts.size(); ++i) {
    EXPECT_EQ(posts[i]["props"]["runbot_delivery_id"], "d-long") << "part " << i;
    EXPECT_EQ(posts[i]["props"]["runbot_delivery_part"], i);
    EXPECT_EQ(posts[i].value("root_id", ""), i == 0 ? "" : r->message_id) << "later parts follow in the thread";
  }
  EXPECT_EQ(lookups(), 1u) << "one page: the channel was short";

  // Resent once more: part 0 is found, and none of the parts goes out again.
  auto again = post(req);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(again->already_there);
  EXPECT_EQ(again->message_id, r->message_id);
  EXPECT_EQ(fake.bot_posts().size(), posts.size());
}

TEST_F(MattermostDelivery, AFailedLookupPostsAnywayAtLeastOnce) {
  start();
  auto card = post(request("d-card"));
  ASSERT_TRUE(card) << card.error().message;
  auto reply = post(request("d-reply", card->message_id));
  ASSERT_TRUE(reply) << reply.error().message;

  // Both are on the server, but the lookups fail: the policy (as on Slack) is to post anyway.
  fake.fail_next("GET /posts/thread", 503);
  auto reply_req = request("d-reply", card->message_id);
  reply_req.maybe_delivered = true;
  auto r1 = post(reply_req);
  ASSERT_TRUE(r1) << r1.error().message;
  EXPECT_FALSE(r1->already_there);
  EXPECT_NE(r1->message_id, reply->message_id) << "a second copy was posted";

  fake.fail_next("GET /channels/posts", 500);
  auto card_req = request("d-card");
  card_req.maybe_delivered = true;
  auto r2 = post(card_req);
  ASSERT_TRUE(r2) << r2.error().message;
  EXPECT_FALSE(r2->already_there);
  EXPECT_NE(r2->message_id, card->message_id);

  EXPECT_EQ(fake.bot_posts().size(), 4u);
  EXPECT_EQ(lookups(), 2u) << "a failed lookup is not retried";
  EXPECT_EQ(adapter->stats().already_posted, 0u);
}

TEST_F(MattermostDelivery, NormalPostsAndEditsMakeNoLookupCalls) {
  start();
  const std::size_t before = fake.calls.size();
  auto card = post(request("d-card"));
  ASSERT_TRUE(card) << card.error().message;
  auto reply = post(request("d-reply", card->message_id));
  ASSERT_TRUE(reply) << reply.error().message;
  auto edit_req = request("d-edit");
  edit_req.edit = card->message_id;
  auto edit = post(edit_req);
  ASSERT_TRUE(edit) << edit.error().message;
  // Edits are not looked for even when flagged: patching again does no harm.
  edit_req.maybe_delivered = true;
  auto edit_again = post(edit_req);
  ASSERT_TRUE(edit_again) << edit_again.error().message;
  EXPECT_FALSE(edit_again->already_there);
  EXPECT_EQ(edit_again->message_id, card->message_id);
  // Nor is a flagged post without a delivery id (nothing to look for).
  auto anonymous = request("");
  anonymous.maybe_delivered = true;
  ASSERT_TRUE(post(anonymous));

  EXPECT_EQ(lookups(), 0u);
  ASSERT_EQ(fake.calls.size() - before, 5u) << "three posts and two patches, nothing else";
  EXPECT_EQ(fake.bot_posts().size(), 3u);
  EXPECT_EQ(fake.calls_to("PUT", "/api/v4/posts/" + card->message_id + "/patch").size(), 2u);
  EXPECT_FALSE(fake.bot_posts()[2]["props"].contains("runbot_delivery_id")) << "no delivery id, no prop";
}

}  // namespace
}  // namespace runbot::mattermost
