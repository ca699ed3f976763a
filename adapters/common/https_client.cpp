#include "adapters/common/https_client.h"

#include "adapters/common/resolve_impl.h"

#include <exception>
#include <map>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <spdlog/spdlog.h>

#include "adapters/common/log.h"
#include "adapters/common/tls_context_impl.h"
#include "adapters/common/url.h"

namespace runbot::common {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

// One connection: TLS for https://, plain TCP for http:// (when the settings allow it).
struct Conn {
  Conn(asio::io_context& io, ssl::context& ctx, bool secure) {
    if (secure) {
      tls.emplace(io, ctx);
    } else {
      plain.emplace(io);
    }
  }
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  std::optional<beast::tcp_stream> plain;
  beast::flat_buffer buffer;
  SteadyClock::time_point idle_since{};
  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
};
using ConnPtr = std::shared_ptr<Conn>;


// Connections are reused per scheme and authority (an http:// and an https:// peer on one port
// are different connections).
std::string pool_key(const Url& url) { return url.scheme + "://" + url.authority(); }

bot::Error io_error(const char* step, const Url& url, const error_code& ec) {
  const bool timed_out = ec == beast::error::timeout || ec == asio::error::timed_out;
  std::string what = url.scheme + " " + step + " " + url.authority() + ": " + ec.message();
  if (ec.category() == asio::error::get_ssl_category()) what += " (TLS: check the server certificate and the CA bundle)";
  return bot::make_error(timed_out ? bot::Errc::timeout : bot::Errc::unavailable, std::move(what));
}

}  // namespace

struct HttpsClient::Impl {
  Impl(asio::io_context& io_, std::shared_ptr<TlsContext> tls_, HttpClientSettings settings_)
      : io(io_), tls(std::move(tls_)), settings(std::move(settings_)) {}
  asio::io_context& io;
  std::shared_ptr<TlsContext> tls;
  HttpClientSettings settings;
  std::map<std::string, std::vector<ConnPtr>> idle;
  std::map<std::uint64_t, std::weak_ptr<Conn>> active;
  std::uint64_t next_active = 1;
  std::size_t opened = 0;
  bool stopped = false;
  bool alive = true;  // false once the HttpsClient is gone: callbacks are dropped
};

