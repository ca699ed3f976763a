#pragma once
// HttpServer: a small HTTP/1.1 server for inbound webhooks (Teams, Mattermost slash commands),
// health checks and metrics. Built on Boost.Beast; none of Beast's types appear here.
//
// Routing is by exact path (the target without its query string, not percent-decoded) and
// method. Handlers run on the io_context thread and must not block. A synchronous handler
// (route()) returns the whole response. An asynchronous one (route_async()) gets a `respond`
// callback instead and may call it later, after its own I/O (the Teams endpoint validates a JWT
// whose keys may need fetching first); the connection waits for it, up to handler_timeout. An
// unknown path gets 404, a known path with another method 405 with an Allow header, a handler
// that throws before responding 500 (logged; the server keeps serving).
//
// Limits: a body over max_body_bytes gets 413, a header block over 8 KiB 431, a malformed request
// 400; each of these closes the connection. Reading a request (or waiting for the next one on a
// keep-alive connection) and writing a response each have read_timeout; a peer that is slower is
// disconnected. Beyond max_connections open connections, a new one is accepted, answered 503 and
// closed.
//
// TLS (optional): with tls_cert_file and tls_key_file set, the same port speaks HTTPS only
// (TLS 1.2 and later, through OpenSSL). The handshake must finish within read_timeout; a peer that
// fails it (a plain-HTTP client, one that does not trust the certificate) is logged and closed,
// gets no response and counts as no request. The files are read once, by start(): a renewed
// certificate is picked up only by a new server (restart the process). Client certificates are
// not requested.
//
// Logs: one line per error with key=value context (remote, method, path, error); bodies, query
// strings and header values (Authorization included) are never logged.
//
// Ownership and executor: borrows the io_context, which must outlive the server. One coroutine
// per connection, all on that io_context; not thread-safe: call every method on the thread that
// runs the io_context. Destroying the server stops it. Connections still open finish on the
// io_context without touching the HttpServer object.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bot/result.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace runbot::common {

namespace detail {
struct HttpServerImpl;  // defined in http_server.cpp; shared with the connection coroutines
}  // namespace detail

struct HttpRequest {
  std::string method;   // "GET", "POST", ... as sent
  std::string target;   // as sent: "/hooks/teams?x=1"
  std::string path;     // target up to '?': "/hooks/teams"
  std::map<std::string, std::string> query;    // percent-decoded ('+' is a space); last one wins
  std::map<std::string, std::string> headers;  // names lower-case; repeated fields joined by ", "
  std::string body;
  std::string remote;   // peer "address:port"
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra fields, sent as given
};

struct HttpServerSettings {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 literal to listen on
  std::uint16_t port = 8080;          // 0 = an ephemeral port, reported by start()
  std::size_t max_body_bytes = std::size_t{1} << 20;
  std::chrono::milliseconds read_timeout{10000};
  std::size_t max_connections = 256;
  // How long an asynchronous handler may take to call `respond`; then the client gets 503.
  std::chrono::milliseconds handler_timeout{30000};
  // Both empty: plain HTTP. Both set: HTTPS on the same port. tls_cert_file is a PEM chain, the
  // server's certificate first, then the intermediates; tls_key_file its PEM private key, not
  // encrypted.
  std::string tls_cert_file;
  std::string tls_key_file;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  // Must be called exactly once, on the io_context thread, from inside the handler or later. A
  // second call, or a call after handler_timeout (when the 503 has been sent) or after the
  // connection went away, is ignored and logged. Cheap to copy; it keeps no reference to the
  // server, so a late call after the server was destroyed is harmless.
  using Respond = std::function<void(HttpResponse)>;
  using AsyncHandler = std::function<void(const HttpRequest&, Respond)>;

  HttpServer(boost::asio::io_context& io, HttpServerSettings settings);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Registers `handler` for `method` on the exact `path`; a later route for the same pair
  // replaces the earlier one. May be called before or after start().
  void route(std::string method, std::string path, Handler handler);
  // The same for a handler that answers through `respond` (see Respond). The request it gets is
  // valid only during the call: copy what a later response needs. Both kinds share one table, so
  // a route() for the same method and path replaces a route_async() and vice versa.
  void route_async(std::string method, std::string path, AsyncHandler handler);

  // Loads the TLS certificate and key when configured, binds and starts accepting; returns the
  // port actually bound. Errors: invalid_argument for an address that does not parse, or for a
  // TLS setting that cannot be used (only one of the two files set, a file that cannot be read or
  // parsed, a key that does not match the certificate; the message names the file and the reason,
  // never its contents); unavailable when the socket cannot be bound (the message names
  // address:port and the reason); conflict when already started or stopped.
  bot::Result<std::uint16_t> start();

  // Stops accepting and closes connections that are waiting for a request; a response being
  // written is finished, then its connection is closed. Idempotent; the server cannot be
  // restarted.
  void stop();

  // Requests that were read completely and answered (any status, 404s and 500s included).
  std::uint64_t requests_served() const;

 private:
  std::shared_ptr<detail::HttpServerImpl> impl_;
};

}  // namespace runbot::common
