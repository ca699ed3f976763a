// WebSocketClient against a loopback WebSocket server (FakeMattermost's socket, which can write
// any text frame with send_raw): over wss:// with a CA made in the test.
#include "adapters/common/websocket_client.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "adapters/common/tls_context.h"
#include "tests/adapters/common/run_until.h"
#include "tests/support/fake_mattermost.h"
#include "tests/support/tls_test_ca.h"

namespace runbot::common {
namespace {

using namespace std::chrono_literals;
using testing::run_until;

class WebSocketClientTest : public ::testing::Test {
 protected:
  WebSocketClientTest() { fake.start(); }

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
  runbot::testing::FakeMattermost fake{io, ca};
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

}  // namespace
}  // namespace runbot::common
