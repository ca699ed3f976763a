// BotConnector against FakeBotFramework on loopback: the token endpoint and the connector REST
// calls, with a FakeClock for token expiry and a fixed jitter.
#include <optional>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "adapters/common/https_client.h"
#include "adapters/teams/bot_connector.h"
#include "adapters/teams/graph_client.h"
#include "tests/adapters/common/run_until.h"
#include "tests/support/fake_bot_framework.h"
#include "tests/support/fake_clock.h"

namespace runbot::teams {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::FakeBotFramework;

constexpr const char* kChannelThread = "19:0b7f3ab4c5d6@thread.tacv2;messageid=1714557600123";

class BotConnectorTest : public ::testing::Test {
 protected:
  BotConnectorTest() {
    fake.start();
    settings.app_id = fake.settings().app_id;
    settings.app_password = fake.settings().app_password;
    settings.tenant_id = fake.settings().tenant_id;
    settings.token_url = fake.token_url();
    settings.timeout = 3000ms;
    make_connector();
  }
  ~BotConnectorTest() override {
    if (check_problems) {
      EXPECT_TRUE(fake.problems.empty()) << fake.problems.front();
    }
  }

  void make_connector() {
    connector.reset();
    connector.emplace(http, settings, clock, [] { return 0.5; });  // jitter factor exactly 1
    connector->trust_service_url(fake.service_url());
  }

  static testing::FakeBotFrameworkSettings fake_settings(testing::FakeClock& c) {
    testing::FakeBotFrameworkSettings s;
    s.now = [&c] { return c.now(); };
    return s;
  }
  static std::shared_ptr<common::TlsContext> tls(const testing::TestCa& ca) {
    auto t = common::TlsContext::create(ca.ca_file);
    if (!t) throw std::runtime_error(t.error().message);
    return *t;
  }

  template <class Pred>
  bool until(Pred p) {
    return common::testing::run_until(io, [&] {
      clock.run_due();
      return p();
    });
  }

  template <class T, class Start>
  bot::Result<T> wait(Start start) {
    std::optional<bot::Result<T>> out;
    int calls = 0;
    start([&](bot::Result<T> r) {
      ++calls;
      out.emplace(std::move(r));
    });
    EXPECT_EQ(calls, 0) << "callback ran inside the call";
    EXPECT_TRUE(until([&] { return out.has_value(); })) << "no outcome";
    EXPECT_EQ(calls, 1);
    if (!out) return bot::make_error(bot::Errc::internal, "no outcome");
    return *out;
  }

  bot::Result<std::string> send(const std::string& conversation = "a:1fake-personal-chat",
                                const std::string& service_url = "") {
    const std::string url = service_url.empty() ? fake.service_url() : service_url;
    return wait<std::string>([&](BotConnector::IdCallback done) {
      connector->send(url, conversation, json{{"type", "message"}, {"text", "hello"}},
                      std::move(done));
    });
  }

