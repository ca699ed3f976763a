#pragma once
// FakeHttpsServer: a generic loopback HTTPS/1.1 server for fakes of REST peers (TLS with a TestCa
// certificate, 127.0.0.1, port 0, keep-alive). The handler is synchronous and sees the raw
// target (not percent-decoded), lower-case header names and the body.
//
// plain_http_request(): a minimal plain-HTTP/1.1 client (one connection per request), for fakes
// that call runbot's own HttpServer, which has no TLS.
//
// Ownership and executor: borrows an io_context; every method, handler and callback runs on its
// thread. Destroying the server (or stop()) closes the listener and every open connection.
// Test support: errors in setup throw std::runtime_error.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/tls_test_ca.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace runbot::testing {

struct FakeHttpRequest {
  std::string method;  // "GET", "POST", …
  std::string target;  // as sent, e.g. "/amer/v3/conversations/a%3A1/activities?x=1"
  std::string path;    // target up to '?'
  std::string query;   // after '?', raw
  std::map<std::string, std::string> headers;  // names lower-case
  std::string body;
};

struct FakeHttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra fields
};

class FakeHttpsServer {
 public:
  using Handler = std::function<FakeHttpResponse(const FakeHttpRequest&)>;

  FakeHttpsServer(boost::asio::io_context& io, const TestCa& ca, Handler handler);
  ~FakeHttpsServer();
  FakeHttpsServer(const FakeHttpsServer&) = delete;
  FakeHttpsServer& operator=(const FakeHttpsServer&) = delete;

  std::uint16_t start();  // binds 127.0.0.1:0; returns the port
  void stop();
  std::uint16_t port() const;
  std::string url() const;  // https://127.0.0.1:<port>
  int connections_accepted() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// One plain-HTTP request to `url` ("http://127.0.0.1:<port>/path"). `done(status, body)` runs once
// on the io_context thread; status 0 means a connection or protocol failure (body says which).
void plain_http_request(boost::asio::io_context& io, std::string method, std::string url,
                        std::vector<std::pair<std::string, std::string>> headers, std::string body,
                        std::function<void(int status, std::string body)> done,
                        std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));

}  // namespace runbot::testing
