// WebSocketClient (and HttpsClient's plain mode) against a loopback WebSocket and REST server:
// FakeMattermost, whose socket can write any text frame with send_raw. Over wss:// with a CA made
// in the test, and over ws:// / http:// with the fake's plain mode.
#include "adapters/common/websocket_client.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <gtest/gtest.h>

#include "adapters/common/https_client.h"
#include "adapters/common/tls_context.h"
#include "tests/adapters/common/run_until.h"
#include "tests/support/fake_mattermost.h"
#include "tests/support/tls_test_ca.h"

namespace runbot::common {
namespace {

using namespace std::chrono_literals;
using testing::run_until;

runbot::testing::FakeMattermostSettings plain_server() {
  runbot::testing::FakeMattermostSettings s;
  s.tls = false;
  return s;
}

class WebSocketClientTest : public ::testing::Test {
 protected:
  explicit WebSocketClientTest(runbot::testing::FakeMattermostSettings server = {}) : fake(io, ca, std::move(server)) {
    fake.start();
  }

  std::string socket_url() const {
    const std::string base = fake.server_url();
    return (base.rfind("https://", 0) == 0 ? "wss://" + base.substr(8) : "ws://" + base.substr(7)) + "/api/v4/websocket";
  }

  WebSocketSettings settings() const {
    WebSocketSettings s;
    s.connect_timeout = 3000ms;
    s.ping_interval = 1000ms;
    s.idle_timeout = 5000ms;
    s.headers.emplace_back("Authorization", "Bearer mm-bot-token");
    return s;
  }

  // Connects and waits for the open and for the server's hello (the first message).
  void connect(WebSocketSettings s) {
    auto tls = TlsContext::create(ca.ca_file);
    ASSERT_TRUE(tls) << tls.error().message;
    client = std::make_unique<WebSocketClient>(io, *tls, std::move(s));
    client->on_message([this](std::string text) { messages.push_back(std::move(text)); });
    client->on_closed([this](const WebSocketClosed& why) { closed = why; });
    client->on_oversized([this](std::size_t bytes) { oversized.push_back(bytes); });
    client->connect(socket_url(), [this](bot::Status st) { opened = std::move(st); });
    ASSERT_TRUE(run_until(io, [&] { return opened.has_value(); })) << "no open outcome";
    ASSERT_TRUE(*opened) << opened->error().message;
    ASSERT_TRUE(run_until(io, [&] { return !messages.empty(); })) << "no hello";
    EXPECT_NE(messages[0].find("\"hello\""), std::string::npos) << messages[0];
  }

  runbot::testing::TestCa ca = runbot::testing::TestCa::make();
  boost::asio::io_context io;
  runbot::testing::FakeMattermost fake;
  std::unique_ptr<WebSocketClient> client;
  std::optional<bot::Status> opened;
  std::vector<std::string> messages;
  std::optional<WebSocketClosed> closed;
  std::vector<std::size_t> oversized;  // sizes reported by on_oversized
};

// A message over max_message_bytes is read to its end and dropped; the socket stays open and the
// messages after it arrive, in order, on the same connection.
TEST_F(WebSocketClientTest, AnOversizedMessageIsSkippedAndTheNextOneArrivesOnTheSameSocket) {
  auto s = settings();
  s.max_message_bytes = 64 * 1024;
  connect(s);
  const std::string at_limit(s.max_message_bytes, 'y');
  fake.send_raw("before");
  fake.send_raw(std::string(std::size_t{1} << 20, 'x'));  // 1 MiB, 16 times the limit
  fake.send_raw("after");
  fake.send_raw(std::string(s.max_message_bytes + 1, 'z'));  // one byte over
  fake.send_raw(at_limit);                                    // exactly the limit: delivered
  ASSERT_TRUE(run_until(io, [&] { return messages.size() >= 4 || closed.has_value(); }))
      << "messages=" << messages.size();
  EXPECT_FALSE(closed.has_value()) << "the socket ended: " << closed->reason;
  ASSERT_EQ(messages.size(), 4u);
  EXPECT_EQ(messages[1], "before");
  EXPECT_EQ(messages[2], "after");
  EXPECT_EQ(messages[3], at_limit);
  EXPECT_TRUE(client->is_open());
  EXPECT_EQ(fake.sockets_accepted(), 1);
  EXPECT_EQ(oversized, (std::vector<std::size_t>{std::size_t{1} << 20, s.max_message_bytes + 1}))
      << "each skipped message is reported once, with its whole size";
  EXPECT_EQ(client->oversized_messages(), 2u);
  // The socket still works both ways.
  EXPECT_TRUE(client->send(R"({"seq":2,"action":"user_typing","data":{"channel_id":"c"}})"));
  ASSERT_TRUE(run_until(io, [&] { return fake.client_frames.size() == 1; }));
  EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
}

// ---- plain ws:// and http:// (a Mattermost server reached inside a cluster) ----

class PlainTransportTest : public WebSocketClientTest {
 protected:
  PlainTransportTest() : WebSocketClientTest(plain_server()) {}

  bot::Result<HttpClientResponse> get(HttpsClient& http, const std::string& url,
                                      std::chrono::milliseconds timeout = 3000ms) {
    std::optional<bot::Result<HttpClientResponse>> out;
    HttpClientRequest req;
    req.method = "GET";
    req.url = url;
    req.headers.emplace_back("Authorization", "Bearer mm-bot-token");
    req.timeout = timeout;
    http.request(std::move(req), [&](bot::Result<HttpClientResponse> r) { out = std::move(r); });
    EXPECT_FALSE(out.has_value()) << "completed inline";
    EXPECT_TRUE(run_until(io, [&] { return out.has_value(); }, timeout + 3000ms));
    return out ? std::move(*out) : bot::Result<HttpClientResponse>(bot::make_error(bot::Errc::internal, "no answer"));
  }

