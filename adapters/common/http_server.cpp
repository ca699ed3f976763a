#include "adapters/common/http_server.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <optional>
#include <string_view>
#include <type_traits>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <openssl/asn1.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include "adapters/common/log.h"

namespace runbot::common {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::uint32_t kMaxHeaderBytes = 8 * 1024;
// After an error response the peer may still be sending (an oversized body, say). Closing with
// unread input makes the kernel send RST, which can destroy the response before the peer reads
// it, so read and discard for a bounded time first.
constexpr std::size_t kMaxDrainBytes = std::size_t{1} << 20;
constexpr std::chrono::milliseconds kMaxDrainTime{2000};
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};

using PlainStream = beast::tcp_stream;
using TlsStream = ssl::stream<beast::tcp_stream>;
template <class Stream>
constexpr bool kIsTls = std::is_same_v<Stream, TlsStream>;

// What the server's connection table (and so stop()) needs, whatever the stream.
struct ConnectionBase {
  virtual ~ConnectionBase() = default;
  // Closes the socket at once (no TLS close_notify); pending operations end with an error.
  virtual void close() = 0;
  std::string remote;
  // stop() closes the connection only in this state, which includes the TLS handshake.
  bool waiting_for_request = true;
};

// One accepted connection, plain or TLS. The request loop is written once, for both.
template <class Stream>
struct Connection final : ConnectionBase {
  explicit Connection(tcp::socket socket)
    requires(!kIsTls<Stream>)
      : stream(std::move(socket)) {}
  Connection(tcp::socket socket, std::shared_ptr<ssl::context> context)
    requires kIsTls<Stream>
      : tls(std::move(context)), stream(std::move(socket), *tls) {}
  void close() override { beast::get_lowest_layer(stream).close(); }
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream); }

  std::shared_ptr<ssl::context> tls;  // null for plain; declared first so it outlives the stream
  Stream stream;
};
template <class Stream>
using ConnectionPtr = std::shared_ptr<Connection<Stream>>;

std::string describe(const tcp::endpoint& ep) {
  const auto addr = ep.address();
  std::string host = addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string();
  return host + ":" + std::to_string(ep.port());
}

std::string remote_of(const tcp::socket& socket) {
  error_code ec;
  const auto ep = socket.remote_endpoint(ec);
  return ec ? std::string("unknown") : describe(ep);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded decoding; malformed escapes are kept as they are.
std::string url_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%' && i + 2 < in.size() && hex_value(in[i + 1]) >= 0 && hex_value(in[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2]));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    std::string key = url_decode(pair.substr(0, eq));
    std::string value = eq == std::string_view::npos ? std::string{} : url_decode(pair.substr(eq + 1));
    out[std::move(key)] = std::move(value);
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool has_line_break(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

HttpRequest to_request(http::request<http::string_body>&& req, const std::string& remote) {
  HttpRequest out;
  out.method = std::string(req.method_string());
  out.target = std::string(req.target());
  const auto q = out.target.find('?');
  out.path = out.target.substr(0, q);
  if (q != std::string::npos) out.query = parse_query(std::string_view(out.target).substr(q + 1));
  for (const auto& field : req) {
    auto [it, inserted] = out.headers.try_emplace(lower(field.name_string()), std::string(field.value()));
    if (!inserted) {
      it->second += ", ";
      it->second += field.value();
    }
  }
  out.body = std::move(req.body());
  out.remote = remote;
  return out;
}

HttpResponse plain(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

http::response<http::string_body> to_beast(HttpResponse res, unsigned version, bool keep_alive) {
  http::response<http::string_body> out;
  out.version(version);
  out.result(static_cast<unsigned>(res.status));
  out.set(http::field::server, "runbot");
  out.set(http::field::content_type, res.content_type);
  for (auto& [name, value] : res.headers) out.insert(name, value);
  out.keep_alive(keep_alive);
  out.body() = std::move(res.body);
  out.prepare_payload();
  return out;
}

// Status for a request the parser rejected; nullopt when the peer just went away or timed out.
std::optional<int> status_for_read_error(const error_code& ec) {
  if (ec == http::error::body_limit) return 413;
  if (ec == http::error::header_limit) return 431;
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) return std::nullopt;
  if (ec.category() == http::make_error_code(http::error::bad_method).category()) return 400;
  return std::nullopt;
}

const char* reason_for(int status) {
  switch (status) {
    case 400: return "bad request\n";
    case 413: return "request body too large\n";
    case 431: return "request header too large\n";
    case 503: return "server busy, retry later\n";
    default: return "error\n";
  }
}

void log_escape(const char* root, const std::exception_ptr& e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log().error("http: coroutine ended by an exception root={} error={}", root, ex.what());
  } catch (...) {
    log().error("http: coroutine ended by an exception root={} error=unknown", root);
  }
}

}  // namespace

