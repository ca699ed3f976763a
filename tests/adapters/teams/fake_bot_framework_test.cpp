// The fake itself: its protocol checks must catch what a careless client does (otherwise the
// other tests' "problems is empty" proves nothing), and post_activity must reach a plain-HTTP
// server like runbot's.
#include <optional>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "adapters/common/http_server.h"
#include "adapters/common/https_client.h"
#include "tests/adapters/common/run_until.h"
#include "tests/support/fake_bot_framework.h"

namespace runbot::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class FakeBotFrameworkTest : public ::testing::Test {
 protected:
  FakeBotFrameworkTest() { fake.start(); }

  static std::shared_ptr<common::TlsContext> tls(const TestCa& ca) {
    auto t = common::TlsContext::create(ca.ca_file);
    if (!t) throw std::runtime_error(t.error().message);
    return *t;
  }

  common::HttpClientResponse request(std::string method, std::string url, std::string body,
                                     std::vector<std::pair<std::string, std::string>> headers) {
    std::optional<bot::Result<common::HttpClientResponse>> out;
    common::HttpClientRequest req;
    req.method = std::move(method);
    req.url = std::move(url);
    req.body = std::move(body);
    req.headers = std::move(headers);
    http.request(std::move(req),
                 [&](bot::Result<common::HttpClientResponse> r) { out.emplace(std::move(r)); });
    EXPECT_TRUE(common::testing::run_until(io, [&] { return out.has_value(); }));
    if (!out || !*out) {
      ADD_FAILURE() << "request failed";
      return {};
    }
    return **out;
  }

  std::string token(const std::string& scope = "https%3A%2F%2Fapi.botframework.com%2F.default") {
    auto res = request("POST", fake.token_url(),
                       "grant_type=client_credentials&client_id=" + fake.settings().app_id +
                           "&client_secret=fake-app-password&scope=" + scope,
                       {{"Content-Type", "application/x-www-form-urlencoded"}});
    EXPECT_EQ(res.status, 200) << res.body;
    return json::parse(res.body).value("access_token", "");
  }

  bool has_problem(const std::string& part) const {
    for (const auto& p : fake.problems) {
      if (p.find(part) != std::string::npos) return true;
    }
    return false;
  }

  boost::asio::io_context io;
  TestCa ca = TestCa::make();
  FakeBotFramework fake{io, ca};
  common::HttpsClient http{io, tls(ca)};
};

TEST_F(FakeBotFrameworkTest, ServesMetadataPointingAtItsOwnJwks) {
  auto meta = request("GET", fake.openid_metadata_url(), "", {});
  ASSERT_EQ(meta.status, 200);
  const json m = json::parse(meta.body);
  EXPECT_EQ(m["issuer"], "https://api.botframework.com");
  EXPECT_EQ(m["jwks_uri"], fake.base_url() + "/v1/.well-known/keys");
  auto keys = request("GET", m["jwks_uri"], "", {});
  const json k = json::parse(keys.body);
  ASSERT_EQ(k["keys"].size(), 1u);
  EXPECT_EQ(k["keys"][0]["kid"], fake.current_kid());
  EXPECT_EQ(k["keys"][0]["endorsements"], json::array({"msteams"}));
  EXPECT_TRUE(fake.problems.empty());
}

TEST_F(FakeBotFrameworkTest, FlagsTokenRequestsWithWrongFields) {
  auto res = request("POST", fake.token_url(), "grant_type=password&client_id=x",
                     {{"Content-Type", "application/json"}});
  EXPECT_EQ(res.status, 400);
  EXPECT_TRUE(has_problem("x-www-form-urlencoded"));
  EXPECT_TRUE(has_problem("grant_type"));
  auto wrong_tenant = request("POST", fake.base_url() + "/common/oauth2/v2.0/token", "", {});
  EXPECT_NE(wrong_tenant.status, 200);
  EXPECT_TRUE(has_problem("tenant common"));
}

TEST_F(FakeBotFrameworkTest, FlagsConnectorCallsThatBreakTheProtocol) {
  const std::string tok = token();
  const std::vector<std::pair<std::string, std::string>> auth{{"Authorization", "Bearer " + tok},
                                                              {"Content-Type", "application/json"}};
  auto missing = request("POST", fake.service_url() + "v3/conversations/a%3A1/activities",
                         R"({"type":"message"})", {{"Content-Type", "application/json"}});
  EXPECT_EQ(missing.status, 401);
  EXPECT_TRUE(has_problem("without Authorization"));

  auto unencoded =
      request("POST", fake.service_url() + "v3/conversations/19:x@thread.tacv2/activities",
              R"({"type":"message"})", auth);
  EXPECT_TRUE(has_problem("should be percent-encoded"));
  EXPECT_EQ(fake.calls.back().segments.front(), "19:x@thread.tacv2");

  request("POST", fake.service_url() + "/v3/conversations/a%3A1/activities",
          R"({"type":"message"})", auth);
  EXPECT_TRUE(has_problem("double slash"));

  request("POST", fake.service_url() + "v3/conversations/a%3A1/activities", "not json", auth);
  EXPECT_TRUE(has_problem("not JSON"));

  request("POST", fake.service_url() + "v3/conversations/a%3A1/activities", R"({"text":"no type"})",
          auth);
  EXPECT_TRUE(has_problem("activity without type"));

  request("POST", fake.service_url() + "v3/conversations/a%3A1/activities/42",
          R"({"type":"message","replyToId":"41"})", auth);
  EXPECT_TRUE(has_problem("replyToId differs"));

  request("POST", fake.service_url() + "v3/conversations", R"({"isGroup":true})", auth);
  EXPECT_TRUE(has_problem("without tenantId"));

  auto forged = request(
      "POST", fake.service_url() + "v3/conversations/a%3A1/activities", R"({"type":"message"})",
      {{"Authorization", "Bearer not-issued"}, {"Content-Type", "application/json"}});
  EXPECT_EQ(forged.status, 401);
  EXPECT_TRUE(has_problem("never issued"));
}

