#include "tests/support/fake_mattermost.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <optional>
#include <functional>
#include <set>
#include <stdexcept>
#include <type_traits>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

namespace runbot::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using nlohmann::json;
using boost::system::error_code;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
using SslStream = beast::ssl_stream<beast::tcp_stream>;
using PlainStream = beast::tcp_stream;

// One WebSocket, over TLS or plain TCP: the parts that do not depend on the stream type.
struct Sock {
  explicit Sock(asio::io_context& io) : signal(io) {}
  virtual ~Sock() = default;
  Sock(const Sock&) = delete;
  Sock& operator=(const Sock&) = delete;
  asio::steady_timer signal;
  std::deque<std::string> queue;
  bool waiting = false;
  bool open = false;
  bool authenticated = false;
  bool silent = false;
  void push(std::string o) {
    queue.push_back(std::move(o));
    if (waiting) signal.cancel();
  }
  virtual void close_transport() = 0;   // TCP closed, no close frame
  virtual void cancel_transport() = 0;  // pending operations end; the connection stays open
};

template <class Stream>
struct SockOn : Sock {
  SockOn(Stream&& s, asio::io_context& io) : Sock(io), ws(std::move(s)) {}
  websocket::stream<Stream> ws;
  void close_transport() override {
    error_code ignored;
    beast::get_lowest_layer(ws).socket().close(ignored);
  }
  void cancel_transport() override { beast::get_lowest_layer(ws).cancel(); }
};

struct Connection {
  std::string id;
  std::int64_t next = 0;  // seq of the next event
  std::deque<std::pair<std::int64_t, std::string>> buffer;
};

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

