// Every answer arrives, once: the real bot::Bot behind the SlackAdapter, over a FakeSlack that
// does what Slack does when things go wrong (chat-protocols.md §1): sockets that die before an
// ack gets through (Slack redelivers the envelope, same envelope_id, on another socket), commands
// delivered again under a new envelope_id with the same trigger_id, 429 with Retry-After and 5xx
// on chat.postEphemeral and response_url. Each test prints a line
//   delivery-under-faults: case=<name> sent=<N> lost=<L> doubled=<D>
// from what the fake recorded (the README's "Delivery under faults" table).
#include <cstdio>
#include <map>
#include <set>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "adapters/common/asio_clock.h"
#include "adapters/slack/slack_adapter.h"
#include "bot/app/config.h"
#include "bot/bot.h"
#include "tests/adapters/common/bot_harness.h"
#include "tests/adapters/common/run_until.h"
#include "tests/support/fake_slack.h"
#include "tests/support/recording_job_queue.h"

namespace runbot::slack {
namespace {

using namespace std::chrono_literals;
using common::testing::run_until;
using nlohmann::json;

void report(const char* name, int sent, int lost, int doubled) {
  std::printf("delivery-under-faults: case=%s sent=%d lost=%d doubled=%d\n", name, sent, lost, doubled);
  std::fflush(stdout);
}

class SlackDelivery : public ::testing::Test {
 protected:
  explicit SlackDelivery(testing::FakeSlackSettings fs = {}) : fake(io, ca, std::move(fs)) { fake.start(); }
  ~SlackDelivery() override {
    harness.stop();
    if (adapter) adapter->stop();
  }

  void connect(int connections = 2) {
    // Quick retries; the fake's Retry-After still decides when it says one.
    ASSERT_TRUE(harness.build("", [](bot::OutboxSettings& os) { os.retry_base = 50ms; }));
    SlackSettings s;
    s.app_token = "xapp-1-test";
    s.bot_token = "xoxb-test";
    s.api_base_url = fake.api_base_url();
    s.ca_file = ca.ca_file;
    s.connections = connections;
    s.backoff_initial = 10ms;
    s.backoff_max = 50ms;
    auto created = SlackAdapter::create(io, s);
    ASSERT_TRUE(created) << created.error().message;
    adapter = std::move(*created);
    ASSERT_TRUE(harness.start(*adapter));
    ASSERT_TRUE(until([&] { return static_cast<int>(fake.open_sockets().size()) == connections; }));
  }

  template <class Pred>
  bool until(Pred p, std::chrono::milliseconds limit = 10000ms) {
    return run_until(io, p, limit);
  }

  // Waits for an open socket (one may be reconnecting after a drop) and sends on the newest.
  std::string slash(const std::string& text, testing::FakeEnvelopeOptions opts = {}) {
    EXPECT_TRUE(until([&] { return !fake.open_sockets().empty(); })) << "no socket to send on";
    return fake.send_slash(-1, text, "U0002", "C0003", "alice", std::move(opts));
  }

  // The acks Slack received for `envelope` that carry an answer.
  int answers_in_acks(const std::string& envelope) const {
    int n = 0;
    for (const auto& a : fake.acks) n += a.envelope_id == envelope && a.has_payload;
    return n;
  }

