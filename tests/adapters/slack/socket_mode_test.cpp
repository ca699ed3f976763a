// Socket Mode frames and Web API answers, as pure functions (chat-protocols.md §1.3–1.9).
#include <gtest/gtest.h>

#include "adapters/common/url.h"
#include "adapters/slack/slack_web_api.h"
#include "adapters/slack/socket_mode.h"
#include "bot/command.h"

namespace runbot::slack {
namespace {

using nlohmann::json;

TEST(SocketModeFrames, HelloDisconnectAndEnvelopesAreRecognised) {
  EXPECT_EQ(parse_frame(R"({"type":"hello","num_connections":2})").kind, FrameKind::hello);
  auto d = parse_frame(R"({"type":"disconnect","reason":"refresh_requested","debug_info":{"host":"x"}})");
  EXPECT_EQ(d.kind, FrameKind::disconnect);
  EXPECT_EQ(d.reason, "refresh_requested");
  auto e = parse_frame(R"({"envelope_id":"E1","type":"events_api","accepts_response_payload":false,
      "retry_attempt":2,"retry_reason":"timeout","payload":{"type":"event_callback"}})");
  EXPECT_EQ(e.kind, FrameKind::envelope);
  EXPECT_EQ(e.envelope_id, "E1");
  EXPECT_EQ(e.retry_attempt, 2);
}

TEST(SocketModeFrames, GarbageIsMalformedAndNewTypesAreUnknown) {
  EXPECT_EQ(parse_frame("not json").kind, FrameKind::malformed);
  EXPECT_EQ(parse_frame("[1,2]").kind, FrameKind::malformed);
  EXPECT_EQ(parse_frame(R"({"type":"slash_commands","payload":{}})").kind, FrameKind::malformed) << "no envelope_id";
  EXPECT_EQ(parse_frame(R"({"type":"slash_commands","envelope_id":"E","payload":3})").kind, FrameKind::malformed);
  auto u = parse_frame(R"({"type":"brand_new","envelope_id":"E9"})");
  EXPECT_EQ(u.kind, FrameKind::unknown);
  EXPECT_EQ(u.envelope_id, "E9");
}

TEST(SocketModeInbound, SlashCommandKeepsTextUserChannelAndResponseUrl) {
  auto f = parse_frame(R"({"envelope_id":"E","type":"slash_commands","accepts_response_payload":true,
      "payload":{"command":"/ephemeral","text":"up front-end pr-123","user_id":"U2","user_name":"alice",
                 "channel_id":"C3","response_url":"https://hooks.example/r"}})");
  auto in = to_inbound(f, "UBOT");
  ASSERT_EQ(in.kind, Inbound::Kind::slash);
  EXPECT_EQ(in.message.text, "up front-end pr-123");
  EXPECT_EQ(in.message.user.str(), "U2");
  EXPECT_EQ(in.message.user_name, "alice");
  EXPECT_EQ(in.message.channel.str(), "C3");
  EXPECT_EQ(in.response_url, "https://hooks.example/r");
  EXPECT_FALSE(in.message.is_button);
}

json event_frame(json event) {
  return json{{"envelope_id", "E"}, {"type", "events_api"},
              {"payload", {{"type", "event_callback"}, {"event_id", "Ev1"}, {"event", std::move(event)}}}};
}

TEST(SocketModeInbound, MentionLosesTheMentionAndKeepsTheThread) {
  auto in = to_inbound(parse_frame(event_frame({{"type", "app_mention"}, {"user", "U2"}, {"channel", "C3"},
                                                {"text", "<@UBOT> extend a-pr-1 &gt; 2h &amp; more"},
                                                {"thread_ts", "1.2"}}).dump()),
                       "UBOT");
  ASSERT_EQ(in.kind, Inbound::Kind::event);
  EXPECT_EQ(in.message.text, "extend a-pr-1 > 2h & more");
  EXPECT_EQ(in.message.thread, "1.2");
  EXPECT_EQ(in.event_id, "Ev1");
}

