#include "adapters/common/websocket_client.h"

#include "adapters/common/resolve_impl.h"

#include <algorithm>
#include <deque>
#include <exception>
#include <optional>
#include <type_traits>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <spdlog/spdlog.h>

#include "adapters/common/log.h"
#include "adapters/common/tls_context_impl.h"
#include "adapters/common/url.h"

namespace runbot::common {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// The most one read appends to the message buffer: with the limit, what bounds its memory.
constexpr std::size_t kReadChunkBytes = 64 * 1024;
using TlsWs = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;  // wss://
using PlainWs = websocket::stream<beast::tcp_stream>;                    // ws://, when allowed

enum class State { idle, connecting, open, closing, closed };

struct Item {
  enum class Kind { text, ping, close } kind = Kind::text;
  std::string data;  // text, or the close reason
};


void log_escape(const char* root, const std::exception_ptr& e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log().error("websocket: coroutine ended by an exception root={} error={}", root, ex.what());
  } catch (...) {
    log().error("websocket: coroutine ended by an exception root={} error=unknown", root);
  }
}

}  // namespace

struct WebSocketClient::Impl {
  Impl(asio::io_context& io_, std::shared_ptr<TlsContext> tls_, WebSocketSettings settings_)
      : io(io_), tls(std::move(tls_)), settings(settings_), signal(io_), watchdog(io_) {}

  asio::io_context& io;
  std::shared_ptr<TlsContext> tls;
  WebSocketSettings settings;
  // Exactly one of them once connect() runs, chosen by the URL's scheme.
  std::optional<TlsWs> tls_ws;
  std::optional<PlainWs> plain_ws;
  MessageHandler on_message;
  ClosedHandler on_closed;
  OversizedHandler on_oversized;
  std::uint64_t oversized = 0;
  State state = State::idle;
  std::deque<Item> queue;
  std::size_t queued_bytes = 0;
  asio::steady_timer signal;    // wakes the writer when the queue gets work
  asio::steady_timer watchdog;  // pings, idle and write deadlines
  bool writer_waiting = false;
  bool write_pending = false;
  SteadyClock::time_point last_rx{};
  SteadyClock::time_point last_ping{};
  SteadyClock::time_point write_started{};
  SteadyClock::time_point close_started{};
  std::string local_reason;  // set when this side ended the socket
  std::string host;
  bool alive = true;         // false once the WebSocketClient is gone: no more callbacks

  void wake_writer() {
    if (writer_waiting) signal.cancel();
  }
  void enqueue(Item item) {
    queued_bytes += item.data.size();
    queue.push_back(std::move(item));
    wake_writer();
  }
  beast::tcp_stream* lowest() {
    if (tls_ws) return &beast::get_lowest_layer(*tls_ws);
    if (plain_ws) return &beast::get_lowest_layer(*plain_ws);
    return nullptr;
  }
  const websocket::close_reason& peer_reason() const { return tls_ws ? tls_ws->reason() : plain_ws->reason(); }
  // Ends the transport at once; the read loop then finishes and reports.
  void teardown(std::string why) {
    if (local_reason.empty()) local_reason = std::move(why);
    error_code ec;
    if (auto* l = lowest()) l->socket().close(ec);
  }
};

