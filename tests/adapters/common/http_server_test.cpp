#include "adapters/common/http_server.h"

#include <algorithm>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

#include "adapters/common/https_client.h"
#include "adapters/common/tls_context.h"
#include "tests/adapters/common/run_until.h"
#include "tests/support/tls_test_ca.h"

namespace runbot::common {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using testing::run_until;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

// A scripted plain-socket client: write raw bytes, read one response, or wait for the server to
// close. Raw bytes let a test send what a real client would never build (garbage, half requests).
struct Step {
  enum class Kind { write, read_response, read_eof } kind;
  std::string data;
};
Step send(std::string raw) { return {Step::Kind::write, std::move(raw)}; }
Step receive() { return {Step::Kind::read_response, {}}; }
Step expect_close() { return {Step::Kind::read_eof, {}}; }

struct Exchange {
  bool done = false;
  std::string failure;  // the first step that failed, and why
  bool closed_by_server = false;
  std::vector<http::response<http::string_body>> responses;
};

asio::awaitable<void> run_client(std::uint16_t port, std::vector<Step> steps, std::shared_ptr<Exchange> out) {
  auto executor = co_await asio::this_coro::executor;
  tcp::socket socket(executor);
  const tcp::endpoint server(asio::ip::make_address("127.0.0.1"), port);
  auto [cec] = co_await socket.async_connect(server, kUseTuple);
  if (cec) {
    out->failure = "connect: " + cec.message();
    out->done = true;
    co_return;
  }
  beast::flat_buffer buffer;
  for (const Step& step : steps) {
    if (step.kind == Step::Kind::write) {
      auto [ec, n] = co_await asio::async_write(socket, asio::buffer(step.data), kUseTuple);
      if (ec) {
        out->failure = "write: " + ec.message();
        break;
      }
    } else if (step.kind == Step::Kind::read_response) {
      http::response_parser<http::string_body> parser;
      parser.body_limit(16 * 1024 * 1024);
      auto [ec, n] = co_await http::async_read(socket, buffer, parser, kUseTuple);
      if (ec) {
        out->failure = "read: " + ec.message();
        break;
      }
      out->responses.push_back(parser.release());
    } else {
      char byte = 0;
      auto [ec, n] = co_await socket.async_read_some(asio::buffer(&byte, 1), kUseTuple);
      if (!ec) {
        out->failure = "expected the server to close, got data";
        break;
      }
      out->closed_by_server = true;
    }
  }
  out->done = true;
}

std::string request(const std::string& method, const std::string& target, const std::string& body = {},
                    const std::string& extra_headers = {}) {
  std::string r = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers;
  if (!body.empty() || method == "POST") r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return r + "\r\n" + body;
}

class HttpServerTest : public ::testing::Test {
 protected:
  // Starts a server with `settings` (port forced to 0) and the routes every test uses.
  void start(HttpServerSettings settings = {}) {
    settings.port = 0;
    server_ = std::make_unique<HttpServer>(io_, settings);
    server_->route("GET", "/health", [](const HttpRequest&) {
      HttpResponse r;
      r.body = "ok\n";
      return r;
    });
    server_->route("POST", "/echo", [this](const HttpRequest& req) {
      seen_.push_back(req);
      HttpResponse r;
      r.status = 201;
      r.content_type = "application/json";
      r.body = req.body;
      r.headers.emplace_back("X-Echo", "yes");
      return r;
    });
    server_->route("GET", "/echo", [this](const HttpRequest& req) {
      seen_.push_back(req);
      return HttpResponse{};
    });
    server_->route("GET", "/boom", [](const HttpRequest&) -> HttpResponse {
      throw std::runtime_error("handler exploded");
    });
    auto port = server_->start();
    ASSERT_TRUE(port.has_value()) << port.error().message;
    ASSERT_NE(*port, 0);
    port_ = *port;
  }

  std::shared_ptr<Exchange> talk(std::vector<Step> steps) {
    auto out = std::make_shared<Exchange>();
    asio::co_spawn(io_, run_client(port_, std::move(steps), out), [out](std::exception_ptr e) {
      if (!e) return;
      out->failure = "client threw";
      out->done = true;
    });
    return out;
  }

  // Runs a scripted exchange to its end, failing the test if it takes more than a few seconds.
  std::shared_ptr<Exchange> exchange(std::vector<Step> steps) {
    auto out = talk(std::move(steps));
    EXPECT_TRUE(run_until(io_, [&] { return out->done; })) << "client did not finish";
    return out;
  }