std::map<std::string, std::string> parse_query(const std::string& q) {
  std::map<std::string, std::string> out;
  std::size_t pos = 0;
  while (pos < q.size()) {
    auto amp = q.find('&', pos);
    std::string pair = q.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    auto eq = pair.find('=');
    out[pair.substr(0, eq)] = eq == std::string::npos ? "" : pair.substr(eq + 1);
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return out;
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

struct FakeMattermost::Impl {
  Impl(asio::io_context& io_, const TestCa& ca, FakeMattermostSettings s, FakeMattermost* owner_)
      : io(io_), ssl_ctx(ssl::context::tls_server), settings(std::move(s)), owner(owner_) {
    ssl_ctx.use_certificate_chain_file(ca.cert_file);
    ssl_ctx.use_private_key_file(ca.key_file, ssl::context::pem);
  }
  asio::io_context& io;
  ssl::context ssl_ctx;
  FakeMattermostSettings settings;
  FakeMattermost* owner;
  std::optional<tcp::acceptor> acceptor;
  std::uint16_t port = 0;
  std::shared_ptr<Sock> sock;  // the current socket
  std::vector<std::shared_ptr<Sock>> silenced;  // gone silent: kept open, never read or written
  bool lose_next = false;
  std::map<const void*, std::function<void()>> http_streams;  // closers, until upgraded to a socket
  Connection conn;
  int accepted = 0;
  int hellos = 0;
  int resumes = 0;
  std::uint64_t next_id = 1;
  std::int64_t last_create = 0;
  std::vector<json> posts;  // every post, in order
  struct Injection {
    int status = 0;
    int retry_after = 0;
  };
  std::map<std::string, std::deque<Injection>> injections;
  // The server's rate limiter (RateLimitSettings): a token bucket over every REST call.
  struct Limiter {
    double per_second = 0;  // 0 = off (the server's default)
    double burst = 0;
    double tokens = 0;
    std::chrono::steady_clock::time_point refilled{};
  } limiter;
  struct User {
    std::string username;
    std::string email;
  };
  std::map<std::string, User> users;
  std::set<std::string> team_members;
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> groups;  // user → (id, name)
  bool stopped = false;

  void problem(std::string p) {
    if (owner) owner->problems.push_back(std::move(p));
  }
  std::string new_id(const char* prefix) {
    // 26 characters like Mattermost's ids; zero-padded in the middle so that ids never collide.
    const std::string p(prefix);
    const std::string n = std::to_string(next_id++);
    return p + std::string(26 - std::min<std::size_t>(26, p.size() + n.size()), '0') + n;
  }
  std::string channel_type(const std::string& channel) const {
    auto it = settings.channels.find(channel);
    return it == settings.channels.end() ? "O" : it->second;
  }
  void new_connection() {
    conn = Connection{};
    conn.id = new_id("conn");
  }
  void emit(const std::string& event, json data) {
    json e{{"event", event}, {"data", std::move(data)},
           {"broadcast", {{"omit_users", nullptr}, {"user_id", ""}, {"channel_id", ""}, {"team_id", ""}}},
           {"seq", conn.next}};
    std::string text = e.dump();
    conn.buffer.emplace_back(conn.next, text);
    while (conn.buffer.size() > settings.replay_buffer) conn.buffer.pop_front();
    ++conn.next;
    if (lose_next) {
      lose_next = false;
      return;
    }
    if (sock && sock->open && sock->authenticated) sock->push(std::move(text));
  }
  void hello() {
    ++hellos;
    emit("hello", {{"server_version", "9.5.0.fake"}, {"connection_id", conn.id}, {"server_hostname", "fake"}});
  }
  json make_post(const std::string& user, const std::string& channel, const std::string& message,
                 const std::string& root_id) {
    last_create = std::max(wall_ms(), last_create + 1);
    json p{{"id", new_id("post")}, {"create_at", last_create}, {"update_at", last_create}, {"edit_at", 0},
           {"delete_at", 0}, {"user_id", user}, {"channel_id", channel}, {"root_id", root_id},
           {"message", message}, {"type", ""}, {"props", json::object()}, {"hashtags", ""},
           {"pending_post_id", ""}, {"reply_count", 0}, {"metadata", json::object()}};
    posts.push_back(p);
    return p;
  }
  void broadcast_post(const json& p, const std::string& sender) {
    const std::string channel = str(p, "channel_id");
    emit("posted", {{"channel_display_name", channel}, {"channel_name", channel},
                    {"channel_type", channel_type(channel)}, {"post", p.dump()}, {"sender_name", "@" + sender},
                    {"team_id", settings.team_id}, {"set_online", true}});
  }
  bool known_post(const std::string& id) const {
    for (const auto& p : posts) {
      if (str(p, "id") == id) return true;
    }
    return false;
  }

  http::response<http::string_body> answer(const http::request<http::string_body>& req);
  void on_frame(Sock& s, const std::string& text);
};

namespace {

using ImplPtr = std::shared_ptr<FakeMattermost::Impl>;

http::response<http::string_body> json_response(unsigned version, int status, const json& body) {
  http::response<http::string_body> res{static_cast<http::status>(status), version};
  res.set(http::field::content_type, "application/json");
  res.body() = body.dump();
  res.keep_alive(true);
  res.prepare_payload();
  return res;
}

json api_error(const std::string& id, int status) {
  return {{"id", id}, {"message", "fake error"}, {"request_id", "req1"}, {"status_code", status}, {"is_oauth", false}};
}

std::string kind_of(const std::string& method, const std::string& path) {
  const std::string p = path.rfind("/api/v4", 0) == 0 ? path.substr(7) : path;
  if (p == "/users/me" || p == "/users/me/teams" || p == "/posts" || p == "/posts/ephemeral") return method + " " + p;
  if (p.rfind("/users/me/teams/", 0) == 0) return method + " /users/me/teams/channels";
  if (p.rfind("/posts/", 0) == 0 && p.size() > 6 && p.substr(p.size() - 6) == "/patch") return method + " /posts/patch";
  if (p.rfind("/posts/", 0) == 0 && p.size() > 7 && p.substr(p.size() - 7) == "/thread") return method + " /posts/thread";
  if (p.rfind("/channels/", 0) == 0 && p.size() > 6 && p.substr(p.size() - 6) == "/posts") return method + " /channels/posts";
  if (p.rfind("/teams/", 0) == 0 && p.find("/members/") != std::string::npos) return method + " /teams/members";
  if (p.rfind("/users/", 0) == 0 && p.size() > 7 && p.substr(p.size() - 7) == "/groups") return method + " /users/groups";
  if (p.rfind("/users/", 0) == 0 && p.find('/', 7) == std::string::npos) return method + " /users/id";
  if (path.rfind("/hooks/commands/", 0) == 0) return method + " /hooks/commands";
  return method + " " + p;
}

}  // namespace

http::response<http::string_body> FakeMattermost::Impl::answer(const http::request<http::string_body>& req) {
  const std::string target(req.target());
  const auto q = target.find('?');
  const std::string path = target.substr(0, q);
  Call call;
  call.method = std::string(req.method_string());
  call.path = path;
  call.query = q == std::string::npos ? "" : target.substr(q + 1);
  if (!req.body().empty()) {
    call.body = json::parse(req.body(), nullptr, false);
    if (call.body.is_discarded()) {
      problem(call.method + " " + path + ": body is not JSON");
      call.body = nullptr;
    }
  }
  const unsigned v = req.version();
  auto record = [&](int status, const json& body) {
    call.status = status;
    if (owner) owner->calls.push_back(call);
    return json_response(v, status, body);
  };
  const std::string kind = kind_of(call.method, path);
  // Over the limit, as the server does (throttled): 429, "limit exceeded", Retry-After in whole
  // seconds, X-Ratelimit-*.
  auto limit_exceeded = [&](int retry_after, int limit) {
    call.status = 429;
    if (owner) owner->calls.push_back(call);
    http::response<http::string_body> res{http::status::too_many_requests, v};
    res.set(http::field::content_type, "text/plain");
    res.set(http::field::retry_after, std::to_string(retry_after));
    res.set("X-Ratelimit-Limit", std::to_string(limit));
    res.set("X-Ratelimit-Remaining", "0");
    res.set("X-Ratelimit-Reset", std::to_string(retry_after));
    res.body() = "limit exceeded\n";
    res.keep_alive(true);
    res.prepare_payload();
    return res;
  };
  if (limiter.per_second > 0 && kind != "POST /hooks/commands") {
    const auto now = std::chrono::steady_clock::now();
    limiter.tokens = std::min(limiter.burst, limiter.tokens + std::chrono::duration<double>(now - limiter.refilled).count() *
                                                                  limiter.per_second);
    limiter.refilled = now;
    if (limiter.tokens < 1.0) {
      if (owner) ++owner->rate_limited;
      const double wait = (1.0 - limiter.tokens) / limiter.per_second;
      return limit_exceeded(std::max(1, static_cast<int>(std::ceil(wait))), static_cast<int>(limiter.per_second));
    }
    limiter.tokens -= 1.0;
  }
  if (auto it = injections.find(kind); it != injections.end() && !it->second.empty()) {
    Injection inj = it->second.front();
    it->second.pop_front();
    if (inj.status == 429) return limit_exceeded(inj.retry_after, 10);
    return record(inj.status, api_error("api.fake.injected.app_error", inj.status));
  }
  const std::string auth(req[http::field::authorization]);
  if (kind == "POST /hooks/commands") {
    // The URL is the credential; the body is a command response.
    if (!call.body.is_object() || (!call.body.contains("text") && !call.body.contains("attachments"))) {
      problem("response_url body without text/attachments");
    }
    if (owner) owner->responses.push_back(call.body);
    call.status = 200;
    if (owner) owner->calls.push_back(call);
    http::response<http::string_body> res{http::status::ok, v};
    res.set(http::field::content_type, "text/plain");
    res.body() = "ok";
    res.keep_alive(true);
    res.prepare_payload();
    return res;
  }
  if (auth.empty()) problem(kind + ": no Authorization header");
  if (auth != "Bearer " + settings.token) return record(401, api_error("api.context.session_expired.app_error", 401));
  const json& b = call.body;
  if (kind == "GET /users/me") {
    return record(200, {{"id", settings.bot_user_id}, {"username", settings.bot_name}, {"is_bot", true}});
  }
  if (kind == "GET /users/me/teams") {
    return record(200, json::array({{{"id", settings.team_id}, {"name", settings.team_name},
                                     {"display_name", "ACME"}, {"type", "O"}, {"delete_at", 0}}}));
  }
  if (kind == "GET /users/id") {
    const std::string id = path.substr(std::string("/api/v4/users/").size());
    auto it = users.find(id);
    if (it == users.end()) return record(404, api_error("app.user.missing_account.const", 404));
    return record(200, {{"id", id}, {"username", it->second.username},
                        {"email", settings.hide_emails ? "" : it->second.email}, {"first_name", ""},
                        {"last_name", ""}, {"nickname", ""}, {"roles", "system_user"}, {"delete_at", 0},
                        {"is_bot", false}, {"locale", "en"}});
  }
  if (kind == "GET /teams/members") {
    const std::string rest = path.substr(std::string("/api/v4/teams/").size());
    const std::string team = rest.substr(0, rest.find('/'));
    const std::string user = rest.substr(rest.rfind('/') + 1);
    if (team != settings.team_id || !team_members.count(user)) {
      return record(404, api_error("app.team.get_member.missing.app_error", 404));
    }
    return record(200, {{"team_id", team}, {"user_id", user}, {"roles", "team_user"}, {"delete_at", 0},
                        {"scheme_user", true}, {"scheme_admin", false}, {"scheme_guest", false}});
  }
  if (kind == "GET /users/groups") {
    if (settings.groups_status != 200) {
      return record(settings.groups_status, api_error("api.ldap_groups.license_error", settings.groups_status));
    }
    const std::string user = path.substr(std::string("/api/v4/users/").size(),
                                         path.size() - std::string("/api/v4/users/").size() - 7);
    json out = json::array();
    for (const auto& [id, name] : groups[user]) {
      out.push_back({{"id", id}, {"name", name}, {"display_name", name}, {"description", ""}, {"source", "ldap"},
                     {"remote_id", "cn=" + name}, {"create_at", 1}, {"update_at", 1}, {"delete_at", 0},
                     {"has_syncables", false}, {"allow_reference", true}});
    }
    return record(200, out);
  }
  if (kind == "GET /users/me/teams/channels") {
    json out = json::array();
    for (const auto& [id, type] : settings.channels) out.push_back({{"id", id}, {"type", type}, {"team_id", settings.team_id}});
    return record(200, out);
  }
  if (kind == "GET /channels/posts") {
    const std::string channel = path.substr(std::string("/api/v4/channels/").size(),
                                            path.size() - std::string("/api/v4/channels/").size() - 6);
    const auto params = parse_query(call.query);
    const bool paged = params.count("page") || params.count("per_page");
    json order = json::array();
    json by_id = json::object();
    if (auto it = params.find("since"); it != params.end()) {
      // Everything created since then; the server ignores page/per_page here.
      if (paged) problem("channel posts: since together with page/per_page (the server ignores the paging)");
      const std::int64_t since = std::stoll(it->second);
      for (auto p = posts.rbegin(); p != posts.rend(); ++p) {
        if (str(*p, "channel_id") != channel || (*p)["create_at"].get<std::int64_t>() < since) continue;
        order.push_back((*p)["id"]);
        by_id[str(*p, "id")] = *p;
      }
      return record(200, {{"order", order}, {"posts", by_id}, {"next_post_id", ""}, {"prev_post_id", ""}});
    }
    // A page of the channel, replies included, newest first (page 0, 60 a page by default; the
    // server caps per_page at 200).
    std::size_t page = 0;
    std::size_t per_page = 60;
    if (auto it = params.find("page"); it != params.end()) page = std::stoul(it->second);
    if (auto it = params.find("per_page"); it != params.end()) per_page = std::stoul(it->second);
    if (per_page > 200) {
      problem("channel posts: per_page over 200 (the server caps it)");
      per_page = 200;
    }
    std::size_t index = 0;
    std::vector<const json*> in_channel;
    for (auto p = posts.rbegin(); p != posts.rend(); ++p) {
      if (str(*p, "channel_id") == channel) in_channel.push_back(&*p);
    }
    for (const json* p : in_channel) {
      if (index >= page * per_page && index < (page + 1) * per_page) {
        order.push_back((*p)["id"]);
        by_id[str(*p, "id")] = *p;
      }
      ++index;
    }
    const bool has_next = (page + 1) * per_page < in_channel.size();
    return record(200, {{"order", order}, {"posts", by_id}, {"next_post_id", ""}, {"prev_post_id", ""},
                        {"has_next", has_next}});
  }
  if (kind == "GET /posts/thread") {
    const std::string id = path.substr(std::string("/api/v4/posts/").size(),
                                       path.size() - std::string("/api/v4/posts/").size() - 7);
    const json* post = nullptr;
    for (const auto& p : posts) {
      if (str(p, "id") == id) post = &p;
    }
    if (!post) return record(404, api_error("app.post.get.app_error", 404));
    // Any post of the thread names it: the root and all its replies, newest first.
    const std::string root = str(*post, "root_id").empty() ? id : str(*post, "root_id");
    json order = json::array();
    json by_id = json::object();
    for (auto p = posts.rbegin(); p != posts.rend(); ++p) {
      if (str(*p, "id") != root && str(*p, "root_id") != root) continue;
      order.push_back((*p)["id"]);
      by_id[str(*p, "id")] = *p;
    }
    return record(200, {{"order", order}, {"posts", by_id}, {"next_post_id", ""}, {"prev_post_id", ""},
                        {"has_next", false}});
  }
  auto check_post = [&](const json& p, const std::string& what) -> bool {
    if (!p.is_object() || str(p, "channel_id").empty()) {
      problem(what + ": no channel_id");
      return false;
    }
    const std::string msg = str(p, "message");
    std::size_t chars = 0;
    for (unsigned char c : msg) chars += (c & 0xC0) != 0x80;
    if (chars > 16383) problem(what + ": message over 16383 characters");
    const std::string root = str(p, "root_id");
    if (!root.empty() && !known_post(root)) problem(what + ": root_id names no post");
    return true;
  };
  if (kind == "POST /posts") {
    if (!check_post(b, kind)) return record(400, api_error("api.post.create_post.channel.app_error", 400));
    if (b.contains("props") && !b["props"].is_object()) {
      problem(kind + ": props is not an object");
      return record(400, api_error("api.post.create_post.props.app_error", 400));
    }
    json p = make_post(settings.bot_user_id, str(b, "channel_id"), str(b, "message"), str(b, "root_id"));
    // Props are kept as sent (and returned by every GET); the server marks a bot account's posts.
    if (b.contains("props")) p["props"] = b["props"];
    p["props"]["from_bot"] = "true";
    posts.back() = p;
    broadcast_post(p, settings.bot_name);
    return record(201, p);
  }
  if (kind == "PUT /posts/patch") {
    const std::string id = path.substr(std::string("/api/v4/posts/").size(),
                                       path.size() - std::string("/api/v4/posts/").size() - 6);
    for (auto& p : posts) {
      if (str(p, "id") != id) continue;
      if (b.contains("message")) p["message"] = b["message"];
      if (b.contains("props")) p["props"] = b["props"];
      return record(200, p);
    }
    return record(404, api_error("app.post.get.app_error", 404));
  }
  if (kind == "POST /posts/ephemeral") {
    if (str(b, "user_id").empty()) problem("ephemeral post without user_id");
    if (!b.contains("post") || !check_post(b["post"], kind)) return record(400, api_error("api.post.ephemeral.app_error", 400));
    json p = b["post"];
    p["id"] = new_id("eph");
    return record(201, p);
  }
  return record(404, api_error("api.context.404.app_error", 404));
}

void FakeMattermost::Impl::on_frame(Sock& s, const std::string& text) {
  if (text.size() > 8 * 1024) problem("client frame over 8 KB");
  json j = json::parse(text, nullptr, false);
  if (owner) owner->client_frames.push_back(j.is_discarded() ? json(text) : j);
  if (j.is_discarded() || !j.is_object()) return problem("client frame is not a JSON object");
  const auto seq = j.value("seq", json());
  if (!seq.is_number_integer()) problem("client frame without seq");
  if (str(j, "action") == "authentication_challenge") {
    const bool ok = j.contains("data") && str(j["data"], "token") == settings.token;
    if (!ok) {
      s.push(json{{"status", "FAIL"}, {"seq_reply", seq}, {"error", {{"id", "api.web_socket_router.bad_token"}, {"message", "bad token"}}}}.dump());
      return;
    }
    s.push(json{{"status", "OK"}, {"seq_reply", seq}}.dump());
    if (!s.authenticated) {
      s.authenticated = true;
      new_connection();
      hello();
    }
  }
}

namespace {

template <class Stream>
asio::awaitable<void> socket_writer(std::shared_ptr<SockOn<Stream>> s) {
  for (;;) {
    while (s->queue.empty()) {
      if (!s->open) co_return;
      s->signal.expires_at(asio::steady_timer::time_point::max());
      s->waiting = true;
      auto [ec] = co_await s->signal.async_wait(kUseTuple);
      (void)ec;
      s->waiting = false;
      if (!s->open) co_return;
    }
    std::string o = std::move(s->queue.front());
    s->queue.pop_front();
    s->ws.text(true);
    auto [wec, n] = co_await s->ws.async_write(asio::buffer(o), kUseTuple);
    if (wec) co_return;
  }
}

template <class Stream>
asio::awaitable<void> run_socket(ImplPtr impl, std::shared_ptr<SockOn<Stream>> s, http::request<http::string_body> req) {
  s->ws.set_option(websocket::stream_base::timeout{std::chrono::seconds(10), websocket::stream_base::none(), false});
  auto [aec] = co_await s->ws.async_accept(req, kUseTuple);
  if (aec) co_return;
  ++impl->accepted;
  if (impl->sock) {  // one socket at a time, as runbot should hold
    impl->problem("a second socket was opened while one is open");
  }
  impl->sock = s;
  s->open = true;
  asio::co_spawn(impl->io, socket_writer(s), asio::detached);
  const std::string target(req.target());
  const auto q = target.find('?');
  const auto params = parse_query(q == std::string::npos ? "" : target.substr(q + 1));
  const bool header_auth = std::string(req[http::field::authorization]) == "Bearer " + impl->settings.token;
  if (header_auth) {
    s->authenticated = true;
    auto cid = params.find("connection_id");
    auto sn = params.find("sequence_number");
    if (cid != params.end() && !cid->second.empty() && sn == params.end()) impl->problem("connection_id without sequence_number");
    bool resumed = false;
    if (cid != params.end() && sn != params.end() && cid->second == impl->conn.id) {
      const std::int64_t from = std::stoll(sn->second);
      if (from == 0) impl->problem("resume with sequence_number=0");
      const bool in_buffer = (!impl->conn.buffer.empty() && from >= impl->conn.buffer.front().first && from <= impl->conn.next) ||
                             (impl->conn.buffer.empty() && from == impl->conn.next);
      if (in_buffer) {
        resumed = true;
        ++impl->resumes;
        for (const auto& [seq, text] : impl->conn.buffer) {
          if (seq >= from) s->push(text);
        }
      }
    }
    if (!resumed) {
      impl->new_connection();
      impl->hello();
    }
  }
  beast::flat_buffer buffer;
  for (;;) {
    auto [ec, n] = co_await s->ws.async_read(buffer, kUseTuple);
    if (ec || s->silent) break;
    std::string text = beast::buffers_to_string(buffer.data());
    buffer.consume(buffer.size());
    impl->on_frame(*s, text);
  }
  s->open = false;
  s->signal.cancel();
  if (impl->sock == s) impl->sock = nullptr;
  if (s->silent) co_return;  // go_silent(): the TCP connection stays open, unread
  s->close_transport();
}

// One HTTP connection (TLS or plain): REST requests until it is upgraded to the socket.
template <class Stream>
asio::awaitable<void> serve_on(ImplPtr impl, std::shared_ptr<Stream> stream) {
  impl->http_streams[stream.get()] = [weak = std::weak_ptr<Stream>(stream)] {
    error_code ec;
    if (auto st = weak.lock()) beast::get_lowest_layer(*st).socket().close(ec);
  };
  struct Forget {
    ImplPtr impl;
    const void* key;
    ~Forget() { impl->http_streams.erase(key); }
  } const forget{impl, stream.get()};
  if constexpr (std::is_same_v<Stream, SslStream>) {
    beast::get_lowest_layer(*stream).expires_after(std::chrono::seconds(10));
    auto [hec] = co_await stream->async_handshake(ssl::stream_base::server, kUseTuple);
    if (hec) co_return;
  }
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(std::size_t{16} << 20);
    beast::get_lowest_layer(*stream).expires_after(std::chrono::seconds(60));
    auto [rec, rn] = co_await http::async_read(*stream, buffer, parser, kUseTuple);
    if (rec) co_return;
    auto req = parser.release();
    if (websocket::is_upgrade(req)) {
      const std::string target(req.target());
      const std::string auth(req[http::field::authorization]);
      if (target.rfind("/api/v4/websocket", 0) != 0 || (!auth.empty() && auth != "Bearer " + impl->settings.token)) {
        auto res = json_response(req.version(), 401, api_error("api.web_socket.connect.upgrade.app_error", 401));
        res.keep_alive(false);
        auto [wec, wn] = co_await http::async_write(*stream, res, kUseTuple);
        (void)wec;
        co_return;
      }
      beast::get_lowest_layer(*stream).expires_never();
      impl->http_streams.erase(stream.get());
      auto s = std::make_shared<SockOn<Stream>>(std::move(*stream), impl->io);
      co_await run_socket(impl, s, std::move(req));
      co_return;
    }
    auto res = impl->answer(req);
    res.keep_alive(req.keep_alive());
    auto [wec, wn] = co_await http::async_write(*stream, res, kUseTuple);
    if (wec || !res.keep_alive()) co_return;
  }
}

asio::awaitable<void> serve(ImplPtr impl, tcp::socket socket) {
  if (impl->settings.tls) {
    co_await serve_on(impl, std::make_shared<SslStream>(std::move(socket), impl->ssl_ctx));
  } else {
    co_await serve_on(impl, std::make_shared<PlainStream>(std::move(socket)));
  }
}

asio::awaitable<void> accept_loop(ImplPtr impl) {
  for (;;) {
    auto [ec, socket] = co_await impl->acceptor->async_accept(kUseTuple);
    if (ec || impl->stopped) co_return;
    socket.set_option(tcp::no_delay(true));
    asio::co_spawn(impl->io, serve(impl, std::move(socket)), asio::detached);
  }
}

}  // namespace

FakeMattermost::FakeMattermost(asio::io_context& io, const TestCa& ca, FakeMattermostSettings settings)
    : impl_(std::make_shared<Impl>(io, ca, std::move(settings), this)) {}

FakeMattermost::~FakeMattermost() {
  stop();
  impl_->owner = nullptr;
}

std::uint16_t FakeMattermost::start() {
  impl_->acceptor.emplace(impl_->io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  impl_->port = impl_->acceptor->local_endpoint().port();
  asio::co_spawn(impl_->io, accept_loop(impl_), asio::detached);
  return impl_->port;
}

void FakeMattermost::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  error_code ec;
  if (impl_->acceptor) impl_->acceptor->close(ec);
  if (impl_->sock) {
    impl_->sock->open = false;
    impl_->sock->signal.cancel();
    impl_->sock->close_transport();
  }
  for (auto& s : impl_->silenced) s->close_transport();
  // A closer may end a coroutine that erases its entry: close from a copy.
  auto closers = impl_->http_streams;
  for (auto& [raw, close] : closers) close();
}

std::string FakeMattermost::server_url() const {
  return std::string(impl_->settings.tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(impl_->port);
}

bool FakeMattermost::socket_open() const { return impl_->sock && impl_->sock->open && impl_->sock->authenticated; }
int FakeMattermost::sockets_accepted() const { return impl_->accepted; }
int FakeMattermost::hellos_sent() const { return impl_->hellos; }
int FakeMattermost::resumes_accepted() const { return impl_->resumes; }
std::string FakeMattermost::connection_id() const { return impl_->conn.id; }
std::int64_t FakeMattermost::last_seq() const { return impl_->conn.next - 1; }

std::string FakeMattermost::post_as(const std::string& user, const std::string& channel, const std::string& message,
                                    const std::string& root_id, const std::string& user_name) {
  json p = impl_->make_post(user, channel, message, root_id);
  impl_->broadcast_post(p, user_name);
  return p["id"];
}

std::string FakeMattermost::post_silently(const std::string& user, const std::string& channel, const std::string& message,
                                          const std::string& root_id, json props) {
  json p = impl_->make_post(user, channel, message, root_id);
  if (props.is_object()) {
    p["props"] = std::move(props);
    impl_->posts.back() = p;
  }
  return p["id"];
}

void FakeMattermost::send_event(const std::string& event, json data) { impl_->emit(event, std::move(data)); }

void FakeMattermost::send_raw(std::string text) {
  if (impl_->sock && impl_->sock->open) impl_->sock->push(std::move(text));
}

void FakeMattermost::drop() {
  auto s = impl_->sock;
  if (!s) return;
  impl_->sock = nullptr;
  s->open = false;
  s->signal.cancel();
  s->close_transport();
}

void FakeMattermost::go_silent() {
  auto s = impl_->sock;
  if (!s) return;
  impl_->sock = nullptr;
  impl_->silenced.push_back(s);
  s->silent = true;
  s->open = false;
  s->signal.cancel();
  // Ends the pending read (Beast answers pings while reading) without closing the connection.
  s->cancel_transport();
}

void FakeMattermost::lose_next_event() { impl_->lose_next = true; }

void FakeMattermost::forget_history() { impl_->conn.buffer.clear(); impl_->conn.id = impl_->new_id("lost"); }

void FakeMattermost::fail_next(const std::string& key, int status, int count) {
  for (int i = 0; i < count; ++i) impl_->injections[key].push_back(Impl::Injection{status, 0});
}

void FakeMattermost::set_rate_limit(double per_second, int burst) {
  impl_->limiter.per_second = per_second;
  impl_->limiter.burst = burst;
  impl_->limiter.tokens = burst;
  impl_->limiter.refilled = std::chrono::steady_clock::now();
}

void FakeMattermost::rate_limit_next(const std::string& key, int retry_after_seconds, int count) {
  for (int i = 0; i < count; ++i) impl_->injections[key].push_back(Impl::Injection{429, retry_after_seconds});
}

void FakeMattermost::add_user(const std::string& id, const std::string& username, const std::string& email) {
  impl_->users[id] = Impl::User{username, email};
}

void FakeMattermost::add_team_member(const std::string& user) { impl_->team_members.insert(user); }

void FakeMattermost::add_group(const std::string& user, const std::string& group_id, const std::string& group_name) {
  impl_->groups[user].emplace_back(group_id, group_name);
}

void FakeMattermost::set_groups_status(int status) { impl_->settings.groups_status = status; }

void FakeMattermost::set_hide_emails(bool hide) { impl_->settings.hide_emails = hide; }

std::string FakeMattermost::response_url(const std::string& id) const { return server_url() + "/hooks/commands/" + id; }

std::vector<FakeMattermost::Call> FakeMattermost::calls_to(const std::string& method, const std::string& path_prefix) const {
  std::vector<Call> out;
  for (const auto& c : calls) {
    if (c.method == method && c.path.rfind(path_prefix, 0) == 0) out.push_back(c);
  }
  return out;
}

std::vector<json> FakeMattermost::bot_posts() const {
  std::vector<json> out;
  for (const auto& c : calls) {
    if (c.method == "POST" && c.path == "/api/v4/posts" && c.status == 201) out.push_back(c.body);
  }
  return out;
}

}  // namespace runbot::testing
