#include "tests/support/fake_slack.h"

#include <algorithm>
#include <deque>
#include <set>
#include <stdexcept>
#include <string_view>

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
using WsStream = websocket::stream<SslStream>;

struct Out {
  enum class Kind { text, ping, close } kind = Kind::text;
  std::string data;
  std::string envelope_id;  // for latency
};

struct Sent {
  bool accepts_response_payload = false;
  std::string type;
  FakeSlack::Clock::time_point written{};
  std::string frame;   // as sent, for a redelivery
  bool acked = false;
};

struct Sock {
  Sock(int id_, SslStream&& s, asio::io_context& io) : id(id_), ws(std::move(s)), signal(io) {}
  int id;
  WsStream ws;
  asio::steady_timer signal;
  std::deque<Out> queue;
  bool waiting = false;
  bool open = false;
  bool hello = false;
  std::map<std::string, Sent> sent;
  std::vector<std::string> sent_order;  // envelope ids in the order they were sent
  bool gone = false;                    // its unacked envelopes were handed on
  void push(Out o) {
    queue.push_back(std::move(o));
    if (waiting) signal.cancel();
  }
};

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

// application/x-www-form-urlencoded (a POST body or a query string) into a map.
std::map<std::string, std::string> parse_form(const std::string& body) {
  auto decode = [](const std::string& v) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (v[i] == '+') {
        out += ' ';
      } else if (v[i] == '%' && i + 2 < v.size()) {
        out += static_cast<char>(std::stoi(v.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        out += v[i];
      }
    }
    return out;
  };
  std::map<std::string, std::string> out;
  std::size_t pos = 0;
  while (pos < body.size()) {
    auto amp = body.find('&', pos);
    std::string pair = body.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    auto eq = pair.find('=');
    if (!pair.empty()) out[decode(pair.substr(0, eq))] = eq == std::string::npos ? "" : decode(pair.substr(eq + 1));
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return out;
}

}  // namespace

struct FakeSlack::Impl {
  Impl(asio::io_context& io_, const TestCa& ca, FakeSlackSettings s, FakeSlack* owner_)
      : io(io_), ssl_ctx(ssl::context::tls_server), settings(std::move(s)), owner(owner_) {
    ssl_ctx.use_certificate_chain_file(ca.cert_file);
    ssl_ctx.use_private_key_file(ca.key_file, ssl::context::pem);
  }
  asio::io_context& io;
  ssl::context ssl_ctx;
  FakeSlackSettings settings;
  FakeSlack* owner;
  std::optional<tcp::acceptor> acceptor;
  std::uint16_t port = 0;
  std::map<int, std::shared_ptr<Sock>> sockets;
  std::map<SslStream*, std::weak_ptr<SslStream>> http_streams;  // until upgraded to a socket
  int next_socket = 1;
  int accepted = 0;
  int opened = 0;
  std::set<std::string> tickets;
  std::uint64_t next_ticket = 1;
  std::uint64_t next_envelope = 1;
  std::uint64_t next_ts = 1;
  std::set<std::string> known_ts;
  struct Injection {
    int status = 200;
    std::string error;
    int retry_after = 0;
  };
  std::map<std::string, std::deque<Injection>> injections;
  std::map<std::string, std::deque<std::chrono::milliseconds>> delays;
  struct User {
    std::string email;
    std::string name;
  };
  std::map<std::string, User> users;
  struct Group {
    std::string id;
    std::string handle;
    std::vector<std::string> members;
  };
  std::vector<Group> usergroups;
  bool stopped = false;
  int acks_read = 0;                 // acks that reached the fake (lost ones included)
  std::deque<std::pair<std::string, std::string>> redeliveries;  // (envelope id, frame) waiting for a socket

  std::chrono::milliseconds take_delay(const std::string& target) {
    const std::string path = target.substr(0, target.find('?'));
    if (path.rfind("/api/", 0) != 0) return std::chrono::milliseconds(0);
    auto it = delays.find(path.substr(5));
    if (it == delays.end() || it->second.empty()) return std::chrono::milliseconds(0);
    auto d = it->second.front();
    it->second.pop_front();
    return d;
  }
  json missing_scope(const std::string& needed) const {
    std::string provided;
    for (const auto& sc : settings.scopes) provided += (provided.empty() ? "" : ",") + sc;
    return {{"ok", false}, {"error", "missing_scope"}, {"needed", needed}, {"provided", provided}};
  }

  void problem(std::string p) {
    if (owner) owner->problems.push_back(std::move(p));
  }

