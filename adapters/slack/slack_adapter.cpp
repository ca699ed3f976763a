#include "adapters/slack/slack_adapter.h"

#include "adapters/common/multipart_post.h"

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <vector>

#include <spdlog/spdlog.h>

#include "adapters/common/asio_clock.h"
#include "adapters/common/https_client.h"
#include "adapters/common/identity_cache.h"
#include "adapters/common/reply_address.h"
#include "adapters/common/tls_context.h"
#include "adapters/common/websocket_client.h"
#include "adapters/slack/slack_log.h"
#include "adapters/slack/slack_renderer.h"
#include "adapters/slack/slack_web_api.h"
#include "adapters/slack/socket_mode.h"

namespace runbot::slack {

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

bool permanent(const bot::Error& e) { return e.code == bot::Errc::unauthorized || e.code == bot::Errc::invalid_argument; }

// Message metadata event type of runbot's posts; its payload holds the outbox delivery id.
constexpr const char* kDeliveryEventType = "runbot_delivery";
// Pages a delivery lookup follows (up to 50,000 replies of a thread, 10,000 channel messages).
constexpr int kMaxLookupPages = 50;

}  // namespace

struct SlackAdapter::Impl {
  enum class ConnState { opening, connecting, awaiting_hello, open, retiring };
  struct Conn {
    std::shared_ptr<common::WebSocketClient> ws;
    ConnState state = ConnState::opening;
    std::uint64_t replaces = 0;  // the retiring socket to close once this one says hello
    bot::TimerId hello_timer = 0;
  };
  // What answer_in_band() needs to know about the inbound message being handled right now.
  struct ReplyContext {
    const bot::InboundMessage* message = nullptr;
    std::optional<json>* captured = nullptr;  // slash commands whose ack may carry the answer
  };
  // usergroups.list answers for every user at once (and is Tier 2), so the whole directory is
  // fetched once per TTL and shared by every user's lookup.
  struct GroupDirectory {
    std::map<std::string, std::vector<std::string>> by_user;  // user id → handles and ids
    bot::TimePoint expires{};
    bool loaded = false;
    bool fetching = false;
    std::vector<std::pair<std::string, std::function<void(bot::Result<std::vector<std::string>>)>>> waiting;
  };

  Impl(boost::asio::io_context& io_, SlackSettings settings_, std::shared_ptr<common::TlsContext> tls_)
      : io(io_),
        settings(std::move(settings_)),
        tls(std::move(tls_)),
        clock(io_),
        http(io_, tls, http_settings(settings)),
        api(http, settings),
        answered(settings.dedupe_capacity, settings.ack_memory_bytes),
        events(settings.dedupe_capacity),
        rng(std::random_device{}()) {
    if (settings.lookup_email || settings.lookup_groups) {
      common::IdentityCacheSettings cs;
      cs.ttl = settings.identity_cache_ttl;
      cs.deadline = settings.identity_deadline;
      cs.capacity = settings.identity_cache_capacity;
      identity = std::make_unique<common::IdentityCache>(
          cs, clock, [this](const std::string& user, common::IdentityCache::Done done) { look_up(user, std::move(done)); },
          "slack");
    }
  }

  static common::HttpClientSettings http_settings(const SlackSettings& s) {
    common::HttpClientSettings h;
    h.connect_timeout = s.connect_timeout;
    return h;
  }

  boost::asio::io_context& io;
  SlackSettings settings;
  std::shared_ptr<common::TlsContext> tls;
  common::AsioClock clock;  // timers for backoff and hello deadlines
  common::HttpsClient http;
  SlackWebApi api;
  InboundHandler handler;
  std::function<void(bot::Status)> started_cb;
  std::optional<bot::Status> startup;  // the startup outcome, once known
  std::map<std::uint64_t, Conn> conns;
  std::uint64_t next_conn = 1;
  AckMemory answered;  // acks by "e:<envelope_id>" and "t:<trigger_id>"
  DedupeSet events;
  common::PartProgress progress;  // long answers and posts: parts delivered so far
  ReplyContext* ctx = nullptr;
  std::unique_ptr<common::IdentityCache> identity;  // only when a binding needs e-mail or groups
  GroupDirectory groups;
  std::string bot_user;
  bool auth_ok = false;
  bool started = false;
  bool stopped = false;
  bool link_disabled = false;
  std::string fatal;        // a rejected token or bad configuration: no more reconnects
  std::string web_problem;  // the last unauthorized Web API error, until a call succeeds
  int attempt = 0;
  bot::TimerId reconnect_timer = 0;
  std::mt19937_64 rng;
  SlackStats stats;

