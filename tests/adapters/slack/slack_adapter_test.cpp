// SlackAdapter over FakeSlack on loopback (HTTPS + WSS with a CA made in the test). A small
// handler stands in for the bot: it records what arrives and answers like bot::Bot does, with
// Outbox::answer() inside the handler. The last test runs the real bot::Bot.
#include <set>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "adapters/slack/slack_adapter.h"
#include "bot/command.h"
#include "adapters/common/asio_clock.h"
#include "bot/outbox.h"
#include "tests/adapters/common/run_until.h"
#include "tests/support/fake_slack.h"

namespace runbot::slack {
namespace {

using namespace std::chrono_literals;
using common::testing::run_until;
using testing::FakeSlack;

class SlackAdapterTest : public ::testing::Test {
 protected:
  SlackAdapterTest() { fake.start(); }

  SlackSettings settings() {
    SlackSettings s;
    s.app_token = "xapp-1-test";
    s.bot_token = "xoxb-test";
    s.api_base_url = fake.api_base_url();
    s.ca_file = ca.ca_file;
    s.connections = 2;
    s.backoff_initial = 20ms;
    s.backoff_max = 200ms;
    s.ping_interval = 1000ms;
    s.idle_timeout = 5000ms;
    s.connect_timeout = 3000ms;
    s.request_timeout = 3000ms;
    return s;
  }

  void start(SlackSettings s) {
    auto a = SlackAdapter::create(io, std::move(s));
    ASSERT_TRUE(a) << a.error().message;
    adapter = std::move(*a);
    outbox.add_adapter(*adapter);
    adapter->start_checked(
        [this](const bot::InboundMessage& m) {
          inbound.push_back(m);
          bot::Message answer;
          answer.title = "Answer to " + m.text;
          outbox.answer(*adapter, m, answer);
        },
        [this](bot::Status st) { startup = std::move(st); });
  }

  // Starts with the default settings and waits until both sockets said hello.
  void start_connected() {
    start(settings());
    ASSERT_TRUE(until([&] { return startup.has_value(); })) << "no startup outcome";
    ASSERT_TRUE(*startup) << startup->error().message;
    ASSERT_TRUE(until([&] { return fake.open_sockets().size() == 2 && adapter->stats().open_sockets == 2; }));
    EXPECT_TRUE(adapter->healthy()) << adapter->problem();
  }

  template <class Pred>
  bool until(Pred p, std::chrono::milliseconds limit = 5000ms) {
    return run_until(io, p, limit);
  }

  // Runs the loop for `d` (to show that something does NOT happen).
  void idle_for(std::chrono::milliseconds d) { (void)run_until(io, [] { return false; }, d); }

  bot::Result<bot::PostResult> post(bot::PostRequest req) {
    std::optional<bot::Result<bot::PostResult>> out;
    adapter->post(std::move(req), [&](bot::Result<bot::PostResult> r) { out = std::move(r); });
    EXPECT_FALSE(out.has_value()) << "post() completed inline";
    EXPECT_TRUE(until([&] { return out.has_value(); }));
    return out ? *out : bot::Result<bot::PostResult>(bot::make_error(bot::Errc::timeout, "no completion"));
  }

  static bot::PostRequest request(std::string thread = "", std::string edit = "") {
    bot::PostRequest r;
    r.channel = bot::ChannelId{"C0003"};
    r.thread = std::move(thread);
    r.edit = std::move(edit);
    r.env = bot::EnvId{"front-end-pr-1"};
    r.message.kind = bot::NoticeKind::status_card;
    r.message.title = "front-end-pr-1 is ready";
    return r;
  }

  void TearDown() override { EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems); }

