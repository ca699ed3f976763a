#include "bot/outbox.h"

#include <algorithm>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/fake_chat_adapter.h"

namespace runbot::bot {
namespace {

using namespace std::chrono_literals;
using testing::FakeChatAdapter;
using testing::FakeClock;

Message msg(NoticeKind kind, std::string title) {
  Message m;
  m.kind = kind;
  m.title = std::move(title);
  return m;
}

class OutboxTest : public ::testing::Test {
 protected:
  OutboxTest() : outbox(settings(), clock, metrics) { outbox.add_adapter(chat); }
  static OutboxSettings settings() {
    OutboxSettings s;
    s.messages_per_second = 1;
    s.burst = 1;
    return s;
  }
  FakeClock clock;
  Metrics metrics;
  FakeChatAdapter chat{clock};
  FakeChatAdapter dead{clock};  // stands in for a crashed process's connection
  Outbox outbox;
  const ChannelId c1{"C1"};
  const EnvId env{"app-pr-1"};
};

TEST_F(OutboxTest, FirstCardStartsTheThreadAndRepliesGoIntoIt) {
  outbox.card("fake", c1, env, msg(NoticeKind::status_card, "card v1"));
  outbox.reply("fake", c1, env, msg(NoticeKind::requested, "requested"));
  clock.advance(10s);
  ASSERT_EQ(chat.posts.size(), 2u);
  EXPECT_TRUE(chat.posts[0].request.thread.empty());
  EXPECT_TRUE(chat.posts[0].request.edit.empty());
  EXPECT_EQ(chat.posts[1].request.thread, chat.posts[0].id);
  outbox.card("fake", c1, env, msg(NoticeKind::status_card, "card v2"));
  clock.advance(10s);
  ASSERT_EQ(chat.posts.size(), 3u);
  EXPECT_EQ(chat.posts[2].request.edit, chat.posts[0].id);
}

TEST_F(OutboxTest, KeepsToTheChannelRateAndOrderWithoutDropping) {
  for (int i = 0; i < 10; ++i) outbox.post("fake", c1, msg(NoticeKind::reply, "m" + std::to_string(i)));
  clock.advance(4500ms);
  EXPECT_EQ(chat.posts.size(), 5u);  // one now, then one a second
  clock.advance(10s);
  ASSERT_EQ(chat.posts.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(chat.posts[i].request.message.title, "m" + std::to_string(i));
  for (size_t i = 1; i < chat.posts.size(); ++i) EXPECT_GE(chat.posts[i].at - chat.posts[i - 1].at, 1s);
}

TEST_F(OutboxTest, ALongWindowLimitHoldsTheRestBackUntilTheOldestSendLeavesIt) {
  OutboxSettings st;
  st.messages_per_second = 100;
  st.burst = 100;
  st.window = 10s;
  st.window_max = 3;
  st.coalesce_after = 1'000'000;  // follow every message
  outbox.set_platform_settings("fake", st);
  for (int i = 0; i < 7; ++i) outbox.post("fake", c1, msg(NoticeKind::reply, "m" + std::to_string(i)));
  clock.advance(1s);
  EXPECT_EQ(chat.posts.size(), 3u) << "the short bucket would allow all seven";
  clock.advance(8s);
  EXPECT_EQ(chat.posts.size(), 3u);
  clock.advance(2s);
  EXPECT_EQ(chat.posts.size(), 6u);
  clock.advance(10s);
  ASSERT_EQ(chat.posts.size(), 7u);
  for (int i = 0; i < 7; ++i) EXPECT_EQ(chat.posts[i].request.message.title, "m" + std::to_string(i));
  for (size_t i = 3; i < chat.posts.size(); ++i)
    EXPECT_GE(chat.posts[i].at - chat.posts[i - 3].at, 10s) << "four posts inside one window at " << i;
  // Another channel has a window of its own.
  outbox.post("fake", ChannelId{"C2"}, msg(NoticeKind::reply, "elsewhere"));
  clock.advance(1s);
  ASSERT_EQ(chat.posts.size(), 8u);
  EXPECT_EQ(chat.posts.back().request.message.title, "elsewhere");
}

TEST_F(OutboxTest, QueuedCardUpdatesCoalesceToTheNewest) {
  outbox.card("fake", c1, env, msg(NoticeKind::status_card, "v1"));
  outbox.post("fake", c1, msg(NoticeKind::reply, "other"));
  outbox.card("fake", c1, env, msg(NoticeKind::status_card, "v2"));
  outbox.card("fake", c1, env, msg(NoticeKind::status_card, "v3"));
  clock.advance(10s);
  ASSERT_EQ(chat.posts.size(), 3u);
  EXPECT_EQ(chat.posts[0].request.message.title, "v1");
  EXPECT_EQ(chat.posts[2].request.message.title, "v3");
  EXPECT_EQ(metrics.value("runbot_notifications_coalesced_total", {{"platform", "fake"}}), 1);
}

TEST_F(OutboxTest, RateLimitedPostWaitsForRetryAfterThenSucceeds) {
  Error limited = make_error(Errc::rate_limited, "429");
  limited.retry_after = 30s;
  chat.fail_next(3, limited);
  outbox.post("fake", c1, msg(NoticeKind::reply, "hello"));
  clock.advance(89s);
  EXPECT_TRUE(chat.posts.empty());
  clock.advance(2s);
  ASSERT_EQ(chat.posts.size(), 1u);
  EXPECT_EQ(chat.attempts, 4);
}

TEST_F(OutboxTest, PermanentErrorIsCountedAndTheQueueMovesOn) {
  chat.fail_next(1, make_error(Errc::unauthorized, "not_in_channel"));
  outbox.post("fake", c1, msg(NoticeKind::reply, "lost"));
  outbox.post("fake", c1, msg(NoticeKind::reply, "next"));
  clock.advance(5s);
  ASSERT_EQ(chat.posts.size(), 1u);
  EXPECT_EQ(chat.posts[0].request.message.title, "next");
  EXPECT_EQ(metrics.value("runbot_notifications_failed_total", {{"platform", "fake"}}), 1);
}

TEST_F(OutboxTest, ChannelsAreIndependent) {
  for (int i = 0; i < 3; ++i) {
    outbox.post("fake", c1, msg(NoticeKind::reply, "a"));
    outbox.post("fake", ChannelId{"C2"}, msg(NoticeKind::reply, "b"));
  }
  clock.advance(500ms);
  EXPECT_EQ(chat.posts.size(), 2u);  // one per channel right away
}

}  // namespace
}  // namespace runbot::bot

namespace runbot::bot {
namespace {

TEST_F(OutboxTest, APileOfRepliesBecomesOneDigestInOrderWithNothingDropped) {
  outbox.card("fake", c1, env, msg(NoticeKind::status_card, "card"));
  for (int i = 0; i < 20; ++i) outbox.reply("fake", c1, env, msg(NoticeKind::progress, "step " + std::to_string(i)));
  clock.advance(60s);
  ASSERT_LT(chat.posts.size(), 10u) << "replies were coalesced";
  std::string all;
  for (const auto& p : chat.posts) all += p.request.message.title + "\n" + p.request.message.text + "\n";
  size_t pos = 0;
  for (int i = 0; i < 20; ++i) {
    size_t at = all.find("step " + std::to_string(i) + "\n", pos);
    if (at == std::string::npos) at = all.find("step " + std::to_string(i), pos);
    ASSERT_NE(at, std::string::npos) << "step " << i << " is missing from:\n" << all;
    pos = at;
  }
  bool has_digest = false;
  for (const auto& p : chat.posts) has_digest = has_digest || p.request.message.title.find("updates for app-pr-1") != std::string::npos;
  EXPECT_TRUE(has_digest);
  for (size_t i = 1; i < chat.posts.size(); ++i) EXPECT_EQ(chat.posts[i].request.thread, chat.posts[0].id);
}

TEST_F(OutboxTest, AnInterruptionStormBecomesDigestsWithEveryNodeMentionAndEnvironment) {
  // 200 spot interruptions at once: the on-call channel at 1 message/s gets a few digests
  // instead of 200 messages over 200 s, and each environment's thread likewise.
  const ChannelId oncall{"oncall"};
  outbox.card("fake", c1, env, msg(NoticeKind::status_card, "card"));
  for (int i = 0; i < 200; ++i) {
    Message summary = msg(NoticeKind::interruption, "spot interruption on node n" + std::to_string(i));
    summary.severity = Severity::warning;
    summary.text = "Deadline t" + std::to_string(i) + ".";
    summary.code = {"env-" + std::to_string(i) + "  owner @u" + std::to_string(i)};
    summary.mentions = {UserId{"u" + std::to_string(i)}};
    outbox.post("fake", oncall, summary);
    Message notice = msg(NoticeKind::interruption, "spot interruption on node n" + std::to_string(i));
    notice.severity = Severity::danger;
    notice.text = "@alice, app-pr-1 runs on this node. The node goes away at t" + std::to_string(i) + ".";
    notice.mentions = {UserId{"alice"}};
    outbox.reply("fake", c1, env, notice);
    outbox.reply("fake", c1, env, msg(NoticeKind::progress, "step " + std::to_string(i)));
  }
  Message ready = msg(NoticeKind::ready, "ready");
  ready.buttons = {{"Open", "open", "", "https://x"}};
  outbox.reply("fake", c1, env, ready);
  clock.advance(120s);
  EXPECT_EQ(outbox.pending(), 0u);
  std::string oncall_text, oncall_code, thread_text;
  std::set<std::string> oncall_mentions;
  int oncall_posts = 0, thread_posts = 0;
  for (const auto& p : chat.posts) {
    const Message& m = p.request.message;
    size_t lines = 0;
    for (auto at = m.text.find("• "); at != std::string::npos; at = m.text.find("• ", at + 1)) ++lines;
    EXPECT_LE(lines, OutboxSettings{}.digest_max) << "a full digest takes no more";
    if (p.request.channel == oncall) {
      ++oncall_posts;
      oncall_text += m.title + "\n" + m.text + "\n";
      for (const auto& c : m.code) oncall_code += c + "\n";
      for (const auto& u : m.mentions) oncall_mentions.insert(u.str());
    } else if (!p.request.thread.empty()) {
      ++thread_posts;
      thread_text += m.title + "\n" + m.text + "\n";
      if (m.title.find("interruptions") != std::string::npos) {
        EXPECT_EQ(m.severity, Severity::danger) << m.title;
      }
      if (m.text.find("runs on this node") != std::string::npos) {
        EXPECT_NE(std::find(m.mentions.begin(), m.mentions.end(), UserId{"alice"}), m.mentions.end());
      }
    }
  }
  EXPECT_LT(oncall_posts, 20) << "summaries were merged";
  EXPECT_NE(oncall_text.find(" interruption notices\n"), std::string::npos) << "a digest says what it gathers";
  EXPECT_NE(thread_text.find(" of them about interruptions\n"), std::string::npos);
  EXPECT_LT(thread_posts, 40) << "thread notices were merged";
  for (int i = 0; i < 200; ++i) {
    const std::string n = std::to_string(i);
    const bool listed = oncall_text.find("node n" + n + " — Deadline t" + n + ".") != std::string::npos ||  // in a digest
                        oncall_text.find("node n" + n + "\nDeadline t" + n + ".") != std::string::npos;   // on its own
    EXPECT_TRUE(listed) << i;
    EXPECT_NE(oncall_code.find("env-" + n + "  owner @u" + n + "\n"), std::string::npos) << i;
    EXPECT_TRUE(oncall_mentions.contains("u" + n)) << i;
    EXPECT_NE(thread_text.find("goes away at t" + n + "."), std::string::npos) << i;
    EXPECT_NE(thread_text.find("step " + n), std::string::npos) << i;
  }
  ASSERT_FALSE(chat.posts.empty());
  EXPECT_EQ(chat.posts.back().request.message.title, "ready") << "a notice with buttons stands alone, last";
}

TEST_F(OutboxTest, AnAdapterThatCompletesAtOnceGetsTheWholeQueueInOrderWithoutNesting) {
  OutboxSettings fast;
  fast.messages_per_second = 1e9;
  fast.burst = 1e9;
  fast.coalesce_after = 1'000'000;
  Outbox quick(fast, clock, metrics);
  quick.add_adapter(chat);
  chat.completes_inline = true;
  quick.hold_until_durable(true);
  quick.card("fake", c1, env, msg(NoticeKind::status_card, "card"));
  for (int i = 0; i < 100'000; ++i) quick.reply("fake", c1, env, msg(NoticeKind::progress, "r" + std::to_string(i)));
  EXPECT_TRUE(chat.posts.empty());
  quick.release_through(quick.journal_mark());  // one call sends all: a nested call per message would overflow the stack
  ASSERT_EQ(chat.posts.size(), 100'001u);
  EXPECT_EQ(quick.pending(), 0u);
  EXPECT_EQ(chat.posts.back().request.message.title, "r99999");
  EXPECT_EQ(chat.posts.back().request.thread, chat.posts.front().id);
}

TEST_F(OutboxTest, KeyedReplyIsPostedOnceThenEditedInPlace) {
  outbox.card("fake", c1, env, msg(NoticeKind::status_card, "card"));
  outbox.keyed_reply("fake", c1, env, "warnings", msg(NoticeKind::warning_events, "1 warning"));
  clock.advance(5s);
  outbox.keyed_reply("fake", c1, env, "warnings", msg(NoticeKind::warning_events, "2 warnings"));
  clock.advance(5s);
  ASSERT_EQ(chat.posts.size(), 3u);
  EXPECT_EQ(chat.posts[1].request.thread, chat.posts[0].id);
  EXPECT_TRUE(chat.posts[1].request.edit.empty());
  EXPECT_EQ(chat.posts[2].request.edit, chat.posts[1].id);
  EXPECT_EQ(chat.posts[2].request.message.title, "2 warnings");
}

TEST_F(OutboxTest, JournalSurvivesACrashAndNothingIsPostedTwice) {
  OutboxSettings st = settings();
  st.coalesce_after = 100;  // keep every reply separate, to follow each one
  Outbox before(st, clock, metrics);
  before.add_adapter(chat);
  before.card("fake", c1, env, msg(NoticeKind::status_card, "card"));
  for (int i = 1; i <= 4; ++i) before.reply("fake", c1, env, msg(NoticeKind::progress, "r" + std::to_string(i)));
  before.post("fake", ChannelId{"oncall"}, msg(NoticeKind::interruption, "summary"));
  // The last snapshot before the crash: everything queued, the card in flight.
  const nlohmann::json journal = nlohmann::json::parse(before.journal().dump());
  clock.advance(2500ms);  // card, summary, r1 and r2 reach the platform, then the crash
  ASSERT_EQ(chat.posts.size(), 4u);
  before.add_adapter(dead);  // the crashed process sends nothing more

  Outbox after(st, clock, metrics);
  after.add_adapter(chat);
  ASSERT_TRUE(after.restore_journal(journal));
  EXPECT_EQ(after.pending(), 6u);
  clock.advance(10s);
  EXPECT_EQ(chat.posts.size(), 4u) << "nothing is sent before start()";
  after.start();
  clock.advance(20s);
  std::vector<std::string> titles;
  for (const auto& p : chat.posts) titles.push_back(p.request.message.title);
  EXPECT_EQ(titles, (std::vector<std::string>{"card", "summary", "r1", "r2", "r3", "r4"}));
  EXPECT_EQ(after.pending(), 0u);
  // card, summary, r1, r2 were found; r3 was looked up and missing, so r4 was not looked up.
  EXPECT_EQ(chat.lookups, 5);
  EXPECT_EQ(chat.posts[4].request.thread, chat.posts[0].id) << "replies still go into the found card's thread";
  EXPECT_EQ(chat.posts[4].request.delivery_id, journal["items"][3]["id"]);
}

TEST_F(OutboxTest, HeldMessagesGoOutOnlyOnceTheirSnapshotIsDurable) {
  Outbox held(settings(), clock, metrics);  // 1 message/s per channel, coalescing after 3 queued
  held.add_adapter(chat);
  held.hold_until_durable(true);
  held.post("fake", c1, msg(NoticeKind::reply, "a"));
  clock.advance(5s);
  EXPECT_TRUE(chat.posts.empty()) << "not in a durable snapshot yet";
  held.release_through(held.journal_mark());
  clock.advance(1ms);
  ASSERT_EQ(chat.posts.size(), 1u);

  // A queue of released replies for one environment; the newest takes merges.
  held.card("fake", c1, env, msg(NoticeKind::status_card, "card"));
  for (int i = 1; i <= 3; ++i) held.reply("fake", c1, env, msg(NoticeKind::progress, "r" + std::to_string(i)));
  held.release_through(held.journal_mark());
  const std::uint64_t before_merge = held.journal_mark();
  held.reply("fake", c1, env, msg(NoticeKind::progress, "r4"));  // merged into the r2+r3 digest
  EXPECT_GT(held.journal_mark(), before_merge) << "the merged item waits for a newer snapshot";
  clock.advance(10s);
  std::vector<std::string> titles;
  for (const auto& p : chat.posts) titles.push_back(p.request.message.title);
  EXPECT_EQ(titles, (std::vector<std::string>{"a", "card", "r1"})) << "the digest with r4 is held back";
  held.release_through(held.journal_mark());
  clock.advance(2s);
  ASSERT_EQ(chat.posts.size(), 4u);
  EXPECT_EQ(chat.posts[3].request.message.title, "3 updates for app-pr-1");
}

TEST_F(OutboxTest, ATimedOutPostIsLookedUpBeforeItIsSentAgain) {
  chat.fail_next(1, make_error(Errc::timeout, "no answer"));
  outbox.post("fake", c1, msg(NoticeKind::reply, "m"));
  clock.advance(5s);
  ASSERT_EQ(chat.posts.size(), 1u);
  EXPECT_EQ(chat.lookups, 1);
  EXPECT_TRUE(chat.posts[0].request.maybe_delivered);

  chat.fail_next(1, Error{Errc::rate_limited, "slow down", 1000ms});
  outbox.post("fake", c1, msg(NoticeKind::reply, "n"));
  clock.advance(5s);
  ASSERT_EQ(chat.posts.size(), 2u);
  EXPECT_EQ(chat.lookups, 1) << "a rate-limited post was refused: no lookup";
}

TEST_F(OutboxTest, WhatArrivesAfterARestartIsNotLostInAMessageThatWasAlreadyThere) {
  // Before the crash: the card and r1 are in a durable snapshot and reach the platform; so does
  // the keyed warnings reply. Then the crash.
  OutboxSettings st = settings();
  st.coalesce_after = 1;  // merge whenever anything is queued
  Outbox before(st, clock, metrics);
  before.add_adapter(chat);
  before.card("fake", c1, env, msg(NoticeKind::status_card, "card v1"));
  before.reply("fake", c1, env, msg(NoticeKind::queued, "r1"));
  before.keyed_reply("fake", c1, env, "warnings", msg(NoticeKind::warning_events, "1 warning"));
  const nlohmann::json journal = nlohmann::json::parse(before.journal().dump());
  clock.advance(5s);
  ASSERT_EQ(chat.posts.size(), 3u);
  before.add_adapter(dead);

  // After the restart the same input produces more: a card update, r2 (mergeable into the
  // restored r1) and a newer warning count, all before the restored messages are looked up.
  Outbox after(st, clock, metrics);
  after.add_adapter(chat);
  ASSERT_TRUE(after.restore_journal(journal));
  after.card("fake", c1, env, msg(NoticeKind::status_card, "card v2"));
  after.reply("fake", c1, env, msg(NoticeKind::progress, "r2"));
  after.keyed_reply("fake", c1, env, "warnings", msg(NoticeKind::warning_events, "2 warnings"));
  after.start();
  clock.advance(30s);
  EXPECT_EQ(after.pending(), 0u);
  // What a reader of the channel sees: each message's newest text, by message id.
  std::map<std::string, std::string> shown;
  std::vector<std::string> order;
  for (const auto& p : chat.posts) {
    if (!shown.contains(p.id)) order.push_back(p.id);
    const Message& m = p.request.message;
    shown[p.id] = m.title + (m.text.empty() ? "" : ": " + m.text);
  }
  std::vector<std::string> seen;
  for (const auto& id : order) seen.push_back(shown[id]);
  // r1 was found as it was, so r2 could not be merged into it: r2 is a message of its own.
  EXPECT_EQ(seen, (std::vector<std::string>{"card v2", "r1", "2 warnings", "r2"}))
      << "nothing posted twice, nothing that came after the restart lost";
}

TEST_F(OutboxTest, JournalTextFollowsEveryChangeOfAQueuedMessage) {
  // journal_items() keeps each message's JSON until it changes; it must always match journal().
  outbox.hold_until_durable(true);  // nothing leaves the queue
  auto same = [&](const char* when) {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& [id, text] : outbox.journal_items()) {
      items.push_back(nlohmann::json::parse(text));
      EXPECT_EQ(items.back().at("id"), id) << when;
    }
    EXPECT_EQ(items, outbox.journal().at("items")) << when;
  };
  outbox.card("fake", c1, env, msg(NoticeKind::status_card, "card v1"));
  outbox.reply("fake", c1, env, msg(NoticeKind::progress, "r1"));
  outbox.keyed_reply("fake", c1, env, "warnings", msg(NoticeKind::warning_events, "1 warning"));
  same("queued");
  outbox.reply("fake", c1, env, msg(NoticeKind::progress, "r2"));  // merged into r1
  outbox.keyed_reply("fake", c1, env, "warnings", msg(NoticeKind::warning_events, "2 warnings"));
  outbox.card("fake", c1, env, msg(NoticeKind::status_card, "card v2"));
  same("merged and replaced");
  outbox.card("fake", c1, env);  // the queued card becomes lazy
  same("lazy card");
  outbox.release_through(outbox.journal_mark());
  clock.advance(30s);
  EXPECT_EQ(outbox.pending(), 0u);
  same("all sent");
  EXPECT_EQ(outbox.journal_keyed().size(), 1u) << "the keyed reply's id is kept";
}

TEST_F(OutboxTest, UnusableJournalIsAnErrorAndQueuesNothing) {
  auto bad = outbox.restore_journal(nlohmann::json{{"channels", {{{"platform", "fake"}, {"channel", "C1"},
                                                                   {"items", {{{"id", "x"}, {"kind", "meteor"}}}}}}},
                                                   {"keyed", nlohmann::json::array()}});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("unknown item kind 'meteor'"), std::string::npos);
  EXPECT_FALSE(outbox.restore_journal(nlohmann::json{{"channels", 3}}));
  EXPECT_EQ(outbox.pending(), 0u);
  EXPECT_TRUE(outbox.restore_journal(nlohmann::json())) << "no journal (an older state file) is fine";
}

// ---- the answer lane: command answers that do not ride in-band ----

InboundMessage asker(std::string text, std::string reply_to = R"({"via":"ephemeral","user":"alice"})") {
  InboundMessage m;
  m.platform = "fake";
  m.channel = ChannelId{"C1"};
  m.user = UserId{"alice"};
  m.text = std::move(text);
  m.reply_to = std::move(reply_to);
  return m;
}

TEST_F(OutboxTest, AnAnswerTheAdapterTakesInBandIsNotQueued) {
  outbox.answer(chat, asker("status"), msg(NoticeKind::reply, "in the ack"));
  EXPECT_EQ(outbox.pending(), 0u);
  ASSERT_EQ(chat.replies.size(), 1u);
  EXPECT_EQ(chat.replies[0].title, "in the ack");
  clock.advance(5s);
  EXPECT_TRUE(chat.posts.empty());
}

TEST_F(OutboxTest, AnAnswerGoesAheadOfABacklogOfAnnouncementsWithItsReplyAddress) {
  chat.answers_in_band = false;
  for (int i = 0; i < 20; ++i) outbox.post("fake", c1, msg(NoticeKind::progress, "routine " + std::to_string(i)));
  clock.advance(2500ms);  // three went out at 1 msg/s; seventeen wait
  ASSERT_EQ(chat.posts.size(), 3u);
  outbox.answer(chat, asker("list"), msg(NoticeKind::reply, "your answer"));
  clock.run_due();
  ASSERT_EQ(chat.posts.size(), 4u) << "the answer does not wait for the channel's next token";
  EXPECT_EQ(chat.posts[3].request.message.title, "your answer");
  EXPECT_EQ(chat.posts[3].request.reply_to, R"({"via":"ephemeral","user":"alice"})");
  EXPECT_TRUE(chat.posts[3].request.thread.empty());
  clock.advance(30s);
  EXPECT_EQ(chat.posts.size(), 21u) << "the announcements still all go out";
}

TEST_F(OutboxTest, AnswersKeepTheirOrderAndAreRetriedOnRateLimitsAndOutages) {
  chat.answers_in_band = false;
  Error limited = make_error(Errc::rate_limited, "429");
  limited.retry_after = 1s;
  chat.fail_next(1, limited);
  chat.fail_next(2, make_error(Errc::unavailable, "HTTP 503"));
  for (int i = 0; i < 5; ++i) outbox.answer(chat, asker("q" + std::to_string(i)), msg(NoticeKind::reply, "a" + std::to_string(i)));
  clock.advance(30s);
  ASSERT_EQ(chat.posts.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(chat.posts[i].request.message.title, "a" + std::to_string(i));
  EXPECT_EQ(chat.attempts, 8);
  EXPECT_EQ(metrics.value("runbot_messages_failed_total", {{"platform", "fake"}, {"reason", "unavailable"}}), 0);
}

TEST_F(OutboxTest, AnAnswerThatStillFailsAfterItsRetriesIsCountedWithItsReason) {
  chat.answers_in_band = false;
  OutboxSettings st = settings();
  st.answer_max_attempts = 3;
  outbox.set_platform_settings("fake", st);
  chat.fail_next(3, make_error(Errc::unavailable, "HTTP 502"));
  outbox.answer(chat, asker("up"), msg(NoticeKind::reply, "never arrives"));
  outbox.answer(chat, asker("list"), msg(NoticeKind::reply, "arrives"));
  clock.advance(60s);
  ASSERT_EQ(chat.posts.size(), 1u);
  EXPECT_EQ(chat.posts[0].request.message.title, "arrives");
  EXPECT_EQ(metrics.value("runbot_messages_failed_total", {{"platform", "fake"}, {"reason", "unavailable"}}), 1);
  chat.fail_next(1, make_error(Errc::invalid_argument, "bad request"));
  outbox.answer(chat, asker("x"), msg(NoticeKind::reply, "refused"));
  clock.advance(5s);
  EXPECT_EQ(metrics.value("runbot_messages_failed_total", {{"platform", "fake"}, {"reason", "invalid_argument"}}), 1);
}

TEST_F(OutboxTest, AnswersAreNotHeldForASnapshotAndSurviveARestart) {
  chat.answers_in_band = false;
  outbox.hold_until_durable(true);
  outbox.post("fake", c1, msg(NoticeKind::reply, "held announcement"));
  outbox.answer(chat, asker("status"), msg(NoticeKind::reply, "answer now"));
  clock.advance(1s);
  ASSERT_EQ(chat.posts.size(), 1u) << "the answer goes at once; the announcement waits for its snapshot";
  EXPECT_EQ(chat.posts[0].request.message.title, "answer now");

  // A queued answer is in the journal with its reply address, and a restart sends it.
  chat.fail_next(1, make_error(Errc::unavailable, "HTTP 503"));
  outbox.answer(chat, asker("list", R"({"via":"post","thread":"T1"})"), msg(NoticeKind::reply, "answer later"));
  const auto journal = outbox.journal();
  Outbox after(settings(), clock, metrics);
  FakeChatAdapter fresh{clock};
  fresh.answers_in_band = false;
  after.add_adapter(fresh);
  ASSERT_TRUE(after.restore_journal(journal));
  after.start();
  clock.advance(10s);
  std::vector<std::string> sent;
  for (const auto& p : fresh.posts) sent.push_back(p.request.message.title + "|" + p.request.reply_to);
  EXPECT_NE(std::find(sent.begin(), sent.end(), R"(answer later|{"via":"post","thread":"T1"})"), sent.end())
      << ::testing::PrintToString(sent);
}

}  // namespace
}  // namespace runbot::bot