namespace {

using ImplPtr = std::shared_ptr<WebSocketClient::Impl>;

std::string describe_close(const WebSocketClient::Impl& impl) {
  const auto& r = impl.peer_reason();
  std::string s = "closed by peer (" + std::to_string(r.code);
  if (!r.reason.empty()) s += " " + std::string(r.reason.c_str());
  return s + ")";
}

void finish(const ImplPtr& impl, const error_code& ec) {
  if (impl->state == State::closed) return;
  impl->state = State::closed;
  impl->watchdog.cancel();
  impl->signal.cancel();
  WebSocketClosed info;
  if (!impl->local_reason.empty()) {
    info.reason = impl->local_reason;
    info.clean = ec == websocket::error::closed;
  } else if (ec == websocket::error::closed) {
    info.reason = describe_close(*impl);
    info.by_peer = true;
    info.clean = true;
  } else {
    info.reason = "connection lost: " + ec.message();
    info.by_peer = true;
  }
  impl->teardown({});
  impl->queue.clear();
  impl->queued_bytes = 0;
  if (!impl->alive || !impl->on_closed) return;
  auto cb = impl->on_closed;  // a copy: the callback may destroy the WebSocketClient
  cb(info);
}

// `ws` lives in *impl, which the coroutine keeps alive.
template <class Ws>
asio::awaitable<void> write_loop(ImplPtr impl, Ws* ws) {
  for (;;) {
    while (impl->queue.empty()) {
      if (impl->state == State::closed) co_return;
      impl->signal.expires_at(SteadyClock::time_point::max());
      impl->writer_waiting = true;
      auto [ec] = co_await impl->signal.async_wait(kUseTuple);
      (void)ec;
      impl->writer_waiting = false;
      if (impl->state == State::closed) co_return;
    }
    Item item = std::move(impl->queue.front());
    impl->queue.pop_front();
    impl->write_pending = true;
    impl->write_started = SteadyClock::now();
    error_code ec;
    switch (item.kind) {
      case Item::Kind::text: {
        ws->text(true);
        auto [wec, n] = co_await ws->async_write(asio::buffer(item.data), kUseTuple);
        ec = wec;
        break;
      }
      case Item::Kind::ping: {
        auto [pec] = co_await ws->async_ping({}, kUseTuple);
        ec = pec;
        break;
      }
      case Item::Kind::close: {
        impl->close_started = SteadyClock::now();
        websocket::close_reason cr(websocket::close_code::normal);
        cr.reason = item.data.substr(0, 120);
        auto [cec] = co_await ws->async_close(cr, kUseTuple);
        ec = cec;
        break;
      }
    }
    impl->write_pending = false;
    impl->queued_bytes -= std::min(impl->queued_bytes, item.data.size());
    if (impl->state == State::closed) co_return;
    if (ec) {
      if (item.kind == Item::Kind::close) {
        // The close handshake ended (or failed): the read loop reports the outcome.
        impl->teardown(impl->local_reason.empty() ? "closed" : impl->local_reason);
        co_return;
      }
      impl->teardown("write failed: " + ec.message());
      co_return;
    }
    if (item.kind == Item::Kind::close) co_return;
  }
}

asio::awaitable<void> watchdog_loop(ImplPtr impl) {
  const auto& s = impl->settings;
  auto tick = std::min({s.ping_interval, s.idle_timeout / 2, s.write_timeout / 2, std::chrono::milliseconds(1000)});
  tick = std::max(tick, std::chrono::milliseconds(5));
  impl->last_ping = SteadyClock::now();
  for (;;) {
    impl->watchdog.expires_after(tick);
    auto [ec] = co_await impl->watchdog.async_wait(kUseTuple);
    (void)ec;
    if (impl->state == State::closed) co_return;
    const auto now = SteadyClock::now();
    if (now - impl->last_rx > s.idle_timeout) {
      log().warn("websocket: nothing received, reconnecting host={} idle_ms={}", impl->host, s.idle_timeout.count());
      impl->teardown("idle timeout");
      co_return;
    }
    if (impl->write_pending && now - impl->write_started > s.write_timeout) {
      impl->teardown("write timeout");
      co_return;
    }
    if (impl->state == State::closing && now - impl->close_started > s.write_timeout) {
      impl->teardown(impl->local_reason.empty() ? "close timed out" : impl->local_reason);
      co_return;
    }
    if (impl->state == State::open && now - impl->last_ping >= s.ping_interval) {
      impl->last_ping = now;
      impl->enqueue(Item{Item::Kind::ping, {}});
    }
  }
}

// Reports a failed open (once; nothing else follows).
void fail_open(const ImplPtr& impl, const Url& url, const WebSocketClient::OpenHandler& on_open, const char* step,
               error_code ec) {
  impl->state = State::closed;
  if (ec == asio::error::operation_aborted && impl->local_reason.empty()) ec = beast::error::timeout;
  const bool timed_out = ec == beast::error::timeout;
  std::string what = std::string("websocket ") + step + " " + url.authority() + ": " + ec.message();
  if (ec.category() == asio::error::get_ssl_category()) what += " (TLS: check the server certificate and the CA bundle)";
  if (impl->alive && on_open) on_open(bot::make_error(timed_out ? bot::Errc::timeout : bot::Errc::unavailable, what));
}

// TCP, then (wss) TLS, then the WebSocket handshake, all by `deadline`; then the read loop.
template <class Ws>
asio::awaitable<void> open_and_run(ImplPtr impl, Ws* wsp, Url url, SteadyClock::time_point deadline,
                                   tcp::resolver::results_type endpoints, WebSocketClient::OpenHandler on_open) {
  auto& ws = *wsp;
  auto& lowest = beast::get_lowest_layer(ws);
  lowest.expires_at(deadline);
  auto [cec, ep] = co_await lowest.async_connect(endpoints, kUseTuple);
  if (cec) co_return fail_open(impl, url, on_open, "connect", cec);
  if constexpr (std::is_same_v<Ws, TlsWs>) {
    if (!detail::is_ip_literal(url.host)) SSL_set_tlsext_host_name(ws.next_layer().native_handle(), url.host.c_str());
    ws.next_layer().set_verify_callback(ssl::host_name_verification(url.host));
    auto [hec] = co_await ws.next_layer().async_handshake(ssl::stream_base::client, kUseTuple);
    if (hec) co_return fail_open(impl, url, on_open, "tls handshake", hec);
  }
  lowest.expires_never();
  websocket::stream_base::timeout opt{};
  opt.handshake_timeout = std::max(std::chrono::milliseconds(1),
                                   std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()));
  opt.idle_timeout = websocket::stream_base::none();
  opt.keep_alive_pings = false;
  ws.set_option(opt);
  ws.set_option(websocket::stream_base::decorator(
      [headers = impl->settings.headers](websocket::request_type& req) {
        req.set(beast::http::field::user_agent, "runbot");
        for (const auto& [name, value] : headers) req.set(name, value);
      }));
  // No limit in Beast (which would fail the socket with 1009): the read loop enforces
  // max_message_bytes itself by skipping the message.
  ws.read_message_max(0);
  WebSocketClient::Impl* raw = impl.get();  // the stream lives inside Impl, so the callback cannot outlive it
  ws.control_callback([raw](websocket::frame_type, beast::string_view) { raw->last_rx = SteadyClock::now(); });
  websocket::response_type res;
  const std::string host_header = url.port == (url.secure() ? 443 : 80) ? url.host : url.authority();
  auto [wec] = co_await ws.async_handshake(res, host_header, url.target, kUseTuple);
  if (wec) {
    if (wec == websocket::error::upgrade_declined) {
      impl->state = State::closed;
      if (impl->alive && on_open) {
        on_open(bot::make_error(bot::Errc::unavailable, "websocket upgrade refused by " + url.authority() +
                                                            ": HTTP " + std::to_string(res.result_int())));
      }
      co_return;
    }
    co_return fail_open(impl, url, on_open, "handshake", wec);
  }
  // From now on the handshake timeout bounds the closing handshake.
  opt.handshake_timeout = impl->settings.write_timeout;
  ws.set_option(opt);
  if (!impl->alive) {
    error_code ignored;
    lowest.socket().close(ignored);
    co_return;
  }
  impl->state = State::open;
  impl->last_rx = SteadyClock::now();
  asio::co_spawn(impl->io, write_loop(impl, wsp), [](std::exception_ptr e) { log_escape("writer", e); });
  asio::co_spawn(impl->io, watchdog_loop(impl), [](std::exception_ptr e) { log_escape("watchdog", e); });
  if (on_open) on_open(bot::ok());