  testing::TestCa ca = testing::TestCa::make();
  boost::asio::io_context io;
  FakeSlack fake{io, ca};
  std::unique_ptr<SlackAdapter> adapter;
  // Answers go the way bot::Bot sends them: in-band, or through the outbox's answer lane.
  common::AsioClock clock{io};
  bot::Metrics metrics;
  bot::Outbox outbox{bot::OutboxSettings{}, clock, metrics};
  std::optional<bot::Status> startup;
  std::vector<bot::InboundMessage> inbound;
};

TEST_F(SlackAdapterTest, SlashCommandIsAckedWithItsAnswerAndReachesTheHandler) {
  start_connected();
  const std::string id = fake.send_slash(-1, "up front-end pr-123");
  ASSERT_TRUE(until([&] { return fake.ack_for(id) != nullptr; }));
  const auto* ack = fake.ack_for(id);
  ASSERT_TRUE(ack->has_payload) << "the immediate answer rides in the ack";
  EXPECT_EQ(ack->payload["response_type"], "ephemeral");
  EXPECT_NE(ack->payload["text"].get<std::string>().find("Answer to up front-end pr-123"), std::string::npos);
  EXPECT_LT(ack->latency, 1s) << "well inside Slack's 3 s";
  ASSERT_EQ(inbound.size(), 1u);
  EXPECT_EQ(inbound[0].platform, "slack");
  EXPECT_EQ(inbound[0].text, "up front-end pr-123");
  EXPECT_EQ(inbound[0].user.str(), "U0002");
  EXPECT_EQ(inbound[0].user_name, "alice");
  EXPECT_EQ(inbound[0].channel.str(), "C0003");
  EXPECT_EQ(fake.acks_for(id), 1);
  EXPECT_TRUE(fake.calls_to("chat.postEphemeral").empty()) << "no second answer";
}

TEST_F(SlackAdapterTest, MentionAndDirectMessageReachTheHandlerButTheBotsOwnMessagesDoNot) {
  start_connected();
  const std::string m = fake.send_mention(-1, "status");
  const std::string d = fake.send_dm(-1, "list --mine");
  const std::string own = fake.send_dm(-1, "I am the bot", "UBOT");
  nlohmann::json edited{{"type", "event_callback"}, {"event_id", "EvEdit"},
                        {"event", {{"type", "message"}, {"channel_type", "im"}, {"subtype", "message_changed"},
                                   {"user", "U0002"}, {"channel", "D0004"}, {"text", "x"}}}};
  const std::string sub = fake.send_envelope(-1, "events_api", edited);
  ASSERT_TRUE(until([&] { return fake.acks.size() == 4 && fake.calls_to("chat.postMessage").size() == 1 &&
                                 fake.calls_to("chat.postEphemeral").size() == 1; }));
  for (const auto& id : {m, d, own, sub}) EXPECT_EQ(fake.acks_for(id), 1) << id;
  ASSERT_EQ(inbound.size(), 2u);
  EXPECT_EQ(inbound[0].text, "status") << "the mention is stripped";
  EXPECT_EQ(inbound[1].text, "list --mine");
  EXPECT_EQ(inbound[1].channel.str(), "D0004");
  // Mentions in a channel are answered to the requester only; a DM is answered in the DM.
  auto eph = fake.calls_to("chat.postEphemeral");
  EXPECT_EQ(eph[0].body["channel"], "C0003");
  EXPECT_EQ(eph[0].body["user"], "U0002");
  EXPECT_EQ(fake.calls_to("chat.postMessage")[0].body["channel"], "D0004");
}

TEST_F(SlackAdapterTest, ButtonClickBecomesTheCommandWithIsButtonAndAnswersThroughResponseUrl) {
  start_connected();
  const std::string id = fake.send_block_action(-1, "extend", "front-end-pr-123 4h");
  const std::string link = fake.send_block_action(-1, "open", "https://front-end-pr-123.example");
  ASSERT_TRUE(until([&] { return fake.acks.size() == 2 && fake.responses.size() == 1; }));
  EXPECT_EQ(fake.acks_for(id), 1);
  EXPECT_EQ(fake.acks_for(link), 1);
  ASSERT_EQ(inbound.size(), 1u) << "a link button opens the page in Slack and runs nothing";
  EXPECT_TRUE(inbound[0].is_button);
  EXPECT_EQ(inbound[0].text, *bot::command_for_button("extend", "front-end-pr-123 4h"));
  EXPECT_EQ(fake.responses[0].body["response_type"], "ephemeral");
  EXPECT_EQ(fake.responses[0].body["replace_original"], false);
}

TEST_F(SlackAdapterTest, RedeliveriesWithTheSameEnvelopeOrEventAreAckedAndHandledOnce) {
  start_connected();
  FakeSlack::EnvelopeOptions first;
  first.envelope_id = "E-same";
  fake.send_mention(-1, "status", "U0002", "C0003", "Ev-1", first);
  fake.send_mention(-1, "status", "U0002", "C0003", "Ev-1", first);  // same envelope again
  FakeSlack::EnvelopeOptions retry;
  retry.retry_attempt = 1;
  retry.retry_reason = "timeout";
  const std::string r = fake.send_mention(-1, "status", "U0002", "C0003", "Ev-1", retry);  // new envelope, same event
  FakeSlack::EnvelopeOptions slash;
  slash.envelope_id = "E-slash";
  fake.send_slash(-1, "help", "U0002", "C0003", "alice", slash);
  fake.send_slash(-1, "help", "U0002", "C0003", "alice", slash);
  ASSERT_TRUE(until([&] { return fake.acks.size() == 5; }));
  EXPECT_EQ(fake.acks_for("E-same"), 2) << "every delivery is acked";
  EXPECT_EQ(fake.acks_for(r), 1);
  EXPECT_EQ(fake.acks_for("E-slash"), 2);
  EXPECT_EQ(inbound.size(), 2u) << "one mention and one slash command handled";
  EXPECT_EQ(adapter->stats().duplicates, 3u);
}

TEST_F(SlackAdapterTest, RefreshAndAbruptCloseInABurstLoseNothingAndHandleNothingTwice) {
  auto s = settings();
  s.retire_grace = 300ms;
  start(s);
  ASSERT_TRUE(until([&] { return fake.open_sockets().size() == 2 && adapter->stats().open_sockets == 2; }));
  const auto sockets = fake.open_sockets();
  const int a = sockets[0];
  const int b = sockets[1];
  struct Delivery {
    std::string envelope;
    int n;
  };
  std::vector<Delivery> sent;
  int n = 0;
  auto text_of = [](int i) { return "describe env-" + std::to_string(i); };
  auto burst = [&](int socket, int count, bool slash) {
    for (int i = 0; i < count; ++i, ++n) {
      const std::string id = slash ? fake.send_slash(socket, text_of(n))
                                   : fake.send_mention(socket, text_of(n), "U0002", "C0003", "Ev-" + std::to_string(n));
      sent.push_back({id, n});
    }
  };
  burst(a, 20, false);
  burst(b, 20, false);
  fake.send_disconnect(a, "refresh_requested");  // mid-burst: a replacement opens first
  burst(a, 20, true);                             // the old socket keeps delivering (slash commands are never retried)
  burst(b, 10, false);
  fake.drop(b);                                   // abrupt: whatever was not written is lost in flight
  auto is_open = [&](int id) {
    const auto open = fake.open_sockets();
    return std::find(open.begin(), open.end(), id) != open.end();
  };
  ASSERT_TRUE(until([&] {
    return adapter->stats().refreshes == 1 && !is_open(a) && !is_open(b) && fake.open_sockets().size() == 2 &&
           adapter->stats().open_sockets == 2;
  })) << "the refreshed socket retired after its replacement, the dropped one was replaced";
  // Slack redelivers events that were not acked: new envelope ids, same event ids, retry_attempt 1.
  std::set<std::string> acked;
  for (const auto& ack : fake.acks) acked.insert(ack.envelope_id);
  int redelivered = 0;
  for (const auto& d : sent) {
    if (acked.count(d.envelope)) continue;
    ASSERT_FALSE(d.n >= 40 && d.n < 60) << "slash command " << d.n << " on the retiring socket was not acked";
    FakeSlack::EnvelopeOptions retry;
    retry.retry_attempt = 1;
    retry.retry_reason = "timeout";
    fake.send_mention(-1, text_of(d.n), "U0002", "C0003", "Ev-" + std::to_string(d.n), retry);
    ++redelivered;
  }
  ASSERT_TRUE(until([&] { return inbound.size() >= static_cast<std::size_t>(n); }))
      << "handled " << inbound.size() << " of " << n << " (redelivered " << redelivered << ")";
  idle_for(100ms);
  std::multiset<std::string> texts;
  for (const auto& m : inbound) texts.insert(m.text);
  for (int i = 0; i < n; ++i) EXPECT_EQ(texts.count(text_of(i)), 1u) << "message " << i;
  EXPECT_EQ(inbound.size(), static_cast<std::size_t>(n)) << "nothing handled twice";
}

TEST_F(SlackAdapterTest, CardThreadAndEditMapToPostMessageThreadTsAndUpdate) {
  start_connected();
  auto card = post(request());
  ASSERT_TRUE(card) << card.error().message;
  auto calls = fake.calls_to("chat.postMessage");
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_FALSE(calls[0].body.contains("thread_ts")) << "an empty thread starts a new one";
  EXPECT_EQ(card->message_id, calls[0].ts) << "the card's ts is the message id and thread root";
  auto reply = post(request(card->message_id));
  ASSERT_TRUE(reply);
  EXPECT_EQ(fake.calls_to("chat.postMessage")[1].body["thread_ts"], card->message_id);
  auto edit = post(request("", card->message_id));
  ASSERT_TRUE(edit);
  auto updates = fake.calls_to("chat.update");
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0].body["ts"], card->message_id);
  EXPECT_EQ(edit->message_id, card->message_id);
  EXPECT_TRUE(adapter->healthy());
}