struct detail::HttpServerImpl {
  HttpServerImpl(asio::io_context& io_, HttpServerSettings settings_) : io(io_), settings(std::move(settings_)) {}

  asio::io_context& io;
  HttpServerSettings settings;
  // path -> method -> handler (synchronous handlers are wrapped to answer at once)
  std::map<std::string, std::map<std::string, HttpServer::AsyncHandler>> routes;
  std::optional<tcp::acceptor> acceptor;
  std::shared_ptr<ssl::context> tls;  // set by start() when TLS is configured
  std::map<std::uint64_t, std::weak_ptr<ConnectionBase>> connections;
  std::uint64_t next_connection = 1;
  std::uint64_t served = 0;
  bool started = false;
  bool stopped = false;

  // The handler for the request, or the answer when there is none (404, 405).
  std::variant<HttpServer::AsyncHandler, HttpResponse> find(const HttpRequest& req) const;
};

std::variant<HttpServer::AsyncHandler, HttpResponse> detail::HttpServerImpl::find(
    const HttpRequest& req) const {
  const auto by_path = routes.find(req.path);
  if (by_path == routes.end()) return plain(404, "no route for " + req.path + "\n");
  const auto by_method = by_path->second.find(req.method);
  if (by_method == by_path->second.end()) {
    std::string allow;
    for (const auto& [method, handler] : by_path->second) allow += (allow.empty() ? "" : ", ") + method;
    HttpResponse r = plain(405, "method " + req.method + " not allowed for " + req.path + "\n");
    r.headers.emplace_back("Allow", std::move(allow));
    return r;
  }
  // A copy: the handler may replace its own route while it runs.
  return by_method->second;
}