  std::string new_ts() {
    const std::uint64_t n = next_ts++;
    std::string frac = std::to_string(n);
    frac.insert(0, 6 - std::min<std::size_t>(6, frac.size()), '0');
    std::string ts = std::to_string(1714557600 + n / 1000000) + "." + frac.substr(frac.size() - 6);
    known_ts.insert(ts);
    return ts;
  }

  http::response<http::string_body> answer(const http::request<http::string_body>& req);
  void on_ack(Sock& s, const std::string& text);
  // Registers and queues an envelope frame on `s`.
  void deliver(Sock& s, const std::string& id, bool accepts, const std::string& type, std::string frame) {
    s.sent[id] = Sent{accepts, type, Clock::now(), frame, false};
    s.sent_order.push_back(id);
    s.push(Out{Out::Kind::text, std::move(frame), id});
  }
  // `s` has ended: as Slack does, its unacknowledged envelopes go out again (same envelope_id) on
  // another socket, now or once one says hello.
  void socket_gone(Sock& s) {
    if (s.gone) return;
    s.gone = true;
    if (!settings.redeliver_unacked) return;
    for (const auto& id : s.sent_order) {
      const Sent& sent = s.sent[id];
      if (sent.acked) continue;
      redeliveries.emplace_back(id, sent.frame);
    }
    flush_redeliveries();
  }
  void flush_redeliveries() {
    std::shared_ptr<Sock> target;
    for (auto it = sockets.rbegin(); it != sockets.rend() && !target; ++it) {
      if (it->second->open && it->second->hello) target = it->second;
    }
    if (!target) return;
    while (!redeliveries.empty()) {
      auto [id, frame] = std::move(redeliveries.front());
      redeliveries.pop_front();
      json j = json::parse(frame, nullptr, false);
      const bool accepts = j.is_object() && j.value("accepts_response_payload", false);
      const std::string type = j.is_object() ? j.value("type", "") : "";
      if (owner) ++owner->redelivered;
      deliver(*target, id, accepts, type, std::move(frame));
    }
  }
  // Abrupt end of `s`: TCP closed without a close frame or TLS close_notify.
  void drop(Sock& s) {
    s.open = false;
    s.signal.cancel();
    error_code ec;
    beast::get_lowest_layer(s.ws).socket().close(ec);
    socket_gone(s);
  }
};

namespace {

using ImplPtr = std::shared_ptr<FakeSlack::Impl>;

http::response<http::string_body> json_response(unsigned version, int status, const json& body) {
  http::response<http::string_body> res{static_cast<http::status>(status), version};
  res.set(http::field::content_type, "application/json; charset=utf-8");
  res.body() = body.dump();
  res.keep_alive(true);
  res.prepare_payload();
  return res;
}

}  // namespace