TEST_F(SlackAdapterTest, AResentMessageThatIsAlreadyThereIsNotPostedAgain) {
  start_connected();
  auto card_req = request();
  card_req.delivery_id = "d-card";
  auto card = post(card_req);
  ASSERT_TRUE(card) << card.error().message;
  auto posted = fake.calls_to("chat.postMessage");
  ASSERT_EQ(posted.size(), 1u);
  EXPECT_EQ(posted[0].body["metadata"]["event_type"], "runbot_delivery");
  EXPECT_EQ(posted[0].body["metadata"]["event_payload"]["delivery_id"], "d-card");
  auto reply_req = request(card->message_id);
  reply_req.delivery_id = "d-reply";
  auto reply = post(reply_req);
  ASSERT_TRUE(reply);

  // After a restart both are sent again, flagged: they are found, nothing new is posted.
  card_req.maybe_delivered = true;
  auto card_again = post(card_req);
  ASSERT_TRUE(card_again) << card_again.error().message;
  EXPECT_TRUE(card_again->already_there);
  EXPECT_EQ(card_again->message_id, card->message_id);
  reply_req.maybe_delivered = true;
  auto reply_again = post(reply_req);
  ASSERT_TRUE(reply_again);
  EXPECT_TRUE(reply_again->already_there);
  EXPECT_EQ(reply_again->message_id, reply->message_id);
  EXPECT_EQ(fake.calls_to("chat.postMessage").size(), 2u);
  ASSERT_EQ(fake.calls_to("conversations.history").size(), 1u) << "a thread root is looked for in the channel";
  ASSERT_EQ(fake.calls_to("conversations.replies").size(), 1u) << "a reply is looked for in its thread";
  EXPECT_EQ(fake.calls_to("conversations.replies")[0].form["ts"], card->message_id);
  EXPECT_EQ(fake.calls_to("conversations.replies")[0].form["include_all_metadata"], "true");

  // One that never made it is posted; so is one whose lookup fails (at-least-once fallback).
  auto missing = request(card->message_id);
  missing.delivery_id = "d-missing";
  missing.maybe_delivered = true;
  auto r = post(missing);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->already_there);
  fake.fail_next("conversations.replies", "missing_scope");
  missing.delivery_id = "d-unknown";
  auto r2 = post(missing);
  ASSERT_TRUE(r2);
  EXPECT_FALSE(r2->already_there);
  EXPECT_EQ(fake.calls_to("chat.postMessage").size(), 4u);
  EXPECT_EQ(adapter->stats().already_posted, 2u);
}

