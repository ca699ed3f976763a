#pragma once
// HttpsClient: an HTTP/1.1 client over TLS for the chat platforms' REST APIs (Slack Web API,
// response_url, ...); plain http:// too where the settings allow it. Built on Boost.Beast; none
// of its types appear here.
//
// - TLS: SNI and certificate verification (chain + host name, IP literals included) against the
//   TlsContext's trust anchors, for every https:// URL. http:// URLs are refused unless
//   `allow_plaintext` is set; then they go over plain TCP with the same keep-alive, deadlines,
//   limits and error values (only the TLS step is left out).
// - Keep-alive: connections are reused per host:port; at most `max_idle_per_host` idle ones are
//   kept, for at most `idle_keep` each. A request that fails on a reused connection before any
//   response byte arrived is retried once on a fresh connection (the server closed it while idle).
// - Deadlines: resolving+connecting+TLS handshake share `connect_timeout`; writing the request and
//   reading the whole response share the request's `timeout`.
// - Limits: a response body over `max_body_bytes` fails the request (unavailable) and the
//   connection is dropped.
//
// Errors (bot::Error): invalid_argument for a URL that does not parse, or whose scheme is not
// https (or http with allow_plaintext); timeout
// when a deadline passed; unavailable for DNS, connect, TLS (certificate problems included: the
// message says so) and I/O failures; cancelled when the client was destroyed or stop()ped.
// HTTP statuses are not errors: the caller gets every response and interprets it.
//
// Ownership and executor: borrows the io_context (which must outlive it); every method and every
// callback runs on the io_context's thread; callbacks never run inside request(). Not
// thread-safe. Destroying the client (or stop()) cancels requests in flight; their callbacks are
// not called after destruction. Logs never contain header values, bodies or query strings.
#include <chrono>
#include <cstddef>
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

struct HttpClientSettings {
  std::chrono::milliseconds connect_timeout{10000};
  std::size_t max_idle_per_host = 8;
  std::chrono::milliseconds idle_keep{30000};
  std::size_t max_body_bytes = std::size_t{8} << 20;
  std::string user_agent = "runbot";
  // Accept http:// URLs (no TLS: headers, tokens among them, and bodies travel in clear text).
  // Only for a server the configuration names as http://; off, http:// fails with invalid_argument.
  bool allow_plaintext = false;
};

struct HttpClientRequest {
  std::string method = "POST";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. {"Authorization", "Bearer …"}
  std::string body;
  std::chrono::milliseconds timeout{10000};
};

struct HttpClientResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;
  // The first header with this (lower-case) name, or "".
  std::string header(const std::string& name) const;
};

class HttpsClient {
 public:
  using Callback = std::function<void(bot::Result<HttpClientResponse>)>;

  HttpsClient(boost::asio::io_context& io, std::shared_ptr<TlsContext> tls, HttpClientSettings settings = {});
  ~HttpsClient();
  HttpsClient(const HttpsClient&) = delete;
  HttpsClient& operator=(const HttpsClient&) = delete;

  // Sends one request; `done` runs exactly once (unless the client is destroyed first).
  void request(HttpClientRequest request, Callback done);

  // Cancels everything in flight (callbacks get `cancelled`) and closes idle connections.
  void stop();

  // Connections opened so far (reuse makes this much smaller than the number of requests).
  std::size_t connections_opened() const;
  std::size_t idle_connections() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace runbot::common