http::response<http::string_body> FakeSlack::Impl::answer(const http::request<http::string_body>& req) {
  const std::string target(req.target());
  const std::string path = target.substr(0, target.find('?'));
  const std::string auth(req[http::field::authorization]);
  const unsigned v = req.version();
  ApiCall call;
  auto record = [&](int status, const json& body) {
    call.status = status;
    if (body.contains("error")) call.error = body["error"].get<std::string>();
    if (owner) owner->calls.push_back(call);
    return json_response(v, status, body);
  };
  if (req.method() != http::verb::post) return json_response(v, 405, {{"ok", false}, {"error", "invalid_request"}});

  if (path.rfind("/respond/", 0) == 0) {
    if (auto it = injections.find("response_url"); it != injections.end() && !it->second.empty()) {
      Injection inj = it->second.front();
      it->second.pop_front();
      auto res = json_response(v, inj.status, {{"ok", false}, {"error", inj.status == 429 ? "ratelimited" : inj.error}});
      if (inj.status == 429) res.set(http::field::retry_after, std::to_string(inj.retry_after));
      return res;
    }
    Response r;
    r.id = path.substr(9);
    r.body = json::parse(req.body(), nullptr, false);
    if (r.body.is_discarded() || !r.body.is_object()) problem("response_url body is not a JSON object");
    else if (!r.body.contains("text") && !r.body.contains("blocks")) problem("response_url body without text/blocks");
    if (!auth.empty()) problem("response_url call carried an Authorization header");
    if (owner) owner->responses.push_back(std::move(r));
    return json_response(v, 200, {{"ok", true}});
  }
  if (path.rfind("/api/", 0) != 0) return json_response(v, 404, {{"ok", false}, {"error", "unknown_method"}});
  call.method = path.substr(5);
  const std::string ctype(req[http::field::content_type]);
  if (ctype.rfind("application/x-www-form-urlencoded", 0) == 0) call.form = parse_form(req.body());
  if (ctype.rfind("application/json", 0) == 0) {
    call.body = json::parse(req.body(), nullptr, false);
    if (call.body.is_discarded() || !call.body.is_object()) {
      problem(call.method + ": body is not a JSON object");
      call.body = json::object();
    }
  }
  // Injected failures first: they stand for Slack's own state (rate limits, outages).
  if (auto it = injections.find(call.method); it != injections.end() && !it->second.empty()) {
    Injection inj = it->second.front();
    it->second.pop_front();
    if (inj.status == 429) {
      auto res = record(429, {{"ok", false}, {"error", "ratelimited"}});
      res.set(http::field::retry_after, std::to_string(inj.retry_after));
      return res;
    }
    return record(inj.status, {{"ok", false}, {"error", inj.error}});
  }
  const bool is_app_call = call.method == "apps.connections.open";
  const std::string& token = is_app_call ? settings.app_token : settings.bot_token;
  if (auth.empty()) return record(200, {{"ok", false}, {"error", "not_authed"}});
  if (auth != "Bearer " + token) {
    // The other kind of valid token is a different error than garbage.
    const std::string& other = is_app_call ? settings.bot_token : settings.app_token;
    if (auth == "Bearer " + other) return record(200, {{"ok", false}, {"error", "not_allowed_token_type"}});
    return record(200, {{"ok", false}, {"error", "invalid_auth"}});
  }
  if (is_app_call) {
    const std::string ticket = std::to_string(next_ticket++);
    tickets.insert(ticket);
    ++opened;
    return record(200, {{"ok", true},
                        {"url", "wss://127.0.0.1:" + std::to_string(port) + "/link/?ticket=" + ticket +
                                    "&app_id=" + settings.app_id}});
  }
  if (call.method == "auth.test") {
    return record(200, {{"ok", true}, {"url", "https://acme.slack.com/"}, {"team", settings.team},
                        {"user", "runbot"}, {"team_id", "T0001"}, {"user_id", settings.bot_user_id},
                        {"bot_id", "B0001"}});
  }
  if (call.method == "users.info" || call.method == "usergroups.list") {
    // Both are read methods that take form arguments (query string or body), not JSON.
    if (ctype.rfind("application/json", 0) == 0) problem(call.method + ": sent as JSON, which it does not accept");
    auto args = parse_form(req.body());
    for (const auto& [k, val] : parse_form(target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1))) {
      args[k] = val;
    }
    call.body = json(args);
    if (call.method == "users.info") {
      if (!settings.scopes.count("users:read")) return record(200, missing_scope("users:read"));
      const std::string id = args["user"];
      if (id.empty()) problem("users.info without a user argument");
      auto it = users.find(id);
      if (it == users.end()) return record(200, {{"ok", false}, {"error", "user_not_found"}});
      const std::string name = it->second.name.empty() ? id : it->second.name;
      json profile{{"real_name", name}, {"display_name", name}, {"image_24", "https://a.slack-edge.com/24.png"}};
      if (settings.scopes.count("users:read.email")) profile["email"] = it->second.email;
      return record(200, {{"ok", true},
                          {"user", {{"id", id}, {"team_id", "T0001"}, {"name", name}, {"deleted", false},
                                    {"real_name", name}, {"is_bot", false}, {"is_admin", false},
                                    {"profile", profile}}}});
    }
    if (!settings.scopes.count("usergroups:read")) return record(200, missing_scope("usergroups:read"));
    if (!settings.usergroups_plan) return record(200, {{"ok", false}, {"error", "plan_upgrade_required"}});
    const bool with_users = args["include_users"] == "true" || args["include_users"] == "1";
    json list = json::array();
    for (const auto& g : usergroups) {
      json item{{"id", g.id}, {"team_id", "T0001"}, {"is_usergroup", true}, {"name", g.handle + " team"},
                {"description", ""}, {"handle", g.handle}, {"is_external", false}, {"date_create", 1446746793},
                {"date_update", 1446746793}, {"date_delete", 0}, {"auto_type", nullptr}, {"created_by", "U060R4BJ4"},
                {"updated_by", "U060R4BJ4"}, {"deleted_by", nullptr},
                {"prefs", {{"channels", json::array()}, {"groups", json::array()}}},
                {"user_count", g.members.size()}};
      if (with_users) item["users"] = g.members;
      list.push_back(std::move(item));
    }
    return record(200, {{"ok", true}, {"usergroups", list}});
  }
  const json& b = call.body;
  const std::string channel = str(b, "channel");
  const bool has_content = (b.contains("text") && b["text"].is_string() && !b["text"].get<std::string>().empty()) ||
                           (b.contains("blocks") && b["blocks"].is_array() && !b["blocks"].empty());
  if (call.method == "chat.postMessage" || call.method == "chat.update" || call.method == "chat.postEphemeral") {
    if (ctype.rfind("application/json", 0) != 0) problem(call.method + ": not sent as application/json");
    if (channel.empty()) return record(200, {{"ok", false}, {"error", "channel_not_found"}});
    if (!has_content) return record(200, {{"ok", false}, {"error", "no_text"}});
    if (b.contains("blocks") && (!b["blocks"].is_array() || b["blocks"].size() > 50)) {
      return record(200, {{"ok", false}, {"error", "invalid_blocks"}});
    }
    const std::string thread = str(b, "thread_ts");
    if (!thread.empty() && !known_ts.count(thread)) problem(call.method + ": thread_ts names no message posted");
  }
  if (call.method == "chat.postMessage") {
    call.ts = new_ts();
    if (owner) {
      owner->posted.push_back({channel, call.ts, str(b, "thread_ts"), str(b, "text"),
                               b.contains("metadata") ? b["metadata"] : json()});
    }
    return record(200, {{"ok", true}, {"channel", channel}, {"ts", call.ts}, {"message", {{"text", str(b, "text")}}}});
  }
  if (call.method == "chat.update") {
    const std::string ts = str(b, "ts");
    if (!known_ts.count(ts)) return record(200, {{"ok", false}, {"error", "message_not_found"}});
    call.ts = ts;
    return record(200, {{"ok", true}, {"channel", channel}, {"ts", ts}, {"text", str(b, "text")}});
  }
  if (call.method == "conversations.history" || call.method == "conversations.replies") {
    if (ctype.rfind("application/x-www-form-urlencoded", 0) != 0) problem(call.method + ": not sent as a form");
    const auto field = [&](const char* k) {
      auto it = call.form.find(k);
      return it == call.form.end() ? std::string() : it->second;
    };
    const std::string in = field("channel");
    if (in.empty()) return record(200, {{"ok", false}, {"error", "channel_not_found"}});
    const bool replies = call.method == "conversations.replies";
    const std::string root = field("ts");
    if (replies && !known_ts.count(root)) return record(200, {{"ok", false}, {"error", "thread_not_found"}});
    const bool meta = field("include_all_metadata") == "true" || field("include_all_metadata") == "1";
    json messages = json::array();
    if (owner) {
      for (const auto& p : owner->posted) {
        if (p.channel != in) continue;
        // history: channel-level messages only; replies: the root and its thread.
        if (replies ? (p.ts != root && p.thread_ts != root) : !p.thread_ts.empty()) continue;
        json m{{"type", "message"}, {"ts", p.ts}, {"text", p.text}};
        if (!p.thread_ts.empty()) m["thread_ts"] = p.thread_ts;
        if (meta && !p.metadata.is_null()) m["metadata"] = p.metadata;
        messages.push_back(std::move(m));
      }
    }
    if (!replies) std::reverse(messages.begin(), messages.end());
    // Pages as Slack does: at most `limit` messages (history defaults to 100, replies to 1000;
    // neither returns more than 1000), the rest behind response_metadata.next_cursor.
    std::size_t limit = replies ? 1000 : 100;
    if (const std::string l = field("limit"); !l.empty()) {
      try {
        limit = std::clamp<std::size_t>(std::stoul(l), 1, 1000);
      } catch (const std::exception&) {
        return record(200, {{"ok", false}, {"error", "invalid_limit"}});
      }
    }
    std::size_t from = 0;
    if (const std::string c = field("cursor"); !c.empty()) {
      if (c.rfind("page:", 0) != 0) return record(200, {{"ok", false}, {"error", "invalid_cursor"}});
      from = std::min<std::size_t>(std::stoul(c.substr(5)), messages.size());
    }
    const std::size_t to = std::min(messages.size(), from + limit);
    json page(json::value_t::array);
    for (std::size_t i = from; i < to; ++i) page.push_back(std::move(messages[i]));
    json res{{"ok", true}, {"messages", page}, {"has_more", to < messages.size()}};
    if (to < messages.size()) res["response_metadata"] = {{"next_cursor", "page:" + std::to_string(to)}};
    return record(200, res);
  }
  if (call.method == "chat.postEphemeral") {
    if (str(b, "user").empty()) return record(200, {{"ok", false}, {"error", "user_not_in_channel"}});
    call.ts = new_ts();
    return record(200, {{"ok", true}, {"message_ts", call.ts}});
  }
  return record(200, {{"ok", false}, {"error", "unknown_method"}});
}