namespace {

using ImplPtr = std::shared_ptr<HttpsClient::Impl>;

// Registers a connection as in use so stop() can close it; unregisters however the request ends.
struct ActiveSlot {
  ActiveSlot(ImplPtr impl_, const ConnPtr& conn) : impl(std::move(impl_)), id(impl->next_active++) {
    impl->active.emplace(id, conn);
  }
  ~ActiveSlot() { impl->active.erase(id); }
  ActiveSlot(const ActiveSlot&) = delete;
  ActiveSlot& operator=(const ActiveSlot&) = delete;
  ImplPtr impl;
  std::uint64_t id;
};

ConnPtr take_idle(HttpsClient::Impl& impl, const std::string& key) {
  auto it = impl.idle.find(key);
  if (it == impl.idle.end()) return nullptr;
  const auto now = SteadyClock::now();
  while (!it->second.empty()) {
    ConnPtr c = std::move(it->second.back());
    it->second.pop_back();
    if (now - c->idle_since <= impl.settings.idle_keep) return c;
    error_code ec;
    c->lowest().socket().close(ec);
  }
  return nullptr;
}

void give_back(HttpsClient::Impl& impl, const std::string& key, ConnPtr conn) {
  auto& list = impl.idle[key];
  if (impl.stopped || list.size() >= impl.settings.max_idle_per_host) {
    error_code ec;
    conn->lowest().socket().close(ec);
    return;
  }
  conn->lowest().expires_never();
  conn->idle_since = SteadyClock::now();
  list.push_back(std::move(conn));
}

asio::awaitable<bot::Result<ConnPtr>> open_connection(ImplPtr impl, Url url) {
  const auto deadline = SteadyClock::now() + impl->settings.connect_timeout;
  auto [rec, endpoints] = co_await detail::resolve(impl->io, url.host, url.port, deadline);
  if (rec) {
    if (rec == asio::error::operation_aborted && !impl->stopped) rec = beast::error::timeout;
    co_return io_error("resolve", url, rec);
  }
  auto conn = std::make_shared<Conn>(impl->io, impl->tls->impl().ctx, url.secure());
  const ActiveSlot slot(impl, conn);
  auto& lowest = conn->lowest();
  lowest.expires_at(deadline);
  auto [cec, ep] = co_await lowest.async_connect(endpoints, kUseTuple);
  if (cec) co_return io_error("connect", url, cec);
  if (conn->tls) {
    // RFC 6066: no IP literals in SNI. Host-name verification covers both names and IPs.
    if (!detail::is_ip_literal(url.host)) SSL_set_tlsext_host_name(conn->tls->native_handle(), url.host.c_str());
    conn->tls->set_verify_callback(ssl::host_name_verification(url.host));
    auto [hec] = co_await conn->tls->async_handshake(ssl::stream_base::client, kUseTuple);
    if (hec) co_return io_error("tls handshake", url, hec);
  }
  ++impl->opened;
  co_return conn;
}

struct Exchange {
  std::optional<bot::Result<HttpClientResponse>> result;  // empty: the reused connection was stale
};

asio::awaitable<Exchange> exchange(ImplPtr impl, ConnPtr conn, bool reused, Url url,
                                   const HttpClientRequest& req, http::verb verb) {
  const ActiveSlot slot(impl, conn);
  auto& lowest = conn->lowest();
  http::request<http::string_body> out{verb, url.target, 11};
  out.set(http::field::host, url.port == (url.secure() ? 443 : 80) ? url.host : url.authority());
  out.set(http::field::user_agent, impl->settings.user_agent);
  for (const auto& [name, value] : req.headers) out.insert(name, value);
  out.keep_alive(true);
  out.body() = req.body;
  out.prepare_payload();
  lowest.expires_after(req.timeout);
  error_code wec;
  if (conn->tls) {
    auto [e, n] = co_await http::async_write(*conn->tls, out, kUseTuple);
    wec = e;
  } else {
    auto [e, n] = co_await http::async_write(*conn->plain, out, kUseTuple);
    wec = e;
  }
  if (wec) {
    if (reused && wec != beast::error::timeout && !impl->stopped) co_return Exchange{};
    co_return Exchange{io_error("write", url, wec)};
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(impl->settings.max_body_bytes);
  error_code rec;
  if (conn->tls) {
    auto [e, n] = co_await http::async_read(*conn->tls, conn->buffer, parser, kUseTuple);
    rec = e;
  } else {
    auto [e, n] = co_await http::async_read(*conn->plain, conn->buffer, parser, kUseTuple);
    rec = e;
  }
  if (rec) {
    const bool nothing_read = !parser.got_some();
    if (reused && nothing_read && rec != beast::error::timeout && !impl->stopped) co_return Exchange{};
    co_return Exchange{io_error("read", url, rec)};
  }
  auto res = parser.release();
  HttpClientResponse response;
  response.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    std::string name(field.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    response.headers.emplace_back(std::move(name), std::string(field.value()));
  }
  const bool keep = res.keep_alive();
  response.body = std::move(res.body());
  if (keep) {
    give_back(*impl, pool_key(url), conn);
  } else {
    error_code ec;
    lowest.socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest.socket().close(ec);
  }
  co_return Exchange{std::move(response)};
}

asio::awaitable<bot::Result<HttpClientResponse>> perform(ImplPtr impl, Url url, HttpClientRequest req, http::verb verb) {
  const std::string key = pool_key(url);
  for (int attempt = 0;; ++attempt) {
    ConnPtr conn = attempt == 0 ? take_idle(*impl, key) : nullptr;
    const bool reused = conn != nullptr;
    if (!conn) {
      auto opened = co_await open_connection(impl, url);
      if (!opened) co_return opened.error();
      conn = std::move(*opened);
    }
    auto ex = co_await exchange(impl, conn, reused, url, req, verb);
    if (ex.result) co_return std::move(*ex.result);
    log().debug("https: idle connection was closed by the peer, retrying host={}", key);
  }
}

asio::awaitable<void> run_request(ImplPtr impl, Url url, HttpClientRequest req, http::verb verb,
                                  HttpsClient::Callback done) {
  auto result = co_await perform(impl, std::move(url), std::move(req), verb);
  if (!impl->alive) co_return;
  if (!result && impl->stopped) result = bot::make_error(bot::Errc::cancelled, "https: client stopped");
  done(std::move(result));
}

}  // namespace

std::string HttpClientResponse::header(const std::string& name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return {};
}

HttpsClient::HttpsClient(asio::io_context& io, std::shared_ptr<TlsContext> tls, HttpClientSettings settings)
    : impl_(std::make_shared<Impl>(io, std::move(tls), std::move(settings))) {}

HttpsClient::~HttpsClient() {
  impl_->alive = false;
  stop();
}

void HttpsClient::request(HttpClientRequest request, Callback done) {
  auto fail_later = [this, &done](bot::Error e) {
    asio::post(impl_->io, [impl = impl_, done = std::move(done), e = std::move(e)]() mutable {
      if (impl->alive) done(std::move(e));
    });
  };
  if (impl_->stopped) return fail_later(bot::make_error(bot::Errc::cancelled, "https: client stopped"));
  auto url = parse_url(request.url);
  if (!url) return fail_later(url.error());
  if (url->scheme == "http" && !impl_->settings.allow_plaintext) {
    return fail_later(bot::make_error(bot::Errc::invalid_argument, "https: http:// (no TLS) is not allowed here; use https://"));
  }
  if (url->scheme != "https" && url->scheme != "http") {
    return fail_later(bot::make_error(bot::Errc::invalid_argument, "https: only https:// (or http://) URLs are supported"));
  }
  const auto verb = http::string_to_verb(request.method);
  if (verb == http::verb::unknown) {
    return fail_later(bot::make_error(bot::Errc::invalid_argument, "https: unknown method " + request.method));
  }
  asio::co_spawn(impl_->io, run_request(impl_, std::move(*url), std::move(request), verb, std::move(done)),
                 [](std::exception_ptr e) {
                   if (!e) return;
                   try {
                     std::rethrow_exception(e);
                   } catch (const std::exception& ex) {
                     log().error("https: request ended by an exception error={}", ex.what());
                   }
                 });
}

void HttpsClient::stop() {
  impl_->stopped = true;
  error_code ec;
  for (auto& [key, list] : impl_->idle) {
    for (auto& c : list) c->lowest().socket().close(ec);
  }
  impl_->idle.clear();
  for (auto& [id, weak] : impl_->active) {
    if (auto c = weak.lock()) c->lowest().socket().close(ec);
  }
}

std::size_t HttpsClient::connections_opened() const { return impl_->opened; }

std::size_t HttpsClient::idle_connections() const {
  std::size_t n = 0;
  for (const auto& [key, list] : impl_->idle) n += list.size();
  return n;
}

}  // namespace runbot::common