  std::shared_ptr<TlsContext> tls() const {
    auto t = TlsContext::create(ca.ca_file);
    EXPECT_TRUE(t) << t.error().message;
    return *t;
  }
};

// With allow_plaintext a ws:// URL is served over plain TCP, with the same behaviour as wss://:
// messages both ways, and an oversized message skipped on a socket that stays open.
TEST_F(PlainTransportTest, WsUrlWithAllowPlaintextWorksLikeWss) {
  ASSERT_EQ(socket_url().rfind("ws://", 0), 0u);
  auto s = settings();
  s.allow_plaintext = true;
  s.max_message_bytes = 64 * 1024;
  connect(s);
  fake.send_raw(std::string(256 * 1024, 'x'));
  fake.send_raw("after");
  ASSERT_TRUE(run_until(io, [&] { return messages.size() == 2 || closed.has_value(); }));
  EXPECT_FALSE(closed.has_value()) << closed->reason;
  EXPECT_EQ(messages.back(), "after");
  EXPECT_EQ(oversized, std::vector<std::size_t>{256 * 1024});
  EXPECT_TRUE(client->send(R"({"seq":2,"action":"user_typing","data":{"channel_id":"c"}})"));
  ASSERT_TRUE(run_until(io, [&] { return fake.client_frames.size() == 1; }));
  client->close("done");
  ASSERT_TRUE(run_until(io, [&] { return closed.has_value(); }));
  EXPECT_EQ(closed->reason, "closed: done");
  EXPECT_FALSE(closed->by_peer);
  EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
}

// Plain text is never chosen silently: ws:// without allow_plaintext is refused before anything
// is sent, and wss:// against a plain server fails in the TLS handshake instead of falling back.
TEST_F(PlainTransportTest, WsIsRefusedUnlessAllowedAndWssNeverFallsBack) {
  WebSocketClient refused(io, tls(), settings());
  std::optional<bot::Status> st;
  refused.connect(socket_url(), [&](bot::Status s) { st = std::move(s); });
  ASSERT_TRUE(run_until(io, [&] { return st.has_value(); }));
  ASSERT_FALSE(*st);
  EXPECT_EQ(st->error().code, bot::Errc::invalid_argument);
  EXPECT_NE(st->error().message.find("ws://"), std::string::npos) << st->error().message;

  auto allowed = settings();
  allowed.allow_plaintext = true;  // allows ws://, changes nothing for wss://
  WebSocketClient tls_only(io, tls(), allowed);
  std::optional<bot::Status> st2;
  tls_only.connect("wss://" + socket_url().substr(5), [&](bot::Status s) { st2 = std::move(s); });
  ASSERT_TRUE(run_until(io, [&] { return st2.has_value(); }));
  ASSERT_FALSE(*st2);
  EXPECT_EQ(st2->error().code, bot::Errc::unavailable) << st2->error().message;
  EXPECT_EQ(fake.sockets_accepted(), 0);
}

// HttpsClient over http:// with allow_plaintext: requests work and the connection is kept alive
// and reused; without it, http:// is refused; https:// to the plain server fails, no fallback.
TEST_F(PlainTransportTest, HttpUrlWithAllowPlaintextWorksAndIsOtherwiseRefused) {
  HttpClientSettings hs;
  hs.allow_plaintext = true;
  HttpsClient http(io, tls(), hs);
  const std::string me = fake.server_url() + "/api/v4/users/me";
  auto first = get(http, me);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->status, 200);
  EXPECT_NE(first->body.find("runbot"), std::string::npos) << first->body;
  auto second = get(http, me);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(http.connections_opened(), 1u) << "keep-alive works over plain TCP too";
  EXPECT_EQ(fake.calls.size(), 2u);

  HttpsClient strict(io, tls());
  auto refused = get(strict, me);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, bot::Errc::invalid_argument);
  auto no_fallback = get(http, "https://" + me.substr(7));
  ASSERT_FALSE(no_fallback);
  EXPECT_EQ(no_fallback.error().code, bot::Errc::unavailable) << no_fallback.error().message;
  EXPECT_EQ(fake.calls.size(), 2u) << "nothing more reached the server";
}

// Same deadlines and error values without TLS: a peer that accepts and never answers makes the
// request time out (timeout), and the WebSocket open too.
TEST_F(PlainTransportTest, DeadlinesAndErrorValuesAreTheSameOverPlainTcp) {
  boost::asio::ip::tcp::acceptor silent(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  boost::asio::ip::tcp::socket held(io);
  silent.async_accept(held, [](boost::system::error_code) {});  // accepted, never read or answered
  const std::string where = "127.0.0.1:" + std::to_string(silent.local_endpoint().port());

  HttpClientSettings hs;
  hs.allow_plaintext = true;
  HttpsClient http(io, tls(), hs);
  auto r = get(http, "http://" + where + "/api/v4/users/me", 300ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, bot::Errc::timeout) << r.error().message;
  EXPECT_EQ(r.error().message.rfind("http read " + where, 0), 0u) << r.error().message;

  auto s = settings();
  s.allow_plaintext = true;
  s.connect_timeout = 300ms;
  WebSocketClient ws(io, tls(), s);
  std::optional<bot::Status> st;
  ws.connect("ws://" + where + "/api/v4/websocket", [&](bot::Status x) { st = std::move(x); });
  ASSERT_TRUE(run_until(io, [&] { return st.has_value(); }, 3000ms));
  ASSERT_FALSE(*st);
  EXPECT_EQ(st->error().code, bot::Errc::timeout) << st->error().message;
}

}  // namespace
}  // namespace runbot::common