  boost::asio::io_context io;
  testing::TestCa ca = testing::TestCa::make();
  testing::FakeClock clock{bot::TimePoint{std::chrono::seconds(1'800'000'000)}};
  FakeBotFramework fake{io, ca, fake_settings(clock)};
  common::HttpsClient http{io, tls(ca)};
  ConnectorSettings settings;
  std::optional<BotConnector> connector;
  bool check_problems = true;
};

TEST_F(BotConnectorTest, SendPostsTheActivityAndGivesItsId) {
  auto id = send();
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_FALSE(id->empty());
  ASSERT_EQ(fake.calls.size(), 1u);
  const auto& call = fake.calls[0];
  EXPECT_EQ(call.method, "POST");
  EXPECT_EQ(call.segments, (std::vector<std::string>{"a:1fake-personal-chat", "activities"}));
  EXPECT_EQ(call.body["text"], "hello");
  EXPECT_EQ(call.status, 201);
}

TEST_F(BotConnectorTest, ConversationAndActivityIdsAreUrlEncoded) {
  auto id = wait<std::string>([&](BotConnector::IdCallback done) {
    connector->reply(fake.service_url(), kChannelThread, "1714557600123",
                     json{{"type", "message"}, {"text", "r"}}, std::move(done));
  });
  ASSERT_TRUE(id) << id.error().message;
  ASSERT_EQ(fake.calls.size(), 1u);
  EXPECT_EQ(fake.calls[0].segments,
            (std::vector<std::string>{kChannelThread, "activities", "1714557600123"}));
  EXPECT_NE(fake.calls[0].path.find("19%3A0b7f3ab4c5d6%40thread.tacv2%3Bmessageid%3D1714557600123"),
            std::string::npos)
      << fake.calls[0].path;
  EXPECT_EQ(fake.calls[0].body["replyToId"], "1714557600123") << "reply() sets replyToId";
}

TEST_F(BotConnectorTest, ServiceUrlWithoutTrailingSlashGivesTheSamePath) {
  std::string url = fake.service_url();
  url.pop_back();
  ASSERT_TRUE(connector->is_trusted(url)) << "trailing slashes do not matter for trust";
  auto id = send("a:1", url);
  ASSERT_TRUE(id) << id.error().message;
  ASSERT_EQ(fake.calls.size(), 1u);
  EXPECT_EQ(fake.calls[0].path, "/amer/v3/conversations/a%3A1/activities");
}

TEST_F(BotConnectorTest, UpdateUsesPutAndCreateConversationGivesTheNewId) {
  auto updated = wait<std::string>([&](BotConnector::IdCallback done) {
    connector->update(fake.service_url(), kChannelThread, "1714557600999",
                      json{{"type", "message"}, {"text", "v2"}}, std::move(done));
  });
  ASSERT_TRUE(updated) << updated.error().message;
  EXPECT_EQ(*updated, "1714557600999");
  auto created = wait<json>([&](BotConnector::JsonCallback done) {
    connector->create_conversation(fake.service_url(),
                                   json{{"bot", {{"id", "28:" + settings.app_id}}},
                                        {"members", {{{"id", "29:1alice"}}}},
                                        {"channelData", {{"tenant", {{"id", settings.tenant_id}}}}},
                                        {"tenantId", settings.tenant_id}},
                                   std::move(done));
  });
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_EQ((*created)["id"].get<std::string>().rfind("a:", 0), 0u);
  ASSERT_EQ(fake.calls.size(), 2u);
  EXPECT_EQ(fake.calls[0].method, "PUT");
  EXPECT_EQ(fake.calls[1].method, "POST");
  EXPECT_TRUE(fake.calls[1].segments.empty());
  EXPECT_EQ(connector->token_requests(), 1u);
}

// The "get conversation member" call behind e-mail role bindings: a GET without a body, every
// segment encoded, the member's account as the answer; 404 is not_found, 5xx stays retryable, and
// an untrusted service URL gets no token.
TEST_F(BotConnectorTest, GetMemberGivesTheAccountAndNotFoundForStrangers) {
  fake.add_member(kChannelThread, "29:1dana", "dana@acme.dev", "dana@acme.onmicrosoft.com");
  auto get = [&](const std::string& url, const std::string& user) {
    return wait<json>([&](BotConnector::JsonCallback done) {
      connector->get_member(url, kChannelThread, user, std::move(done));
    });
  };
  auto found = get(fake.service_url(), "29:1dana");
  ASSERT_TRUE(found) << found.error().message;
  EXPECT_EQ((*found)["email"], "dana@acme.dev");
  EXPECT_EQ((*found)["userPrincipalName"], "dana@acme.onmicrosoft.com");
  ASSERT_EQ(fake.calls.size(), 1u);
  EXPECT_EQ(fake.calls[0].method, "GET");
  EXPECT_EQ(fake.calls[0].segments,
            (std::vector<std::string>{kChannelThread, "members", "29:1dana"}));
  EXPECT_NE(fake.calls[0].path.find("/members/29%3A1dana"), std::string::npos)
      << fake.calls[0].path;

  auto stranger = get(fake.service_url(), "29:1nobody");
  ASSERT_FALSE(stranger);
  EXPECT_EQ(stranger.error().code, bot::Errc::not_found) << stranger.error().message;

  fake.fail_next(503);
  auto down = get(fake.service_url(), "29:1dana");
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code, bot::Errc::unavailable);

  auto evil = get("https://evil.example.com/amer/", "29:1dana");
  ASSERT_FALSE(evil);
  EXPECT_EQ(evil.error().code, bot::Errc::invalid_argument);
  EXPECT_EQ(fake.member_requests(), 3) << "the untrusted call never reached the network";
}

TEST_F(BotConnectorTest, TokenIsCachedAcrossSends) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(send());
  EXPECT_EQ(fake.token_requests(), 1);
  EXPECT_EQ(connector->token_requests(), 1u);
  EXPECT_EQ(fake.calls.size(), 5u);
}

TEST_F(BotConnectorTest, ConcurrentSendsShareOneTokenRequest) {
  int done = 0;
  for (int i = 0; i < 4; ++i) {
    connector->send(fake.service_url(), "a:" + std::to_string(i),
                    json{{"type", "message"}, {"text", "x"}},
                    [&](bot::Result<std::string> r) { done += r ? 1 : 0; });
  }
  ASSERT_TRUE(until([&] { return done == 4; }));
  EXPECT_EQ(fake.token_requests(), 1);
}

TEST_F(BotConnectorTest, TokenIsRefreshedBeforeItExpires) {
  ASSERT_TRUE(send());  // expires_in 3600, refresh_before 300
  clock.advance(3300s - 1s);
  ASSERT_TRUE(send());
  EXPECT_EQ(fake.token_requests(), 1) << "still fresh";
  clock.advance(2s);
  ASSERT_TRUE(send());
  EXPECT_EQ(fake.token_requests(), 2) << "renewed five minutes before expiry";
  const auto tokens = fake.issued_tokens();
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_NE(tokens[0], tokens[1]);
}

TEST_F(BotConnectorTest, ShortLivedTokenIsRenewedHalfWay) {
  fake.set_expires_in(200);  // less than refresh_before
  ASSERT_TRUE(send());
  ASSERT_TRUE(send());
  EXPECT_EQ(fake.token_requests(), 1) << "not refetched on every call";
  clock.advance(101s);
  ASSERT_TRUE(send());
  EXPECT_EQ(fake.token_requests(), 2);
}

TEST_F(BotConnectorTest, RejectedTokenIsRefreshedAndTheCallRetriedOnce) {
  ASSERT_TRUE(send());
  fake.invalidate_tokens();
  auto id = send();
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(fake.token_requests(), 2);
  ASSERT_EQ(fake.calls.size(), 3u);
  EXPECT_EQ(fake.calls[1].status, 401);
  EXPECT_EQ(fake.calls[2].status, 201);
}

TEST_F(BotConnectorTest, SecondUnauthorizedIsNotRetriedAgain) {
  fake.fail_next(401, 5);
  auto id = send();
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().code, bot::Errc::unauthorized);
  EXPECT_FALSE(id.error().is_retryable());
  EXPECT_EQ(fake.calls.size(), 2u) << "one retry only";
  EXPECT_EQ(fake.token_requests(), 2);
}

TEST_F(BotConnectorTest, TooManyRequestsIsRateLimitedWithRetryAfterAndNotRetriedHere) {
  fake.fail_next(429, 1, 7);
  auto id = send();
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().code, bot::Errc::rate_limited);
  EXPECT_EQ(id.error().retry_after, 7s);
  EXPECT_EQ(fake.calls.size(), 1u) << "the outbox retries, not the connector";
  fake.fail_next(429, 1);
  auto again = send();
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, bot::Errc::rate_limited);
  EXPECT_EQ(again.error().retry_after, 4s)
      << "no Retry-After: the backoff hint for a second failure";
}

