// Pure parts of the Bot Connector client: response classification (§3.6, §3.9), the backoff
// hint, path encoding. No I/O.
#include <gtest/gtest.h>

#include "adapters/teams/bot_connector.h"
#include "adapters/teams/graph_client.h"

namespace runbot::teams {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr std::chrono::milliseconds kHint = 2345ms;

bot::Error fails(int status, const std::string& body = "", const std::string& retry_after = "") {
  auto r = interpret_connector_response("send", status, retry_after, body, kHint);
  EXPECT_FALSE(r) << "HTTP " << status << " was taken as success";
  return r ? bot::Error{} : r.error();
}

TEST(InterpretConnectorResponse, SuccessGivesTheJsonBody) {
  auto r = interpret_connector_response("send", 201, "", R"({"id":"1714557600123"})", kHint);
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)["id"], "1714557600123");
  auto empty = interpret_connector_response("update", 200, "", "", kHint);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->is_object());
  EXPECT_TRUE(interpret_connector_response("send", 202, "", "accepted", kHint));
}

TEST(InterpretConnectorResponse, TooManyRequestsHonoursRetryAfterElseTheHint) {
  auto e = fails(429, "", "7");
  EXPECT_EQ(e.code, bot::Errc::rate_limited);
  EXPECT_EQ(e.retry_after, 7000ms);
  EXPECT_TRUE(e.is_retryable());
  e = fails(429);
  EXPECT_EQ(e.code, bot::Errc::rate_limited);
  EXPECT_EQ(e.retry_after, kHint);
  e = fails(429, "", "Wed, 21 Oct 2026 07:28:00 GMT");  // a date: the hint instead
  EXPECT_EQ(e.retry_after, kHint);
  e = fails(429, "", "-3");
  EXPECT_EQ(e.retry_after, kHint);
  e = fails(429, "", "999999");
  EXPECT_EQ(e.retry_after, 3600s) << "capped";
}

TEST(InterpretConnectorResponse, PreconditionAndServerErrorsAreRetryableWithTheHint) {
  for (int status : {412, 500, 502, 503, 504}) {
    auto e = fails(status, R"({"error":{"code":"ServiceError","message":"x"}})");
    EXPECT_EQ(e.code, bot::Errc::unavailable) << status;
    EXPECT_EQ(e.retry_after, kHint) << status;
    EXPECT_TRUE(e.is_retryable()) << status;
    EXPECT_NE(e.message.find("HTTP " + std::to_string(status)), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("ServiceError"), std::string::npos) << e.message;
  }
  EXPECT_EQ(fails(503, "", "30").retry_after, 30s) << "a longer Retry-After wins over the hint";
  EXPECT_EQ(fails(408).code, bot::Errc::timeout);
}

TEST(InterpretConnectorResponse, UnauthorizedIsNotRetryable) {
  auto e = fails(401, R"({"message":"Authorization has been denied for this request."})");
  EXPECT_EQ(e.code, bot::Errc::unauthorized);
  EXPECT_FALSE(e.is_retryable());
  EXPECT_NE(e.message.find("401"), std::string::npos);
}

TEST(InterpretConnectorResponse, MessageWritesBlockedIsRecognisable) {
  const std::string teams_body =
      R"({"errorCode":209,"message":"{\r\n  \"subCode\": \"MessageWritesBlocked\",\r\n  \"details\": \"Thread is blocked from message writes.\"\r\n}"})";
  auto e = fails(403, teams_body);
  EXPECT_EQ(e.code, bot::Errc::invalid_argument);
  EXPECT_FALSE(e.is_retryable());
  EXPECT_TRUE(is_blocked_error(e)) << e.message;
  EXPECT_NE(e.message.find("blocked"), std::string::npos);
  EXPECT_TRUE(is_blocked_error(fails(403, R"({"errorCode":"209","message":"x"})")));
  EXPECT_TRUE(is_blocked_error(fails(403, R"(subCode MessageWritesBlocked)")));  // not JSON at all

  auto other = fails(403, R"({"error":{"code":"BotNotInConversationRoster","message":"x"}})");
  EXPECT_EQ(other.code, bot::Errc::invalid_argument);
  EXPECT_FALSE(is_blocked_error(other)) << other.message;
  EXPECT_NE(other.message.find("HTTP 403"), std::string::npos);
  EXPECT_NE(other.message.find("BotNotInConversationRoster"), std::string::npos);
  EXPECT_FALSE(is_blocked_error(fails(502)));
  EXPECT_FALSE(is_blocked_error(
      bot::make_error(bot::Errc::unavailable, "bot blocked or uninstalled in this conversation")));
}