void FakeSlack::Impl::on_ack(Sock& s, const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    problem("socket " + std::to_string(s.id) + ": frame from the client is not a JSON object");
    return;
  }
  const std::string id = str(j, "envelope_id");
  if (id.empty()) {
    problem("socket " + std::to_string(s.id) + ": frame without envelope_id");
    return;
  }
  auto it = s.sent.find(id);
  ++acks_read;
  if (settings.lose_ack_and_drop_every > 0 && acks_read % settings.lose_ack_and_drop_every == 0) {
    // The socket dies with this ack still on its way: Slack never sees it.
    if (owner) ++owner->lost_acks;
    drop(s);
    return;
  }
  if (it != s.sent.end()) it->second.acked = true;
  if (it == s.sent.end()) {
    bool elsewhere = false;
    for (auto& [sid, other] : sockets) elsewhere = elsewhere || other->sent.count(id);
    problem("socket " + std::to_string(s.id) + ": ack for envelope " + id +
            (elsewhere ? " that was delivered on another socket" : " that was never delivered"));
  }
  Ack a;
  a.socket = s.id;
  a.envelope_id = id;
  if (it != s.sent.end()) a.latency = Clock::now() - it->second.written;
  if (auto p = j.find("payload"); p != j.end()) {
    a.has_payload = true;
    a.payload = *p;
    if (it != s.sent.end() && !it->second.accepts_response_payload) {
      problem("ack for " + id + " carries a payload but accepts_response_payload was false");
    }
    if (!p->is_object()) {
      problem("ack for " + id + ": payload is not an object");
    } else if (it != s.sent.end() && it->second.type == "slash_commands") {
      const std::string rt = str(*p, "response_type");
      if (!rt.empty() && rt != "ephemeral" && rt != "in_channel") problem("ack for " + id + ": bad response_type");
      if (!p->contains("text") && !p->contains("blocks")) problem("ack for " + id + ": payload without text/blocks");
    }
  }
  if (owner) {
    owner->acks.push_back(a);
    if (owner->on_ack) owner->on_ack(owner->acks.back());
  }
}