  asio::io_context io_;
  std::unique_ptr<HttpServer> server_;
  std::uint16_t port_ = 0;
  std::vector<HttpRequest> seen_;
};

TEST_F(HttpServerTest, GetRouteAnswers200WithTheHandlersBody) {
  start();
  auto ex = exchange({send(request("GET", "/health")), receive()});
  ASSERT_EQ(ex->failure, "");
  ASSERT_EQ(ex->responses.size(), 1u);
  EXPECT_EQ(ex->responses[0].result_int(), 200u);
  EXPECT_EQ(ex->responses[0].body(), "ok\n");
  EXPECT_EQ(ex->responses[0][http::field::content_type], "text/plain; charset=utf-8");
  EXPECT_EQ(server_->requests_served(), 1u);
}

TEST_F(HttpServerTest, PostBodyHeadersAndQueryReachTheHandler) {
  start();
  const std::string body = R"({"text":"deploy pr-42"})";
  auto ex = exchange({send(request("POST", "/echo?channel=C1&text=a%20b+c&flag", body,
                                   "Authorization: Bearer secret\r\nX-Custom: one\r\nx-custom: two\r\n")),
                      receive()});
  ASSERT_EQ(ex->failure, "");
  ASSERT_EQ(ex->responses.size(), 1u);
  EXPECT_EQ(ex->responses[0].result_int(), 201u);
  EXPECT_EQ(ex->responses[0].body(), body);
  EXPECT_EQ(ex->responses[0][http::field::content_type], "application/json");
  EXPECT_EQ(ex->responses[0]["X-Echo"], "yes");

  ASSERT_EQ(seen_.size(), 1u);
  const HttpRequest& req = seen_[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.path, "/echo");
  EXPECT_EQ(req.target, "/echo?channel=C1&text=a%20b+c&flag");
  EXPECT_EQ(req.body, body);
  EXPECT_EQ(req.query.at("channel"), "C1");
  EXPECT_EQ(req.query.at("text"), "a b c");
  EXPECT_EQ(req.query.at("flag"), "");
  EXPECT_EQ(req.headers.at("authorization"), "Bearer secret");
  EXPECT_EQ(req.headers.at("x-custom"), "one, two");
  EXPECT_EQ(req.remote.rfind("127.0.0.1:", 0), 0u) << req.remote;
}

TEST_F(HttpServerTest, UnknownPathIs404NamingThePath) {
  start();
  auto ex = exchange({send(request("GET", "/nope?x=1")), receive()});
  ASSERT_EQ(ex->failure, "");
  ASSERT_EQ(ex->responses.size(), 1u);
  EXPECT_EQ(ex->responses[0].result_int(), 404u);
  EXPECT_NE(ex->responses[0].body().find("/nope"), std::string::npos) << ex->responses[0].body();
  EXPECT_EQ(std::count(ex->responses[0].body().begin(), ex->responses[0].body().end(), '\n'), 1);
}

TEST_F(HttpServerTest, KnownPathWithOtherMethodIs405WithAllow) {
  start();
  auto ex = exchange({send(request("DELETE", "/echo")), receive()});
  ASSERT_EQ(ex->failure, "");
  ASSERT_EQ(ex->responses.size(), 1u);
  EXPECT_EQ(ex->responses[0].result_int(), 405u);
  EXPECT_EQ(ex->responses[0][http::field::allow], "GET, POST");
  EXPECT_TRUE(seen_.empty());
}

TEST_F(HttpServerTest, OversizedBodyIs413AndNeverReachesTheHandler) {
  HttpServerSettings settings;
  settings.max_body_bytes = 1024;
  start(settings);
  auto ex = exchange({send(request("POST", "/echo", std::string(4096, 'x'))), receive(), expect_close()});
  ASSERT_EQ(ex->failure, "");
  ASSERT_EQ(ex->responses.size(), 1u);
  EXPECT_EQ(ex->responses[0].result_int(), 413u);
  EXPECT_TRUE(ex->closed_by_server);
  EXPECT_TRUE(seen_.empty());

  auto fits = exchange({send(request("POST", "/echo", std::string(1024, 'y'))), receive()});
  ASSERT_EQ(fits->failure, "");
  ASSERT_EQ(fits->responses.size(), 1u);
  EXPECT_EQ(fits->responses[0].result_int(), 201u);
  EXPECT_EQ(fits->responses[0].body().size(), 1024u);
}

TEST_F(HttpServerTest, GarbageIs400AndTheConnectionIsClosed) {
  start();
  auto ex = exchange({send("\x01\x02\x03 this is not http\r\n\r\n"), receive(), expect_close()});
  ASSERT_EQ(ex->failure, "");
  ASSERT_EQ(ex->responses.size(), 1u);
  EXPECT_EQ(ex->responses[0].result_int(), 400u);
  EXPECT_TRUE(ex->closed_by_server);
  EXPECT_EQ(server_->requests_served(), 0u);
}

TEST_F(HttpServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  start();
  auto ex = exchange({send(request("GET", "/echo?n=1")), receive(), send(request("GET", "/echo?n=2")), receive()});
  ASSERT_EQ(ex->failure, "");
  ASSERT_EQ(ex->responses.size(), 2u);
  EXPECT_EQ(ex->responses[0].result_int(), 200u);
  EXPECT_EQ(ex->responses[1].result_int(), 200u);
  EXPECT_TRUE(ex->responses[0].keep_alive());
  ASSERT_EQ(seen_.size(), 2u);
  EXPECT_EQ(seen_[0].remote, seen_[1].remote);  // same client port: one connection
  EXPECT_EQ(seen_[1].query.at("n"), "2");
}

TEST_F(HttpServerTest, ConnectionCloseRequestIsAnsweredThenClosed) {
  start();
  auto ex = exchange({send(request("GET", "/health", {}, "Connection: close\r\n")), receive(), expect_close()});
  ASSERT_EQ(ex->failure, "");
  ASSERT_EQ(ex->responses.size(), 1u);
  EXPECT_EQ(ex->responses[0].result_int(), 200u);
  EXPECT_FALSE(ex->responses[0].keep_alive());
  EXPECT_TRUE(ex->closed_by_server);
}

TEST_F(HttpServerTest, ThrowingHandlerGives500AndTheServerKeepsServing) {
  start();
  auto ex = exchange({send(request("GET", "/boom")), receive(), send(request("GET", "/health")), receive()});
  ASSERT_EQ(ex->failure, "");
  ASSERT_EQ(ex->responses.size(), 2u);
  EXPECT_EQ(ex->responses[0].result_int(), 500u);
  EXPECT_EQ(ex->responses[0].body().find("exploded"), std::string::npos);  // no internals leak out
  EXPECT_EQ(ex->responses[1].result_int(), 200u);

  auto fresh = exchange({send(request("GET", "/health")), receive()});
  ASSERT_EQ(fresh->responses.size(), 1u);
  EXPECT_EQ(fresh->responses[0].result_int(), 200u);
  EXPECT_EQ(server_->requests_served(), 3u);
}

TEST_F(HttpServerTest, ExpectContinueGetsAnInterimResponseBeforeTheBody) {
  start();
  const std::string body = "payload";
  std::string head = "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n";
  auto ex = exchange({send(head), receive(), send(body), receive()});
  ASSERT_EQ(ex->failure, "");
  ASSERT_EQ(ex->responses.size(), 2u);
  EXPECT_EQ(ex->responses[0].result_int(), 100u);
  EXPECT_EQ(ex->responses[1].result_int(), 201u);
  EXPECT_EQ(ex->responses[1].body(), body);
}

TEST_F(HttpServerTest, SlowClientIsDisconnectedAfterTheReadTimeout) {
  HttpServerSettings settings;
  settings.read_timeout = 200ms;
  start(settings);
  // Half a request, then nothing: the server must not wait forever.
  auto ex = exchange({send("GET /health HTTP/1.1\r\nHost: x\r\n"), expect_close()});
  ASSERT_EQ(ex->failure, "");
  EXPECT_TRUE(ex->closed_by_server);
  EXPECT_TRUE(ex->responses.empty());
}

TEST_F(HttpServerTest, OverMaxConnectionsANewConnectionGets503) {
  HttpServerSettings settings;
  settings.max_connections = 1;
  start(settings);
  // The first client is served and then holds its keep-alive connection open.
  auto holder = talk({send(request("GET", "/health")), receive(), expect_close()});
  ASSERT_TRUE(run_until(io_, [&] { return holder->responses.size() == 1; }));

  auto refused = exchange({send(request("GET", "/health")), receive(), expect_close()});
  ASSERT_EQ(refused->failure, "");
  ASSERT_EQ(refused->responses.size(), 1u);
  EXPECT_EQ(refused->responses[0].result_int(), 503u);
  EXPECT_TRUE(refused->closed_by_server);
  EXPECT_FALSE(holder->done);  // the admitted client is untouched
}

TEST_F(HttpServerTest, StopClosesIdleConnectionsAndRefusesNewOnes) {
  start();
  auto idle = talk({send(request("GET", "/health")), receive(), expect_close()});
  ASSERT_TRUE(run_until(io_, [&] { return idle->responses.size() == 1; }));
  server_->stop();
  ASSERT_TRUE(run_until(io_, [&] { return idle->done; }));
  EXPECT_EQ(idle->failure, "");
  EXPECT_TRUE(idle->closed_by_server);

  auto late = exchange({send(request("GET", "/health")), receive()});
  EXPECT_NE(late->failure, "");
  EXPECT_TRUE(late->responses.empty());

  auto restart = server_->start();
  ASSERT_FALSE(restart.has_value());
  EXPECT_EQ(restart.error().code, bot::Errc::conflict);
}

TEST_F(HttpServerTest, BindToAPortInUseIsAnErrorNamingThePort) {
  start();
  HttpServerSettings settings;
  settings.port = port_;
  HttpServer second(io_, settings);
  auto result = second.start();
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, bot::Errc::unavailable);
  EXPECT_NE(result.error().message.find("127.0.0.1:" + std::to_string(port_)), std::string::npos)
      << result.error().message;
}