TEST(InterpretConnectorResponse, TooBigAndOtherClientErrorsAreInvalidArgument) {
  auto big = fails(413, R"({"error":{"code":"MessageSizeTooBig","message":"x"}})");
  EXPECT_EQ(big.code, bot::Errc::invalid_argument);
  EXPECT_NE(big.message.find("message too big"), std::string::npos);
  for (int status : {400, 404, 405, 409}) {
    auto e = fails(status, "<html>not json</html>");
    EXPECT_EQ(e.code, bot::Errc::invalid_argument) << status;
    EXPECT_NE(e.message.find("HTTP " + std::to_string(status)), std::string::npos) << e.message;
  }
  EXPECT_EQ(fails(302).code, bot::Errc::invalid_argument);
}

TEST(InterpretConnectorResponse, MessagesDoNotEchoTheServersFreeText) {
  auto e = fails(
      400, R"({"error":{"code":"BadArgument","message":"activity text 'top-secret' invalid"}})");
  EXPECT_NE(e.message.find("BadArgument"), std::string::npos);
  EXPECT_EQ(e.message.find("top-secret"), std::string::npos) << e.message;
}

TEST(BackoffHint, DoublesFromTwoSecondsUpToTwentyWithTwentyPercentJitter) {
  EXPECT_EQ(backoff_hint(1, 0.5), 2000ms);
  EXPECT_EQ(backoff_hint(2, 0.5), 4000ms);
  EXPECT_EQ(backoff_hint(3, 0.5), 8000ms);
  EXPECT_EQ(backoff_hint(4, 0.5), 16000ms);
  EXPECT_EQ(backoff_hint(5, 0.5), 20000ms);
  EXPECT_EQ(backoff_hint(100, 0.5), 20000ms);
  EXPECT_EQ(backoff_hint(0, 0.5), 2000ms);
  EXPECT_EQ(backoff_hint(1, 0.0), 1600ms);
  EXPECT_EQ(backoff_hint(1, 0.999999), 2400ms);
  EXPECT_EQ(backoff_hint(5, 0.0), 16000ms);
  EXPECT_EQ(backoff_hint(5, 1.0), 24000ms);
  EXPECT_EQ(backoff_hint(1, 7.0), 2400ms) << "out-of-range randomness is clamped";
}

TEST(ConnectorPaths, EverySegmentIsPercentEncoded) {
  EXPECT_EQ(encode_path_segment("19:0b7f@thread.tacv2;messageid=1714557600123"),
            "19%3A0b7f%40thread.tacv2%3Bmessageid%3D1714557600123");
  EXPECT_EQ(encode_path_segment("a:1x_Y-z.~"), "a%3A1x_Y-z.~");
  EXPECT_EQ(encode_path_segment("a b/c+d?e#f%"), "a%20b%2Fc%2Bd%3Fe%23f%25");
  EXPECT_EQ(encode_path_segment("\xc3\xa9"), "%C3%A9");
}