namespace {

asio::awaitable<void> socket_writer([[maybe_unused]] ImplPtr impl, std::shared_ptr<Sock> s) {
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
    Out o = std::move(s->queue.front());
    s->queue.pop_front();
    error_code ec;
    if (o.kind == Out::Kind::text) {
      if (!o.envelope_id.empty()) {
        if (auto it = s->sent.find(o.envelope_id); it != s->sent.end()) it->second.written = FakeSlack::Clock::now();
      }
      s->ws.text(true);
      auto [wec, n] = co_await s->ws.async_write(asio::buffer(o.data), kUseTuple);
      ec = wec;
    } else if (o.kind == Out::Kind::ping) {
      auto [pec] = co_await s->ws.async_ping({}, kUseTuple);
      ec = pec;
    } else {
      auto [cec] = co_await s->ws.async_close(websocket::close_code::normal, kUseTuple);
      ec = cec;
      co_return;
    }
    if (ec) co_return;
  }
}

asio::awaitable<void> run_socket(ImplPtr impl, std::shared_ptr<Sock> s, http::request<http::string_body> req) {
  s->ws.set_option(websocket::stream_base::timeout{std::chrono::seconds(10), websocket::stream_base::none(), false});
  s->ws.read_message_max(std::size_t{64} << 20);
  Sock* raw = s.get();
  ImplPtr::element_type* im = impl.get();
  s->ws.control_callback([raw, im](websocket::frame_type kind, beast::string_view) {
    if (kind == websocket::frame_type::ping && im->owner) ++im->owner->pings_from_client;
    (void)raw;
  });
  auto [aec] = co_await s->ws.async_accept(req, kUseTuple);
  if (aec) co_return;
  s->open = true;
  impl->sockets[s->id] = s;
  asio::co_spawn(impl->io, socket_writer(impl, s), asio::detached);
  if (impl->settings.send_hello) {
    json hello{{"type", "hello"},
               {"num_connections", static_cast<int>(impl->sockets.size())},
               {"connection_info", {{"app_id", impl->settings.app_id}}},
               {"debug_info", {{"host", "applink-fake"}, {"started", "2024-05-01 10:00:00.000"}, {"build_number", 77},
                               {"approximate_connection_time", 18060}}}};
    s->hello = true;
    s->push(Out{Out::Kind::text, hello.dump(), {}});
    impl->flush_redeliveries();
  }
  beast::flat_buffer buffer;
  for (;;) {
    auto [ec, n] = co_await s->ws.async_read(buffer, kUseTuple);
    if (ec) break;
    std::string text = beast::buffers_to_string(buffer.data());
    buffer.consume(buffer.size());
    impl->on_ack(*s, text);
  }
  impl->drop(*s);
}

