#pragma once
// WebSocketClient: one client WebSocket over TLS (wss://), for Socket Mode style inbound
// streams; or over plain TCP (ws://) where the settings allow it. Built on Boost.Beast; none of
// its types appear here.
//
// Lifecycle: connect(url, on_open) once. on_open(ok) after the TCP, TLS (SNI + certificate and
// host-name verification) and WebSocket handshakes, all within `connect_timeout`; on_open(error)
// otherwise, and nothing else happens. The URL's scheme decides: wss:// is always TLS and always
// verified; ws:// skips only the TLS step (same deadlines, limits, callbacks and error values) and
// is refused unless `allow_plaintext` is set. After a successful open, every text message goes to
// on_message (binary ones are logged and dropped) until the socket ends; then on_closed runs
// exactly once with the reason. close() ends it from this side.
//
// Writing: send() queues a text frame; one writer coroutine per socket writes them in order
// (pings go through the same queue). A write that takes longer than `write_timeout` ends the
// socket.
//
// Keepalive: a client ping every `ping_interval`; when nothing at all (message, ping, pong) has
// arrived for `idle_timeout` the socket is ended with reason "idle timeout". Server pings are
// answered automatically.
//
// Limits: a message over `max_message_bytes` costs only itself: it is read to its end and
// discarded, on_oversized(size) runs once with its size (counted in oversized_messages(); without
// a handler the client logs one warning instead), and the socket stays open for the messages
// after it. Messages are read in chunks of at most 64 KiB, so a socket holds at most
// max_message_bytes + 64 KiB of a message in memory, whatever size the peer announces.
//
// Ownership and executor: borrows the io_context, which must outlive it; everything runs on its
// thread and callbacks never run inside a method call. Not thread-safe. Destroying the client
// closes the socket without calling any callback. The URL (which may carry a ticket) is never
// logged; only its host is.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "adapters/common/tls_context.h"
#include "bot/result.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace runbot::common {

struct WebSocketSettings {
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds ping_interval{10000};
  std::chrono::milliseconds idle_timeout{30000};
  std::chrono::milliseconds write_timeout{10000};
  std::size_t max_message_bytes = std::size_t{1} << 20;
  // Extra header fields on the upgrade request (e.g. {"Authorization", "Bearer …"}); never logged.
  std::vector<std::pair<std::string, std::string>> headers;
  // Accept ws:// URLs (no TLS: headers, a token among them, travel in clear text). Only for a
  // server the configuration names as http://; off, ws:// fails with invalid_argument.
  bool allow_plaintext = false;
};

struct WebSocketClosed {
  std::string reason;   // "closed by peer (1000 ...)", "idle timeout", "write timeout", ...
  bool by_peer = false; // the server closed it (close frame or end of stream)
  bool clean = false;   // a close handshake took place
};

class WebSocketClient {
 public:
  using OpenHandler = std::function<void(bot::Status)>;
  using MessageHandler = std::function<void(std::string)>;
  using ClosedHandler = std::function<void(const WebSocketClosed&)>;
  using OversizedHandler = std::function<void(std::size_t bytes)>;

  WebSocketClient(boost::asio::io_context& io, std::shared_ptr<TlsContext> tls, WebSocketSettings settings = {});
  ~WebSocketClient();
  WebSocketClient(const WebSocketClient&) = delete;
  WebSocketClient& operator=(const WebSocketClient&) = delete;

  void on_message(MessageHandler handler);
  void on_closed(ClosedHandler handler);
  // Called for each message over max_message_bytes, with its size, after it was skipped.
  void on_oversized(OversizedHandler handler);

  // Connects to a wss:// URL, or a ws:// one with allow_plaintext (path and query are kept in the
  // handshake target). Call once. Errors: invalid_argument (bad URL, another scheme, or ws://
  // without allow_plaintext), timeout, unavailable (DNS, TCP, TLS, or a refused WebSocket upgrade:
  // the message has the HTTP status).
  void connect(const std::string& url, OpenHandler on_open);

  // Queues a text frame. Ignored (returns false) unless the socket is open.
  bool send(std::string text);

  // Starts the closing handshake with code 1000 and `reason`; frames already queued go first.
  // The socket is torn down after `write_timeout` at the latest. on_closed follows.
  void close(std::string reason);

  bool is_open() const;
  // Bytes queued and not yet written.
  std::size_t queued_bytes() const;
  // Messages skipped because they were over max_message_bytes.
  std::uint64_t oversized_messages() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace runbot::common