TEST_F(FakeBotFrameworkTest, GraphServesGroupsToGraphTokensInAdvancedQueryModeOnly) {
  fake.set_groups("oid-1", {{"g-1", "sre"}});
  const std::string graph_tok = token("https%3A%2F%2Fgraph.microsoft.com%2F.default");
  const std::string connector_tok = token();
  const std::string url = fake.graph_url() +
                          "/users/oid-1/transitiveMemberOf/microsoft.graph.group"
                          "?$select=id,displayName&$top=999&$count=true";
  const auto headers = [](const std::string& tok) {
    return std::vector<std::pair<std::string, std::string>>{{"Authorization", "Bearer " + tok},
                                                            {"ConsistencyLevel", "eventual"}};
  };
  auto ok = request("GET", url, "", headers(graph_tok));
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(json::parse(ok.body)["value"][0]["displayName"], "sre");
  EXPECT_TRUE(fake.problems.empty());

  auto wrong_scope = request("GET", url, "", headers(connector_tok));
  EXPECT_EQ(wrong_scope.status, 401);
  EXPECT_TRUE(has_problem("graph call with a token for https://api.botframework.com/.default"));
  auto connector_with_graph_token =
      request("POST", fake.service_url() + "v3/conversations/a%3A1/activities",
              R"({"type":"message"})",
              {{"Authorization", "Bearer " + graph_tok}, {"Content-Type", "application/json"}});
  EXPECT_EQ(connector_with_graph_token.status, 401);
  EXPECT_TRUE(has_problem("connector call with a token for https://graph.microsoft.com/.default"));

  auto basic_mode = request("GET", url, "", {{"Authorization", "Bearer " + graph_tok}});
  EXPECT_EQ(basic_mode.status, 400);
  EXPECT_TRUE(has_problem("without ConsistencyLevel"));
}

TEST_F(FakeBotFrameworkTest, InjectedFailuresAndInvalidatedTokensAnswerAsConfigured) {
  const std::string tok = token();
  const std::vector<std::pair<std::string, std::string>> auth{{"Authorization", "Bearer " + tok},
                                                              {"Content-Type", "application/json"}};
  const std::string url = fake.service_url() + "v3/conversations/a%3A1/activities";
  fake.fail_next(429, 1, 3);
  auto limited = request("POST", url, R"({"type":"message"})", auth);
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.header("retry-after"), "3");
  fake.block_next();
  auto blocked = request("POST", url, R"({"type":"message"})", auth);
  EXPECT_EQ(blocked.status, 403);
  EXPECT_NE(blocked.body.find("MessageWritesBlocked"), std::string::npos);
  EXPECT_EQ(request("POST", url, R"({"type":"message"})", auth).status, 201);
  fake.invalidate_tokens();
  EXPECT_EQ(request("POST", url, R"({"type":"message"})", auth).status, 401);
  EXPECT_TRUE(fake.problems.empty()) << fake.problems.front();
}

TEST_F(FakeBotFrameworkTest, PostActivityReachesAPlainHttpEndpoint) {
  common::HttpServerSettings s;
  s.port = 0;
  common::HttpServer server(io, s);
  std::optional<common::HttpRequest> seen;
  server.route("POST", "/api/messages", [&](const common::HttpRequest& r) {
    seen = r;
    return common::HttpResponse{200, "application/json", "{}", {}};
  });
  auto port = server.start();
  ASSERT_TRUE(port) << port.error().message;
  const json activity = fake.make_activity("deploy api");
  const std::string auth = "Bearer " + fake.token_for(activity);
  std::optional<int> status;
  fake.post_activity("http://127.0.0.1:" + std::to_string(*port) + "/api/messages", activity, auth,
                     [&](int st, std::string) { status = st; });
  ASSERT_TRUE(common::testing::run_until(io, [&] { return status.has_value(); }));
  EXPECT_EQ(*status, 200);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->headers["authorization"], auth);
  EXPECT_EQ(json::parse(seen->body), activity);
  EXPECT_EQ(activity["serviceUrl"], fake.service_url());
}

}  // namespace
}  // namespace runbot::testing