asio::awaitable<void> serve(ImplPtr impl, tcp::socket socket) {
  auto stream = std::make_shared<SslStream>(std::move(socket), impl->ssl_ctx);
  impl->http_streams[stream.get()] = stream;
  struct Forget {
    ImplPtr impl;
    SslStream* key;
    ~Forget() { impl->http_streams.erase(key); }
  } const forget{impl, stream.get()};
  beast::get_lowest_layer(*stream).expires_after(std::chrono::seconds(10));
  auto [hec] = co_await stream->async_handshake(ssl::stream_base::server, kUseTuple);
  if (hec) co_return;  // e.g. the client rejected our certificate
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
      const auto t = target.find("ticket=");
      std::string ticket = t == std::string::npos ? "" : target.substr(t + 7, target.find('&', t) - t - 7);
      if (target.rfind("/link/", 0) != 0 || !impl->tickets.erase(ticket)) {
        if (impl->owner) impl->owner->problems.push_back("websocket upgrade without a valid single-use ticket");
        auto res = json_response(req.version(), 403, {{"ok", false}, {"error", "invalid_ticket"}});
        res.keep_alive(false);
        auto [wec, wn] = co_await http::async_write(*stream, res, kUseTuple);
        (void)wec;
        co_return;
      }
      beast::get_lowest_layer(*stream).expires_never();
      impl->http_streams.erase(stream.get());
      ++impl->accepted;
      auto s = std::make_shared<Sock>(impl->next_socket++, std::move(*stream), impl->io);
      co_await run_socket(impl, s, std::move(req));
      co_return;
    }
    if (auto delay = impl->take_delay(std::string(req.target())); delay.count() > 0) {
      asio::steady_timer wait(impl->io);
      wait.expires_after(delay);
      auto [tec] = co_await wait.async_wait(kUseTuple);
      (void)tec;
    }
    auto res = impl->answer(req);
    res.keep_alive(req.keep_alive());
    auto [wec, wn] = co_await http::async_write(*stream, res, kUseTuple);
    if (wec || !res.keep_alive()) co_return;
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

FakeSlack::FakeSlack(asio::io_context& io, const TestCa& ca, FakeSlackSettings settings)
    : impl_(std::make_shared<Impl>(io, ca, std::move(settings), this)) {}

FakeSlack::~FakeSlack() {
  stop();
  impl_->owner = nullptr;
}

std::uint16_t FakeSlack::start() {
  impl_->acceptor.emplace(impl_->io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  impl_->port = impl_->acceptor->local_endpoint().port();
  asio::co_spawn(impl_->io, accept_loop(impl_), asio::detached);
  return impl_->port;
}

void FakeSlack::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  error_code ec;
  if (impl_->acceptor) impl_->acceptor->close(ec);
  for (auto& [id, s] : impl_->sockets) {
    s->open = false;
    s->signal.cancel();
    beast::get_lowest_layer(s->ws).socket().close(ec);
  }
  for (auto& [raw, w] : impl_->http_streams) {
    if (auto st = w.lock()) beast::get_lowest_layer(*st).socket().close(ec);
  }
}

std::string FakeSlack::api_base_url() const { return "https://127.0.0.1:" + std::to_string(impl_->port) + "/api"; }

std::string FakeSlack::response_url(const std::string& id) const {
  return "https://127.0.0.1:" + std::to_string(impl_->port) + "/respond/" + id;
}

std::vector<int> FakeSlack::open_sockets() const {
  std::vector<int> out;
  for (const auto& [id, s] : impl_->sockets) {
    if (s->open && s->hello) out.push_back(id);
  }
  return out;
}

int FakeSlack::sockets_accepted() const { return impl_->accepted; }

