// Parsing of Bot Framework activities (the reconstructed fixtures of chat-protocols.md §3.3/§3.7
// in tests/testdata/teams/activities/), mention stripping, button clicks, conversation references,
// message ids and the dedupe window.
#include "adapters/teams/teams_protocol.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "bot/command.h"

namespace runbot::teams {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kBot = "28:608cacfd-1111-4444-8888-000000000001";
constexpr const char* kTenant = "b28f1c2e-0000-4000-8000-00000000c0de";
constexpr const char* kChannel = "19:0b7f2d8e9a@thread.tacv2";

std::string fixture(const std::string& name) {
  const auto path = std::filesystem::path(RUNBOT_TEAMS_TESTDATA_DIR) / "activities" / name;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "missing fixture " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Activity parsed(const std::string& name) {
  auto a = parse_activity(fixture(name));
  EXPECT_TRUE(a) << name << ": " << (a ? "" : a.error().message);
  return a ? *a : Activity{};
}

TEST(TeamsProtocol, ChannelMentionBecomesACommandInItsThread) {
  const Activity a = parsed("channel-message-mention-reconstructed.json");
  EXPECT_EQ(a.type, "message");
  EXPECT_EQ(a.id, "1714557600123");
  EXPECT_EQ(a.service_url, "https://smba.trafficmanager.net/amer/");
  EXPECT_EQ(a.channel_id, "msteams");
  EXPECT_EQ(a.from.id, "29:1abcAliceXyZ");
  EXPECT_EQ(a.from.name, "Alice");
  EXPECT_EQ(a.from.aad_object_id, "7faf8ab2-3c4d-4e5f-8a9b-0c1d2e3f4a5b");
  EXPECT_EQ(a.recipient.id, kBot);
  EXPECT_EQ(a.conversation.type, "channel");
  EXPECT_TRUE(a.conversation.is_group);
  EXPECT_EQ(a.tenant_id, kTenant);
  EXPECT_EQ(a.team_id, "19:team7f3a@thread.tacv2");
  EXPECT_EQ(a.teams_channel_id, kChannel);
  EXPECT_EQ(a.text, "<at>runbot</at> up front-end 123");
  EXPECT_EQ(a.command_text, "up front-end 123");

  const bot::InboundMessage m = to_inbound(a);
  EXPECT_EQ(m.platform, "teams");
  EXPECT_EQ(m.channel.str(), kChannel);
  EXPECT_EQ(m.thread, "19:0b7f2d8e9a@thread.tacv2;messageid=1714557600123");
  EXPECT_EQ(m.user.str(), "29:1abcAliceXyZ");
  EXPECT_EQ(m.user_name, "Alice");
  EXPECT_EQ(m.text, "up front-end 123");
  EXPECT_TRUE(bot::parse_command(m.text));
}

TEST(TeamsProtocol, PersonalChatIsItsOwnChannelWithoutThreads) {
  const Activity a = parsed("personal-message-reconstructed.json");
  EXPECT_EQ(a.conversation.type, "personal");
  EXPECT_EQ(a.command_text, "list --mine");
  const auto m = to_inbound(a);
  EXPECT_EQ(m.channel.str(), "a:1Xq9personalChatWithAlice");
  EXPECT_EQ(m.thread, "");
}

TEST(TeamsProtocol, GroupChatStripsOnlyTheBotMentionAndDecodesEntities) {
  const Activity a = parsed("group-chat-message-reconstructed.json");
  EXPECT_EQ(a.conversation.type, "groupChat");
  EXPECT_EQ(a.command_text, "describe front-end-pr-123 & <at>Alice</at>");
  EXPECT_EQ(to_inbound(a).channel.str(), "19:groupchat5e6f7a@thread.v2");
}

TEST(TeamsProtocol, StripsEveryBotMentionAndNothingElse) {
  const json entities = json::parse(R"([
    {"type":"mention","text":"<at>Ops Bot</at>","mentioned":{"id":"28:bot","name":"Ops Bot"}},
    {"type":"mention","text":"<at>Bob</at>","mentioned":{"id":"29:bob","name":"Bob"}},
    {"type":"clientInfo","locale":"en-US"}])");
  EXPECT_EQ(strip_bot_mentions("<at>Ops Bot</at> extend x 2h <at>Ops Bot</at>", entities, "28:bot"),
            "extend x 2h");
  EXPECT_EQ(strip_bot_mentions("<at>Ops Bot</at>&nbsp;&nbsp;status", entities, "28:bot"), "status");
  EXPECT_EQ(strip_bot_mentions("ask <at>Bob</at>", entities, "28:bot"), "ask <at>Bob</at>");
  EXPECT_EQ(strip_bot_mentions("  help\n", json(), "28:bot"), "help");
}

TEST(TeamsProtocol, DecodesBasicHtmlEntities) {
  EXPECT_EQ(decode_entities("a&nbsp;b &amp; &lt;c&gt; &quot;d&quot; &apos;e&#39; &#x41;&#66;"),
            "a b & <c> \"d\" 'e' AB");
  EXPECT_EQ(decode_entities("&#xe9;"), "é");
  EXPECT_EQ(decode_entities("AT&T &unknown; & &#0; &#xD800;"), "AT&T &unknown; & &#0; &#xD800;");
}

TEST(TeamsProtocol, ExecuteInvokeIsAButtonClick) {
  const Activity a = parsed("invoke-adaptive-card-action-reconstructed.json");
  EXPECT_EQ(a.type, "invoke");
  EXPECT_EQ(a.name, "adaptiveCard/action");
  EXPECT_EQ(a.reply_to_id, "1714557600999");
  const auto click = button_click(a);
  ASSERT_TRUE(click);
  EXPECT_EQ(click->action, "extend");
  EXPECT_EQ(click->value, "front-end-pr-123 4h");
  EXPECT_EQ(*bot::command_for_button(click->action, click->value), "extend front-end-pr-123 4h");
  EXPECT_EQ(to_inbound(a).thread, "19:0b7f2d8e9a@thread.tacv2;messageid=1714557600999");
}

TEST(TeamsProtocol, SubmitMessageIsAButtonClickWithoutText) {
  const Activity a = parsed("message-action-submit-reconstructed.json");
  EXPECT_EQ(a.type, "message");
  EXPECT_EQ(a.command_text, "");
  const auto click = button_click(a);
  ASSERT_TRUE(click);
  EXPECT_EQ(click->action, "down");
  EXPECT_EQ(click->value, "front-end-pr-123");
}

TEST(TeamsProtocol, VerbIsTheActionWhenDataHasNone) {
  Activity a;
  a.type = "invoke";
  a.name = "adaptiveCard/action";
  a.value = json::parse(
      R"({"action":{"type":"Action.Execute","verb":"retry","data":{"value":"front-end-pr-123"}}})");
  const auto click = button_click(a);
  ASSERT_TRUE(click);
  EXPECT_EQ(click->action, "retry");
  EXPECT_EQ(click->value, "front-end-pr-123");
  a.name = "composeExtension/query";
  EXPECT_FALSE(button_click(a));
  Activity plain;
  plain.type = "message";
  EXPECT_FALSE(button_click(plain));
}

TEST(TeamsProtocol, BotAddedToATeamIsRecognised) {
  const Activity a = parsed("conversation-update-bot-added-to-team-reconstructed.json");
  EXPECT_EQ(a.type, "conversationUpdate");
  EXPECT_TRUE(a.bot_added());
  EXPECT_EQ(a.event_type, "teamMemberAdded");
  const ConversationRef r = reference_of(a);
  EXPECT_EQ(r.conversation_id, "19:team7f3a@thread.tacv2");
  EXPECT_EQ(r.team_id, "19:team7f3a@thread.tacv2");
  EXPECT_EQ(r.tenant_id, kTenant);
  EXPECT_EQ(r.bot_id, kBot);
  EXPECT_FALSE(parsed("installation-update-add-reconstructed.json").bot_added());
}

TEST(TeamsProtocol, ConversationReferenceRoundTripsAndIsStable) {
  const Activity a = parsed("channel-message-mention-reconstructed.json");
  const ConversationRef r = reference_of(a);
  EXPECT_EQ(r.conversation_id, kChannel);
  EXPECT_EQ(r.conversation_type, "channel");
  EXPECT_EQ(r.service_url, "https://smba.trafficmanager.net/amer/");
  EXPECT_EQ(r.user_id, "29:1abcAliceXyZ");
  EXPECT_EQ(r.channel_id, "msteams");
  EXPECT_EQ(reference_key(a.conversation.id), std::string("teams/conv/") + kChannel);
  const std::string text = reference_to_json(r);
  EXPECT_EQ(text, reference_to_json(reference_of(a)))
      << "the same reference must serialise the same way";
  auto back = reference_from_json(text);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, r);
  ConversationRef blocked = r;
  blocked.blocked = true;
  auto b = reference_from_json(reference_to_json(blocked));
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->blocked);
  EXPECT_FALSE(reference_from_json("[]"));
  EXPECT_FALSE(reference_from_json(R"({"serviceUrl":"https://x/"})"));
  EXPECT_FALSE(reference_from_json(R"({"serviceUrl":"https://x/","conversation":{"id":7}})"));
}

TEST(TeamsProtocol, MessageIdsNameConversationAndActivity) {
  const std::string thread = thread_conversation_id(kChannel, "1714557600123");
  EXPECT_EQ(thread, "19:0b7f2d8e9a@thread.tacv2;messageid=1714557600123");
  auto root = parse_message_id(thread);
  ASSERT_TRUE(root);
  EXPECT_EQ(root->conversation, thread);
  EXPECT_EQ(root->activity_id, "1714557600123");

  auto reply = parse_message_id(message_id(thread, "1714557600777"));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->conversation, thread);
  EXPECT_EQ(reply->activity_id, "1714557600777");

  auto personal = parse_message_id(message_id("a:1Xq9", "42"));
  ASSERT_TRUE(personal);
  EXPECT_EQ(personal->conversation, "a:1Xq9");
  EXPECT_EQ(base_conversation_id(thread), kChannel);
  EXPECT_FALSE(parse_message_id("a:1Xq9"));
  EXPECT_FALSE(parse_message_id("a:1Xq9|"));
}

TEST(TeamsProtocol, MalformedActivitiesAreClearErrors) {
  auto expect_error = [](const std::string& body, const std::string& part) {
    auto a = parse_activity(body);
    ASSERT_FALSE(a) << body;
    EXPECT_EQ(a.error().code, bot::Errc::invalid_argument);
    EXPECT_NE(a.error().message.find(part), std::string::npos) << a.error().message;
  };
  expect_error("not json", "not JSON");
  expect_error("[1,2]", "not a JSON object");
  expect_error(R"({"conversation":{"id":"a:1"},"serviceUrl":"https://x/","channelId":"msteams"})",
               "type is missing");
  expect_error(R"({"type":"message","serviceUrl":"https://x/","channelId":"msteams"})",
               "conversation.id is missing");
  expect_error(R"({"type":"message","conversation":{"id":"a:1"},"channelId":"msteams"})",
               "serviceUrl is missing");
  expect_error(R"({"type":"message","conversation":{"id":"a:1"},"serviceUrl":"https://x/"})",
               "channelId is missing");
  expect_error(
      R"({"type":"message","conversation":{"id":"a:1"},"serviceUrl":"https://x/","channelId":"msteams","text":5})",
      "text must be a string");
  expect_error(
      R"({"type":"message","conversation":"a:1","serviceUrl":"https://x/","channelId":"msteams"})",
      "conversation must be an object");
  expect_error(
      R"({"type":"message","conversation":{"id":"a:1"},"serviceUrl":"https://x/","channelId":"msteams","entities":{}})",
      "entities must be an array");
}

TEST(TeamsProtocol, EnvelopeNeedsOnlyJson) {
  auto e = parse_envelope(fixture("channel-message-mention-reconstructed.json"));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->channel_id, "msteams");
  EXPECT_EQ(e->service_url, "https://smba.trafficmanager.net/amer/");
  EXPECT_FALSE(parse_envelope("<html>"));
  EXPECT_FALSE(parse_envelope("\"msteams\""));
  auto empty = parse_envelope("{}");
  ASSERT_TRUE(empty);  // the JWT check then fails on the missing serviceUrl
  EXPECT_EQ(empty->service_url, "");
}

TEST(TeamsProtocol, InvokeAnswers) {
  EXPECT_EQ(
      invoke_message("Extended"),
      json::parse(
          R"({"statusCode":200,"type":"application/vnd.microsoft.activity.message","value":"Extended"})"));
  const json err = invoke_error(400, "BadRequest", "unknown button");
  EXPECT_EQ(err["statusCode"], 400);
  EXPECT_EQ(err["type"], "application/vnd.microsoft.error");
  EXPECT_EQ(err["value"]["message"], "unknown button");
}

TEST(TeamsProtocol, DedupeWindowForgetsAfterItsTtl) {
  DedupeWindow w(5min, 100);
  const bot::TimePoint t0{};
  EXPECT_TRUE(w.first_time("1|a:1", t0));
  EXPECT_FALSE(w.first_time("1|a:1", t0 + 15s));  // Teams redelivers after 15 s
  EXPECT_TRUE(w.first_time("1|a:2", t0 + 15s));   // same id, other conversation
  EXPECT_TRUE(w.first_time("1|a:1", t0 + 5min + 1s));
}

TEST(TeamsProtocol, DedupeWindowIsBounded) {
  DedupeWindow w(5min, 3);
  const bot::TimePoint t0{};
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(w.first_time(std::to_string(i), t0));
  EXPECT_LE(w.size(), 3u);
  EXPECT_FALSE(w.first_time("9", t0));
}

}  // namespace
}  // namespace runbot::teams