// ---- asynchronous routes ----

TEST_F(HttpServerTest, AsyncHandlerAnswersAfterItsOwnWork) {
  HttpServerSettings settings;
  start(settings);
  HttpServer::Respond saved;
  std::string seen_body;
  server_->route_async("POST", "/later", [&](const HttpRequest& req, HttpServer::Respond respond) {
    seen_body = req.body;  // the request is only valid during the call
    saved = std::move(respond);
  });
  auto ex = talk({send(request("POST", "/later", "work")), receive()});
  ASSERT_TRUE(run_until(io_, [&] { return static_cast<bool>(saved); }));
  // The client is still waiting: nothing has been answered yet.
  io_.run_for(50ms);
  EXPECT_FALSE(ex->done);
  EXPECT_EQ(server_->requests_served(), 0u);
  HttpResponse r;
  r.status = 202;
  r.content_type = "application/json";
  r.body = R"({"done":true})";
  saved(std::move(r));
  ASSERT_TRUE(run_until(io_, [&] { return ex->done; }));
  ASSERT_EQ(ex->failure, "");
  ASSERT_EQ(ex->responses.size(), 1u);
  EXPECT_EQ(ex->responses[0].result_int(), 202u);
  EXPECT_EQ(ex->responses[0].body(), R"({"done":true})");
  EXPECT_EQ(seen_body, "work");
}