TEST_F(SlackAdapterTest, AResentMessageIsFoundBeyondTheFirstPageOfALongThreadOrABusyChannel) {
  start_connected();
  auto card_req = request();
  card_req.delivery_id = "d-card";
  auto card = post(card_req);
  ASSERT_TRUE(card) << card.error().message;
  // Slack returns a thread root first and 1000 messages a page at most: a reply posted after
  // 1,200 others is on the second page. Channel history is newest first, 200 a page as asked:
  // a root posted before 300 others is on the second page too.
  auto filler = [&](const std::string& thread, int n) {
    for (int i = 0; i < n; ++i) {
      fake.posted.push_back({"C0003", "1714557700." + std::to_string(100000 + fake.posted.size()), thread, "filler", {}});
    }
  };
  filler(card->message_id, 1200);
  auto reply_req = request(card->message_id);
  reply_req.delivery_id = "d-late-reply";
  auto reply = post(reply_req);
  ASSERT_TRUE(reply);
  filler("", 300);

  reply_req.maybe_delivered = true;
  auto reply_again = post(reply_req);
  ASSERT_TRUE(reply_again) << reply_again.error().message;
  EXPECT_TRUE(reply_again->already_there) << "the reply is on the thread's second page";
  EXPECT_EQ(reply_again->message_id, reply->message_id);
  const auto replies = fake.calls_to("conversations.replies");
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[1].form.at("cursor"), "page:1000");

  card_req.maybe_delivered = true;
  auto card_again = post(card_req);
  ASSERT_TRUE(card_again) << card_again.error().message;
  EXPECT_TRUE(card_again->already_there) << "the root is on the channel's second page";
  EXPECT_EQ(card_again->message_id, card->message_id);
  EXPECT_EQ(fake.calls_to("conversations.history").size(), 2u);
  EXPECT_EQ(fake.calls_to("chat.postMessage").size(), 2u) << "nothing posted twice";
}

