// Every answer arrives, once (issue "Every answer arrives", case 4): the real bot::Bot behind the
// MattermostAdapter, over a FakeMattermost with the server's rate limiter on (chat-protocols.md
// §2.6: 429 "limit exceeded" with Retry-After) or failing with 5xx. Answers to mentions, DMs and
// late slash commands go through the outbox, which retries them; none is lost, none is posted
// twice. Prints `delivery-under-faults: case=<name> sent=<N> lost=<L> doubled=<D>`.
#include <cstdio>
#include <map>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "adapters/common/asio_clock.h"
#include "adapters/mattermost/mattermost_adapter.h"
#include "bot/app/config.h"
#include "bot/bot.h"
#include "tests/adapters/common/bot_harness.h"
#include "tests/adapters/common/run_until.h"
#include "tests/support/fake_mattermost.h"
#include "tests/support/recording_job_queue.h"

namespace runbot::mattermost {
namespace {

using namespace std::chrono_literals;
using common::testing::run_until;
using nlohmann::json;

constexpr const char* kChannel = "chan-deploys";

class MattermostAnswers : public ::testing::Test {
 protected:
  MattermostAnswers() { fake.start(); }
  ~MattermostAnswers() override {
    harness.stop();
    if (adapter) adapter->stop();
  }

  // `answers_per_second`: the outbox's own pacing of answers (high = leave it to the server's 429s).
  void connect(double answers_per_second = 10, double answer_burst = 20) {
    ASSERT_TRUE(harness.build("", [&](bot::OutboxSettings& os) {
      os.answers_per_second = answers_per_second;
      os.answer_burst = answer_burst;
      os.retry_base = 50ms;
    }));
    MattermostSettings s;
    s.server_url = fake.server_url();
    s.token = "mm-bot-token";
    s.ca_file = ca.ca_file;
    s.backoff_initial = 20ms;
    s.backoff_max = 200ms;
    auto a = MattermostAdapter::create(io, std::move(s));
    ASSERT_TRUE(a) << a.error().message;
    adapter = std::move(*a);
    ASSERT_TRUE(harness.start(*adapter));
    ASSERT_TRUE(run_until(io, [&] { return fake.socket_open() && fake.hellos_sent() == 1; }));
  }

  // Mentions (by post id) that got no answer in their thread, and those that got more than one;
  // printed as the README's "Delivery under faults" line for `name`.
  struct Tally {
    int lost = 0;
    int doubled = 0;
  };
  Tally tally(const char* name, const std::vector<std::string>& roots) const {
    Tally t;
    for (const auto& root : roots) {
      int n = 0;
      for (const auto& p : fake.bot_posts()) n += p.value("root_id", "") == root;
      t.lost += n == 0;
      t.doubled += n > 1;
    }
    std::printf("delivery-under-faults: case=%s sent=%zu lost=%d doubled=%d\n", name, roots.size(), t.lost, t.doubled);
    return t;
  }

  testing::TestCa ca = testing::TestCa::make();
  boost::asio::io_context io;
  testing::FakeMattermost fake{io, ca};
  testing::BotHarness harness{io};
  std::unique_ptr<MattermostAdapter> adapter;
};

TEST_F(MattermostAnswers, MentionAnswersUnderTheServersRateLimitAreAllPostedOnce) {
  // Unpaced answers against a server allowing 100 requests/s with a burst of 20: it answers 429.
  connect(/*answers_per_second=*/10000, /*answer_burst=*/10000);
  fake.set_rate_limit(100, 20);
  constexpr int kMentions = 200;
  std::vector<std::string> roots;
  for (int i = 0; i < kMentions; ++i) {
    const std::string user = "user" + std::to_string(i) + std::string(26 - 4 - std::to_string(i).size(), '0');
    roots.push_back(fake.post_as(user, kChannel, "@runbot describe env-" + std::to_string(i)));
  }
  ASSERT_TRUE(run_until(io, [&] { return static_cast<int>(fake.bot_posts().size()) >= kMentions; }, 30s))
      << fake.bot_posts().size() << " answers";
  (void)run_until(io, [] { return false; }, 300ms);
  const Tally t = tally("mattermost-mentions-rate-limited", roots);
  EXPECT_GT(fake.rate_limited, 0) << "the server's limit must have been hit for this test to mean anything";
  EXPECT_EQ(t.lost, 0);
  EXPECT_EQ(t.doubled, 0);
  EXPECT_EQ(adapter->stats().handled, static_cast<std::uint64_t>(kMentions));
  // Each answer carries its delivery id, as every post does (so a resend after a crash is found).
  for (const auto& p : fake.bot_posts()) {
    EXPECT_TRUE(p.contains("props") && p["props"].contains("runbot_delivery_id")) << p.dump();
  }
  EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
}

TEST_F(MattermostAnswers, AnswersMeeting5xxAreRetriedAndTheConversationGoesOn) {
  connect();
  fake.fail_next("POST /posts", 503, 2);
  fake.fail_next("POST /posts", 500, 1);
  constexpr int kMentions = 20;
  std::vector<std::string> roots;
  for (int i = 0; i < kMentions; ++i) {
    roots.push_back(fake.post_as("aliceuserid000000000000000", kChannel, "@runbot describe env-" + std::to_string(i)));
  }
  ASSERT_TRUE(run_until(io, [&] { return static_cast<int>(fake.bot_posts().size()) >= kMentions; }, 20s));
  (void)run_until(io, [] { return false; }, 300ms);
  const Tally t = tally("mattermost-mentions-5xx", roots);
  EXPECT_EQ(t.lost, 0);
  EXPECT_EQ(t.doubled, 0) << "a 5xx answer may have been taken: it is looked for before it is posted again";
  // Answers keep their order in the channel.
  std::vector<std::string> order;
  for (const auto& p : fake.bot_posts()) order.push_back(p.value("root_id", ""));
  EXPECT_EQ(order, roots);
}

}  // namespace
}  // namespace runbot::mattermost