  // ---- startup and connections ----

  void report_started(bot::Status s) {
    if (startup) return;
    if (s && (!auth_ok || stats.connects == 0)) return;  // wait for both
    startup = s;
    if (!started_cb) return;
    auto cb = std::move(started_cb);
    started_cb = nullptr;
    cb(std::move(s));
  }

  // Whether `to` is the message being handled right now (the bot replies inside handle()).
  bool current(const bot::InboundMessage& to) const {
    return ctx && (ctx->message == &to || (ctx->message->channel == to.channel && ctx->message->user == to.user &&
                                           ctx->message->text == to.text));
  }

  void fail_permanently(std::string why) {
    if (fatal.empty()) fatal = why;
    log().error("slack: giving up, fix the configuration and restart: {}", why);
    if (reconnect_timer) clock.cancel(reconnect_timer);
    reconnect_timer = 0;
    report_started(bot::make_error(bot::Errc::unauthorized, why));
  }

  bool may_connect() const { return !stopped && !link_disabled && fatal.empty(); }

  std::size_t live() const {
    return static_cast<std::size_t>(std::count_if(conns.begin(), conns.end(), [](const auto& kv) {
      return kv.second.state != ConnState::retiring;
    }));
  }

  void ensure_connections() {
    while (may_connect() && live() < static_cast<std::size_t>(settings.connections)) open_connection(0);
  }

  std::chrono::milliseconds backoff() {
    const std::int64_t base = settings.backoff_initial.count();
    const std::int64_t cap = std::max<std::int64_t>(settings.backoff_max.count(), base);
    std::int64_t delay = base;
    for (int i = 0; i < attempt && delay < cap; ++i) delay *= 2;
    delay = std::min(delay, cap);
    ++attempt;
    std::uniform_int_distribution<std::int64_t> jitter(delay / 2, delay);
    return std::chrono::milliseconds(jitter(rng));
  }

  void schedule_reconnect(std::chrono::milliseconds at_least) {
    if (!may_connect() || reconnect_timer) return;
    const auto delay = std::max(backoff(), at_least);
    log().info("slack: reconnecting delay_ms={} attempt={}", delay.count(), attempt);
    reconnect_timer = clock.call_after(delay, [this] {
      reconnect_timer = 0;
      ensure_connections();
    });
  }

  void connect_failed(std::uint64_t id, const bot::Error& e) {
    conns.erase(id);
    if (permanent(e)) {
      const bool token = e.code == bot::Errc::unauthorized;
      fail_permanently(token ? "slack app token (xapp-…) rejected: " + e.message
                             : "slack socket mode cannot connect: " + e.message);
      return;
    }
    log().warn("slack: socket mode connection failed conn={} error={}", id, e.message);
    report_started(e);
    schedule_reconnect(e.retry_after);
  }

  void open_connection(std::uint64_t replaces) {
    const std::uint64_t id = next_conn++;
    Conn& c = conns[id];
    c.replaces = replaces;
    api.connections_open([this, id](bot::Result<std::string> url) {
      auto it = conns.find(id);
      if (it == conns.end()) return;
      if (!url) return connect_failed(id, url.error());
      if (!may_connect()) {
        conns.erase(it);
        return;
      }
      common::WebSocketSettings ws;
      ws.connect_timeout = settings.connect_timeout;
      ws.ping_interval = settings.ping_interval;
      ws.idle_timeout = settings.idle_timeout;
      ws.max_message_bytes = settings.max_message_bytes;
      it->second.ws = std::make_shared<common::WebSocketClient>(io, tls, ws);
      it->second.state = ConnState::connecting;
      it->second.ws->on_message([this, id](std::string text) { on_frame(id, text); });
      it->second.ws->on_closed([this, id](const common::WebSocketClosed& why) { on_closed(id, why); });
      // The client skipped the frame and keeps the socket; it could not be parsed, so it is not
      // acked (an Events API envelope is redelivered, then it fails again the same way).
      it->second.ws->on_oversized([this, id](std::size_t bytes) {
        ++stats.oversized;
        log().warn("slack: frame over max_message_bytes skipped conn={} bytes={}", id, bytes);
      });
      it->second.ws->connect(*url, [this, id](bot::Status s) {
        auto c2 = conns.find(id);
        if (c2 == conns.end()) return;
        if (!s) return connect_failed(id, s.error());
        c2->second.state = ConnState::awaiting_hello;
        c2->second.hello_timer = clock.call_after(settings.connect_timeout, [this, id] {
          auto c3 = conns.find(id);
          if (c3 == conns.end() || c3->second.state != ConnState::awaiting_hello) return;
          c3->second.hello_timer = 0;
          log().warn("slack: no hello from socket mode, reconnecting conn={}", id);
          c3->second.ws->close("no hello");
        });
      });
    });
  }