TEST_F(BotConnectorTest, ServerErrorsBackOffPerConversationAndResetOnSuccess) {
  fake.fail_next(502);
  auto first = send();
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().code, bot::Errc::unavailable);
  EXPECT_EQ(first.error().retry_after, 2s);
  fake.fail_next(504);
  auto second = send();
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().retry_after, 4s);
  fake.fail_next(412);
  auto other = send("a:other-conversation");
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, bot::Errc::unavailable);
  EXPECT_EQ(other.error().retry_after, 2s) << "another conversation has its own count";
  ASSERT_TRUE(send());
  fake.fail_next(502);
  auto after = send();
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().retry_after, 2s) << "a success resets the count";
  EXPECT_EQ(fake.calls.size(), 5u) << "no retries inside the connector";
}

TEST_F(BotConnectorTest, BlockedBotIsReportedAsSuch) {
  fake.block_next();
  auto id = send();
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().code, bot::Errc::invalid_argument);
  EXPECT_TRUE(is_blocked_error(id.error())) << id.error().message;
  fake.too_big_next();
  auto big = send();
  ASSERT_FALSE(big);
  EXPECT_FALSE(is_blocked_error(big.error()));
  EXPECT_NE(big.error().message.find("message too big"), std::string::npos);
}

TEST_F(BotConnectorTest, UntrustedServiceUrlIsRefusedWithoutNetworkIo) {
  make_connector();
  const std::string evil = "https://evil.example.com/amer/";
  for (const std::string& url : {evil, fake.base_url() + "/emea/"}) {
    auto id = send("a:1", url);
    ASSERT_FALSE(id);
    EXPECT_EQ(id.error().code, bot::Errc::invalid_argument);
    EXPECT_NE(id.error().message.find("untrusted service url"), std::string::npos)
        << id.error().message;
  }
  auto created = wait<json>([&](BotConnector::JsonCallback done) {
    connector->create_conversation(evil, json{{"isGroup", true}}, std::move(done));
  });
  EXPECT_FALSE(created);
  EXPECT_EQ(fake.token_requests(), 0) << "not even a token was fetched";
  EXPECT_TRUE(fake.calls.empty());
  EXPECT_EQ(http.connections_opened(), 0u);
}