  // One message at a time, read in chunks. A message that grows over the limit is discarded
  // chunk by chunk to its end and reported; the socket carries on with the next one.
  const std::size_t limit = impl->settings.max_message_bytes;
  beast::flat_buffer buffer;
  bool skipping = false;
  std::size_t skipped = 0;
  for (;;) {
    const std::size_t room = skipping ? kReadChunkBytes : std::min(kReadChunkBytes, limit + 1 - buffer.size());
    auto [ec, n] = co_await ws.async_read_some(buffer, room, kUseTuple);
    if (ec) {
      finish(impl, ec);
      co_return;
    }
    impl->last_rx = SteadyClock::now();
    if (!skipping && buffer.size() > limit) {
      skipping = true;
      skipped = buffer.size();
      buffer.consume(buffer.size());
    } else if (skipping) {
      skipped += n;
      buffer.consume(buffer.size());
    }
    if (!ws.is_message_done()) continue;
    if (skipping) {
      skipping = false;
      ++impl->oversized;
      if (impl->state == State::closed) co_return;
      if (impl->alive && impl->on_oversized) {
        impl->on_oversized(skipped);  // the owner handles it, and logs it
      } else {
        log().warn("websocket: message over the limit skipped, socket kept open host={} bytes={} limit={}",
                   impl->host, skipped, limit);
      }
      continue;
    }
    if (!ws.got_text()) {
      log().warn("websocket: binary message ignored host={} bytes={}", impl->host, buffer.size());
      buffer.consume(buffer.size());
      continue;
    }
    std::string text = beast::buffers_to_string(buffer.data());
    buffer.consume(buffer.size());
    if (impl->state == State::closed) co_return;
    if (impl->alive && impl->on_message) impl->on_message(std::move(text));
  }
}