  testing::TestCa ca = testing::TestCa::make();
  boost::asio::io_context io;
  testing::FakeSlack fake;
  testing::BotHarness harness{io};
  testing::RecordingJobQueue& jobs = harness.jobs;
  bot::Metrics& metrics = harness.metrics;
  std::unique_ptr<SlackAdapter> adapter;
};

testing::FakeSlackSettings losing_every(int n) {
  testing::FakeSlackSettings s;
  s.lose_ack_and_drop_every = n;
  return s;
}

class SlackDeliveryLosingAcks : public SlackDelivery {
 protected:
  SlackDeliveryLosingAcks() : SlackDelivery(losing_every(100)) {}
};

// Case 1: a socket dies after runbot read an envelope but before its ack (the slash answer)
// reached Slack; Slack sends the envelope again on another socket. The redelivery must get the
// same answer, and the command must not run twice.
TEST_F(SlackDeliveryLosingAcks, ASlashAnswerLostWithItsSocketIsAckedAgainOnTheRedelivery) {
  connect();
  constexpr int kCommands = 300;
  std::vector<std::string> ids;
  for (int batch = 0; batch < kCommands / 10; ++batch) {
    std::vector<std::string> these;
    for (int i = 0; i < 10; ++i) {
      these.push_back(slash("up front-end pr-" + std::to_string(batch * 10 + i + 1)));
    }
    ASSERT_TRUE(until([&] {
      for (const auto& id : these) {
        if (fake.acks_for(id) == 0) return false;
      }
      return true;
    })) << "batch " << batch << " not acked";
    ids.insert(ids.end(), these.begin(), these.end());
  }
  int lost = 0;
  int doubled = 0;
  for (const auto& id : ids) {
    const int n = answers_in_acks(id);
    lost += n == 0;
    doubled += n > 1;
  }
  const int runs = static_cast<int>(adapter->stats().handled);
  doubled += std::max(0, runs - kCommands);
  report("slack-socket-dies-before-ack", kCommands, lost, doubled);
  EXPECT_GE(fake.lost_acks, 2) << "the fake must have lost acks for this test to mean anything";
  EXPECT_GE(fake.redelivered, fake.lost_acks);
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(doubled, 0);
  EXPECT_EQ(runs, kCommands) << "a redelivered command must not run again";
  EXPECT_EQ(jobs.jobs.size(), static_cast<std::size_t>(kCommands));
  EXPECT_GE(adapter->stats().answered_again, static_cast<std::uint64_t>(fake.lost_acks));
  EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
}

// Case 3: a slash command or click whose first ack was late arrives again under a new envelope_id
// with the same trigger_id: it gets the first answer again, and does not run twice.
TEST_F(SlackDelivery, ACommandOrClickDeliveredAgainWithTheSameTriggerIdRunsOnce) {
  connect();
  constexpr int kCommands = 30;
  int lost = 0;
  int doubled = 0;
  for (int i = 1; i <= kCommands; ++i) {
    testing::FakeEnvelopeOptions o;
    o.trigger_id = "trig-" + std::to_string(i);
    const std::string first = slash("up front-end pr-" + std::to_string(i), o);
    const std::string second = slash("up front-end pr-" + std::to_string(i), o);
    ASSERT_NE(first, second);
    ASSERT_TRUE(until([&] { return fake.ack_for(first) && fake.ack_for(second); }));
    lost += !fake.ack_for(first)->has_payload || !fake.ack_for(second)->has_payload;
    if (fake.ack_for(first)->has_payload && fake.ack_for(second)->has_payload) {
      EXPECT_EQ(fake.ack_for(first)->payload, fake.ack_for(second)->payload) << "the first answer again";
    }
  }
  // Button clicks: the answer goes through response_url once; the second delivery is acked only.
  const std::size_t responses_before = fake.responses.size();
  constexpr int kClicks = 10;
  for (int i = 1; i <= kClicks; ++i) {
    testing::FakeEnvelopeOptions o;
    o.trigger_id = "click-" + std::to_string(i);
    fake.send_block_action(-1, "extend", "front-end-pr-" + std::to_string(i) + " 1h", "U0002", "C0003", o);
    fake.send_block_action(-1, "extend", "front-end-pr-" + std::to_string(i) + " 1h", "U0002", "C0003", o);
  }
  ASSERT_TRUE(until([&] { return fake.responses.size() >= responses_before + kClicks; }));
  (void)until([] { return false; }, 300ms);  // a second answer would come within this
  const int runs = static_cast<int>(adapter->stats().handled);
  doubled += std::max(0, runs - (kCommands + kClicks));
  doubled += static_cast<int>(fake.responses.size() - responses_before) - kClicks;
  report("slack-same-trigger-id-twice", kCommands + kClicks, lost, doubled);
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(doubled, 0);
  EXPECT_EQ(runs, kCommands + kClicks);
  EXPECT_EQ(jobs.jobs.size(), static_cast<std::size_t>(kCommands));
  EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
}

// Case 4 (Slack) and 7: answers to mentions are ephemeral posts in the mention's thread, and
// survive 429 with Retry-After and 5xx; answers through response_url (clicks) likewise.
TEST_F(SlackDelivery, MentionAnswersGoIntoTheMentionsThreadAndSurviveRateLimitsAndOutages) {
  connect();
  fake.rate_limit_next("chat.postEphemeral", 1, 3);
  fake.fail_status_next("chat.postEphemeral", 503, 2);
  fake.fail_next("chat.postEphemeral", "internal_error", 1);
  constexpr int kMentions = 40;
  std::map<std::string, std::string> asker_of_ts;  // mention ts → user
  for (int i = 0; i < kMentions; ++i) {
    const std::string user = "U" + std::to_string(1000 + i);
    fake.send_mention(-1, "describe front-end-pr-" + std::to_string(i), user);
  }
  // The mention ts the fake used are in the envelopes it sent; each answer names its thread.
  ASSERT_TRUE(until([&] {
    int ok = 0;
    for (const auto& c : fake.calls_to("chat.postEphemeral")) ok += c.status == 200 && c.error.empty();
    return ok >= kMentions;
  }, 20000ms));
  (void)until([] { return false; }, 300ms);
  std::map<std::string, int> answers_per_user;
  std::set<std::string> threads;
  for (const auto& c : fake.calls_to("chat.postEphemeral")) {
    if (c.status != 200 || !c.error.empty()) continue;
    ++answers_per_user[c.body.value("user", "")];
    const std::string thread = c.body.value("thread_ts", "");
    EXPECT_FALSE(thread.empty()) << "a mention's answer goes into its thread: " << c.body.dump();
    threads.insert(thread);
  }
  int lost = 0;
  int doubled = 0;
  for (int i = 0; i < kMentions; ++i) {
    const int n = answers_per_user["U" + std::to_string(1000 + i)];
    lost += n == 0;
    doubled += n > 1;
  }
  report("slack-mention-answers-429-5xx", kMentions, lost, doubled);
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(doubled, 0);
  EXPECT_EQ(threads.size(), static_cast<std::size_t>(kMentions)) << "each answer in its own mention's thread";
  EXPECT_EQ(metrics.value("runbot_messages_failed_total", {{"platform", "slack"}, {"reason", "rate_limited"}}), 0);
  EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
}

TEST_F(SlackDelivery, AMentionInAThreadIsAnsweredInThatThread) {
  connect();
  // An app_mention inside a thread carries thread_ts; the answer goes there, not under the mention.
  json e{{"type", "app_mention"}, {"user", "U0002"}, {"text", "<@UBOT> status"}, {"ts", "1714557700.000200"},
         {"thread_ts", "1714557600.000100"}, {"channel", "C0003"}, {"event_ts", "1714557700.000200"}};
  json p{{"type", "event_callback"}, {"team_id", "T0001"}, {"api_app_id", "A0001"}, {"event_id", "EvThread1"},
         {"event_time", 1714557700}, {"event", e}};
  fake.send_envelope(-1, "events_api", p);
  fake.send_mention(-1, "status", "U0003");
  ASSERT_TRUE(until([&] { return fake.calls_to("chat.postEphemeral").size() >= 2; }));
  std::map<std::string, std::string> thread_of;
  for (const auto& c : fake.calls_to("chat.postEphemeral")) thread_of[c.body.value("user", "")] = c.body.value("thread_ts", "");
  EXPECT_EQ(thread_of["U0002"], "1714557600.000100");
  EXPECT_FALSE(thread_of["U0003"].empty()) << "a top-level mention's answer threads under the mention";
  EXPECT_NE(thread_of["U0003"], "1714557600.000100");
}

TEST_F(SlackDelivery, AClickAnswerThroughResponseUrlSurvivesRateLimitsAndOutages) {
  connect();
  fake.rate_limit_next("response_url", 1, 1);
  fake.fail_status_next("response_url", 500, 2);
  constexpr int kClicks = 10;
  for (int i = 1; i <= kClicks; ++i) {
    fake.send_block_action(-1, "extend", "front-end-pr-" + std::to_string(i) + " 1h");
  }
  ASSERT_TRUE(until([&] { return fake.responses.size() >= static_cast<std::size_t>(kClicks); }, 20000ms));
  (void)until([] { return false; }, 300ms);
  std::map<std::string, int> per_url;
  for (const auto& r : fake.responses) ++per_url[r.id];
  int doubled = 0;
  for (const auto& [id, n] : per_url) doubled += n > 1;
  const int lost = kClicks - static_cast<int>(per_url.size());
  report("slack-response-url-429-5xx", kClicks, lost, doubled);
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(doubled, 0);
  EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
}

}  // namespace
}  // namespace runbot::slack