namespace {
std::shared_ptr<Sock> pick(FakeSlack::Impl& impl, int socket) {
  if (socket < 0) {
    for (auto it = impl.sockets.rbegin(); it != impl.sockets.rend(); ++it) {
      if (it->second->open) return it->second;
    }
    throw std::runtime_error("fake slack: no open socket");
  }
  auto it = impl.sockets.find(socket);
  if (it == impl.sockets.end()) throw std::runtime_error("fake slack: no socket " + std::to_string(socket));
  return it->second;
}
}  // namespace

std::string FakeSlack::send_envelope(int socket, const std::string& type, json payload, EnvelopeOptions opts) {
  auto s = pick(*impl_, socket);
  std::string id = opts.envelope_id.empty() ? "env-" + std::to_string(impl_->next_envelope++) : opts.envelope_id;
  const bool accepts = opts.accepts_response_payload.value_or(type == "slash_commands");
  json env{{"envelope_id", id}, {"type", type}, {"payload", std::move(payload)}, {"accepts_response_payload", accepts}};
  if (type == "events_api") {
    env["retry_attempt"] = opts.retry_attempt;
    env["retry_reason"] = opts.retry_reason;
    // The message an event is about exists in the channel: answers may thread on it.
    const json& e = env["payload"].contains("event") ? env["payload"]["event"] : json();
    for (const char* k : {"ts", "thread_ts"}) {
      if (e.is_object() && !str(e, k).empty()) impl_->known_ts.insert(str(e, k));
    }
  }
  impl_->deliver(*s, id, accepts, type, env.dump());
  return id;
}

std::string FakeSlack::send_slash(int socket, const std::string& text, const std::string& user,
                                  const std::string& channel, const std::string& user_name, EnvelopeOptions opts) {
  const std::string rid = "slash-" + std::to_string(impl_->next_envelope);
  json p{{"token", "deprecated"}, {"team_id", "T0001"}, {"team_domain", impl_->settings.team},
         {"channel_id", channel}, {"channel_name", "deploys"}, {"user_id", user}, {"user_name", user_name},
         {"command", "/ephemeral"}, {"text", text}, {"api_app_id", impl_->settings.app_id},
         {"is_enterprise_install", "false"}, {"response_url", response_url(rid)},
         {"trigger_id", opts.trigger_id.empty() ? "1234.5678." + std::to_string(impl_->next_envelope) : opts.trigger_id}};
  return send_envelope(socket, "slash_commands", std::move(p), std::move(opts));
}

namespace {
json event_payload(const FakeSlackSettings& s, const std::string& event_id, json event) {
  return json{{"type", "event_callback"}, {"team_id", "T0001"}, {"api_app_id", s.app_id}, {"event_id", event_id},
              {"event_time", 1714557600}, {"event", std::move(event)},
              {"authorizations", json::array({{{"team_id", "T0001"}, {"user_id", s.bot_user_id}, {"is_bot", true}}})}};
}
}  // namespace

std::string FakeSlack::send_mention(int socket, const std::string& text, const std::string& user,
                                    const std::string& channel, const std::string& event_id, EnvelopeOptions opts) {
  const std::string ev = event_id.empty() ? "Ev" + std::to_string(impl_->next_envelope) : event_id;
  const std::string ts = "1714557600.0001" + std::to_string(impl_->next_envelope % 100);
  json e{{"type", "app_mention"}, {"user", user}, {"text", "<@" + impl_->settings.bot_user_id + "> " + text},
         {"ts", ts}, {"channel", channel}, {"event_ts", ts}};
  return send_envelope(socket, "events_api", event_payload(impl_->settings, ev, std::move(e)), std::move(opts));
}

std::string FakeSlack::send_dm(int socket, const std::string& text, const std::string& user,
                               const std::string& channel, const std::string& event_id, EnvelopeOptions opts) {
  const std::string ev = event_id.empty() ? "Ev" + std::to_string(impl_->next_envelope) : event_id;
  const std::string ts = "1714557600.0002" + std::to_string(impl_->next_envelope % 100);
  json e{{"type", "message"}, {"channel_type", "im"}, {"user", user}, {"text", text},
         {"ts", ts}, {"channel", channel}, {"event_ts", ts}};
  return send_envelope(socket, "events_api", event_payload(impl_->settings, ev, std::move(e)), std::move(opts));
}