namespace {

// A handler's answer, checked: an invalid status or a header that would split the response
// becomes a 500.
HttpResponse checked(const HttpRequest& req, HttpResponse res) {
  if (res.status < 100 || res.status > 599) {
    log().error("http: handler returned an invalid status method={} path={} status={}", req.method, req.path,
                res.status);
    return plain(500, "internal server error\n");
  }
  const auto bad_header = std::find_if(res.headers.begin(), res.headers.end(), [](const auto& h) {
    return h.first.empty() || has_line_break(h.first) || has_line_break(h.second);
  });
  if (bad_header != res.headers.end() || has_line_break(res.content_type)) {
    log().error("http: handler returned a header with a line break method={} path={}", req.method, req.path);
    return plain(500, "internal server error\n");
  }
  return res;
}

// One request's answer as it is awaited: set once by `respond` (or by the server on a throw or a
// timeout); the timer wakes the connection coroutine.
struct PendingResponse {
  explicit PendingResponse(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;
  std::optional<HttpResponse> response;
  bool closed = false;  // answered, timed out or abandoned: later responds are ignored
  std::string method;
  std::string path;
};

}  // namespace

namespace {

using Impl = detail::HttpServerImpl;
using ImplPtr = std::shared_ptr<Impl>;

// TLS: sends close_notify and waits (within the stream's current deadline) for the peer's;
// OpenSSL discards application data that arrives meanwhile. Plain: nothing to do.
template <class Stream>
asio::awaitable<void> shutdown_tls(ConnectionPtr<Stream> conn) {
  if constexpr (kIsTls<Stream>) {
    auto [ec] = co_await conn->stream.async_shutdown(kUseTuple);
    (void)ec;  // the peer closed, timed out or answered: the socket is closed next either way
  }
}

// Ends TLS (close_notify), half-closes, discards what the peer still sends (bounded in bytes and
// time, both steps together), then closes.
template <class Stream>
asio::awaitable<void> close_gracefully(ConnectionPtr<Stream> conn, std::chrono::milliseconds limit) {
  conn->lowest().expires_after(std::min(limit, kMaxDrainTime));
  co_await shutdown_tls(conn);
  error_code ec;
  conn->lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
  std::array<char, 4096> scratch{};
  std::size_t drained = 0;
  while (drained < kMaxDrainBytes) {
    auto [rec, n] = co_await conn->lowest().async_read_some(asio::buffer(scratch), kUseTuple);
    if (rec) break;
    drained += n;
  }
  conn->close();
}

// After the last response of a keep-alive connection: TLS close_notify (bounded), FIN, close.
template <class Stream>
asio::awaitable<void> close_after_response(ConnectionPtr<Stream> conn, std::chrono::milliseconds limit) {
  if constexpr (kIsTls<Stream>) {
    conn->lowest().expires_after(std::min(limit, kMaxDrainTime));
    co_await shutdown_tls(conn);
  }
  error_code ec;
  conn->lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
  conn->close();
}

template <class Stream>
asio::awaitable<void> write_error(ConnectionPtr<Stream> conn, int status, std::chrono::milliseconds timeout) {
  auto res = to_beast(plain(status, reason_for(status)), 11, false);
  if (status == 503) res.set(http::field::retry_after, "1");
  conn->lowest().expires_after(timeout);
  auto [ec, n] = co_await http::async_write(conn->stream, res, kUseTuple);
  if (ec) {
    conn->close();
    co_return;
  }
  co_await close_gracefully(conn, timeout);
}

// TLS: the server side of the handshake, within `timeout`. Returns false (the connection closed,
// the failure logged) when it did not complete. Plain: true at once.
template <class Stream>
asio::awaitable<bool> handshake(ConnectionPtr<Stream> conn, std::chrono::milliseconds timeout) {
  if constexpr (kIsTls<Stream>) {
    conn->lowest().expires_after(timeout);
    auto [ec] = co_await conn->stream.async_handshake(ssl::stream_base::server, kUseTuple);
    if (!ec) co_return true;
    if (ec == beast::error::timeout) {
      log().warn("http: TLS handshake timed out, closing remote={} timeout_ms={}", conn->remote, timeout.count());
    } else if (ec == asio::error::eof || ec == ssl::error::stream_truncated ||
               ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
      // Load balancers' TCP checks connect and leave; stop() aborts handshakes in progress.
      log().debug("http: connection ended before the TLS handshake remote={} error={}", conn->remote,
                  ec.message());
    } else {
      // A plain-HTTP client on the TLS port, a client that does not trust the certificate, ...
      log().warn("http: TLS handshake failed remote={} error={}", conn->remote, ec.message());
    }
    conn->close();
    co_return false;
  } else {
    (void)conn;
    (void)timeout;
    co_return true;
  }
}

// Over capacity: TLS clients get the handshake first, so that they can read the 503.
template <class Stream>
asio::awaitable<void> refuse_overloaded(ConnectionPtr<Stream> conn, std::chrono::milliseconds timeout) {
  // Not `if (!co_await ...)`: GCC 12 miscompiles a co_await in a condition with a temporary argument.
  const bool secured = co_await handshake(conn, timeout);
  if (!secured) co_return;
  co_await write_error(conn, 503, timeout);
}

// Removes the connection from the server's table however the coroutine ends.
struct ConnectionSlot {
  ImplPtr impl;
  std::uint64_t id;
  ~ConnectionSlot() { impl->connections.erase(id); }
};

// Runs the request's handler and waits (up to handler_timeout) for its response.
asio::awaitable<HttpResponse> answer(ImplPtr impl, std::shared_ptr<const HttpRequest> request) {
  const HttpRequest& req = *request;
  auto found = impl->find(req);
  if (auto* immediate = std::get_if<HttpResponse>(&found)) co_return std::move(*immediate);
  const auto handler = std::get<HttpServer::AsyncHandler>(std::move(found));
  auto pending = std::make_shared<PendingResponse>(impl->io);
  pending->method = req.method;
  pending->path = req.path;
  pending->timer.expires_after(impl->settings.handler_timeout);
  HttpServer::Respond respond = [weak = std::weak_ptr<PendingResponse>(pending),
                                 method = req.method, path = req.path](HttpResponse r) {
    auto p = weak.lock();
    if (!p || p->closed || p->response) {
      log().error(
          "http: response ignored: given twice, too late or after the client left method={} "
          "path={}",
          method, path);
      return;
    }
    p->response = std::move(r);
    p->timer.cancel();
  };
  try {
    handler(req, respond);
  } catch (const std::exception& e) {
    log().error("http: handler failed method={} path={} remote={} error={}", req.method, req.path,
                req.remote, e.what());
    if (!pending->response) pending->response = plain(500, "internal server error\n");
  } catch (...) {
    log().error("http: handler failed method={} path={} remote={} error=unknown", req.method,
                req.path, req.remote);
    if (!pending->response) pending->response = plain(500, "internal server error\n");
  }
  if (!pending->response) {
    auto [ec] = co_await pending->timer.async_wait(kUseTuple);
    (void)ec;  // cancelled by respond, or expired
  }
  pending->closed = true;
  if (!pending->response) {
    log().error("http: handler did not respond in time method={} path={} remote={} timeout_ms={}",
                req.method, req.path, req.remote, impl->settings.handler_timeout.count());
    HttpResponse busy = plain(503, "the handler did not answer in time\n");
    busy.headers.emplace_back("Retry-After", "1");
    co_return busy;
  }
  co_return checked(req, std::move(*pending->response));
}

template <class Stream>
asio::awaitable<void> serve_connection(ImplPtr impl, ConnectionPtr<Stream> conn, std::uint64_t id) {
  const ConnectionSlot slot{impl, id};
  const auto timeout = impl->settings.read_timeout;
  // A peer that never completes the handshake is cut off like one that never sends a request.
  const bool secured = co_await handshake(conn, timeout);
  if (!secured) co_return;
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(impl->settings.max_body_bytes);
    parser.header_limit(kMaxHeaderBytes);
    conn->waiting_for_request = true;
    // One deadline for the whole request, headers and body: a peer trickling bytes is cut off.
    conn->lowest().expires_after(timeout);
    auto [hec, hn] = co_await http::async_read_header(conn->stream, buffer, parser, kUseTuple);
    error_code ec = hec;
    if (!ec && !parser.is_done()) {
      const auto expect = parser.get()[http::field::expect];
      if (beast::iequals(expect, "100-continue")) {
        http::response<http::empty_body> cont{http::status::continue_, parser.get().version()};
        auto [cec, cn] = co_await http::async_write(conn->stream, cont, kUseTuple);
        ec = cec;
      }
      if (!ec) {
        auto [bec, bn] = co_await http::async_read(conn->stream, buffer, parser, kUseTuple);
        ec = bec;
      }
    }
    conn->waiting_for_request = false;

    if (ec) {
      if (impl->stopped && ec == asio::error::operation_aborted) co_return;
      if (ec == beast::error::timeout) {
        log().warn("http: read timed out, closing remote={} timeout_ms={}", conn->remote, timeout.count());
        conn->close();
        co_return;
      }
      const auto status = status_for_read_error(ec);
      if (!status) {
        // stream_truncated: a TLS peer that closed the socket without close_notify, as most do.
        if (ec != http::error::end_of_stream && ec != ssl::error::stream_truncated) {
          log().debug("http: connection ended remote={} error={}", conn->remote, ec.message());
        }
        conn->close();
        co_return;
      }
      log().warn("http: rejected request remote={} status={} error={}", conn->remote, *status, ec.message());
      co_await write_error(conn, *status, timeout);
      co_return;
    }

    auto beast_req = parser.release();
    const unsigned version = beast_req.version();
    bool keep_alive = beast_req.keep_alive();
    const auto request =
        std::make_shared<const HttpRequest>(to_request(std::move(beast_req), conn->remote));
    const HttpRequest& req = *request;
    HttpResponse res = co_await answer(impl, request);
    const int status = res.status;
    keep_alive = keep_alive && !impl->stopped;
    auto out = to_beast(std::move(res), version, keep_alive);
    conn->lowest().expires_after(timeout);
    auto [wec, wn] = co_await http::async_write(conn->stream, out, kUseTuple);
    if (wec) {
      log().warn("http: write failed remote={} method={} path={} status={} error={}", conn->remote, req.method,
                 req.path, status, wec.message());
      conn->close();
      co_return;
    }
    ++impl->served;
    if (!keep_alive) {
      co_await close_after_response(conn, timeout);
      co_return;
    }
  }
}

// Serves an accepted connection, or refuses it (503) when max_connections are already open.
template <class Stream>
void admit(const ImplPtr& impl, ConnectionPtr<Stream> conn) {
  conn->remote = remote_of(conn->lowest().socket());
  if (impl->connections.size() >= impl->settings.max_connections) {
    log().warn("http: over capacity, answering 503 remote={} max_connections={}", conn->remote,
               impl->settings.max_connections);
    asio::co_spawn(impl->io, refuse_overloaded(std::move(conn), impl->settings.read_timeout),
                   [](std::exception_ptr e) { log_escape("refuse", e); });
    return;
  }
  const std::uint64_t id = impl->next_connection++;
  impl->connections.emplace(id, conn);
  asio::co_spawn(impl->io, serve_connection(impl, std::move(conn), id),
                 [](std::exception_ptr e) { log_escape("connection", e); });
}

asio::awaitable<void> accept_loop(ImplPtr impl) {
  for (;;) {
    auto [ec, socket] = co_await impl->acceptor->async_accept(kUseTuple);
    if (impl->stopped) co_return;
    if (ec) {
      // Typically out of file descriptors: wait a little instead of spinning.
      log().warn("http: accept failed error={}", ec.message());
      asio::steady_timer pause(impl->io, kAcceptRetryDelay);
      auto [tec] = co_await pause.async_wait(kUseTuple);
      (void)tec;
      if (impl->stopped) co_return;
      continue;
    }
    if (impl->tls) {
      admit(impl, std::make_shared<Connection<TlsStream>>(std::move(socket), impl->tls));
    } else {
      admit(impl, std::make_shared<Connection<PlainStream>>(std::move(socket)));
    }
  }
}

// "" when `path` can be opened for reading, else why not (strerror).
std::string unreadable(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return std::strerror(errno);
  std::fclose(f);
  return {};
}

// The certificate's notAfter as "YYYY-MM-DD HH:MM:SS UTC", or "" when it cannot be read.
std::string not_after(ssl::context& ctx) {
  const X509* cert = SSL_CTX_get0_certificate(ctx.native_handle());
  if (!cert) return {};
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) return {};
  char out[32];
  if (std::strftime(out, sizeof out, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) return {};
  return out;
}

// The server's TLS context from the certificate chain and key files, or invalid_argument naming
// the file at fault. Messages carry OpenSSL's reason, never file contents.
bot::Result<std::shared_ptr<ssl::context>> make_tls_context(const HttpServerSettings& s) {
  auto bad = [](const std::string& what) {
    return bot::make_error(bot::Errc::invalid_argument, "http server: " + what);
  };
  if (s.tls_cert_file.empty() != s.tls_key_file.empty()) {
    return bad(s.tls_cert_file.empty() ? "tls_key_file is set but tls_cert_file is not: TLS needs both"
                                       : "tls_cert_file is set but tls_key_file is not: TLS needs both");
  }
  if (auto why = unreadable(s.tls_cert_file); !why.empty()) {
    return bad("tls_cert_file '" + s.tls_cert_file + "' cannot be read: " + why);
  }
  if (auto why = unreadable(s.tls_key_file); !why.empty()) {
    return bad("tls_key_file '" + s.tls_key_file + "' cannot be read: " + why);
  }
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use,
                   ec);
  if (ec) return bot::make_error(bot::Errc::internal, "http server: cannot set TLS options: " + ec.message());
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  // An encrypted key would make OpenSSL prompt on the terminal for a passphrase; fail instead.
  ctx->set_password_callback([](std::size_t, ssl::context::password_purpose) { return std::string(); }, ec);
  // The key first: loaded after the certificate, a key that does not match it fails with a
  // parse-like error; loaded before, the mismatch is left for check_private_key to name.
  ctx->use_private_key_file(s.tls_key_file, ssl::context::pem, ec);
  if (ec) {
    return bad("tls_key_file '" + s.tls_key_file +
               "' is not a usable PEM private key (an encrypted key is not supported): " + ec.message());
  }
  ctx->use_certificate_chain_file(s.tls_cert_file, ec);
  if (ec) {
    return bad("tls_cert_file '" + s.tls_cert_file + "' is not a usable PEM certificate chain: " + ec.message());
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    return bad("tls_key_file '" + s.tls_key_file + "' does not match the certificate in tls_cert_file '" +
               s.tls_cert_file + "'");
  }
  return ctx;
}

}  // namespace