TEST(ConnectorPaths, NoDoubleSlashWhateverTheServiceUrlEndsWith) {
  const std::string want = "https://smba.trafficmanager.net/amer/v3/conversations/a%3A1/activities";
  EXPECT_EQ(connector_url("https://smba.trafficmanager.net/amer/", {"a:1", "activities"}), want);
  EXPECT_EQ(connector_url("https://smba.trafficmanager.net/amer", {"a:1", "activities"}), want);
  EXPECT_EQ(connector_url("https://smba.trafficmanager.net/amer//", {"a:1", "activities"}), want);
  EXPECT_EQ(connector_url("https://smba.trafficmanager.net/amer/", {}),
            "https://smba.trafficmanager.net/amer/v3/conversations");
}

TEST(GraphGroups, FirstPageAsksForGroupsOnlyWithTheLargestPage) {
  EXPECT_EQ(member_groups_url("https://graph.microsoft.com/v1.0/", "7faf8ab2-0000-0000-0000-000000000001"),
            "https://graph.microsoft.com/v1.0/users/7faf8ab2-0000-0000-0000-000000000001"
            "/transitiveMemberOf/microsoft.graph.group?$select=id,displayName&$top=999&$count=true");
  // An id is never trusted to be path-safe.
  EXPECT_EQ(member_groups_url("https://graph.microsoft.us/v1.0", "a/b?c"),
            "https://graph.microsoft.us/v1.0/users/a%2Fb%3Fc"
            "/transitiveMemberOf/microsoft.graph.group?$select=id,displayName&$top=999&$count=true");
}

TEST(GraphGroups, PageGivesIdsNamesAndTheNextLink) {
  auto page = parse_group_page(R"json({
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups(id,displayName)",
    "@odata.count": 4,
    "value": [
      {"@odata.type": "#microsoft.graph.group", "id": "11111111-aaaa", "displayName": "SRE"},
      {"@odata.type": "#microsoft.graph.group", "id": "22222222-bbbb", "displayName": null},
      {"@odata.type": "#microsoft.graph.group", "displayName": "no id"},
      "not an object"
    ],
    "@odata.nextLink": "https://graph.microsoft.com/v1.0/users/x/transitiveMemberOf/microsoft.graph.group?$skiptoken=RFNwdAIAAQAAAD"
  })json");
  ASSERT_TRUE(page) << page.error().message;
  EXPECT_EQ(page->groups, (std::vector<DirectoryGroup>{{"11111111-aaaa", "SRE"}, {"22222222-bbbb", ""}}));
  EXPECT_EQ(page->next_link,
            "https://graph.microsoft.com/v1.0/users/x/transitiveMemberOf/microsoft.graph.group?$skiptoken=RFNwdAIAAQAAAD");

  auto last = parse_group_page(R"({"value": []})");
  ASSERT_TRUE(last);
  EXPECT_TRUE(last->groups.empty());
  EXPECT_TRUE(last->next_link.empty());
}

TEST(GraphGroups, AnswerWithoutAValueListIsAClearError) {
  for (const char* body : {"", "<html>", "[]", R"({"error":{"code":"x"}})", R"({"value":{}})"}) {
    auto page = parse_group_page(body);
    ASSERT_FALSE(page) << body;
    EXPECT_EQ(page.error().code, bot::Errc::invalid_argument);
    EXPECT_EQ(page.error().message.rfind("teams graph: ", 0), 0u) << page.error().message;
  }
}

TEST(GraphGroups, NextLinksMustStayOnGraphsOrigin) {
  const std::string graph = "https://graph.microsoft.com/v1.0";
  EXPECT_TRUE(same_origin(graph, "https://graph.microsoft.com/v1.0/users/x?$skiptoken=1"));
  EXPECT_TRUE(same_origin(graph, "https://GRAPH.microsoft.com:443/beta/x"));
  EXPECT_FALSE(same_origin(graph, "https://graph.microsoft.com.evil.example/v1.0/x"));
  EXPECT_FALSE(same_origin(graph, "http://graph.microsoft.com/v1.0/x"));
  EXPECT_FALSE(same_origin(graph, "https://graph.microsoft.com:8443/v1.0/x"));
  EXPECT_FALSE(same_origin(graph, "not a url"));
}

}  // namespace
}  // namespace runbot::teams