std::string FakeSlack::send_block_action(int socket, const std::string& action_id, const std::string& value,
                                         const std::string& user, const std::string& channel, EnvelopeOptions opts) {
  const std::string rid = "action-" + std::to_string(impl_->next_envelope);
  json p{{"type", "block_actions"}, {"api_app_id", impl_->settings.app_id},
         {"team", {{"id", "T0001"}, {"domain", impl_->settings.team}}},
         {"user", {{"id", user}, {"username", "alice"}, {"team_id", "T0001"}}},
         {"channel", {{"id", channel}, {"name", "deploys"}}},
         {"container", {{"type", "message"}, {"message_ts", "1714557600.000100"}, {"channel_id", channel}, {"is_ephemeral", false}}},
         {"message", {{"type", "message"}, {"ts", "1714557600.000100"}, {"text", "card"}, {"blocks", json::array()}}},
         {"trigger_id", opts.trigger_id.empty() ? "1234.5679." + std::to_string(impl_->next_envelope) : opts.trigger_id},
         {"response_url", response_url(rid)},
         {"actions", json::array({{{"type", "button"}, {"action_id", action_id}, {"block_id", "card"}, {"value", value},
                                   {"text", {{"type", "plain_text"}, {"text", action_id}}},
                                   {"action_ts", "1714557700.123456"}}})},
         {"state", {{"values", json::object()}}}};
  return send_envelope(socket, "interactive", std::move(p), std::move(opts));
}

void FakeSlack::send_raw(int socket, std::string text) { pick(*impl_, socket)->push(Out{Out::Kind::text, std::move(text), {}}); }

void FakeSlack::send_disconnect(int socket, const std::string& reason) {
  json d{{"type", "disconnect"}, {"reason", reason}, {"debug_info", {{"host", "applink-fake"}}}};
  pick(*impl_, socket)->push(Out{Out::Kind::text, d.dump(), {}});
}

void FakeSlack::ping(int socket) { pick(*impl_, socket)->push(Out{Out::Kind::ping, {}, {}}); }

void FakeSlack::drop(int socket) {
  auto s = pick(*impl_, socket);
  impl_->drop(*s);
}

void FakeSlack::close(int socket) { pick(*impl_, socket)->push(Out{Out::Kind::close, {}, {}}); }

void FakeSlack::fail_next(const std::string& method, const std::string& error, int count) {
  for (int i = 0; i < count; ++i) impl_->injections[method].push_back(Impl::Injection{200, error, 0});
}

void FakeSlack::rate_limit_next(const std::string& method, int retry_after_seconds, int count) {
  for (int i = 0; i < count; ++i) impl_->injections[method].push_back(Impl::Injection{429, "ratelimited", retry_after_seconds});
}

void FakeSlack::fail_status_next(const std::string& method, int http_status, int count) {
  for (int i = 0; i < count; ++i) {
    impl_->injections[method].push_back(Impl::Injection{http_status, http_status >= 500 ? "internal_error" : "invalid_request", 0});
  }
}

void FakeSlack::delay_next(const std::string& method, std::chrono::milliseconds delay, int count) {
  for (int i = 0; i < count; ++i) impl_->delays[method].push_back(delay);
}

void FakeSlack::add_user(const std::string& id, const std::string& email, const std::string& name) {
  impl_->users[id] = Impl::User{email, name};
}

void FakeSlack::add_usergroup(const std::string& id, const std::string& handle, std::vector<std::string> members) {
  impl_->usergroups.push_back(Impl::Group{id, handle, std::move(members)});
}

void FakeSlack::set_scope(const std::string& scope, bool granted) {
  if (granted) {
    impl_->settings.scopes.insert(scope);
  } else {
    impl_->settings.scopes.erase(scope);
  }
}

std::vector<FakeSlack::ApiCall> FakeSlack::calls_to(const std::string& method) const {
  std::vector<ApiCall> out;
  for (const auto& c : calls) {
    if (c.method == method) out.push_back(c);
  }
  return out;
}

int FakeSlack::acks_for(const std::string& envelope_id) const {
  int n = 0;
  for (const auto& a : acks) n += a.envelope_id == envelope_id;
  return n;
}

const FakeSlack::Ack* FakeSlack::ack_for(const std::string& envelope_id) const {
  for (const auto& a : acks) {
    if (a.envelope_id == envelope_id) return &a;
  }
  return nullptr;
}

int FakeSlack::connections_opened() const { return impl_->opened; }

std::map<int, int> FakeSlack::acks_per_socket() const {
  std::map<int, int> out;
  for (const auto& a : acks) ++out[a.socket];
  return out;
}

}  // namespace runbot::testing
