// The Mattermost renderer against golden files (one per notification kind the announcer
// produces), and the pure protocol functions: event parsing with the double-decoded post,
// mention and DM rules, the challenge frame, forms, button signatures, REST error classes.
// Regenerate the goldens after an intended change with
//   RUNBOT_UPDATE_GOLDEN=1 ctest -R MattermostRenderer
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/support/announcer_cases.h"

#include "adapters/mattermost/mattermost_protocol.h"
#include "adapters/mattermost/mattermost_renderer.h"
#include "adapters/mattermost/mattermost_rest.h"
#include "bot/announcer.h"
#include "bot/command.h"

namespace runbot::mattermost {
namespace {

using namespace std::chrono_literals;
using bot::Message;
using nlohmann::json;

constexpr const char* kGoldenDir = RUNBOT_MATTERMOST_GOLDEN_DIR;

using Fixture = testing::AnnouncerFixture;
using testing::announcer_cases;


RenderOptions options() { return RenderOptions{"https://runbot.internal/hooks/mattermost/action", "test-secret"}; }

TEST(MattermostRenderer, EveryNotificationKindMatchesItsGoldenFile) {
  const bool update = std::getenv("RUNBOT_UPDATE_GOLDEN") != nullptr;
  for (const auto& [name, message] : announcer_cases()) {
    const json got = json(render(message, options()));
    const auto path = std::filesystem::path(kGoldenDir) / (name + ".json");
    if (update) {
      std::ofstream(path) << got.dump(2) << "\n";
      continue;
    }
    std::ifstream in(path);
    ASSERT_TRUE(in) << "missing golden " << path << " (run with RUNBOT_UPDATE_GOLDEN=1)";
    std::stringstream ss;
    ss << in.rdbuf();
    EXPECT_EQ(got, json::parse(ss.str())) << name << ":\n" << got.dump(2);
  }
}

TEST(MattermostRenderer, ButtonsCarryActionValueAndAValidSignatureAndMapBackToCommands) {
  const auto cases = announcer_cases();
  const auto posts = render(cases.at("ready"), options());
  ASSERT_EQ(posts.size(), 1u);
  const auto& actions = posts[0]["props"]["attachments"][0]["actions"];
  ASSERT_EQ(actions.size(), 2u) << "Open is a link, Extend and Tear down are buttons";
  for (const auto& a : actions) {
    const auto& ctx = a["integration"]["context"];
    EXPECT_EQ(a["integration"]["url"], options().action_url);
    EXPECT_EQ(ctx["sig"], sign_action("test-secret", ctx["action"].get<std::string>(), ctx["value"].get<std::string>()));
    EXPECT_TRUE(bot::command_for_button(ctx["action"].get<std::string>(), ctx["value"].get<std::string>()).has_value());
  }
  EXPECT_NE(posts[0]["props"]["attachments"][0]["text"].get<std::string>().find("[Open](https://front-end-pr-123"),
            std::string::npos);
}

TEST(MattermostRenderer, WithoutAnActionUrlButtonsBecomeCommandsToType) {
  const auto posts = render(announcer_cases().at("ready"), RenderOptions{});
  const auto& att = posts[0]["props"]["attachments"][0];
  EXPECT_FALSE(att.contains("actions"));
  EXPECT_NE(att["text"].get<std::string>().find("`extend front-end-pr-123 4h`"), std::string::npos) << att.dump();
}

TEST(MattermostRenderer, AHugeLogIsSplitIntoPostsUnderTheLimit) {
  Message m;
  m.kind = bot::NoticeKind::failed;
  m.title = "failed";
  for (int i = 0; i < 3000; ++i) m.code.push_back("line " + std::to_string(i) + " of a very long log tail");
  m.buttons = {{"Retry", "retry", "front-end-pr-1", ""}};
  const auto posts = render(m, options());
  ASSERT_GT(posts.size(), 1u);
  for (const auto& p : posts) EXPECT_LE(p["message"].get<std::string>().size(), kMaxPostChars);
  EXPECT_TRUE(posts.back()["props"]["attachments"][0].contains("actions")) << "the buttons ride on the last post";
}

TEST(MattermostProtocol, PostedEventIsDecodedTwice) {
  json post{{"id", "p1"}, {"user_id", "u1"}, {"channel_id", "c1"}, {"root_id", ""}, {"message", "@runbot up api 1"},
            {"create_at", 1714557600000}, {"type", ""}};
  json ev{{"event", "posted"}, {"seq", 7},
          {"data", {{"post", post.dump()}, {"channel_type", "O"}, {"sender_name", "@alice"}}},
          {"broadcast", {{"omit_users", {{"x", true}}}}}};
  Event e = parse_event(ev.dump());
  ASSERT_EQ(e.kind, EventKind::posted) << e.error;
  EXPECT_EQ(*e.seq, 7);
  EXPECT_EQ(e.post.id, "p1");
  EXPECT_EQ(e.post.create_at, 1714557600000);
  Inbound in = to_inbound(e.post, e.channel_type, e.sender_name, "bot", "runbot");
  ASSERT_TRUE(in.act);
  EXPECT_EQ(in.message.text, "up api 1");
  EXPECT_EQ(in.message.thread, "p1");
  EXPECT_EQ(in.message.user_name, "alice");
}

TEST(MattermostProtocol, MalformedEventsAreReportedNotThrown) {
  EXPECT_EQ(parse_event("not json").kind, EventKind::malformed);
  EXPECT_EQ(parse_event("[1]").kind, EventKind::malformed);
  EXPECT_EQ(parse_event(R"({"event":"posted","seq":1,"data":{"post":"{broken"}})").kind, EventKind::malformed);
  EXPECT_EQ(parse_event(R"({"event":"posted","seq":1,"data":{"post":42}})").kind, EventKind::malformed);
  EXPECT_EQ(parse_event(R"({"event":"typing","seq":2,"data":{}})").kind, EventKind::other);
  Event r = parse_event(R"({"status":"OK","seq_reply":1})");
  EXPECT_EQ(r.kind, EventKind::reply);
  Event h = parse_event(R"({"event":"hello","seq":0,"data":{"connection_id":"abc","server_version":"9"}})");
  EXPECT_EQ(h.kind, EventKind::hello);
  EXPECT_EQ(h.connection_id, "abc");
}

TEST(MattermostProtocol, MentionsDirectMessagesAndIgnoredPosts) {
  Post p;
  p.id = "p";
  p.user_id = "u";
  p.message = "hey @RunBot: list";
  EXPECT_EQ(to_inbound(p, "O", "", "bot", "runbot").message.text, "hey list");
  p.message = "ping @runbot2 list";
  EXPECT_FALSE(to_inbound(p, "O", "", "bot", "runbot").act) << "another user's name is no mention";
  p.message = "list";
  EXPECT_FALSE(to_inbound(p, "O", "", "bot", "runbot").act);
  EXPECT_TRUE(to_inbound(p, "D", "", "bot", "runbot").act) << "every DM counts";
  p.user_id = "bot";
  EXPECT_FALSE(to_inbound(p, "D", "", "bot", "runbot").act) << "own posts are ignored";
  p.user_id = "u";
  p.type = "system_join_channel";
  EXPECT_FALSE(to_inbound(p, "D", "", "bot", "runbot").act);
  p.type = "";
  p.root_id = "root";
  EXPECT_EQ(to_inbound(p, "D", "", "bot", "runbot").message.thread, "root");
}

TEST(MattermostProtocol, ChallengeFormsAndSignatures) {
  json c = json::parse(challenge_json(1, "tok"));
  EXPECT_EQ(c["action"], "authentication_challenge");
  EXPECT_EQ(c["data"]["token"], "tok");
  auto f = parse_form("text=up+api%2F1&token=abc&x");
  EXPECT_EQ(f["text"], "up api/1");
  EXPECT_EQ(f["token"], "abc");
  EXPECT_NE(sign_action("k", "down", "x"), sign_action("k", "down", "y"));
  EXPECT_EQ(sign_action("k", "down", "x").size(), 64u);
}

TEST(MattermostProtocol, DeliveryIdRidesInPropsBesideTheAttachmentsAndIsReadBack) {
  json post{{"message", "hi"}, {"props", {{"attachments", json::array({{{"text", "x"}}})}}}};
  tag_delivery(post, "d-1", 2);
  EXPECT_EQ(post["props"]["runbot_delivery_id"], "d-1");
  EXPECT_EQ(post["props"]["runbot_delivery_part"], 2);
  EXPECT_EQ(post["props"]["attachments"].size(), 1u) << "the attachments stay";
  json bare{{"message", "hi"}};
  tag_delivery(bare, "d-2", 0);
  EXPECT_EQ(bare["props"]["runbot_delivery_id"], "d-2");

  post["id"] = "p1";
  auto p = parse_post(post);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->delivery_id, "d-1");
  EXPECT_EQ(p->delivery_part, 2);
  post["props"]["runbot_delivery_part"] = "0";
  EXPECT_EQ(parse_post(post)->delivery_part, 0) << "a string of digits is accepted";
  post["props"]["runbot_delivery_part"] = "zero";
  EXPECT_EQ(parse_post(post)->delivery_part, -1);
  post["props"].erase("runbot_delivery_id");
  EXPECT_EQ(parse_post(post)->delivery_id, "") << "an untagged post has no delivery id";
}

TEST(MattermostProtocol, PostListFollowsOrderAndSkipsWhatItCannotRead) {
  const json list{{"order", {"b", "a", "missing", 7, "bad"}},
                  {"posts", {{"a", {{"id", "a"}, {"create_at", 1}}}, {"b", {{"id", "b"}, {"create_at", 2}}},
                             {"bad", {{"message", "no id"}}}}},
                  {"next_post_id", ""},
                  {"prev_post_id", ""}};
  const auto posts = parse_post_list(list);
  ASSERT_EQ(posts.size(), 2u);
  EXPECT_EQ(posts[0].id, "b");
  EXPECT_EQ(posts[1].id, "a");
  EXPECT_TRUE(parse_post_list(json::array()).empty());
  EXPECT_TRUE(parse_post_list(json{{"order", json::array()}}).empty());
}

TEST(MattermostRest, ErrorsAreClassifiedForTheOutbox) {
  common::HttpClientResponse r;
  r.status = 429;
  r.headers = {{"x-ratelimit-reset", "1000000030"}};
  auto e = interpret_response("posts", r, 1000000000);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, bot::Errc::rate_limited);
  EXPECT_EQ(e.error().retry_after, 30s) << "an absolute reset becomes a delay";
  r.headers = {{"retry-after", "7"}};
  EXPECT_EQ(interpret_response("posts", r, 0).error().retry_after, 7s);
  r.headers.clear();
  r.status = 401;
  r.body = R"({"id":"api.context.session_expired.app_error","message":"Invalid or expired session"})";
  EXPECT_EQ(interpret_response("posts", r, 0).error().code, bot::Errc::unauthorized);
  EXPECT_FALSE(interpret_response("posts", r, 0).error().is_retryable());
  r.status = 400;
  EXPECT_EQ(interpret_response("posts", r, 0).error().code, bot::Errc::invalid_argument);
  r.status = 502;
  EXPECT_TRUE(interpret_response("posts", r, 0).error().is_retryable());
}

}  // namespace
}  // namespace runbot::mattermost