TEST(SocketModeInbound, OwnBotSubtypeAndChannelChatterAreIgnored) {
  auto own = to_inbound(parse_frame(event_frame({{"type", "message"}, {"channel_type", "im"}, {"user", "UBOT"},
                                                 {"channel", "D1"}, {"text", "hi"}}).dump()), "UBOT");
  EXPECT_EQ(own.kind, Inbound::Kind::ignore);
  auto bot = to_inbound(parse_frame(event_frame({{"type", "message"}, {"channel_type", "im"}, {"user", "U9"},
                                                 {"bot_id", "B9"}, {"channel", "D1"}, {"text", "hi"}}).dump()), "UBOT");
  EXPECT_EQ(bot.kind, Inbound::Kind::ignore);
  auto edit = to_inbound(parse_frame(event_frame({{"type", "message"}, {"channel_type", "im"}, {"user", "U2"},
                                                  {"subtype", "message_changed"}, {"channel", "D1"}}).dump()), "UBOT");
  EXPECT_EQ(edit.kind, Inbound::Kind::ignore);
  auto chatter = to_inbound(parse_frame(event_frame({{"type", "message"}, {"channel_type", "channel"}, {"user", "U2"},
                                                     {"channel", "C1"}, {"text", "lunch?"}}).dump()), "UBOT");
  EXPECT_EQ(chatter.kind, Inbound::Kind::ignore);
  auto dm = to_inbound(parse_frame(event_frame({{"type", "message"}, {"channel_type", "im"}, {"user", "U2"},
                                                {"channel", "D1"}, {"text", "list"}}).dump()), "UBOT");
  EXPECT_EQ(dm.kind, Inbound::Kind::event);
  EXPECT_TRUE(dm.direct);
}

TEST(SocketModeInbound, ButtonClickBecomesItsCommand) {
  json p{{"type", "block_actions"}, {"user", {{"id", "U2"}, {"username", "alice"}}}, {"channel", {{"id", "C3"}}},
         {"response_url", "https://hooks.example/a"},
         {"actions", json::array({{{"type", "button"}, {"action_id", "extend"}, {"value", "front-end-pr-1 4h"}}})}};
  json f{{"envelope_id", "E"}, {"type", "interactive"}, {"payload", p}};
  auto in = to_inbound(parse_frame(f.dump()), "UBOT");
  ASSERT_EQ(in.kind, Inbound::Kind::button);
  EXPECT_TRUE(in.message.is_button);
  EXPECT_EQ(in.message.text, *bot::command_for_button("extend", "front-end-pr-1 4h"));
  EXPECT_EQ(in.response_url, "https://hooks.example/a");
  p["actions"][0]["action_id"] = "open";
  f["payload"] = p;
  EXPECT_EQ(to_inbound(parse_frame(f.dump()), "UBOT").kind, Inbound::Kind::ignore) << "link buttons do nothing";
}

TEST(SocketModeAck, EchoesTheEnvelopeIdAndCarriesThePayload) {
  EXPECT_EQ(json::parse(ack_json("E\"1")), (json{{"envelope_id", "E\"1"}}));
  auto a = json::parse(ack_json("E2", json{{"text", "hi"}}));
  EXPECT_EQ(a["envelope_id"], "E2");
  EXPECT_EQ(a["payload"]["text"], "hi");
}

TEST(DedupeSet, RemembersTheLastKeysOnly) {
  DedupeSet d(2);
  EXPECT_TRUE(d.insert("a"));
  EXPECT_FALSE(d.insert("a"));
  EXPECT_TRUE(d.insert("b"));
  EXPECT_TRUE(d.insert("c"));
  EXPECT_EQ(d.size(), 2u);
  EXPECT_TRUE(d.insert("a")) << "the oldest key was forgotten";
}

TEST(AckMemory, RemembersAnAckUnderEachKeyAndForgetsTheOldestWithinItsBounds) {
  AckMemory m(3, 1 << 20);
  EXPECT_EQ(m.find("e:1"), nullptr);
  m.remember({"e:1", "t:a"}, R"({"text":"hi"})");
  ASSERT_NE(m.find("e:1"), nullptr);
  EXPECT_EQ(*m.find("t:a"), R"({"text":"hi"})") << "the same answer under the trigger id";
  m.remember({"e:2", ""}, "");
  ASSERT_NE(m.find("e:2"), nullptr) << "an ack without payload is remembered too";
  EXPECT_EQ(*m.find("e:2"), "");
  m.remember({"e:3"}, "x");
  EXPECT_EQ(m.find("e:1"), nullptr) << "over 3 keys the oldest goes";
  EXPECT_NE(m.find("t:a"), nullptr);

  AckMemory small(100, 10);
  small.remember({"e:1"}, "0123456789");
  small.remember({"e:2"}, "abc");
  EXPECT_EQ(small.find("e:1"), nullptr) << "over the byte budget the oldest goes";
  EXPECT_NE(small.find("e:2"), nullptr);
  EXPECT_LE(small.bytes(), 10u);
}