  void on_closed(std::uint64_t id, const common::WebSocketClosed& why) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    const bool was_open = it->second.state == ConnState::open || it->second.state == ConnState::retiring;
    const bool retiring = it->second.state == ConnState::retiring;
    if (it->second.hello_timer) clock.cancel(it->second.hello_timer);
    if (was_open && stats.open_sockets > 0) --stats.open_sockets;
    // The client may be in the middle of its own callback: release it from the loop.
    clock.call_after(0ms, [ws = std::move(it->second.ws)] {});
    conns.erase(it);
    if (stopped) return;
    if (retiring) {
      log().info("slack: old socket closed after refresh conn={} reason={}", id, why.reason);
      ensure_connections();  // in case its replacement failed meanwhile
      return;
    }
    if (link_disabled || !fatal.empty()) return;
    log().warn("slack: socket closed conn={} reason={}", id, why.reason);
    schedule_reconnect(0ms);
  }

  // ---- frames ----

  void on_frame(std::uint64_t id, const std::string& text) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    Frame f = parse_frame(text);
    switch (f.kind) {
      case FrameKind::hello: return on_hello(id, it->second, f);
      case FrameKind::disconnect: return on_disconnect(id, it->second, f);
      case FrameKind::envelope: return on_envelope(id, it->second, std::move(f));
      case FrameKind::unknown:
        ++stats.unknown;
        if (!f.envelope_id.empty()) ack(id, it->second, ack_json(f.envelope_id));
        log().warn("slack: unknown frame type ignored conn={} type={} bytes={}", id, f.type.substr(0, 64), text.size());
        return;
      case FrameKind::malformed:
        ++stats.malformed;
        log().warn("slack: malformed frame ignored conn={} bytes={} error={}", id, text.size(), f.error);
        return;
    }
  }

  void on_hello(std::uint64_t id, Conn& c, const Frame& f) {
    if (c.state != ConnState::awaiting_hello) return;
    if (c.hello_timer) clock.cancel(c.hello_timer);
    c.hello_timer = 0;
    c.state = ConnState::open;
    ++stats.connects;
    ++stats.open_sockets;
    attempt = 0;
    log().info("slack: socket mode connected conn={} num_connections={}", id, f.num_connections);
    if (c.replaces) {
      // Slack may still be sending on the old socket; it keeps acking until Slack closes it or
      // the grace period ends (a close frame would make later envelopes unackable).
      const std::uint64_t old_id = c.replaces;
      c.replaces = 0;
      clock.call_after(settings.retire_grace, [this, old_id] {
        auto old = conns.find(old_id);
        if (old != conns.end() && old->second.ws) old->second.ws->close("replaced after refresh");
      });
    }
    report_started(bot::ok());
  }

  void on_disconnect(std::uint64_t id, Conn& c, const Frame& f) {
    if (f.reason == "link_disabled") {
      link_disabled = true;
      log().error("slack: socket mode was disabled for this app (disconnect link_disabled): not reconnecting; "
                  "turn Socket Mode back on in the app settings and restart runbot");
      if (reconnect_timer) clock.cancel(reconnect_timer);
      reconnect_timer = 0;
      for (auto& [cid, conn] : conns) {
        if (conn.ws) conn.ws->close("link disabled");
      }
      report_started(bot::make_error(bot::Errc::unauthorized, "slack: socket mode is disabled for this app"));
      return;
    }
    if (c.state == ConnState::retiring) return;
    ++stats.refreshes;
    log().info("slack: socket mode refresh conn={} reason={}", id, f.reason.substr(0, 64));
    c.state = ConnState::retiring;
    if (may_connect()) open_connection(id);
  }

  void ack(std::uint64_t id, Conn& c, std::string frame) {
    if (c.ws && c.ws->send(std::move(frame))) {
      ++stats.acks;
    } else {
      log().warn("slack: cannot ack, socket not open conn={}", id);
    }
  }

  static std::string envelope_key(const std::string& id) { return "e:" + id; }
  static std::string trigger_key(const std::string& id) { return id.empty() ? std::string() : "t:" + id; }

  // The ack for `f`, carrying `payload` (JSON text) when there is one and the envelope takes it.
  static std::string ack_for(const Frame& f, const std::string& payload) {
    if (payload.empty() || !f.accepts_response_payload) return ack_json(f.envelope_id);
    return "{\"envelope_id\":" + json(f.envelope_id).dump() + ",\"payload\":" + payload + "}";
  }

  void on_envelope(std::uint64_t id, Conn& c, Frame f) {
    ++stats.envelopes;
    // Sent again because its ack did not reach Slack (the socket died): the same ack again,
    // answer included, and nothing runs twice.
    if (const std::string* known = answered.find(envelope_key(f.envelope_id))) {
      ++stats.duplicates;
      if (!known->empty()) ++stats.answered_again;
      log().debug("slack: redelivered envelope acked again conn={} type={} retry_attempt={}", id, f.type,
                  f.retry_attempt);
      return ack(id, c, ack_for(f, *known));
    }
    Inbound in = to_inbound(f, bot_user);
    // A command or click delivered again under a new envelope_id: the first delivery's answer.
    if (const std::string* known = in.trigger_id.empty() ? nullptr : answered.find(trigger_key(in.trigger_id))) {
      ++stats.duplicates;
      if (!known->empty()) ++stats.answered_again;
      log().info("slack: command delivered again (same trigger_id) not run twice conn={} type={}", id, f.type);
      const std::string payload = *known;
      answered.remember({envelope_key(f.envelope_id)}, payload);
      return ack(id, c, ack_for(f, payload));
    }
    if (f.type == "slash_commands") return on_slash(id, c, f, std::move(in));
    ack(id, c, ack_json(f.envelope_id));
    answered.remember({envelope_key(f.envelope_id), trigger_key(in.trigger_id)}, "");
    if (!in.event_id.empty() && !events.insert(in.event_id)) {
      ++stats.duplicates;
      log().debug("slack: redelivered event acked conn={} retry_attempt={}", id, f.retry_attempt);
      return;
    }
    if (in.kind == Inbound::Kind::ignore) {
      ++stats.ignored;
      log().debug("slack: envelope ignored type={} why={}", f.type, in.ignored_because);
      return;
    }
    deliver(std::make_shared<Inbound>(std::move(in)), "ephemeral");
  }

  // Where an answer to `in` goes when it is not in an ack (InboundMessage::reply_to): its
  // response_url (slash commands, clicks), the DM, or an ephemeral message to the asker in the
  // thread of the mention (its thread, or a new one under the mention itself).
  static std::string reply_address(const Inbound& in, const std::string& response_type) {
    using Via = common::ReplyAddress::Via;
    if (!in.response_url.empty()) return common::ReplyAddress{Via::response_url, in.response_url, response_type, "", ""}.to_json();
    if (in.direct) return common::ReplyAddress{Via::post, "", "", "", in.message.thread}.to_json();
    const std::string thread = in.message.thread.empty() ? in.ts : in.message.thread;
    return common::ReplyAddress{Via::ephemeral, "", "", in.message.user.str(), thread}.to_json();
  }

  // ---- who is asking (identity lookups for role bindings) ----

  // Hands `in` to the handler once its user's e-mail and groups are known (at once when no
  // binding needs them). Replies then go through the ReplyContext built here.
  void deliver(std::shared_ptr<Inbound> in, const std::string& response_type) {
    in->message.reply_to = reply_address(*in, response_type);
    auto run = [this, in] {
      ReplyContext rc;
      rc.message = &in->message;
      dispatch(in->message, rc);
    };
    if (!identity) return run();
    ++stats.identity_waits;
    identity->get(in->message.user.str(), [this, in, run](const common::Identity& id) {
      if (stopped) return;
      common::apply_identity(in->message, id);
      run();
    });
  }

  // The identity cache's lookup: users.info and the group directory, in parallel.
  void look_up(const std::string& user, common::IdentityCache::Done done) {
    auto p = std::make_shared<common::IdentityGathering>();
    p->remaining = (settings.lookup_email ? 1 : 0) + (settings.lookup_groups ? 1 : 0);
    p->done = std::move(done);
    if (settings.lookup_email) {
      api.users_info(user, [p](bot::Result<json> r) {
        if (!r) {
          p->failed(r.error().message);
        } else {
          const json u = r->value("user", json::object());
          const json profile = u.is_object() ? u.value("profile", json::object()) : json::object();
          if (profile.is_object() && profile.value("email", json()).is_string()) {
            p->found.email = profile["email"].get<std::string>();
          } else if (!(u.is_object() && u.contains("is_bot") && u["is_bot"].is_boolean() && u["is_bot"].get<bool>())) {
            // Slack leaves the field out, rather than failing, when the scope is missing.
            p->failed("slack users.info gave no e-mail address (is the users:read.email scope granted?)");
          }
        }
        p->one_done();
      });
    }
    if (settings.lookup_groups) {
      groups_of(user, [p](bot::Result<std::vector<std::string>> r) {
        if (r) {
          p->found.groups = std::move(*r);
        } else {
          p->failed(r.error().message);
        }
        p->one_done();
      });
    }
  }

  // The user's groups (handles and ids) from the shared directory, refreshed once per TTL.
  // `done` never runs inside the call.
  void groups_of(const std::string& user, std::function<void(bot::Result<std::vector<std::string>>)> done) {
    groups.waiting.emplace_back(user, std::move(done));
    if (groups.fetching) return;
    if (groups.loaded && clock.now() < groups.expires) {
      clock.call_after(0ms, [this] { answer_group_waiters(bot::ok()); });
      return;
    }
    groups.fetching = true;
    api.usergroups_list([this](bot::Result<json> r) {
      groups.fetching = false;
      if (!r && r.error().message.find("plan_upgrade_required") != std::string::npos) {
        // A workspace without user groups: nobody is in one; not a failure of the lookup.
        log().info("slack: this workspace has no user groups (plan_upgrade_required); group bindings never match");
        r = json{{"ok", true}, {"usergroups", json::array()}};
      }
      if (!r) return answer_group_waiters(r.error());
      groups.by_user.clear();
      for (const auto& g : r->value("usergroups", json::array())) {
        if (!g.is_object()) continue;
        const std::string id = g.value("id", json()).is_string() ? g["id"].get<std::string>() : "";
        const std::string handle = g.value("handle", json()).is_string() ? g["handle"].get<std::string>() : "";
        for (const auto& member : g.value("users", json::array())) {
          if (!member.is_string()) continue;
          auto& mine = groups.by_user[member.get<std::string>()];
          if (!handle.empty()) mine.push_back(handle);
          if (!id.empty()) mine.push_back(id);
        }
      }
      groups.loaded = true;
      groups.expires = clock.now() + settings.identity_cache_ttl;
      answer_group_waiters(bot::ok());
    });
  }

  void answer_group_waiters(const bot::Status& s) {
    auto waiting = std::move(groups.waiting);
    groups.waiting.clear();
    for (auto& [user, done] : waiting) {
      if (!s) {
        done(s.error());
        continue;
      }
      auto it = groups.by_user.find(user);
      done(it == groups.by_user.end() ? std::vector<std::string>{} : it->second);
    }
  }

  void on_slash(std::uint64_t id, Conn& c, const Frame& f, Inbound in) {
    const std::string keys[] = {envelope_key(f.envelope_id), trigger_key(in.trigger_id)};
    if (in.kind != Inbound::Kind::slash) {
      ++stats.ignored;
      log().warn("slack: slash command ignored why={}", in.ignored_because);
      ack(id, c, ack_json(f.envelope_id));
      answered.remember({keys[0], keys[1]}, "");
      return;
    }
    if (identity) {
      auto known = identity->cached(in.message.user.str());
      if (!known) {
        // The ack is due within 3 s and a lookup may take most of that: ack empty now, and
        // answer through response_url once the user is known. Cached users keep the fast path.
        ack(id, c, ack_json(f.envelope_id));
        answered.remember({keys[0], keys[1]}, "");
        ++stats.deferred;
        deliver(std::make_shared<Inbound>(std::move(in)), settings.slash_response_type);
        return;
      }
      common::apply_identity(in.message, *known);
    }
    in.message.reply_to = reply_address(in, settings.slash_response_type);
    std::optional<json> answer;
    ReplyContext rc;
    rc.message = &in.message;
    if (f.accepts_response_payload) rc.captured = &answer;
    dispatch(in.message, rc);
    std::string payload = answer ? answer->dump(-1, ' ', false, json::error_handler_t::replace) : std::string();
    ack(id, c, ack_for(f, payload));
    answered.remember({keys[0], keys[1]}, std::move(payload));
  }

  void dispatch(const bot::InboundMessage& m, ReplyContext& rc) {
    if (!handler) return;
    ++stats.handled;
    ReplyContext* outer = ctx;
    ctx = &rc;
    handler(m);
    ctx = outer;
  }

  // ---- outbound ----

  void note(const bot::Error& e) {
    if (e.code == bot::Errc::unauthorized) web_problem = e.message;
  }

  // Takes `message` into the ack of the slash command being handled, when it fits one part.
  bool answer_in_band(const bot::InboundMessage& to, const bot::Message& message) {
    if (!current(to) || !ctx->captured || ctx->captured->has_value()) return false;
    std::vector<json> parts = render(message);
    if (parts.size() != 1) return false;  // a long answer goes through response_url, in order
    parts.front()["response_type"] = settings.slash_response_type;
    *ctx->captured = std::move(parts.front());
    return true;
  }

  // An answer (PostRequest::reply_to) through its response_url, the DM, or an ephemeral message
  // in the asker's thread. Its parts go out in order; a retry resumes at the first part missing.
  void send_answer(const bot::PostRequest& req, const common::ReplyAddress& to, std::vector<json> parts,
                   std::function<void(bot::Result<bot::PostResult>)> done) {
    using Via = common::ReplyAddress::Via;
    auto shared = std::make_shared<std::vector<json>>(std::move(parts));
    const std::string channel = req.channel.str();
    const std::string delivery = req.delivery_id;
    common::MultipartPost::Calls calls;
    calls.create = [this, shared, channel, delivery, to](const std::string& in_thread, std::size_t i,
                                                              common::MultipartPost::Callback cb) {
      json part = (*shared)[i];
      if (to.via == Via::response_url) {
        part["response_type"] = to.type.empty() ? "ephemeral" : to.type;
        part["replace_original"] = false;
        return api.respond(to.url, std::move(part), [cb = std::move(cb)](bot::Status st) {
          cb(st ? bot::Result<std::string>(std::string()) : bot::Result<std::string>(st.error()));
        });
      }
      if (to.via == Via::post) {
        if (!delivery.empty()) {
          part["metadata"] = {{"event_type", kDeliveryEventType},
                              {"event_payload", {{"delivery_id", delivery}, {"part", i}}}};
        }
        return api.post_message(channel, in_thread, std::move(part), std::move(cb));
      }
      api.post_ephemeral(channel, to.user, in_thread, std::move(part), std::move(cb));
    };
    calls.failed = [this, channel](const bot::Error& e) {
      note(e);
      ++stats.post_failures;
      log().warn("slack: answer not delivered yet channel={} error={} retryable={}", channel, e.message,
                 e.is_retryable());
    };
    calls.delivered = [this] { web_problem.clear(); };
    common::MultipartPost::start(shared->size(), to.thread, "", std::move(calls), std::move(done),
                                 {&progress, delivery, /*chain=*/false});
  }

  // A message that may have been posted before a restart: look for its delivery id in the thread
  // (or the channel's recent history) first, and post only if it is not there.
  void post_once(bot::PostRequest req, std::vector<json> parts, std::function<void(bot::Result<bot::PostResult>)> done) {
    look_for_delivery(std::move(req), std::move(parts), std::move(done), "", 1);
  }

  // One page of the lookup. Slack pages both methods (history newest first, replies root first,
  // so a long thread's newest replies are on its last page): follow next_cursor until the
  // delivery id is found or the pages run out.
  void look_for_delivery(bot::PostRequest req, std::vector<json> parts,
                         std::function<void(bot::Result<bot::PostResult>)> done, std::string cursor, int page) {
    const bool in_thread = !req.thread.empty();
    std::vector<std::pair<std::string, std::string>> fields{
        {"channel", req.channel.str()}, {"include_all_metadata", "true"}, {"limit", in_thread ? "1000" : "200"}};
    if (in_thread) fields.emplace_back("ts", req.thread);
    if (!cursor.empty()) fields.emplace_back("cursor", cursor);
    const std::string method = in_thread ? "conversations.replies" : "conversations.history";
    api.call_form(method, fields, [this, req = std::move(req), parts = std::move(parts), done = std::move(done),
                                   method, page](bot::Result<json> res) mutable {
      if (res) {
        if (auto ts = find_delivery((*res)["messages"], req.delivery_id)) {
          ++stats.already_posted;
          log().info("slack: message found already posted, not sent again channel={} delivery={}",
                     req.channel.str(), req.delivery_id);
          return done(bot::PostResult{*ts, true});
        }
        std::string next;
        if (const auto meta = res->find("response_metadata"); meta != res->end() && meta->is_object()) {
          next = meta->value("next_cursor", "");
        }
        if (res->value("has_more", false) && !next.empty()) {
          if (page < kMaxLookupPages) {
            return look_for_delivery(std::move(req), std::move(parts), std::move(done), std::move(next), page + 1);
          }
          log().warn("slack: delivery not found in the first {} pages method={} channel={}; posting", page, method,
                     req.channel.str());
        }
      } else {
        // Cannot look (missing history scope, outage): post anyway, at the risk of a repeat.
        log().warn("slack: cannot check for an earlier delivery method={} channel={} error={}; posting", method,
                   req.channel.str(), res.error().message);
      }
      req.maybe_delivered = false;
      post(std::move(req), std::move(parts), std::move(done));
    });
  }

  static std::optional<std::string> find_delivery(const json& messages, const std::string& delivery) {
    if (!messages.is_array()) return std::nullopt;
    for (const auto& m : messages) {
      const json* meta = m.contains("metadata") ? &m["metadata"] : nullptr;
      if (!meta || !meta->is_object() || meta->value("event_type", "") != kDeliveryEventType) continue;
      const json& p = (*meta)["event_payload"];
      if (p.is_object() && p.value("delivery_id", "") == delivery && p.value("part", -1) == 0 && m.contains("ts")) {
        return m["ts"].get<std::string>();
      }
    }
    return std::nullopt;
  }

  void post(bot::PostRequest req, std::vector<json> parts, std::function<void(bot::Result<bot::PostResult>)> done) {
    // A retry of a long message that got part of the way resumes where it stopped; part 0 is
    // known to be there.
    const bool part_way = progress.get(req.delivery_id).next > 0;
    // Only posts can be looked for: ephemeral messages and response_url answers leave no trace.
    const auto to = req.reply_to.empty() ? bot::Result<common::ReplyAddress>(common::ReplyAddress{})
                                         : common::ReplyAddress::parse(req.reply_to);
    if (!to) {
      clock.call_after(0ms, [done = std::move(done), e = to.error()] {
        done(bot::make_error(bot::Errc::invalid_argument, "slack: cannot send an answer: " + e.message));
      });
      return;
    }
    const bool findable = to->findable();
    if (req.maybe_delivered && !part_way && findable && req.edit.empty() && !req.delivery_id.empty()) {
      return post_once(std::move(req), std::move(parts), std::move(done));
    }
    if (!req.reply_to.empty()) return send_answer(req, *to, std::move(parts), std::move(done));
    auto shared = std::make_shared<std::vector<json>>(std::move(parts));
    const std::string channel = req.channel.str();
    const std::string env = req.env.str();
    const std::string delivery = req.delivery_id;
    common::MultipartPost::Calls calls;
    calls.create = [this, shared, channel, delivery](const std::string& thread, std::size_t i,
                                                     common::MultipartPost::Callback cb) {
      json part = (*shared)[i];
      // Message metadata carries the delivery id, so a resend after a crash can find this post.
      if (!delivery.empty()) {
        part["metadata"] = {{"event_type", kDeliveryEventType},
                            {"event_payload", {{"delivery_id", delivery}, {"part", i}}}};
      }
      api.post_message(channel, thread, std::move(part), std::move(cb));
    };
    calls.update = [this, shared, channel](const std::string& id, std::size_t i, common::MultipartPost::Callback cb) {
      json part = (*shared)[i];
      api.update(channel, id, std::move(part), std::move(cb));
    };
    calls.failed = [this, channel, env](const bot::Error& e) {
      note(e);
      ++stats.post_failures;
      log().warn("slack: post failed channel={} env={} error={} retryable={}", channel, env, e.message, e.is_retryable());
    };
    calls.later_failed = [this, channel](std::size_t i, const bot::Error& e) {
      note(e);
      log().warn("slack: a later part of a long message was not delivered channel={} part={} error={}", channel, i,
                 e.message);
    };
    calls.delivered = [this] { web_problem.clear(); };
    common::MultipartPost::start(shared->size(), req.thread, req.edit, std::move(calls), std::move(done),
                                 {&progress, delivery, /*chain=*/true});
  }

};

