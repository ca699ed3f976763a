// MattermostAdapter over FakeMattermost on loopback (HTTPS + WSS with a CA made in the test). A
// small handler stands in for the bot (it records what arrives and answers with Outbox::answer() inside
// the handler, as bot::Bot does); the first test runs the real bot::Bot.
#include <set>

#include <atomic>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "adapters/common/asio_clock.h"
#include "adapters/common/http_server.h"
#include "adapters/mattermost/mattermost_adapter.h"
#include "adapters/mattermost/mattermost_protocol.h"
#include "bot/app/config.h"
#include "bot/bot.h"
#include "adapters/common/asio_clock.h"
#include "bot/outbox.h"
#include "tests/adapters/common/run_until.h"
#include "tests/support/recording_job_queue.h"
#include "tests/support/fake_mattermost.h"

namespace runbot::mattermost {
namespace {

using namespace std::chrono_literals;
using common::testing::run_until;
using nlohmann::json;
using testing::FakeMattermost;

constexpr const char* kAlice = "aliceuserid000000000000000";
constexpr const char* kChannel = "chan-deploys";

class MattermostAdapterTest : public ::testing::Test {
 protected:
  MattermostAdapterTest() { fake.start(); }

  MattermostSettings settings() {
    MattermostSettings s;
    s.server_url = fake.server_url();
    s.token = "mm-bot-token";
    s.ca_file = ca.ca_file;
    s.slash_token = "slash-token-123";
    s.action_url = "https://runbot.internal/hooks/mattermost/action";
    s.action_secret = "button-secret";
    s.backoff_initial = 20ms;
    s.backoff_max = 200ms;
    s.ping_interval = 1000ms;
    s.idle_timeout = 5000ms;
    s.connect_timeout = 3000ms;
    s.request_timeout = 3000ms;
    return s;
  }

  void start(MattermostSettings s) {
    auto a = MattermostAdapter::create(io, std::move(s));
    ASSERT_TRUE(a) << a.error().message;
    adapter = std::move(*a);
    outbox.add_adapter(*adapter);
    adapter->on_started([this](bot::Status st) { startup = std::move(st); });
    adapter->start([this](const bot::InboundMessage& m) {
      inbound.push_back(m);
      bot::Message answer;
      answer.title = "Answer to " + m.text;
      outbox.answer(*adapter, m, answer);
    });
  }

  void start_connected() {
    start(settings());
    ASSERT_TRUE(until([&] { return startup.has_value(); })) << "no startup outcome";
    ASSERT_TRUE(*startup) << startup->error().message;
    ASSERT_TRUE(until([&] { return fake.socket_open() && fake.hellos_sent() == 1; }));
    EXPECT_TRUE(adapter->healthy()) << adapter->problem();
  }

  template <class Pred>
  bool until(Pred p, std::chrono::milliseconds limit = 5000ms) {
    return run_until(io, p, limit);
  }

  std::vector<std::string> texts() const {
    std::vector<std::string> out;
    for (const auto& m : inbound) out.push_back(m.text);
    return out;
  }

  void TearDown() override {
    if (adapter) adapter->stop();
    EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
  }