HttpServer::HttpServer(asio::io_context& io, HttpServerSettings settings)
    : impl_(std::make_shared<detail::HttpServerImpl>(io, std::move(settings))) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::route(std::string method, std::string path, Handler handler) {
  route_async(std::move(method), std::move(path),
              [handler = std::move(handler)](const HttpRequest& req, Respond respond) {
                respond(handler(req));
              });
}

void HttpServer::route_async(std::string method, std::string path, AsyncHandler handler) {
  impl_->routes[std::move(path)][std::move(method)] = std::move(handler);
}

bot::Result<std::uint16_t> HttpServer::start() {
  const auto& s = impl_->settings;
  const std::string where = s.address + ":" + std::to_string(s.port);
  if (impl_->started || impl_->stopped) {
    return bot::make_error(bot::Errc::conflict,
                           "http server: cannot listen on " + where + ": already started or stopped");
  }
  error_code ec;
  const auto address = asio::ip::make_address(s.address, ec);
  if (ec) {
    return bot::make_error(bot::Errc::invalid_argument,
                           "http server: cannot listen on " + where + ": not an IP address");
  }
  if (!s.tls_cert_file.empty() || !s.tls_key_file.empty()) {
    auto tls = make_tls_context(s);
    if (!tls) return tls.error();
    impl_->tls = std::move(*tls);
  }
  const tcp::endpoint endpoint(address, s.port);
  auto fail = [&](const char* step) {
    impl_->acceptor.reset();
    return bot::make_error(bot::Errc::unavailable,
                           "http server: cannot listen on " + where + ": " + step + ": " + ec.message());
  };
  impl_->acceptor.emplace(impl_->io);
  impl_->acceptor->open(endpoint.protocol(), ec);
  if (ec) return fail("open");
  // Lets a restarted process bind while old connections sit in TIME_WAIT; Linux still refuses a
  // port another socket is listening on.
  impl_->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (ec) return fail("setsockopt");
  impl_->acceptor->bind(endpoint, ec);
  if (ec) return fail("bind");
  impl_->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen");
  const auto local = impl_->acceptor->local_endpoint(ec);
  if (ec) return fail("local_endpoint");
  impl_->started = true;
  asio::co_spawn(impl_->io, accept_loop(impl_), [](std::exception_ptr e) { log_escape("accept", e); });
  if (impl_->tls) {
    log().info("http: listening address={} port={} tls=on cert_file={} cert_not_after={}", s.address, local.port(),
               s.tls_cert_file, not_after(*impl_->tls));
  } else {
    log().info("http: listening address={} port={} tls=off", s.address, local.port());
  }
  return local.port();
}

void HttpServer::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  error_code ec;
  if (impl_->acceptor) impl_->acceptor->close(ec);
  for (auto& [id, weak] : impl_->connections) {
    if (auto conn = weak.lock(); conn && conn->waiting_for_request) conn->close();
  }
}

std::uint64_t HttpServer::requests_served() const { return impl_->served; }

}  // namespace runbot::common