bot::Result<std::unique_ptr<SlackAdapter>> SlackAdapter::create(boost::asio::io_context& io, SlackSettings settings) {
  std::vector<std::string> problems;
  if (settings.app_token.empty()) {
    problems.push_back("slack.app_token is empty (the xapp-… app-level token with connections:write)");
  } else if (settings.app_token.rfind("xapp-", 0) != 0) {
    problems.push_back("slack.app_token does not start with xapp- (Socket Mode needs the app-level token)");
  }
  if (settings.bot_token.empty()) {
    problems.push_back("slack.bot_token is empty (the xoxb-… bot token)");
  } else if (settings.bot_token.rfind("xoxb-", 0) != 0) {
    problems.push_back("slack.bot_token does not start with xoxb-");
  }
  if (settings.connections < 1 || settings.connections > 10) problems.push_back("slack.connections must be 1 to 10");
  if (settings.api_base_url.rfind("https://", 0) != 0) problems.push_back("slack.api_base_url must be an https:// URL");
  if (settings.slash_response_type != "ephemeral" && settings.slash_response_type != "in_channel") {
    problems.push_back("slack.slash_response_type must be ephemeral or in_channel");
  }
  if (settings.backoff_initial <= 0ms || settings.idle_timeout <= 0ms || settings.ping_interval <= 0ms) {
    problems.push_back("slack: backoff_initial, ping_interval and idle_timeout must be positive");
  }
  auto tls = common::TlsContext::create(settings.ca_file);
  if (!tls) problems.push_back("slack.ca_file: " + tls.error().message);
  if (!problems.empty()) {
    std::string all;
    for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
    return bot::make_error(bot::Errc::invalid_argument, all);
  }
  auto impl = std::make_unique<Impl>(io, std::move(settings), std::move(*tls));
  return std::unique_ptr<SlackAdapter>(new SlackAdapter(std::move(impl)));
}