  testing::TestCa ca = testing::TestCa::make();
  boost::asio::io_context io;
  FakeMattermost fake{io, ca};
  std::unique_ptr<MattermostAdapter> adapter;
  // Answers go the way bot::Bot sends them: in-band, or through the outbox's answer lane.
  common::AsioClock clock{io};
  bot::Metrics metrics;
  bot::Outbox outbox{bot::OutboxSettings{}, clock, metrics};
  std::optional<bot::Status> startup;
  std::vector<bot::InboundMessage> inbound;
};

TEST_F(MattermostAdapterTest, MentionIsHandledAndAnsweredInItsThreadWhileOwnPostsAreIgnored) {
  start_connected();
  const std::string id = fake.post_as(kAlice, kChannel, "@runbot list");
  ASSERT_TRUE(until([&] { return fake.bot_posts().size() == 1; }));
  ASSERT_EQ(texts(), std::vector<std::string>{"list"});
  EXPECT_EQ(inbound[0].platform, "mattermost");
  EXPECT_EQ(inbound[0].user.str(), kAlice);
  EXPECT_EQ(inbound[0].channel.str(), kChannel);
  const json reply = fake.bot_posts()[0];
  EXPECT_EQ(reply["root_id"], id);
  EXPECT_NE(reply["message"].get<std::string>().find("Answer to list"), std::string::npos);
  // The answer comes back on the socket as the bot's own post: ignored, not answered again.
  ASSERT_TRUE(until([&] { return adapter->stats().ignored >= 1; }));
  fake.post_as(kAlice, kChannel, "no mention here");
  fake.post_as(kAlice, "dm-alice", "help");
  ASSERT_TRUE(until([&] { return inbound.size() == 2 && fake.bot_posts().size() == 2; }));
  EXPECT_EQ(inbound[1].text, "help");
  EXPECT_EQ(fake.bot_posts().back().value("root_id", ""), "") << "a DM is answered in the DM";
  EXPECT_EQ(adapter->stats().handled, 2u);
  // The client authenticated by header and challenge, with frames within the server's limit.
  ASSERT_FALSE(fake.client_frames.empty());
  EXPECT_EQ(fake.client_frames[0]["action"], "authentication_challenge");
}

TEST_F(MattermostAdapterTest, SocketDroppedMidBurstResumesWithNothingLostOrDuplicated) {
  start_connected();
  for (int i = 0; i < 10; ++i) fake.post_as(kAlice, kChannel, "@runbot describe env-" + std::to_string(i));
  ASSERT_TRUE(until([&] { return inbound.size() >= 3; }));
  fake.drop();
  for (int i = 10; i < 20; ++i) fake.post_as(kAlice, kChannel, "@runbot describe env-" + std::to_string(i));
  ASSERT_TRUE(until([&] { return inbound.size() >= 20 && fake.socket_open(); }))
      << inbound.size() << " " << ::testing::PrintToString(texts()) << " dup=" << adapter->stats().duplicates
      << " gaps=" << adapter->stats().gaps << " events=" << adapter->stats().events << " fake_seq=" << fake.last_seq();
  std::vector<std::string> want;
  for (int i = 0; i < 20; ++i) want.push_back("describe env-" + std::to_string(i));
  EXPECT_EQ(texts(), want);
  EXPECT_EQ(fake.resumes_accepted(), 1);
  EXPECT_EQ(fake.hellos_sent(), 1) << "a lossless resume has no new hello";
  EXPECT_EQ(adapter->stats().resumes, 1u);
  EXPECT_EQ(adapter->stats().catch_ups, 0u);
}

TEST_F(MattermostAdapterTest, UnreplayableGapIsCaughtUpOverRestWithoutHandlingAnythingTwice) {
  start_connected();
  fake.post_as(kAlice, kChannel, "@runbot describe before");
  ASSERT_TRUE(until([&] { return inbound.size() == 1; }));
  fake.drop();
  fake.forget_history();
  fake.post_as(kAlice, kChannel, "@runbot describe lost-1");
  fake.post_as(kAlice, "dm-alice", "describe lost-2");
  fake.post_as(kAlice, kChannel, "not for the bot");
  ASSERT_TRUE(until([&] { return adapter->stats().catch_ups == 1; }));
  ASSERT_TRUE(until([&] { return inbound.size() >= 3; }));
  const auto all = texts();
  std::multiset<std::string> got(all.begin(), all.end());
  EXPECT_EQ(got, (std::multiset<std::string>{"describe before", "describe lost-1", "describe lost-2"}));
  EXPECT_EQ(fake.hellos_sent(), 2) << "the failed resume gave a new connection";
  EXPECT_GE(adapter->stats().gaps, 1u);
  EXPECT_FALSE(fake.calls_to("GET", "/api/v4/channels/").empty());
  // Live traffic continues on the new connection.
  fake.post_as(kAlice, kChannel, "@runbot describe after");
  ASSERT_TRUE(until([&] { return inbound.size() == 4; }));
  EXPECT_EQ(inbound.back().text, "describe after");
}

// The server stops sending anything (no events, no pongs to runbot's pings) without closing
// the connection: the idle-timeout watchdog drops that socket and runbot resumes.
TEST_F(MattermostAdapterTest, SilentSocketIsReplacedByTheIdleWatchdogAndResumes) {
  auto s = settings();
  s.ping_interval = 100ms;  // pongs keep a healthy socket alive well within the idle timeout
  s.idle_timeout = 800ms;
  start(s);
  ASSERT_TRUE(until([&] { return startup.has_value() && fake.socket_open(); }));
  fake.post_as(kAlice, kChannel, "@runbot describe before");
  ASSERT_TRUE(until([&] { return inbound.size() == 1; }));
  fake.go_silent();
  // Sent while the socket is silent: buffered by the server and replayed on the resume.
  fake.post_as(kAlice, kChannel, "@runbot describe during");
  ASSERT_TRUE(until([&] { return fake.sockets_accepted() == 2 && fake.socket_open(); }))
      << "sockets=" << fake.sockets_accepted();
  ASSERT_TRUE(until([&] { return inbound.size() == 2; })) << ::testing::PrintToString(texts());
  fake.post_as(kAlice, kChannel, "@runbot describe after");
  ASSERT_TRUE(until([&] { return inbound.size() == 3; })) << ::testing::PrintToString(texts());
  EXPECT_EQ(texts(), (std::vector<std::string>{"describe before", "describe during", "describe after"}));
  EXPECT_EQ(fake.resumes_accepted(), 1) << "the replacement socket resumed the connection";
  EXPECT_EQ(fake.hellos_sent(), 1) << "a lossless resume has no new hello";
  EXPECT_EQ(adapter->stats().resumes, 1u);
  EXPECT_EQ(adapter->stats().connects, 2u);
  EXPECT_EQ(adapter->stats().catch_ups, 0u);
}

// An event lost in transit without the server announcing anything: runbot notices the seq gap
// at the next event itself, drops the connection_id, connects afresh and catches up over REST,
// handling the lost post and the one that revealed the gap exactly once each.
TEST_F(MattermostAdapterTest, SequenceGapNoticedByTheClientIsCaughtUpOverRestExactlyOnce) {
  start_connected();
  fake.post_as(kAlice, kChannel, "@runbot describe before");
  ASSERT_TRUE(until([&] { return inbound.size() == 1; }));
  const std::string first_connection = fake.connection_id();
  fake.lose_next_event();
  fake.post_as(kAlice, kChannel, "@runbot describe lost");
  fake.post_as(kAlice, "dm-alice", "describe next");
  ASSERT_TRUE(until([&] { return adapter->stats().catch_ups == 1; }));
  ASSERT_TRUE(until([&] { return inbound.size() >= 3; }));
  const auto all = texts();
  std::multiset<std::string> got(all.begin(), all.end());
  EXPECT_EQ(got, (std::multiset<std::string>{"describe before", "describe lost", "describe next"}));
  EXPECT_GE(adapter->stats().gaps, 1u);
  EXPECT_EQ(fake.sockets_accepted(), 2);
  EXPECT_EQ(fake.resumes_accepted(), 0) << "a gap is not resumed: the connection_id is dropped";
  EXPECT_EQ(fake.hellos_sent(), 2);
  EXPECT_NE(fake.connection_id(), first_connection);
  EXPECT_FALSE(fake.calls_to("GET", "/api/v4/channels/").empty());
  // Live traffic continues on the new connection, and nothing was handled twice.
  fake.post_as(kAlice, kChannel, "@runbot describe after");
  ASSERT_TRUE(until([&] { return inbound.size() == 4; })) << ::testing::PrintToString(texts());
  EXPECT_EQ(inbound.back().text, "describe after");
  EXPECT_EQ(adapter->stats().handled, 4u);
}

// A catch-up reads the channel page by page (200 a page, newest first) until it reaches back
// to the last post seen, so a lost command older than one page is still handled.
TEST_F(MattermostAdapterTest, CatchUpFollowsChannelPagesBackToTheLastPostSeen) {
  start_connected();
  fake.post_as(kAlice, kChannel, "@runbot describe before");
  ASSERT_TRUE(until([&] { return inbound.size() == 1 && fake.bot_posts().size() == 1; }));
  ASSERT_TRUE(until([&] { return adapter->stats().ignored >= 1; })) << "the bot's own answer was seen";
  fake.drop();
  fake.forget_history();
  fake.post_as(kAlice, kChannel, "@runbot describe lost-early");
  for (int i = 0; i < 450; ++i) fake.post_silently(kAlice, kChannel, "chatter " + std::to_string(i));
  fake.post_as(kAlice, kChannel, "@runbot describe lost-late");
  ASSERT_TRUE(until([&] { return adapter->stats().catch_ups == 1; }));
  ASSERT_TRUE(until([&] { return inbound.size() >= 3; }));
  EXPECT_EQ(texts(), (std::vector<std::string>{"describe before", "describe lost-early", "describe lost-late"}));
  std::vector<std::string> queries;
  for (const auto& c : fake.calls_to("GET", "/api/v4/channels/" + std::string(kChannel) + "/posts")) queries.push_back(c.query);
  EXPECT_EQ(queries, (std::vector<std::string>{"page=0&per_page=200", "page=1&per_page=200", "page=2&per_page=200"}));
}

// More lost posts than the bound (10 pages of 200): the newest are handled, the rest are left
// out with a warning rather than paging through a channel's whole history.
TEST_F(MattermostAdapterTest, CatchUpStopsAfterTenPages) {
  start_connected();
  fake.post_as(kAlice, kChannel, "@runbot describe before");
  ASSERT_TRUE(until([&] { return inbound.size() == 1 && adapter->stats().ignored >= 1; }));
  fake.drop();
  fake.forget_history();
  fake.post_as(kAlice, kChannel, "@runbot describe too-old");
  for (int i = 0; i < 2100; ++i) fake.post_silently(kAlice, kChannel, "chatter " + std::to_string(i));
  fake.post_as(kAlice, kChannel, "@runbot describe recent");
  ASSERT_TRUE(until([&] { return adapter->stats().catch_ups == 1; }));
  ASSERT_TRUE(until([&] { return inbound.size() >= 2; }));
  EXPECT_EQ(texts(), (std::vector<std::string>{"describe before", "describe recent"}));
  EXPECT_EQ(fake.calls_to("GET", "/api/v4/channels/" + std::string(kChannel) + "/posts").size(), 10u);
}

TEST_F(MattermostAdapterTest, MalformedEventsAreLoggedAndSurvived) {
  start_connected();
  fake.send_raw("this is not json");
  fake.send_event("posted", {{"post", "{broken"}, {"channel_type", "O"}});
  fake.send_event("posted", {{"post", 42}});
  fake.send_event("typing", {{"user_id", "x"}});
  fake.post_as(kAlice, kChannel, "@runbot list");
  ASSERT_TRUE(until([&] { return inbound.size() == 1; }));
  EXPECT_EQ(adapter->stats().malformed, 3u);
  EXPECT_EQ(fake.hellos_sent(), 1) << "no reconnect: a malformed event with a valid seq keeps the sequence";
  EXPECT_TRUE(adapter->healthy());
}

// An event over max_event_bytes is skipped without ending the socket for good: its seq is gone,
// so runbot starts afresh and catches the post up over REST, like any gap it notices. Before,
// the socket closed (1009), the resume replayed the same event and closed it again, forever.
TEST_F(MattermostAdapterTest, AnOversizedEventIsSkippedAndItsPostCaughtUpOverRest) {
  auto s = settings();
  s.max_event_bytes = 16 * 1024;
  start(s);
  ASSERT_TRUE(until([&] { return startup.has_value() && fake.socket_open(); }));
  fake.post_as(kAlice, kChannel, "@runbot describe before");
  ASSERT_TRUE(until([&] { return inbound.size() == 1; }));
  // A post whose event is over the limit (big props, say): the post is on the server, its event
  // arrives as one frame of 32 KiB.
  fake.post_silently(kAlice, kChannel, "@runbot describe big");
  fake.send_event("posted", {{"channel_type", "O"}, {"padding", std::string(32 * 1024, 'p')}});
  fake.post_as(kAlice, kChannel, "@runbot describe after");
  ASSERT_TRUE(until([&] { return inbound.size() >= 3 && adapter->stats().catch_ups == 1 && fake.socket_open(); }, 8000ms))
      << ::testing::PrintToString(texts()) << " sockets=" << fake.sockets_accepted();
  const auto all = texts();
  std::multiset<std::string> got(all.begin(), all.end());
  EXPECT_EQ(got, (std::multiset<std::string>{"describe before", "describe big", "describe after"}));
  EXPECT_EQ(adapter->stats().oversized, 1u);
  // Live traffic continues afterwards, and nothing was handled twice.
  fake.post_as(kAlice, kChannel, "@runbot describe later");
  ASSERT_TRUE(until([&] { return inbound.size() == 4; })) << ::testing::PrintToString(texts());
  EXPECT_EQ(adapter->stats().handled, 4u);
  EXPECT_EQ(fake.sockets_accepted(), 2) << "one fresh connection, not a reconnect loop";
}

common::HttpRequest slash_request(const std::string& token, const std::string& text) {
  common::HttpRequest r;
  r.method = "POST";
  r.path = r.target = "/hooks/mattermost/command";
  r.headers["content-type"] = "application/x-www-form-urlencoded";
  r.body = "channel_id=" + std::string(kChannel) + "&channel_name=deploys&command=%2Fephemeral&team_domain=acme&text=" +
           text + "&token=" + token + "&user_id=" + kAlice + "&user_name=alice";
  r.remote = "127.0.0.1:5555";
  return r;
}

TEST_F(MattermostAdapterTest, SlashCommandWithABadTokenGets401AndAValidOneIsAnswered) {
  start_connected();
  auto bad = adapter->handle_slash(slash_request("wrong-token-12", "list"));
  EXPECT_EQ(bad.status, 401);
  EXPECT_TRUE(inbound.empty());
  auto good = adapter->handle_slash(slash_request("slash-token-123", "up+front-end+pr-1"));
  EXPECT_EQ(good.status, 200);
  EXPECT_EQ(good.content_type, "application/json");
  json body = json::parse(good.body);
  EXPECT_EQ(body["response_type"], "ephemeral");
  EXPECT_NE(body["text"].get<std::string>().find("Answer to up front-end pr-1"), std::string::npos) << good.body;
  ASSERT_EQ(inbound.size(), 1u);
  EXPECT_EQ(inbound[0].user_name, "alice");
  EXPECT_FALSE(inbound[0].is_button);
  EXPECT_TRUE(fake.calls_to("POST", "/api/v4/posts").empty()) << "the answer is the HTTP response";
}

// The same slash command through runbot's real HTTP server, as Mattermost sends it.
TEST_F(MattermostAdapterTest, SlashCommandRoutesOnRunbotsHttpServer) {
  start_connected();
  common::HttpServerSettings hs;
  hs.port = 0;
  common::HttpServer server(io, hs);
  adapter->route(server);
  auto port = server.start();
  ASSERT_TRUE(port) << port.error().message;
  auto post = [&](const std::string& token) {
    // A plain blocking client on its own thread; the io_context keeps serving on this one.
    std::atomic<bool> done{false};
    std::string response;
    std::thread client([&] {
      boost::asio::io_context cio;
      boost::asio::ip::tcp::socket sock(cio);
      boost::system::error_code ec;
      sock.connect({boost::asio::ip::make_address("127.0.0.1"), *port}, ec);
      if (!ec) {
        const std::string body = slash_request(token, "help").body;
        const std::string req = "POST /hooks/mattermost/command HTTP/1.1\r\nHost: runbot\r\n"
                                "Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n"
                                "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        boost::asio::write(sock, boost::asio::buffer(req), ec);
        char buf[4096];
        for (size_t n; (n = sock.read_some(boost::asio::buffer(buf), ec)) > 0 || !ec;) response.append(buf, n);
      }
      done = true;
    });
    EXPECT_TRUE(until([&] { return done.load(); }));
    client.join();
    return response;
  };
  const std::string denied = post("wrong-token-12");
  EXPECT_EQ(denied.rfind("HTTP/1.1 401", 0), 0u) << denied;
  const std::string answered = post("slash-token-123");
  EXPECT_EQ(answered.rfind("HTTP/1.1 200", 0), 0u) << answered;
  EXPECT_NE(answered.find("Answer to help"), std::string::npos) << answered;
  server.stop();
}

TEST_F(MattermostAdapterTest, ButtonClickPerformsItsActionAndForgedClicksAreRefused) {
  start_connected();
  auto click = [&](const std::string& action, const std::string& value, const std::string& sig) {
    common::HttpRequest r;
    r.method = "POST";
    r.path = r.target = "/hooks/mattermost/action";
    r.body = json{{"user_id", kAlice}, {"post_id", "cardpost"}, {"channel_id", kChannel}, {"team_id", "team1"},
                  {"context", {{"action", action}, {"value", value}, {"sig", sig}}}}.dump();
    return adapter->handle_action(r);
  };
  auto ok = click("extend", "front-end-pr-1 4h", sign_action("button-secret", "extend", "front-end-pr-1 4h"));
  EXPECT_EQ(ok.status, 200);
  ASSERT_EQ(inbound.size(), 1u);
  EXPECT_TRUE(inbound[0].is_button);
  EXPECT_EQ(inbound[0].text, *bot::command_for_button("extend", "front-end-pr-1 4h"));
  EXPECT_EQ(inbound[0].thread, "cardpost");
  EXPECT_NE(json::parse(ok.body)["ephemeral_text"].get<std::string>().find("Answer to extend"), std::string::npos);
  auto forged = click("down", "front-end-pr-1", "0000");
  EXPECT_EQ(forged.status, 401);
  EXPECT_EQ(inbound.size(), 1u);
  auto garbage = adapter->handle_action(common::HttpRequest{"POST", "/a", "/a", {}, {}, "nope", "x"});
  EXPECT_EQ(garbage.status, 400);
}

TEST_F(MattermostAdapterTest, RateLimitIsReportedWithRetryAfterAndEditsPatchTheCard) {
  start_connected();
  bot::PostRequest req;
  req.channel = bot::ChannelId{kChannel};
  req.message.kind = bot::NoticeKind::status_card;
  req.message.title = "front-end-pr-1 is ready";
  std::optional<bot::Result<bot::PostResult>> out;
  fake.rate_limit_next("POST /posts", 3);
  adapter->post(req, [&](bot::Result<bot::PostResult> r) { out = std::move(r); });
  ASSERT_TRUE(until([&] { return out.has_value(); }));
  ASSERT_FALSE(*out);
  EXPECT_EQ(out->error().code, bot::Errc::rate_limited);
  EXPECT_EQ(out->error().retry_after, 3s);
  out.reset();
  adapter->post(req, [&](bot::Result<bot::PostResult> r) { out = std::move(r); });
  ASSERT_TRUE(until([&] { return out.has_value(); }));
  ASSERT_TRUE(*out) << out->error().message;
  const std::string card = (*out)->message_id;
  req.edit = card;
  req.message.title = "front-end-pr-1 was torn down";
  out.reset();
  adapter->post(req, [&](bot::Result<bot::PostResult> r) { out = std::move(r); });
  ASSERT_TRUE(until([&] { return out.has_value(); }));
  ASSERT_TRUE(*out) << out->error().message;
  EXPECT_EQ((*out)->message_id, card);
  ASSERT_EQ(fake.calls_to("PUT", "/api/v4/posts/" + card + "/patch").size(), 1u);
  fake.fail_next("POST /posts", 403);
  out.reset();
  req.edit.clear();
  adapter->post(req, [&](bot::Result<bot::PostResult> r) { out = std::move(r); });
  ASSERT_TRUE(until([&] { return out.has_value(); }));
  ASSERT_FALSE(*out);
  EXPECT_EQ(out->error().code, bot::Errc::unauthorized);
  EXPECT_FALSE(adapter->healthy()) << "a rejected token shows in /readyz";
}

// A `socket: false` replica (README, "One connection per deployment"): no WebSocket, while
// posting over REST, the slash command and buttons on the HTTP endpoints still work.
TEST_F(MattermostAdapterTest, SocketFalseReplicaOpensNoSocketButPostsAndServesHttp) {
  auto s = settings();
  s.socket = false;
  start(s);
  ASSERT_TRUE(until([&] { return startup.has_value(); }));
  ASSERT_TRUE(*startup) << startup->error().message;
  EXPECT_TRUE(adapter->healthy()) << adapter->problem();
  bot::PostRequest req;
  req.channel = bot::ChannelId{kChannel};
  req.message.kind = bot::NoticeKind::status_card;
  req.message.title = "front-end-pr-1 is ready";
  std::optional<bot::Result<bot::PostResult>> out;
  adapter->post(req, [&](bot::Result<bot::PostResult> r) { out = std::move(r); });
  ASSERT_TRUE(until([&] { return out.has_value(); }));
  ASSERT_TRUE(*out) << out->error().message;
  ASSERT_EQ(fake.bot_posts().size(), 1u);
  EXPECT_EQ(fake.bot_posts()[0]["channel_id"], kChannel);
  auto slash = adapter->handle_slash(slash_request("slash-token-123", "list"));
  EXPECT_EQ(slash.status, 200);
  EXPECT_NE(json::parse(slash.body)["text"].get<std::string>().find("Answer to list"), std::string::npos) << slash.body;
  common::HttpRequest click;
  click.method = "POST";
  click.path = click.target = "/hooks/mattermost/action";
  click.body = json{{"user_id", kAlice}, {"post_id", (*out)->message_id}, {"channel_id", kChannel}, {"team_id", "team1"},
                    {"context", {{"action", "extend"}, {"value", "front-end-pr-1 4h"},
                                 {"sig", sign_action("button-secret", "extend", "front-end-pr-1 4h")}}}}.dump();
  auto clicked = adapter->handle_action(click);
  EXPECT_EQ(clicked.status, 200);
  EXPECT_NE(json::parse(clicked.body)["ephemeral_text"].get<std::string>().find("Answer to extend"), std::string::npos);
  ASSERT_EQ(inbound.size(), 2u);
  EXPECT_TRUE(inbound[1].is_button);
  // Posts made on the server meanwhile reach no one here: this replica does not read.
  fake.post_as(kAlice, kChannel, "@runbot list");
  out.reset();
  req.message.title = "front-end-pr-2 is ready";
  adapter->post(req, [&](bot::Result<bot::PostResult> r) { out = std::move(r); });
  ASSERT_TRUE(until([&] { return out.has_value(); }));
  ASSERT_TRUE(*out) << out->error().message;
  EXPECT_EQ(fake.bot_posts().size(), 2u);
  EXPECT_EQ(fake.sockets_accepted(), 0);
  EXPECT_EQ(adapter->stats().connects, 0u);
  EXPECT_EQ(inbound.size(), 2u);
  EXPECT_TRUE(adapter->healthy()) << adapter->problem();
}

TEST_F(MattermostAdapterTest, ARejectedTokenIsReportedOnceAndNotRetried) {
  auto s = settings();
  s.token = "wrong";
  start(s);
  ASSERT_TRUE(until([&] { return startup.has_value(); }));
  ASSERT_FALSE(*startup);
  EXPECT_EQ(startup->error().code, bot::Errc::unauthorized);
  EXPECT_FALSE(startup->error().is_retryable());
  EXPECT_EQ(fake.calls_to("GET", "/api/v4/users/me").size(), 1u);
  EXPECT_EQ(fake.sockets_accepted(), 0);
  EXPECT_FALSE(adapter->healthy());
}

using CountingJobQueue = testing::RecordingJobQueue;

TEST(MattermostBotFlow, AMentionBecomesAJobAndAnAnswerInTheThread) {
  auto ca = testing::TestCa::make();
  boost::asio::io_context io;
  FakeMattermost fake(io, ca);
  fake.start();
  common::AsioClock clock(io);
  auto cfg = app::parse_config(app::demo_config_yaml(), {});
  ASSERT_TRUE(cfg) << cfg.error().message;
  bot::Metrics metrics;
  CountingJobQueue jobs(clock);
  bot::Outbox outbox(cfg->outbox, clock, metrics);
  bot::Bot the_bot(cfg->bot, bot::Registry{}, clock, jobs, outbox, metrics, nullptr);
  MattermostSettings s;
  s.server_url = fake.server_url();
  s.token = "mm-bot-token";
  s.ca_file = ca.ca_file;
  auto adapter = MattermostAdapter::create(io, s);
  ASSERT_TRUE(adapter) << adapter.error().message;
  std::optional<bot::Status> started;
  (*adapter)->on_started([&](bot::Status st) { started = st; });
  the_bot.attach(**adapter);
  the_bot.start();
  ASSERT_TRUE(run_until(io, [&] { return started.has_value(); }));
  ASSERT_TRUE(*started) << started->error().message;
  ASSERT_TRUE(run_until(io, [&] { return fake.socket_open(); }));

  const std::string id = fake.post_as(kAlice, kChannel, "@runbot up front-end pr-123");
  ASSERT_TRUE(run_until(io, [&] {
    for (const auto& p : fake.bot_posts()) {
      if (p.value("root_id", "") == id && p.value("message", "").find("Creating front-end-pr-123") != std::string::npos) return true;
    }
    return false;
  })) << ::testing::PrintToString(fake.bot_posts().size());
  ASSERT_EQ(jobs.jobs.size(), 1u);
  EXPECT_EQ(jobs.jobs[0].verb, bot::JobVerb::up);
  EXPECT_EQ(jobs.jobs[0].env.str(), "front-end-pr-123");
  EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
  the_bot.stop();
  (*adapter)->stop();
}

}  // namespace
}  // namespace runbot::mattermost