TEST_F(HttpServerTest, AsyncHandlerMayRespondInsideTheCall) {
  start();
  server_->route_async("GET", "/now", [](const HttpRequest&, HttpServer::Respond respond) {
    HttpResponse r;
    r.body = "at once\n";
    respond(std::move(r));
  });
  auto ex = exchange(
      {send(request("GET", "/now")), receive(), send(request("GET", "/health")), receive()});
  ASSERT_EQ(ex->failure, "");
  ASSERT_EQ(ex->responses.size(), 2u);
  EXPECT_EQ(ex->responses[0].body(), "at once\n");
  EXPECT_EQ(ex->responses[1].result_int(), 200u);
}

TEST_F(HttpServerTest, AsyncHandlerThatNeverRespondsGets503AndALateRespondIsHarmless) {
  HttpServerSettings settings;
  settings.handler_timeout = 100ms;
  start(settings);
  HttpServer::Respond saved;
  server_->route_async("POST", "/stuck",
                       [&](const HttpRequest&, HttpServer::Respond respond) { saved = respond; });
  auto ex = exchange({send(request("POST", "/stuck", "x")), receive(),
                      send(request("GET", "/health")), receive()});
  ASSERT_EQ(ex->failure, "");
  ASSERT_EQ(ex->responses.size(), 2u);
  EXPECT_EQ(ex->responses[0].result_int(), 503u);
  EXPECT_EQ(ex->responses[0][http::field::retry_after], "1");
  EXPECT_EQ(ex->responses[1].result_int(), 200u);  // the connection keeps serving
  ASSERT_TRUE(saved);
  saved(HttpResponse{});  // too late: ignored, nothing is written twice
  io_.run_for(50ms);
  EXPECT_EQ(server_->requests_served(), 2u);
}