TEST(SocketModeInbound, SlashCommandsAndClicksCarryTheirTriggerIdAndMentionsTheirTs) {
  Frame slash = parse_frame(R"({"envelope_id":"E1","type":"slash_commands","accepts_response_payload":true,
    "payload":{"channel_id":"C1","user_id":"U1","text":"status","trigger_id":"13345224609.738474920.8088930838d88f008e0"}})");
  EXPECT_EQ(to_inbound(slash, "UBOT").trigger_id, "13345224609.738474920.8088930838d88f008e0");
  Frame mention = parse_frame(R"({"envelope_id":"E2","type":"events_api","payload":{"type":"event_callback",
    "event_id":"Ev1","event":{"type":"app_mention","user":"U1","text":"<@UBOT> status","ts":"1714557600.000100",
    "channel":"C1"}}})");
  auto in = to_inbound(mention, "UBOT");
  EXPECT_EQ(in.ts, "1714557600.000100");
  EXPECT_TRUE(in.message.thread.empty());
}

TEST(SlackWebApiErrors, RateLimitCarriesRetryAfter) {
  auto r = interpret_response("chat.postMessage", 429, "7", R"({"ok":false,"error":"ratelimited"})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, bot::Errc::rate_limited);
  EXPECT_EQ(r.error().retry_after, std::chrono::seconds(7));
  EXPECT_TRUE(r.error().is_retryable());
}

TEST(SlackWebApiErrors, OkFalseIsAlwaysCheckedAndClassified) {
  auto auth = interpret_response("chat.postMessage", 200, "", R"({"ok":false,"error":"invalid_auth"})");
  ASSERT_FALSE(auth);
  EXPECT_EQ(auth.error().code, bot::Errc::unauthorized);
  EXPECT_FALSE(auth.error().is_retryable());
  auto chan = interpret_response("chat.postMessage", 200, "", R"({"ok":false,"error":"not_in_channel"})");
  ASSERT_FALSE(chan);
  EXPECT_EQ(chan.error().code, bot::Errc::invalid_argument);
  EXPECT_NE(chan.error().message.find("invite"), std::string::npos) << chan.error().message;
  auto scope = interpret_response("chat.postMessage", 200, "",
                                  R"({"ok":false,"error":"missing_scope","needed":"chat:write","provided":"x"})");
  ASSERT_FALSE(scope);
  EXPECT_NE(scope.error().message.find("needed=chat:write"), std::string::npos);
  auto busy = interpret_response("chat.update", 200, "", R"({"ok":false,"error":"service_unavailable"})");
  ASSERT_FALSE(busy);
  EXPECT_TRUE(busy.error().is_retryable());
  auto down = interpret_response("chat.update", 503, "", "gateway");
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code, bot::Errc::unavailable);
  auto ok = interpret_response("chat.postMessage", 200, "", R"({"ok":true,"ts":"1.2"})");
  ASSERT_TRUE(ok);
  EXPECT_EQ((*ok)["ts"], "1.2");
  EXPECT_TRUE(interpret_response("response_url", 200, "", "ok")) << "response_url may answer plain text";
  EXPECT_FALSE(interpret_response("chat.postMessage", 200, "", "<html>")) << "non-JSON from the Web API";
}

TEST(Url, KeepsPathAndQueryAndDefaultsThePort) {
  auto u = common::parse_url("wss://wss-primary.slack.com/link/?ticket=abc&app_id=A1");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "wss-primary.slack.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/link/?ticket=abc&app_id=A1");
  auto v = common::parse_url("https://127.0.0.1:8443");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->port, 8443);
  EXPECT_EQ(v->target, "/");
  EXPECT_FALSE(common::parse_url("ftp://x/"));
  EXPECT_FALSE(common::parse_url("https://user:pw@x/"));
  EXPECT_FALSE(common::parse_url("https://x:99999/"));
}

}  // namespace
}  // namespace runbot::slack