TEST_F(SlackAdapterTest, RateLimitedPostIsRetryableWithRetryAfter) {
  start_connected();
  fake.rate_limit_next("chat.postMessage", 7);
  auto r = post(request());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, bot::Errc::rate_limited);
  EXPECT_EQ(r.error().retry_after, 7s);
  EXPECT_TRUE(r.error().is_retryable());
  auto again = post(request());
  EXPECT_TRUE(again) << "the next attempt goes through";
}

TEST_F(SlackAdapterTest, NotInChannelIsPermanentAndSaysWhatToDo) {
  start_connected();
  fake.fail_next("chat.postMessage", "not_in_channel");
  auto r = post(request());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, bot::Errc::invalid_argument);
  EXPECT_FALSE(r.error().is_retryable());
  EXPECT_NE(r.error().message.find("not_in_channel"), std::string::npos);
  EXPECT_NE(r.error().message.find("invite"), std::string::npos) << r.error().message;
  fake.fail_next("chat.update", "token_revoked");
  auto u = post(request("", "1714557600.000001"));
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().code, bot::Errc::unauthorized);
  EXPECT_FALSE(adapter->healthy()) << "a revoked token shows on /readyz";
  EXPECT_NE(adapter->problem().find("token_revoked"), std::string::npos);
}

TEST_F(SlackAdapterTest, MalformedUnknownAndOversizedFramesAreLoggedAndSurvived) {
  auto s = settings();
  s.max_message_bytes = 4096;
  start(s);
  ASSERT_TRUE(until([&] { return fake.open_sockets().size() == 2 && adapter->stats().open_sockets == 2; }));
  const int first = fake.open_sockets()[0];
  fake.send_raw(first, "this is not json");
  fake.send_raw(first, "[1,2,3]");
  const std::string odd = fake.send_envelope(first, "brand_new_type", nlohmann::json{{"x", 1}});
  ASSERT_TRUE(until([&] { return fake.acks_for(odd) == 1; })) << "unknown envelopes are acked so Slack stops resending";
  EXPECT_EQ(adapter->stats().malformed, 2u);
  EXPECT_EQ(adapter->stats().unknown, 1u);
  const int opened = fake.connections_opened();
  fake.send_raw(first, std::string(10000, 'x'));  // over max_message_bytes: skipped, the socket stays
  const std::string id = fake.send_slash(first, "help");
  ASSERT_TRUE(until([&] { return fake.ack_for(id) != nullptr; }));
  EXPECT_EQ(fake.ack_for(id)->socket, first) << "answered on the socket that got the oversized frame";
  EXPECT_EQ(adapter->stats().oversized, 1u);
  EXPECT_EQ(fake.connections_opened(), opened) << "no socket was replaced";
  EXPECT_EQ(inbound.size(), 1u);
  EXPECT_TRUE(adapter->healthy());
}