TEST_F(HttpServerTest, AsyncSecondRespondIsIgnored) {
  start();
  server_->route_async("GET", "/twice", [](const HttpRequest&, HttpServer::Respond respond) {
    HttpResponse first;
    first.body = "first\n";
    respond(std::move(first));
    HttpResponse second;
    second.status = 500;
    respond(std::move(second));
  });
  auto ex = exchange({send(request("GET", "/twice")), receive()});
  ASSERT_EQ(ex->responses.size(), 1u);
  EXPECT_EQ(ex->responses[0].result_int(), 200u);
  EXPECT_EQ(ex->responses[0].body(), "first\n");
}

TEST_F(HttpServerTest, AsyncHandlerThatThrowsGives500) {
  start();
  server_->route_async("GET", "/throws", [](const HttpRequest&, HttpServer::Respond) {
    throw std::runtime_error("async handler exploded");
  });
  auto ex = exchange({send(request("GET", "/throws")), receive()});
  ASSERT_EQ(ex->responses.size(), 1u);
  EXPECT_EQ(ex->responses[0].result_int(), 500u);
  EXPECT_EQ(ex->responses[0].body().find("exploded"), std::string::npos);
}

TEST_F(HttpServerTest, AsyncResponseWithAHeaderLineBreakIs500) {
  start();
  server_->route_async("GET", "/split", [](const HttpRequest&, HttpServer::Respond respond) {
    HttpResponse r;
    r.headers.emplace_back("X-Bad", "a\r\nSet-Cookie: x");
    respond(std::move(r));
  });
  auto ex = exchange({send(request("GET", "/split")), receive()});
  ASSERT_EQ(ex->responses.size(), 1u);
  EXPECT_EQ(ex->responses[0].result_int(), 500u);
  EXPECT_EQ(ex->responses[0]["Set-Cookie"], "");
}

TEST_F(HttpServerTest, AsyncRouteReplacesASyncOneForTheSamePath) {
  start();
  server_->route_async("GET", "/health", [](const HttpRequest&, HttpServer::Respond respond) {
    HttpResponse r;
    r.body = "async\n";
    respond(std::move(r));
  });
  auto ex = exchange({send(request("GET", "/health")), receive()});
  ASSERT_EQ(ex->responses.size(), 1u);
  EXPECT_EQ(ex->responses[0].body(), "async\n");
}

TEST_F(HttpServerTest, RespondAfterTheServerIsGoneIsHarmless) {
  start();
  HttpServer::Respond saved;
  server_->route_async("POST", "/orphan",
                       [&](const HttpRequest&, HttpServer::Respond respond) { saved = respond; });
  auto ex = talk({send(request("POST", "/orphan", "x")), receive()});
  ASSERT_TRUE(run_until(io_, [&] { return static_cast<bool>(saved); }));
  server_.reset();
  saved(HttpResponse{});
  EXPECT_TRUE(run_until(io_, [&] { return ex->done; }));
}

// ---- HTTPS (tls_cert_file + tls_key_file) ----

class HttpsServerTest : public HttpServerTest {
 protected:
  void start_tls(HttpServerSettings settings = {}) {
    settings.tls_cert_file = ca_.cert_file;
    settings.tls_key_file = ca_.key_file;
    start(settings);
  }

  std::unique_ptr<HttpsClient> client(const std::string& ca_file) {
    auto tls = TlsContext::create(ca_file);
    EXPECT_TRUE(tls.has_value()) << tls.error().message;
    return std::make_unique<HttpsClient>(io_, *tls);
  }