TEST_F(BotConnectorTest, WrongSecretIsUnauthorizedWithoutLeakingIt) {
  check_problems = false;  // the fake rightly flags the wrong secret
  settings.app_password = "wrong-secret-value";
  make_connector();
  auto id = send();
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().code, bot::Errc::unauthorized);
  EXPECT_NE(id.error().message.find("invalid_client"), std::string::npos) << id.error().message;
  EXPECT_EQ(id.error().message.find("wrong-secret-value"), std::string::npos);
  EXPECT_TRUE(fake.calls.empty()) << "no connector call without a token";
  ASSERT_EQ(fake.problems.size(), 1u);
  EXPECT_NE(fake.problems[0].find("client_secret"), std::string::npos);
}

TEST_F(BotConnectorTest, UnreachableConnectorIsUnavailableWithAHint) {
  ASSERT_TRUE(send());
  fake.stop();
  auto id = send();
  ASSERT_FALSE(id);
  EXPECT_TRUE(id.error().is_retryable()) << id.error().message;
  EXPECT_GE(id.error().retry_after, 1600ms);
}

// ---- Microsoft Graph: a user's groups, with a token of its own scope ----

class GraphClientTest : public BotConnectorTest {
 protected:
  GraphClientTest() {
    graph_settings.url = fake.graph_url();
    graph_settings.scope = fake.settings().graph_scope;
    graph.emplace(http, settings, graph_settings, clock);
  }

  bot::Result<std::vector<DirectoryGroup>> groups_of(const std::string& oid) {
    return wait<std::vector<DirectoryGroup>>(
        [&](GraphClient::GroupsCallback done) { graph->member_groups(oid, std::move(done)); });
  }

  static std::vector<std::pair<std::string, std::string>> numbered(int n) {
    std::vector<std::pair<std::string, std::string>> out;
    for (int i = 1; i <= n; ++i)
      out.emplace_back("0000000" + std::to_string(i) + "-group", "team-" + std::to_string(i));
    return out;
  }

  GraphSettings graph_settings;
  std::optional<GraphClient> graph;
  const std::string alice = "7faf8ab2-0000-0000-0000-000000000001";
};