SlackAdapter::SlackAdapter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SlackAdapter::~SlackAdapter() {
  impl_->stopped = true;
  impl_->conns.clear();  // WebSocketClient destructors close without calling back
  impl_->http.stop();
}

void SlackAdapter::start(InboundHandler handler) { start_checked(std::move(handler), nullptr); }

void SlackAdapter::on_started(std::function<void(bot::Status)> started) {
  Impl& d = *impl_;
  if (!started) return;
  if (d.startup) {
    d.clock.call_after(0ms, [started = std::move(started), s = *d.startup] { started(s); });
    return;
  }
  d.started_cb = std::move(started);
}

void SlackAdapter::start_checked(InboundHandler handler, std::function<void(bot::Status)> started) {
  Impl& d = *impl_;
  on_started(std::move(started));
  if (handler) d.handler = std::move(handler);
  if (d.started) return;
  d.started = true;
  d.api.auth_test([&d](bot::Result<json> r) {
    if (!r) {
      if (permanent(r.error())) return d.fail_permanently("slack bot token (xoxb-…) rejected by auth.test: " + r.error().message);
      log().warn("slack: auth.test failed, continuing error={}", r.error().message);
      d.report_started(r.error());
      return;
    }
    d.auth_ok = true;
    d.bot_user = r->value("user_id", json()).is_string() ? (*r)["user_id"].get<std::string>() : "";
    log().info("slack: authenticated team={} bot_user={}",
               r->value("team", json()).is_string() ? (*r)["team"].get<std::string>() : "", d.bot_user);
    d.report_started(bot::ok());
  });
  d.ensure_connections();
}