  // One request through `c`, run to its answer (or a test failure after a few seconds).
  bot::Result<HttpClientResponse> fetch(HttpsClient& c, const std::string& method, const std::string& path,
                                        const std::string& body = {}) {
    HttpClientRequest r;
    r.method = method;
    r.url = "https://127.0.0.1:" + std::to_string(port_) + path;
    r.body = body;
    r.timeout = 5s;
    std::optional<bot::Result<HttpClientResponse>> out;
    c.request(std::move(r), [&](bot::Result<HttpClientResponse> res) { out.emplace(std::move(res)); });
    EXPECT_TRUE(run_until(io_, [&] { return out.has_value(); })) << "no answer to " << method << " " << path;
    if (!out) return bot::make_error(bot::Errc::timeout, "test: no answer");
    return std::move(*out);
  }

  runbot::testing::TestCa ca_ = runbot::testing::TestCa::make();
};

TEST_F(HttpsServerTest, AnswersAnHttpsClientAndKeepsTheConnectionAlive) {
  start_tls();
  auto c = client(ca_.ca_file);
  auto health = fetch(*c, "GET", "/health");
  ASSERT_TRUE(health.has_value()) << health.error().message;
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");
  EXPECT_EQ(health->header("server"), "runbot");

  auto echo = fetch(*c, "POST", "/echo?x=1", R"({"text":"deploy"})");
  ASSERT_TRUE(echo.has_value()) << echo.error().message;
  EXPECT_EQ(echo->status, 201);
  EXPECT_EQ(echo->body, R"({"text":"deploy"})");
  EXPECT_EQ(echo->header("x-echo"), "yes");
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_[0].query.at("x"), "1");
  EXPECT_EQ(seen_[0].remote.rfind("127.0.0.1:", 0), 0u) << seen_[0].remote;

  EXPECT_EQ(c->connections_opened(), 1u);  // both requests on one TLS connection
  EXPECT_EQ(server_->requests_served(), 2u);
}

TEST_F(HttpsServerTest, ClientThatDoesNotTrustTheCertificateFailsAndTheServerKeepsServing) {
  start_tls();
  auto stranger = client(ca_.other_ca_file);
  auto refused = fetch(*stranger, "GET", "/health");
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, bot::Errc::unavailable);
  EXPECT_NE(refused.error().message.find("TLS"), std::string::npos) << refused.error().message;
  EXPECT_EQ(server_->requests_served(), 0u);

  auto c = client(ca_.ca_file);
  auto ok = fetch(*c, "GET", "/health");
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(server_->requests_served(), 1u);
}

TEST_F(HttpsServerTest, PlainHttpOnTheTlsPortGetsNoResponseAndTheServerKeepsServing) {
  start_tls();
  auto plain = exchange({send(request("GET", "/health")), receive()});
  EXPECT_NE(plain->failure, "");  // the read fails: the server closed without an HTTP answer
  EXPECT_TRUE(plain->responses.empty());
  EXPECT_EQ(server_->requests_served(), 0u);

  auto c = client(ca_.ca_file);
  auto ok = fetch(*c, "GET", "/health");
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(ok->body, "ok\n");
  EXPECT_EQ(server_->requests_served(), 1u);
}

TEST_F(HttpsServerTest, PeerThatNeverStartsTheHandshakeIsCutOffAfterTheReadTimeout) {
  HttpServerSettings settings;
  settings.read_timeout = 200ms;
  start_tls(settings);
  // TCP connect, then silence: no ClientHello ever comes.
  auto ex = exchange({expect_close()});
  ASSERT_EQ(ex->failure, "");
  EXPECT_TRUE(ex->closed_by_server);
  EXPECT_EQ(server_->requests_served(), 0u);
}

TEST_F(HttpsServerTest, OverMaxConnectionsATlsClientGets503AfterTheHandshake) {
  HttpServerSettings settings;
  settings.max_connections = 1;
  start_tls(settings);
  // The first client keeps its connection open (keep-alive, idle in its pool).
  auto holder = client(ca_.ca_file);
  auto first = fetch(*holder, "GET", "/health");
  ASSERT_TRUE(first.has_value()) << first.error().message;
  ASSERT_EQ(holder->idle_connections(), 1u);

  auto late = client(ca_.ca_file);
  auto refused = fetch(*late, "GET", "/health");
  ASSERT_TRUE(refused.has_value()) << refused.error().message;
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(refused->header("retry-after"), "1");
  EXPECT_EQ(server_->requests_served(), 1u);
}