TEST_F(GraphClientTest, EveryPageOfGroupsIsFollowedWithAGraphToken) {
  fake.set_groups(alice, numbered(5));
  auto groups = groups_of(alice);
  ASSERT_TRUE(groups) << groups.error().message;
  ASSERT_EQ(groups->size(), 5u);
  EXPECT_EQ(groups->front(), (DirectoryGroup{"00000001-group", "team-1"}));
  EXPECT_EQ(groups->back(), (DirectoryGroup{"00000005-group", "team-5"}));
  EXPECT_EQ(fake.graph_requests(), 1) << "five groups fit one page of 100";
  EXPECT_EQ(graph->token_requests(), 1u);

  // A directory that pages: 5 groups, 2 per page → 3 requests, one token.
  testing::FakeBotFrameworkSettings paging = fake_settings(clock);
  paging.graph_page_size = 2;
  FakeBotFramework pager{io, ca, paging};
  pager.start();
  pager.set_groups(alice, numbered(5));
  ConnectorSettings at_pager = settings;
  at_pager.token_url = pager.token_url();
  GraphSettings gs{pager.graph_url(), pager.settings().graph_scope, 10};
  GraphClient paged(http, at_pager, gs, clock);
  auto all = wait<std::vector<DirectoryGroup>>(
      [&](GraphClient::GroupsCallback done) { paged.member_groups(alice, std::move(done)); });
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(all->size(), 5u);
  EXPECT_EQ(pager.graph_requests(), 3);
  EXPECT_EQ(paged.token_requests(), 1u);
  EXPECT_TRUE(pager.problems.empty()) << pager.problems.front();

  // More pages than allowed is an error, not a silently short list.
  GraphSettings short_gs = gs;
  short_gs.max_pages = 2;
  GraphClient capped(http, at_pager, short_gs, clock);
  auto too_many = wait<std::vector<DirectoryGroup>>(
      [&](GraphClient::GroupsCallback done) { capped.member_groups(alice, std::move(done)); });
  ASSERT_FALSE(too_many);
  EXPECT_EQ(too_many.error().code, bot::Errc::invalid_argument);
  EXPECT_NE(too_many.error().message.find("more than 2 pages"), std::string::npos)
      << too_many.error().message;
}

TEST_F(GraphClientTest, AMissingPermissionNamesTheOneToGrant) {
  fake.set_groups(alice, numbered(1));
  fake.deny_graph(true);
  auto denied = groups_of(alice);
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code, bot::Errc::unauthorized);
  EXPECT_NE(denied.error().message.find("Authorization_RequestDenied"), std::string::npos)
      << denied.error().message;
  EXPECT_NE(denied.error().message.find("GroupMember.Read.All"), std::string::npos)
      << denied.error().message;
  for (const auto& tok : fake.issued_tokens())
    EXPECT_EQ(denied.error().message.find(tok), std::string::npos) << "token leaked";
}

TEST_F(GraphClientTest, UnknownUsersFailuresAndMissingIdsAreEachTheirOwnError) {
  auto stranger = groups_of("99999999-0000-0000-0000-000000000000");
  ASSERT_FALSE(stranger);
  EXPECT_EQ(stranger.error().code, bot::Errc::not_found) << stranger.error().message;

  fake.set_groups(alice, numbered(1));
  fake.fail_graph_next(503);
  auto down = groups_of(alice);
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code, bot::Errc::unavailable) << down.error().message;
  fake.fail_graph_next(429);
  auto busy = groups_of(alice);
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code, bot::Errc::rate_limited) << busy.error().message;

  const int before = fake.graph_requests();
  auto no_id = groups_of("");
  ASSERT_FALSE(no_id);
  EXPECT_NE(no_id.error().message.find("aadObjectId"), std::string::npos) << no_id.error().message;
  EXPECT_EQ(fake.graph_requests(), before) << "nothing to ask Graph about";

  auto fine = groups_of(alice);
  ASSERT_TRUE(fine) << fine.error().message;
  EXPECT_EQ(fine->size(), 1u);
}

TEST_F(GraphClientTest, ARevokedTokenIsRenewedOnceAndTheConnectorTokenIsNeverSentToGraph) {
  fake.set_groups(alice, numbered(2));
  ASSERT_TRUE(send()) << "the connector has its own token";
  ASSERT_TRUE(groups_of(alice));
  EXPECT_EQ(fake.token_requests(), 2) << "one token per scope";

  fake.invalidate_tokens();
  auto again = groups_of(alice);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(graph->token_requests(), 2u);
  EXPECT_EQ(fake.graph_requests(), 2) << "the 401 is answered before the route is counted";
  // The fake notes any call made with the other scope's token (checked by the fixture).
}

}  // namespace
}  // namespace runbot::teams
