#include "tests/support/fake_https_server.h"

#include <map>
#include <optional>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace runbot::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
using SslStream = beast::ssl_stream<beast::tcp_stream>;

}  // namespace

struct FakeHttpsServer::Impl {
  Impl(asio::io_context& io_, const TestCa& ca, Handler h)
      : io(io_), ssl_ctx(ssl::context::tls_server), handler(std::move(h)) {
    ssl_ctx.use_certificate_chain_file(ca.cert_file);
    ssl_ctx.use_private_key_file(ca.key_file, ssl::context::pem);
  }
  asio::io_context& io;
  ssl::context ssl_ctx;
  Handler handler;
  std::optional<tcp::acceptor> acceptor;
  std::uint16_t port = 0;
  std::map<SslStream*, std::weak_ptr<SslStream>> streams;
  int accepted = 0;
  bool stopped = false;
  bool alive =
      true;  // false once the FakeHttpsServer is gone: connections then stop calling the handler
};

namespace {

using ImplPtr = std::shared_ptr<FakeHttpsServer::Impl>;

asio::awaitable<void> serve(ImplPtr impl, tcp::socket socket) {
  auto stream = std::make_shared<SslStream>(std::move(socket), impl->ssl_ctx);
  impl->streams[stream.get()] = stream;
  struct Forget {
    ImplPtr impl;
    SslStream* key;
    ~Forget() { impl->streams.erase(key); }
  } const forget{impl, stream.get()};
  beast::get_lowest_layer(*stream).expires_after(std::chrono::seconds(10));
  auto [hec] = co_await stream->async_handshake(ssl::stream_base::server, kUseTuple);
  if (hec) co_return;
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(std::size_t{16} << 20);
    beast::get_lowest_layer(*stream).expires_after(std::chrono::seconds(60));
    auto [rec, rn] = co_await http::async_read(*stream, buffer, parser, kUseTuple);
    if (rec || !impl->alive || impl->stopped) co_return;
    auto req = parser.release();
    FakeHttpRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    const auto q = r.target.find('?');
    r.path = r.target.substr(0, q);
    r.query = q == std::string::npos ? "" : r.target.substr(q + 1);
    for (const auto& field : req) {
      std::string name(field.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[name] = std::string(field.value());
    }
    r.body = std::move(req.body());
    FakeHttpResponse answer = impl->handler(r);
    http::response<http::string_body> res{static_cast<http::status>(answer.status), req.version()};
    if (!answer.content_type.empty()) res.set(http::field::content_type, answer.content_type);
    for (const auto& [k, v] : answer.headers) res.set(k, v);
    res.body() = std::move(answer.body);
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    auto [wec, wn] = co_await http::async_write(*stream, res, kUseTuple);
    if (wec || !res.keep_alive()) co_return;
  }
}

asio::awaitable<void> accept_loop(ImplPtr impl) {
  for (;;) {
    auto [ec, socket] = co_await impl->acceptor->async_accept(kUseTuple);
    if (ec || impl->stopped) co_return;
    ++impl->accepted;
    socket.set_option(tcp::no_delay(true));
    asio::co_spawn(impl->io, serve(impl, std::move(socket)), asio::detached);
  }
}

}  // namespace

FakeHttpsServer::FakeHttpsServer(asio::io_context& io, const TestCa& ca, Handler handler)
    : impl_(std::make_shared<Impl>(io, ca, std::move(handler))) {}

FakeHttpsServer::~FakeHttpsServer() {
  stop();
  impl_->alive = false;
}

std::uint16_t FakeHttpsServer::start() {
  impl_->acceptor.emplace(impl_->io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  impl_->port = impl_->acceptor->local_endpoint().port();
  asio::co_spawn(impl_->io, accept_loop(impl_), asio::detached);
  return impl_->port;
}

void FakeHttpsServer::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  error_code ec;
  if (impl_->acceptor) impl_->acceptor->close(ec);
  for (auto& [raw, w] : impl_->streams) {
    if (auto st = w.lock()) beast::get_lowest_layer(*st).socket().close(ec);
  }
}

std::uint16_t FakeHttpsServer::port() const {
  return impl_->port;
}
std::string FakeHttpsServer::url() const {
  return "https://127.0.0.1:" + std::to_string(impl_->port);
}
int FakeHttpsServer::connections_accepted() const {
  return impl_->accepted;
}

// ---------------------------------------------------------------------------- plain HTTP client

namespace {

struct PlainUrl {
  std::string host;
  std::string port;
  std::string target;
};

std::optional<PlainUrl> parse_plain(const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) return std::nullopt;
  const std::string rest = url.substr(kScheme.size());
  const auto slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  PlainUrl out;
  out.target = slash == std::string::npos ? "/" : rest.substr(slash);
  const auto colon = authority.rfind(':');
  out.host = authority.substr(0, colon);
  out.port = colon == std::string::npos ? "80" : authority.substr(colon + 1);
  return out;
}

asio::awaitable<void> plain_request(asio::io_context& io, std::string method, PlainUrl url,
                                    std::vector<std::pair<std::string, std::string>> headers,
                                    std::string body, std::function<void(int, std::string)> done,
                                    std::chrono::milliseconds timeout) {
  tcp::resolver resolver(io);
  auto [rec, results] = co_await resolver.async_resolve(url.host, url.port, kUseTuple);
  if (rec) {
    done(0, "resolve: " + rec.message());
    co_return;
  }
  beast::tcp_stream stream(io);
  stream.expires_after(timeout);
  auto [cec, ep] = co_await stream.async_connect(results, kUseTuple);
  if (cec) {
    done(0, "connect: " + cec.message());
    co_return;
  }
  http::request<http::string_body> req{http::string_to_verb(method), url.target, 11};
  req.set(http::field::host, url.host + ":" + url.port);
  req.set(http::field::user_agent, "Microsoft-BotFramework/3.1 (fake)");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = std::move(body);
  req.keep_alive(false);
  req.prepare_payload();
  auto [wec, wn] = co_await http::async_write(stream, req, kUseTuple);
  if (wec) {
    done(0, "write: " + wec.message());
    co_return;
  }
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  auto [reec, ren] = co_await http::async_read(stream, buffer, res, kUseTuple);
  if (reec) {
    done(0, "read: " + reec.message());
    co_return;
  }
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  done(static_cast<int>(res.result_int()), std::move(res.body()));
}

}  // namespace

void plain_http_request(asio::io_context& io, std::string method, std::string url,
                        std::vector<std::pair<std::string, std::string>> headers, std::string body,
                        std::function<void(int status, std::string body)> done,
                        std::chrono::milliseconds timeout) {
  auto parsed = parse_plain(url);
  if (!parsed) throw std::runtime_error("plain_http_request: not an http:// URL");
  asio::co_spawn(io,
                 plain_request(io, std::move(method), std::move(*parsed), std::move(headers),
                               std::move(body), std::move(done), timeout),
                 asio::detached);
}

}  // namespace runbot::testing