void SlackAdapter::post(bot::PostRequest request, std::function<void(bot::Result<bot::PostResult>)> done) {
  Impl& d = *impl_;
  ++d.stats.posts;
  auto parts = render(request.message);
  if (parts.empty()) {
    d.clock.call_after(0ms, [done = std::move(done)] {
      done(bot::make_error(bot::Errc::invalid_argument, "slack: nothing to post"));
    });
    return;
  }
  d.post(std::move(request), std::move(parts), std::move(done));
}

bool SlackAdapter::answer_in_band(const bot::InboundMessage& to, const bot::Message& message) {
  return impl_->answer_in_band(to, message);
}

void SlackAdapter::stop() {
  Impl& d = *impl_;
  if (d.stopped) return;
  d.stopped = true;
  if (d.reconnect_timer) d.clock.cancel(d.reconnect_timer);
  d.reconnect_timer = 0;
  for (auto& [id, c] : d.conns) {
    if (c.ws) c.ws->close("shutting down");
  }
  log().info("slack: stopped");
}

bool SlackAdapter::healthy() const { return problem().empty(); }

std::string SlackAdapter::problem() const {
  const Impl& d = *impl_;
  if (!d.fatal.empty()) return d.fatal;
  if (d.link_disabled) return "slack: socket mode disabled for this app (link_disabled)";
  if (!d.started) return "slack: not started";
  if (d.stopped) return "slack: stopped";
  if (!d.web_problem.empty()) return d.web_problem;
  if (d.stats.open_sockets == 0) return "slack: no socket mode connection open";
  return "";
}

SlackStats SlackAdapter::stats() const { return impl_->stats; }

std::string SlackAdapter::bot_user_id() const { return impl_->bot_user; }

}  // namespace runbot::slack