TEST_F(SlackAdapterTest, WrongAppTokenIsAClearStartupErrorAndIsNotRetriedInALoop) {
  auto s = settings();
  s.app_token = "xapp-1-wrong";
  start(s);
  ASSERT_TRUE(until([&] { return startup.has_value(); }));
  ASSERT_FALSE(*startup);
  EXPECT_EQ(startup->error().code, bot::Errc::unauthorized);
  EXPECT_FALSE(startup->error().is_retryable());
  EXPECT_NE(startup->error().message.find("app token"), std::string::npos) << startup->error().message;
  EXPECT_NE(startup->error().message.find("invalid_auth"), std::string::npos) << startup->error().message;
  EXPECT_EQ(startup->error().message.find("xapp-1-wrong"), std::string::npos) << "the token is not repeated";
  idle_for(300ms);  // 15 backoff periods
  EXPECT_LE(fake.calls_to("apps.connections.open").size(), 2u) << "no retry loop";
  EXPECT_FALSE(adapter->healthy());
  EXPECT_NE(adapter->problem().find("app token"), std::string::npos);
}

TEST_F(SlackAdapterTest, WrongBotTokenIsAClearStartupError) {
  auto s = settings();
  s.bot_token = "xoxb-wrong";
  start(s);
  ASSERT_TRUE(until([&] { return startup.has_value(); }));
  ASSERT_FALSE(*startup);
  EXPECT_NE(startup->error().message.find("bot token"), std::string::npos) << startup->error().message;
  EXPECT_FALSE(adapter->healthy());
}

TEST_F(SlackAdapterTest, BadSettingsAreRefusedByCreate) {
  auto s = settings();
  s.app_token = "xoxb-test";  // the bot token where the app token belongs
  s.connections = 11;
  s.ca_file = "/nonexistent/ca.pem";
  auto a = SlackAdapter::create(io, s);
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find("xapp-"), std::string::npos);
  EXPECT_NE(a.error().message.find("connections"), std::string::npos);
  EXPECT_NE(a.error().message.find("/nonexistent/ca.pem"), std::string::npos) << a.error().message;
}

TEST_F(SlackAdapterTest, UntrustedServerCertificateIsRefused) {
  auto s = settings();
  s.ca_file = ca.other_ca_file;
  start(s);
  ASSERT_TRUE(until([&] { return startup.has_value(); }));
  ASSERT_FALSE(*startup);
  EXPECT_TRUE(startup->error().is_retryable());
  EXPECT_NE(startup->error().message.find("TLS"), std::string::npos) << startup->error().message;
  EXPECT_TRUE(fake.calls.empty()) << "nothing was sent to an unverified server";
}

TEST_F(SlackAdapterTest, LinkDisabledStopsReconnectingAndTurnsUnhealthy) {
  start_connected();
  const int opened = fake.connections_opened();
  fake.send_disconnect(fake.open_sockets()[0], "link_disabled");
  ASSERT_TRUE(until([&] { return !adapter->healthy() && fake.open_sockets().empty(); }));
  EXPECT_NE(adapter->problem().find("link_disabled"), std::string::npos) << adapter->problem();
  idle_for(300ms);
  EXPECT_EQ(fake.connections_opened(), opened) << "no reconnect after link_disabled";
}

TEST_F(SlackAdapterTest, SilentSocketIsReplacedAndPingsKeepAQuietOneAlive) {
  auto s = settings();
  s.connections = 1;
  s.ping_interval = 50ms;
  s.idle_timeout = 400ms;
  start(s);
  ASSERT_TRUE(until([&] { return adapter->stats().open_sockets == 1; }));
  idle_for(1000ms);
  EXPECT_GE(fake.pings_from_client, 5);
  EXPECT_EQ(fake.connections_opened(), 1) << "pongs count as traffic: no reconnect";
  adapter.reset();
  startup.reset();
  s.ping_interval = 10000ms;  // no pings: nothing arrives, the watchdog must act
  s.idle_timeout = 300ms;
  start(s);
  ASSERT_TRUE(until([&] { return fake.connections_opened() >= 4; }, 5000ms)) << "idle socket replaced";
}

TEST_F(SlackAdapterTest, StopClosesSocketsCleanlyAndDoesNotReconnect) {
  start_connected();
  const int opened = fake.connections_opened();
  adapter->stop();
  ASSERT_TRUE(until([&] { return fake.open_sockets().empty(); }));
  idle_for(200ms);
  EXPECT_EQ(fake.connections_opened(), opened);
  EXPECT_FALSE(adapter->healthy());
}

}  // namespace
}  // namespace runbot::slack