TEST_F(HttpsServerTest, StopClosesAnIdleTlsConnection) {
  start_tls();
  auto c = client(ca_.ca_file);
  auto first = fetch(*c, "GET", "/health");
  ASSERT_TRUE(first.has_value()) << first.error().message;
  server_->stop();
  // Had the idle connection stayed open, the server would answer on it. Closed, the client's
  // retry on a fresh connection finds nobody listening.
  auto after = fetch(*c, "GET", "/health");
  EXPECT_FALSE(after.has_value());
  EXPECT_EQ(server_->requests_served(), 1u);
}

// start() checks the TLS settings before binding; every error names the file at fault.
class HttpsServerStartTest : public ::testing::Test {
 protected:
  bot::Result<std::uint16_t> start_with(const std::string& cert, const std::string& key) {
    HttpServerSettings settings;
    settings.port = 0;
    settings.tls_cert_file = cert;
    settings.tls_key_file = key;
    server_ = std::make_unique<HttpServer>(io_, settings);
    return server_->start();
  }
  // The error's message, after checking that it is an invalid_argument that leaks no key.
  std::string error_of(const bot::Result<std::uint16_t>& r) {
    EXPECT_FALSE(r.has_value());
    if (r.has_value()) return {};
    EXPECT_EQ(r.error().code, bot::Errc::invalid_argument);
    EXPECT_EQ(r.error().message.find("PRIVATE KEY"), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find(ca_.key_pem.substr(40, 20)), std::string::npos) << r.error().message;
    return r.error().message;
  }

  asio::io_context io_;
  runbot::testing::TestCa ca_ = runbot::testing::TestCa::make();
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpsServerStartTest, CertificateWithoutKeyIsRefused) {
  const auto msg = error_of(start_with(ca_.cert_file, ""));
  EXPECT_NE(msg.find("tls_cert_file is set but tls_key_file is not"), std::string::npos) << msg;
}

TEST_F(HttpsServerStartTest, KeyWithoutCertificateIsRefused) {
  const auto msg = error_of(start_with("", ca_.key_file));
  EXPECT_NE(msg.find("tls_key_file is set but tls_cert_file is not"), std::string::npos) << msg;
}

TEST_F(HttpsServerStartTest, UnreadableFilesAreNamed) {
  const auto cert = error_of(start_with(ca_.dir + "/missing.pem", ca_.key_file));
  EXPECT_NE(cert.find("tls_cert_file '" + ca_.dir + "/missing.pem' cannot be read"), std::string::npos) << cert;
  const auto key = error_of(start_with(ca_.cert_file, ca_.dir + "/missing-key.pem"));
  EXPECT_NE(key.find("tls_key_file '" + ca_.dir + "/missing-key.pem' cannot be read"), std::string::npos) << key;
}

TEST_F(HttpsServerStartTest, FilesThatAreNotPemCertificateAndKeyAreNamed) {
  // The key where the certificate belongs, and the certificate where the key belongs.
  const auto cert = error_of(start_with(ca_.key_file, ca_.key_file));
  EXPECT_NE(cert.find("tls_cert_file '" + ca_.key_file + "' is not a usable PEM certificate chain"),
            std::string::npos)
      << cert;
  const auto key = error_of(start_with(ca_.cert_file, ca_.cert_file));
  EXPECT_NE(key.find("tls_key_file '" + ca_.cert_file + "' is not a usable PEM private key"), std::string::npos)
      << key;
}

TEST_F(HttpsServerStartTest, KeyThatDoesNotMatchTheCertificateIsRefused) {
  // The CA's certificate with the server's key: both valid PEM, not a pair.
  const auto msg = error_of(start_with(ca_.ca_file, ca_.key_file));
  EXPECT_NE(msg.find("tls_key_file '" + ca_.key_file + "' does not match the certificate in tls_cert_file '" +
                     ca_.ca_file + "'"),
            std::string::npos)
      << msg;
}

TEST_F(HttpsServerStartTest, AMatchingPairStarts) {
  auto port = start_with(ca_.cert_file, ca_.key_file);
  ASSERT_TRUE(port.has_value()) << port.error().message;
  EXPECT_NE(*port, 0);
}

TEST(HttpServer, AddressThatDoesNotParseIsInvalidArgument) {
  asio::io_context io;
  HttpServerSettings settings;
  settings.address = "not-an-address";
  settings.port = 0;
  HttpServer server(io, settings);
  auto result = server.start();
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, bot::Errc::invalid_argument);
  EXPECT_NE(result.error().message.find("not-an-address"), std::string::npos);
}

}  // namespace
}  // namespace runbot::common