asio::awaitable<void> connect_and_run(ImplPtr impl, Url url, WebSocketClient::OpenHandler on_open) {
  const auto deadline = SteadyClock::now() + impl->settings.connect_timeout;
  auto [rec, endpoints] = co_await detail::resolve(impl->io, url.host, url.port, deadline);
  if (rec) co_return fail_open(impl, url, on_open, "resolve", rec);
  if (!impl->alive) co_return;
  if (!impl->local_reason.empty()) co_return fail_open(impl, url, on_open, "connect", asio::error::operation_aborted);
  if (url.secure()) {
    impl->tls_ws.emplace(impl->io, impl->tls->impl().ctx);
    co_await open_and_run(impl, &*impl->tls_ws, std::move(url), deadline, std::move(endpoints), std::move(on_open));
  } else {
    impl->plain_ws.emplace(impl->io);
    co_await open_and_run(impl, &*impl->plain_ws, std::move(url), deadline, std::move(endpoints), std::move(on_open));
  }
}

}  // namespace

WebSocketClient::WebSocketClient(asio::io_context& io, std::shared_ptr<TlsContext> tls, WebSocketSettings settings)
    : impl_(std::make_shared<Impl>(io, std::move(tls), settings)) {}

WebSocketClient::~WebSocketClient() {
  impl_->alive = false;
  if (impl_->state != State::closed && impl_->state != State::idle) impl_->teardown("client destroyed");
  impl_->watchdog.cancel();
  impl_->signal.cancel();
}

void WebSocketClient::on_message(MessageHandler handler) { impl_->on_message = std::move(handler); }
void WebSocketClient::on_closed(ClosedHandler handler) { impl_->on_closed = std::move(handler); }
void WebSocketClient::on_oversized(OversizedHandler handler) { impl_->on_oversized = std::move(handler); }

void WebSocketClient::connect(const std::string& url_text, OpenHandler on_open) {
  auto fail_later = [&](bot::Error e) {
    asio::post(impl_->io, [impl = impl_, on_open = std::move(on_open), e = std::move(e)] {
      if (impl->alive && on_open) on_open(e);
    });
  };
  if (impl_->state != State::idle) {
    return fail_later(bot::make_error(bot::Errc::conflict, "websocket: connect() called twice"));
  }
  auto url = parse_url(url_text);
  if (!url) return fail_later(url.error());
  if (url->scheme == "ws" && !impl_->settings.allow_plaintext) {
    return fail_later(bot::make_error(bot::Errc::invalid_argument,
                                      "websocket: ws:// (no TLS) is not allowed here; use wss://"));
  }
  if (url->scheme != "wss" && url->scheme != "ws") {
    return fail_later(bot::make_error(bot::Errc::invalid_argument, "websocket: only wss:// (or ws://) URLs are supported"));
  }
  impl_->state = State::connecting;
  impl_->host = url->host;
  asio::co_spawn(impl_->io, connect_and_run(impl_, std::move(*url), std::move(on_open)),
                 [](std::exception_ptr e) { log_escape("connect", e); });
}

bool WebSocketClient::send(std::string text) {
  if (impl_->state != State::open) return false;
  impl_->enqueue(Item{Item::Kind::text, std::move(text)});
  return true;
}

void WebSocketClient::close(std::string reason) {
  if (impl_->state == State::connecting) {
    impl_->local_reason = "closed: " + reason;
    impl_->teardown(impl_->local_reason);
    return;
  }
  if (impl_->state != State::open) return;
  impl_->state = State::closing;
  impl_->local_reason = "closed: " + reason;
  impl_->close_started = std::chrono::steady_clock::now();
  impl_->enqueue(Item{Item::Kind::close, std::move(reason)});
}

bool WebSocketClient::is_open() const { return impl_->state == State::open; }

std::size_t WebSocketClient::queued_bytes() const { return impl_->queued_bytes; }

std::uint64_t WebSocketClient::oversized_messages() const { return impl_->oversized; }

}  // namespace runbot::common
