#include "adapters/mattermost/mattermost_adapter.h"

#include "adapters/common/multipart_post.h"

#include <algorithm>
#include <optional>
#include <random>
#include <vector>

#include <spdlog/spdlog.h>

#include "adapters/common/asio_clock.h"
#include "adapters/common/https_client.h"
#include "adapters/common/identity_cache.h"
#include "adapters/common/reply_address.h"
#include "adapters/common/secrets.h"
#include "adapters/common/tls_context.h"
#include "adapters/common/websocket_client.h"
#include "adapters/mattermost/mattermost_log.h"
#include "adapters/mattermost/mattermost_protocol.h"
#include "adapters/mattermost/mattermost_renderer.h"
#include "adapters/mattermost/mattermost_rest.h"
#include "bot/command.h"

namespace runbot::mattermost {

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// Looking for a resent top-level post, and catching up a channel after lost events: channel
// pages of the server's maximum size, newest first, up to this many (2,000 posts, replies
// included) before giving up (posting anyway; leaving older lost posts out, with a warning).
constexpr int kLookupPerPage = 200;
constexpr int kMaxLookupPages = 10;

bool permanent(const bot::Error& e) { return e.code == bot::Errc::unauthorized || e.code == bot::Errc::invalid_argument; }

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

common::HttpResponse json_response(int status, const json& body) {
  return common::HttpResponse{status, "application/json", body.dump(-1, ' ', false, json::error_handler_t::replace), {}};
}

// Runs asynchronous steps one after the other; each step gets a continuation to call once.

}  // namespace

struct MattermostAdapter::Impl {
  struct ReplyContext {
    const bot::InboundMessage* message = nullptr;
    std::vector<bot::Message>* captured = nullptr;  // slash commands and clicks: the HTTP answer
  };
  // The bot's teams, for team-membership lookups: fetched once per TTL, shared by every user.
  struct TeamDirectory {
    std::vector<std::pair<std::string, std::string>> teams;  // id, name
    bot::TimePoint expires{};
    bool loaded = false;
    bool fetching = false;
    std::vector<std::function<void(bot::Status)>> waiting;
  };

  Impl(boost::asio::io_context& io_, MattermostSettings settings_, std::shared_ptr<common::TlsContext> tls_)
      : io(io_),
        settings(std::move(settings_)),
        tls(std::move(tls_)),
        clock(io_),
        http(io_, tls, http_settings(settings)),
        rest(http, settings.server_url, settings.token, settings.request_timeout),
        seen(settings.dedupe_capacity),
        rng(std::random_device{}()) {
    if (settings.lookup_email || settings.lookup_groups) {
      common::IdentityCacheSettings cs;
      cs.ttl = settings.identity_cache_ttl;
      cs.deadline = settings.identity_deadline;
      cs.capacity = settings.identity_cache_capacity;
      identity = std::make_unique<common::IdentityCache>(
          cs, clock, [this](const std::string& user, common::IdentityCache::Done done) { look_up(user, std::move(done)); },
          "mattermost");
    }
    render_options.action_url = settings.action_url;
    render_options.action_secret =
        settings.action_secret.empty() ? sign_action(settings.token, "runbot-button-key", "") : settings.action_secret;
  }

  static common::HttpClientSettings http_settings(const MattermostSettings& s) {
    common::HttpClientSettings h;
    h.connect_timeout = s.connect_timeout;
    h.allow_plaintext = plaintext(s);
    return h;
  }
  // server_url is http:// (a server inside the cluster): REST, response_urls and the socket go
  // without TLS. Anything else is https://, verified, and never falls back.
  static bool plaintext(const MattermostSettings& s) { return s.server_url.rfind("http://", 0) == 0; }

  boost::asio::io_context& io;
  MattermostSettings settings;
  std::shared_ptr<common::TlsContext> tls;
  common::AsioClock clock;
  common::HttpsClient http;
  MattermostRest rest;
  RenderOptions render_options;
  InboundHandler handler;
  std::function<void(bot::Status)> started_cb;
  std::optional<bot::Status> startup;
  std::shared_ptr<common::WebSocketClient> ws;
  bool ws_open = false;
  std::string connection_id;      // to resume with
  std::int64_t next_seq = 0;      // the seq expected next on this connection
  std::int64_t client_seq = 0;    // our action seq
  bool connected_before = false;  // a hello was received at some point
  bool resuming = false;          // this socket asked to resume
  bool lost_events = false;       // a gap was seen: catch up at the next hello
  std::int64_t last_seen_ms = 0;  // create_at of the newest post seen
  bool catching_up = false;
  std::optional<std::int64_t> pending_catch_up;
  DedupeSet seen;
  ReplyContext* ctx = nullptr;
  common::PartProgress progress;  // long answers and posts: parts delivered so far
  std::unique_ptr<common::IdentityCache> identity;  // only when a binding needs e-mail or groups
  TeamDirectory teams;
  bot::TimePoint groups_unavailable_until{};  // the server said no to /users/{id}/groups
  std::string bot_user;
  std::string bot_name;
  bool auth_ok = false;
  bool started = false;
  bool stopped = false;
  std::string fatal;
  std::string rest_problem;
  int attempt = 0;
  bot::TimerId reconnect_timer = 0;
  std::mt19937_64 rng;
  MattermostStats stats;

  // ---- startup ----

  void report_started(bot::Status s) {
    if (startup) return;
    if (s && (!auth_ok || (settings.socket && !ws_open))) return;
    startup = s;
    if (!started_cb) return;
    auto cb = std::move(started_cb);
    started_cb = nullptr;
    cb(std::move(s));
  }

  void fail_permanently(std::string why) {
    if (fatal.empty()) fatal = why;
    log().error("mattermost: giving up, fix the configuration and restart: {}", why);
    if (reconnect_timer) clock.cancel(reconnect_timer);
    reconnect_timer = 0;
    if (ws) ws->close("credentials rejected");
    report_started(bot::make_error(bot::Errc::unauthorized, why));
  }

  bool may_connect() const { return !stopped && fatal.empty() && settings.socket; }

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

  void who_am_i() {
    rest.users_me([this](bot::Result<json> r) {
      if (stopped) return;
      if (!r) {
        if (permanent(r.error())) return fail_permanently("mattermost token rejected by users/me: " + r.error().message);
        log().warn("mattermost: users/me failed, retrying error={}", r.error().message);
        report_started(r.error());
        clock.call_after(std::max(backoff(), r.error().retry_after), [this] { who_am_i(); });
        return;
      }
      auth_ok = true;
      attempt = 0;
      bot_user = r->value("id", json()).is_string() ? (*r)["id"].get<std::string>() : "";
      bot_name = r->value("username", json()).is_string() ? (*r)["username"].get<std::string>() : "";
      log().info("mattermost: authenticated bot_user={} bot_name={}", bot_user, bot_name);
      if (settings.socket) {
        connect();
      } else {
        log().info("mattermost: socket disabled on this replica (mattermost.socket: false): posting only");
      }
      report_started(bot::ok());
    });
  }

  // ---- socket ----

  std::string socket_url() const {
    std::string base = settings.server_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    base = (plaintext(settings) ? "ws://" : "wss://") + base.substr(base.find("://") + 3) + "/api/v4/websocket";
    if (!connection_id.empty()) {
      base += "?connection_id=" + connection_id + "&sequence_number=" + std::to_string(next_seq);
    }
    return base;
  }

  void schedule_reconnect(std::chrono::milliseconds at_least) {
    if (!may_connect() || reconnect_timer) return;
    const auto delay = std::max(backoff(), at_least);
    log().info("mattermost: reconnecting delay_ms={} attempt={} resume={}", delay.count(), attempt, !connection_id.empty());
    reconnect_timer = clock.call_after(delay, [this] {
      reconnect_timer = 0;
      connect();
    });
  }

  void connect() {
    if (!may_connect() || ws) return;
    common::WebSocketSettings s;
    s.connect_timeout = settings.connect_timeout;
    s.ping_interval = settings.ping_interval;
    s.idle_timeout = settings.idle_timeout;
    s.max_message_bytes = settings.max_event_bytes;
    s.allow_plaintext = plaintext(settings);
    s.headers.emplace_back("Authorization", "Bearer " + settings.token);
    auto client = std::make_shared<common::WebSocketClient>(io, tls, s);
    ws = client;
    resuming = !connection_id.empty();
    client->on_message([this](std::string text) { on_event(text); });
    client->on_closed([this](const common::WebSocketClosed& why) { on_closed(why); });
    // The client skipped an event over max_event_bytes and kept the socket. Its seq is gone, so
    // it is handled like a gap runbot noticed: a resume would replay the same event, so start
    // afresh and catch its post (if it was one) up over REST, where its size does not matter.
    client->on_oversized([this](std::size_t bytes) {
      ++stats.oversized;
      ++stats.gaps;
      log().warn("mattermost: event over max_event_bytes skipped bytes={}; reconnecting afresh and catching up", bytes);
      connection_id.clear();
      lost_events = true;
      if (ws) ws->close("event too big");
    });
    client->connect(socket_url(), [this](bot::Status st) {
      if (!st) {
        release_socket();
        const std::string& m = st.error().message;
        if (m.find("HTTP 401") != std::string::npos || m.find("HTTP 403") != std::string::npos) {
          return fail_permanently("mattermost websocket upgrade rejected the token: " + m);
        }
        log().warn("mattermost: websocket connect failed error={}", m);
        report_started(st.error());
        return schedule_reconnect(0ms);
      }
      ws_open = true;
      stats.socket_open = true;
      ++stats.connects;
      // The header authenticated the upgrade already; the challenge is for servers or proxies
      // that drop it. The frame stays far below the server's 8 KB read limit.
      std::string challenge = challenge_json(++client_seq, settings.token);
      if (challenge.size() <= kMaxClientFrameBytes) {
        ws->send(std::move(challenge));
      } else {
        log().error("mattermost: token too long for an authentication_challenge frame; relying on the header");
      }
      log().info("mattermost: websocket open resume={}", resuming);
      report_started(bot::ok());
    });
  }

  void release_socket() {
    ws_open = false;
    stats.socket_open = false;
    // The client may be in the middle of its own callback: release it from the loop.
    clock.call_after(0ms, [w = std::move(ws)] {});
    ws = nullptr;
  }

  void on_closed(const common::WebSocketClosed& why) {
    release_socket();
    if (stopped || !fatal.empty()) return;
    log().warn("mattermost: websocket closed reason={}", why.reason);
    schedule_reconnect(0ms);
  }

  void on_event(const std::string& text) {
    ++stats.events;
    Event e = parse_event(text);
    if (e.kind == EventKind::malformed) {
      ++stats.malformed;
      log().warn("mattermost: malformed event ignored bytes={} error={}", text.size(), e.error);
      // A malformed event with a valid seq still counts for the sequence.
      if (e.seq) (void)accept_seq(*e.seq);
      return;
    }
    if (e.kind == EventKind::reply) {
      if (e.status != "OK") log().warn("mattermost: action failed seq_reply={} error={}", e.seq_reply, e.error);
      return;
    }
    if (e.kind == EventKind::hello) return on_hello(e);
    if (!accept_seq(*e.seq)) return;
    if (resuming) {
      resuming = false;
      ++stats.resumes;
      attempt = 0;
      log().info("mattermost: resumed connection without loss");
    }
    if (e.kind != EventKind::posted) return;
    last_seen_ms = std::max(last_seen_ms, e.post.create_at);
    handle_post(e.post, e.channel_type, e.sender_name, false);
  }

  // Whether an event with `seq` is the next one; a replayed one is skipped, a gap restarts.
  bool accept_seq(std::int64_t seq) {
    if (seq < next_seq) {
      ++stats.duplicates;
      return false;
    }
    if (seq > next_seq) {
      ++stats.gaps;
      log().warn("mattermost: sequence gap expected={} got={}; reconnecting afresh and catching up", next_seq, seq);
      connection_id.clear();
      lost_events = true;
      if (ws) ws->close("sequence gap");
      return false;
    }
    next_seq = seq + 1;
    return true;
  }

  void on_hello(const Event& e) {
    ++stats.hellos;
    attempt = 0;
    const bool lost = lost_events || (connected_before && e.connection_id != connection_id);
    if (lost && !lost_events) ++stats.gaps;
    resuming = false;
    lost_events = false;
    connection_id = e.connection_id;
    next_seq = *e.seq + 1;
    log().info("mattermost: hello server_version={} new_connection={}", e.server_version, connected_before);
    if (!connected_before) {
      connected_before = true;
      if (last_seen_ms == 0) last_seen_ms = wall_ms();
      return;
    }
    if (lost) start_catch_up(last_seen_ms);
  }

  // ---- catch-up over REST ----

  void start_catch_up(std::int64_t since) {
    if (catching_up) {
      pending_catch_up = std::min(pending_catch_up.value_or(since), since);
      return;
    }
    catching_up = true;
    log().info("mattermost: events were lost; catching up over REST since_ms={}", since);
    rest.my_channels([this, since](bot::Result<std::vector<ChannelRef>> channels) {
      if (stopped) return;
      if (!channels) {
        log().error("mattermost: catch-up failed, listing channels error={}", channels.error().message);
        return finish_catch_up(since, false);
      }
      auto seq = std::make_shared<common::Sequence>();
      auto ok = std::make_shared<bool>(true);
      for (const auto& c : *channels) {
        seq->steps.push_back([this, c, since, ok](std::function<void()> next) {
          auto found = std::make_shared<std::vector<Post>>();
          catch_up_page(c, since, 0, found, [this, c, next, ok](bot::Result<std::vector<Post>> posts) {
            if (stopped) return;
            if (!posts) {
              *ok = false;
              log().error("mattermost: catch-up failed channel={} error={}", c.id, posts.error().message);
              return next();
            }
            for (const auto& p : *posts) {
              last_seen_ms = std::max(last_seen_ms, p.create_at);
              if (handle_post(p, c.type, "", true)) ++stats.caught_up;
            }
            next();
          });
        });
      }
      seq->steps.push_back([this, since, ok](std::function<void()>) { finish_catch_up(since, *ok); });
      seq->run();
    });
  }

  // A channel's posts created at or after `since`, oldest first: its pages (newest first, the
  // server's maximum per_page) until one reaches back past `since` or comes back short (the
  // channel's beginning), at most kMaxLookupPages; beyond that the older posts are left out and a
  // warning is logged. (`posts?since=` is one unpaged answer, which servers may cap.)
  void catch_up_page(const ChannelRef& c, std::int64_t since, int page, std::shared_ptr<std::vector<Post>> found,
                     std::function<void(bot::Result<std::vector<Post>>)> done) {
    auto on_page = [this, c, since, page, found, done = std::move(done)](bot::Result<std::vector<Post>> r) mutable {
      if (stopped) return;
      if (!r) return done(r.error());
      bool reached_since = static_cast<int>(r->size()) < kLookupPerPage;
      for (auto& p : *r) {
        if (p.create_at < since) {
          reached_since = true;
        } else {
          found->push_back(std::move(p));
        }
      }
      if (!reached_since && page + 1 >= kMaxLookupPages) {
        log().warn("mattermost: catch-up stopped after {} pages channel={}; older lost posts are not handled",
                   kMaxLookupPages, c.id);
        reached_since = true;
      }
      if (!reached_since) return catch_up_page(c, since, page + 1, found, std::move(done));
      std::sort(found->begin(), found->end(), [](const Post& a, const Post& b) {
        return a.create_at != b.create_at ? a.create_at < b.create_at : a.id < b.id;
      });
      done(std::move(*found));
    };
    rest.channel_posts_page(c.id, page, kLookupPerPage, std::move(on_page));
  }

  void finish_catch_up(std::int64_t since, bool ok) {
    catching_up = false;
    if (ok) {
      ++stats.catch_ups;
      log().info("mattermost: catch-up done posts={}", stats.caught_up);
    } else if (!pending_catch_up) {
      // Try again later from the same point rather than lose commands.
      pending_catch_up = since;
      clock.call_after(std::max(settings.backoff_initial, 1000ms), [this] {
        if (!catching_up && pending_catch_up) {
          const auto s = *pending_catch_up;
          pending_catch_up.reset();
          start_catch_up(s);
        }
      });
      return;
    }
    if (pending_catch_up) {
      const auto s = *pending_catch_up;
      pending_catch_up.reset();
      start_catch_up(s);
    }
  }

  // Returns whether the post was given to the handler.
  bool handle_post(const Post& post, const std::string& channel_type, const std::string& sender, bool from_rest) {
    if (!seen.insert(post.id)) {
      ++stats.duplicates;
      return false;
    }
    Inbound in = to_inbound(post, channel_type, sender, bot_user, bot_name);
    if (!in.act) {
      ++stats.ignored;
      log().debug("mattermost: post ignored why={} from_rest={}", in.ignored_because, from_rest);
      return false;
    }
    auto shared = std::make_shared<bot::InboundMessage>(std::move(in.message));
    // A DM is answered in the DM; a mention in its thread, visibly or (by setting) to the asker.
    using Via = common::ReplyAddress::Via;
    if (in.direct) {
      shared->reply_to = common::ReplyAddress{Via::post, "", "", "", ""}.to_json();
    } else if (settings.ephemeral_mention_replies) {
      shared->reply_to = ephemeral_address(*shared);
    } else {
      shared->reply_to = common::ReplyAddress{Via::post, "", "", "", shared->thread}.to_json();
    }
    deliver(shared);
    return true;
  }

  // ---- who is asking (identity lookups for role bindings) ----

  static std::string ephemeral_address(const bot::InboundMessage& m) {
    return common::ReplyAddress{common::ReplyAddress::Via::ephemeral, "", "", m.user.str(), m.thread}.to_json();
  }
  // A slash command's answer after its HTTP response: its response_url (or, without one, an
  // ephemeral post to the asker).
  static std::string slash_address(const bot::InboundMessage& m, const std::string& response_url) {
    if (response_url.empty()) return ephemeral_address(m);
    return common::ReplyAddress{common::ReplyAddress::Via::response_url, response_url, "", "", ""}.to_json();
  }

  // Hands `m` to the handler once its user's e-mail and groups are known (at once when no
  // binding needs them). Its answer goes through the outbox to m->reply_to.
  void deliver(std::shared_ptr<bot::InboundMessage> m) {
    auto run = [this, m] {
      ReplyContext rc;
      rc.message = m.get();
      dispatch(*m, rc);
    };
    if (!identity) return run();
    identity->get(m->user.str(), [this, m, run](const common::Identity& id) {
      if (stopped) return;
      common::apply_identity(*m, id);
      run();
    });
  }

  // The identity cache's lookup: GET /users/{id}, team membership and groups, in parallel.
  void look_up(const std::string& user, common::IdentityCache::Done done) {
    auto p = std::make_shared<common::IdentityGathering>();
    p->remaining = (settings.lookup_email ? 1 : 0) + (settings.lookup_groups ? 2 : 0);
    p->done = std::move(done);
    if (settings.lookup_email) {
      rest.user(user, [p](bot::Result<json> r) {
        if (!r) {
          p->failed(r.error().message);
        } else if (r->is_object() && r->value("email", json()).is_string() && !(*r)["email"].get<std::string>().empty()) {
          p->found.email = (*r)["email"].get<std::string>();
        } else {
          // The server sanitises e-mail addresses out unless the bot may see them.
          p->failed("mattermost hides this user's e-mail address from the bot (Privacy: Show Email Address)");
        }
        p->one_done();
      });
    }
    if (!settings.lookup_groups) return;
    team_names_of(user, [p](bot::Result<std::vector<std::string>> r) {
      if (r) {
        p->found.groups.insert(p->found.groups.end(), r->begin(), r->end());
      } else {
        p->failed(r.error().message);
      }
      p->one_done();
    });
    if (clock.now() < groups_unavailable_until) {
      clock.call_after(0ms, [p] { p->one_done(); });
      return;
    }
    rest.user_groups(user, [this, p](bot::Result<std::optional<json>> r) {
      if (!r) {
        p->failed(r.error().message);
      } else if (!*r) {
        // Not offered to the bot on this server (no licence, too old, or no manage_system): team
        // bindings still work. Asked again after a TTL, in case an admin changes that.
        if (groups_unavailable_until == bot::TimePoint{}) {
          log().info("mattermost: the server does not let the bot read users' groups; only teams count as groups");
        }
        groups_unavailable_until = clock.now() + settings.identity_cache_ttl;
      } else if ((*r)->is_array()) {
        for (const auto& g : **r) {
          if (!g.is_object() || g.value("delete_at", json(0)) != json(0)) continue;
          if (g.value("name", json()).is_string() && !g["name"].get<std::string>().empty()) {
            p->found.groups.push_back(g["name"].get<std::string>());
          }
          if (g.value("id", json()).is_string()) p->found.groups.push_back(g["id"].get<std::string>());
        }
      }
      p->one_done();
    });
  }

  // Names and ids of the bot's teams that `user` is an active member of.
  void team_names_of(const std::string& user, std::function<void(bot::Result<std::vector<std::string>>)> done) {
    with_teams([this, user, done = std::move(done)](bot::Status s) {
      if (!s) return done(s.error());
      struct Join {
        std::size_t remaining = 0;
        std::vector<std::string> names;
        std::string error;
        std::function<void(bot::Result<std::vector<std::string>>)> done;
      };
      auto j = std::make_shared<Join>();
      j->remaining = teams.teams.size();
      j->done = done;
      if (j->remaining == 0) return done(std::vector<std::string>{});
      for (const auto& [id, name] : teams.teams) {
        rest.is_team_member(id, user, [j, id = id, name = name](bot::Result<bool> member) {
          if (!member) {
            j->error = member.error().message;
          } else if (*member) {
            if (!name.empty()) j->names.push_back(name);
            j->names.push_back(id);
          }
          if (--j->remaining > 0) return;
          if (!j->error.empty()) return j->done(bot::make_error(bot::Errc::unavailable, j->error));
          j->done(std::move(j->names));
        });
      }
    });
  }

  // Runs `done` once the bot's team list is fresh (never inside the call).
  void with_teams(std::function<void(bot::Status)> done) {
    teams.waiting.push_back(std::move(done));
    if (teams.fetching) return;
    auto answer = [this](const bot::Status& s) {
      auto waiting = std::move(teams.waiting);
      teams.waiting.clear();
      for (auto& w : waiting) w(s);
    };
    if (teams.loaded && clock.now() < teams.expires) {
      clock.call_after(0ms, [answer] { answer(bot::ok()); });
      return;
    }
    teams.fetching = true;
    rest.my_teams([this, answer](bot::Result<json> r) {
      teams.fetching = false;
      if (!r) return answer(r.error());
      teams.teams.clear();
      if (r->is_array()) {
        for (const auto& t : *r) {
          if (!t.is_object() || !t.value("id", json()).is_string()) continue;
          teams.teams.emplace_back(t["id"].get<std::string>(),
                                   t.value("name", json()).is_string() ? t["name"].get<std::string>() : "");
        }
      }
      teams.loaded = true;
      teams.expires = clock.now() + settings.identity_cache_ttl;
      answer(bot::ok());
    });
  }

  void dispatch(const bot::InboundMessage& m, ReplyContext& rc) {
    if (!handler) return;
    ++stats.handled;
    ReplyContext* outer = ctx;
    ctx = &rc;
    handler(m);
    ctx = outer;
  }

  bool current(const bot::InboundMessage& to) const {
    return ctx && (ctx->message == &to || (ctx->message->channel == to.channel && ctx->message->user == to.user &&
                                           ctx->message->text == to.text));
  }

  // ---- outbound ----

  void note(const bot::Error& e) {
    if (e.code == bot::Errc::unauthorized) rest_problem = e.message;
  }

  // Slash commands and clicks handled right now carry their answers in the HTTP response.
  bool answer_in_band(const bot::InboundMessage& to, const bot::Message& message) {
    if (!current(to) || !ctx->captured) return false;
    ctx->captured->push_back(message);
    return true;
  }

  // An answer (PostRequest::reply_to): through the slash command's response_url, as a post (a DM
  // or a mention's thread, tagged with its delivery id like every post), or as an ephemeral post
  // to the asker. Parts go out in order; a retry resumes at the first part missing.
  void send_answer(const bot::PostRequest& req, const common::ReplyAddress& to, std::vector<json> parts,
                   std::function<void(bot::Result<bot::PostResult>)> done) {
    using Via = common::ReplyAddress::Via;
    auto shared = std::make_shared<std::vector<json>>(std::move(parts));
    const std::string channel = req.channel.str();
    const std::string delivery = req.delivery_id;
    common::MultipartPost::Calls calls;
    calls.create = [this, shared, channel, delivery, to](const std::string& thread, std::size_t i,
                                                              common::MultipartPost::Callback cb) {
      json part = (*shared)[i];
      if (to.via == Via::response_url) {
        return rest.respond(to.url, slash_part(part), [cb = std::move(cb)](bot::Status st) {
          cb(st ? bot::Result<std::string>(std::string()) : bot::Result<std::string>(st.error()));
        });
      }
      if (to.via == Via::post) {
        if (!delivery.empty()) tag_delivery(part, delivery, i);
        return rest.create_post(channel, thread, std::move(part), std::move(cb));
      }
      rest.ephemeral_post(to.user, channel, thread, std::move(part), std::move(cb));
    };
    calls.failed = [this, channel](const bot::Error& e) {
      note(e);
      ++stats.post_failures;
      log().warn("mattermost: answer not delivered yet channel={} error={} retryable={}", channel, e.message,
                 e.is_retryable());
    };
    calls.delivered = [this] { rest_problem.clear(); };
    common::MultipartPost::start(shared->size(), to.thread, "", std::move(calls), std::move(done),
                                 {&progress, delivery, /*chain=*/false});
  }

  // A message that may have been posted before a restart (or by a post that timed out): look for
  // its delivery id where it would be, and post only if it is not there. Only the bot's own posts
  // count, so its user id is needed; a resend right after a restart can come before users/me.
  void post_once(bot::PostRequest req, std::vector<json> parts, std::function<void(bot::Result<bot::PostResult>)> done) {
    if (!bot_user.empty()) return look_for_delivery(std::move(req), std::move(parts), std::move(done), bot_user, 0);
    rest.users_me([this, req = std::move(req), parts = std::move(parts), done = std::move(done)](bot::Result<json> r) mutable {
      const std::string me = r && r->is_object() && r->value("id", json()).is_string() ? (*r)["id"].get<std::string>() : "";
      if (me.empty()) {
        log().warn("mattermost: cannot check for an earlier delivery, users/me failed channel={} error={}; posting",
                   req.channel.str(), r ? "no id" : r.error().message);
        req.maybe_delivered = false;
        return post(std::move(req), std::move(parts), std::move(done));
      }
      look_for_delivery(std::move(req), std::move(parts), std::move(done), me, 0);
    });
  }

  // One lookup. A reply is looked for in its thread (GET /posts/{root}/thread: the whole thread
  // in one answer); a top-level post in the channel's pages, newest first, until the delivery id
  // turns up, a page comes back short (the channel's beginning) or kMaxLookupPages were read.
  void look_for_delivery(bot::PostRequest req, std::vector<json> parts,
                         std::function<void(bot::Result<bot::PostResult>)> done, std::string me, int page) {
    const bool in_thread = !req.thread.empty();
    const std::string thread = req.thread;
    const std::string channel = req.channel.str();
    auto found = [this, req = std::move(req), parts = std::move(parts), done = std::move(done), me,
                  page, in_thread](bot::Result<std::vector<Post>> res) mutable {
      const char* where = in_thread ? "posts/thread" : "channels/posts";
      if (res) {
        for (const auto& p : *res) {
          if (p.user_id == me && p.delivery_id == req.delivery_id && p.delivery_part == 0) {
            ++stats.already_posted;
            log().info("mattermost: message found already posted, not sent again channel={} delivery={} post={}",
                       req.channel.str(), req.delivery_id, p.id);
            return done(bot::PostResult{p.id, true});
          }
        }
        if (!in_thread && res->size() >= static_cast<std::size_t>(kLookupPerPage)) {
          if (page + 1 < kMaxLookupPages) {
            return look_for_delivery(std::move(req), std::move(parts), std::move(done), std::move(me), page + 1);
          }
          log().warn("mattermost: delivery not found in the newest {} posts channel={}; posting",
                     kMaxLookupPages * kLookupPerPage, req.channel.str());
        }
      } else {
        // Cannot look (outage, permissions): post anyway, at the risk of a repeat (as on Slack).
        log().warn("mattermost: cannot check for an earlier delivery call={} channel={} error={}; posting", where,
                   req.channel.str(), res.error().message);
      }
      req.maybe_delivered = false;
      post(std::move(req), std::move(parts), std::move(done));
    };
    if (in_thread) return rest.thread_posts(thread, std::move(found));
    rest.channel_posts_page(channel, page, kLookupPerPage, std::move(found));
  }

  void post(bot::PostRequest req, std::vector<json> parts, std::function<void(bot::Result<bot::PostResult>)> done) {
    // A retry of a long message that got part of the way resumes where it stopped.
    const bool part_way = progress.get(req.delivery_id).next > 0;
    // Only posts carry the delivery id: ephemeral posts and response_url answers cannot be found.
    const auto to = req.reply_to.empty() ? bot::Result<common::ReplyAddress>(common::ReplyAddress{})
                                         : common::ReplyAddress::parse(req.reply_to);
    if (!to) {
      clock.call_after(0ms, [done = std::move(done), e = to.error()] {
        done(bot::make_error(bot::Errc::invalid_argument, "mattermost: cannot send an answer: " + e.message));
      });
      return;
    }
    const bool findable = to->findable();
    if (req.maybe_delivered && !part_way && findable && req.edit.empty() && !req.delivery_id.empty()) {
      // An answer's thread is in its reply address, where the lookup must look.
      if (!req.reply_to.empty() && req.thread.empty()) req.thread = to->thread;
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
      // The props carry the delivery id, so a resend after a crash can find this post.
      if (!delivery.empty()) tag_delivery(part, delivery, i);
      rest.create_post(channel, thread, std::move(part), std::move(cb));
    };
    calls.update = [this, shared, channel](const std::string& id, std::size_t i, common::MultipartPost::Callback cb) {
      json part = (*shared)[i];
      rest.patch_post(id, std::move(part), std::move(cb));
    };
    calls.failed = [this, channel, env](const bot::Error& e) {
      note(e);
      ++stats.post_failures;
      log().warn("mattermost: post failed channel={} env={} error={} retryable={}", channel, env, e.message, e.is_retryable());
    };
    calls.later_failed = [this, channel](std::size_t i, const bot::Error& e) {
      note(e);
      log().warn("mattermost: a later part of a long message was not delivered channel={} part={} error={}", channel, i,
                 e.message);
    };
    calls.delivered = [this] { rest_problem.clear(); };
    common::MultipartPost::start(shared->size(), req.thread, req.edit, std::move(calls), std::move(done),
                                 {&progress, delivery, /*chain=*/true});
  }


  // ---- HTTP endpoints ----

  json slash_part(const json& part) const {
    json out{{"response_type", settings.slash_response_type}, {"text", part.value("message", "")}};
    if (part.contains("props") && part["props"].contains("attachments")) out["attachments"] = part["props"]["attachments"];
    return out;
  }

  common::HttpResponse handle_slash(const common::HttpRequest& req) {
    auto form = parse_form(req.body);
    std::string token = form["token"];
    if (auto h = req.headers.find("authorization"); h != req.headers.end() && h->second.rfind("Token ", 0) == 0) {
      token = h->second.substr(6);
    }
    if (settings.slash_token.empty() || !common::constant_time_equal(token, settings.slash_token)) {
      ++stats.rejected;
      log().warn("mattermost: slash command with a bad token refused remote={}", req.remote);
      return json_response(401, {{"text", "runbot: this slash command's token is not accepted"}});
    }
    if (!handler) return json_response(503, {{"response_type", "ephemeral"}, {"text", "runbot is starting; try again"}});
    ++stats.slash_commands;
    bot::InboundMessage m;
    m.platform = "mattermost";
    m.channel = bot::ChannelId{form["channel_id"]};
    m.user = bot::UserId{form["user_id"]};
    m.user_name = form["user_name"];
    m.text = form["text"];
    m.thread = form["root_id"];
    if (identity) {
      auto known = identity->cached(m.user.str());
      if (!known) {
        // The answer is due within 3 s and a lookup may take most of that: answer nothing now (an
        // empty ephemeral response posts nothing) and the real answer through response_url.
        ++stats.deferred;
        m.reply_to = slash_address(m, form["response_url"]);
        deliver(std::make_shared<bot::InboundMessage>(std::move(m)));
        return json_response(200, {{"response_type", "ephemeral"}, {"text", ""}});
      }
      common::apply_identity(m, *known);
    }
    m.reply_to = slash_address(m, form["response_url"]);
    std::vector<bot::Message> answers;
    ReplyContext rc;
    rc.message = &m;
    rc.captured = &answers;
    dispatch(m, rc);
    std::vector<json> parts;
    for (const auto& a : answers) {
      for (const auto& p : render(a, render_options)) parts.push_back(slash_part(p));
    }
    if (parts.empty()) return json_response(200, {{"response_type", "ephemeral"}, {"text", "OK"}});
    json out = parts.front();
    if (parts.size() > 1) out["extra_responses"] = json(std::vector<json>(parts.begin() + 1, parts.end()));
    return json_response(200, out);
  }

  common::HttpResponse handle_action(const common::HttpRequest& req) {
    std::string why;
    auto a = parse_action_request(req.body, &why);
    if (!a) {
      ++stats.rejected;
      log().warn("mattermost: bad button request remote={} error={}", req.remote, why);
      return json_response(400, {{"ephemeral_text", "runbot could not read this click"}});
    }
    if (!common::constant_time_equal(a->sig, sign_action(render_options.action_secret, a->action, a->value))) {
      ++stats.rejected;
      log().warn("mattermost: button click with a bad signature refused remote={} action={}", req.remote, a->action);
      return json_response(401, {{"ephemeral_text", "runbot could not verify this button"}});
    }
    ++stats.actions;
    auto command = bot::command_for_button(a->action, a->value);
    if (!command) return json_response(200, {{"ephemeral_text", "Nothing to do for this button."}});
    if (!handler) return json_response(200, {{"ephemeral_text", "runbot is starting; try again"}});
    bot::InboundMessage m;
    m.platform = "mattermost";
    m.channel = bot::ChannelId{a->channel_id};
    m.user = bot::UserId{a->user_id};
    m.user_name = a->user_name;
    m.text = *command;
    m.thread = a->post_id;
    m.is_button = true;
    if (identity) {
      auto known = identity->cached(m.user.str());
      if (!known) {
        // As for slash commands: an empty answer now, an ephemeral post to the clicker later.
        ++stats.deferred;
        m.reply_to = ephemeral_address(m);
        deliver(std::make_shared<bot::InboundMessage>(std::move(m)));
        return json_response(200, json::object());
      }
      common::apply_identity(m, *known);
    }
    m.reply_to = ephemeral_address(m);
    std::vector<bot::Message> answers;
    ReplyContext rc;
    rc.message = &m;
    rc.captured = &answers;
    dispatch(m, rc);
    std::string text;
    for (const auto& ans : answers) text += (text.empty() ? "" : "\n\n") + render_markdown(ans);
    if (text.size() > kMaxPostChars) text = text.substr(0, kMaxPostChars - 3) + "…";
    return json_response(200, {{"ephemeral_text", text.empty() ? std::string("Done.") : text}});
  }
};

bot::Result<std::unique_ptr<MattermostAdapter>> MattermostAdapter::create(boost::asio::io_context& io,
                                                                          MattermostSettings settings) {
  std::vector<std::string> problems;
  if (settings.server_url.rfind("https://", 0) != 0 && settings.server_url.rfind("http://", 0) != 0) {
    problems.push_back("mattermost.server_url must be an https:// (or http://) URL");
  }
  if (settings.token.empty()) problems.push_back("mattermost.token is empty (the bot account's access token)");
  if (settings.slash_response_type != "ephemeral" && settings.slash_response_type != "in_channel") {
    problems.push_back("mattermost.slash_response_type must be ephemeral or in_channel");
  }
  if (settings.backoff_initial <= 0ms || settings.idle_timeout <= 0ms || settings.ping_interval <= 0ms) {
    problems.push_back("mattermost: backoff_initial, ping_interval and idle_timeout must be positive");
  }
  auto tls = common::TlsContext::create(settings.ca_file);
  if (!tls) problems.push_back("mattermost.ca_file: " + tls.error().message);
  if (!problems.empty()) {
    std::string all;
    for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
    return bot::make_error(bot::Errc::invalid_argument, all);
  }
  auto impl = std::make_unique<Impl>(io, std::move(settings), std::move(*tls));
  return std::unique_ptr<MattermostAdapter>(new MattermostAdapter(std::move(impl)));
}

MattermostAdapter::MattermostAdapter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MattermostAdapter::~MattermostAdapter() {
  impl_->stopped = true;
  impl_->ws.reset();  // the WebSocketClient destructor closes without calling back
  impl_->http.stop();
}

void MattermostAdapter::start(InboundHandler handler) {
  Impl& d = *impl_;
  if (handler) d.handler = std::move(handler);
  if (d.started) return;
  d.started = true;
  d.who_am_i();
}

void MattermostAdapter::on_started(std::function<void(bot::Status)> started) {
  Impl& d = *impl_;
  if (!started) return;
  if (d.startup) {
    d.clock.call_after(0ms, [started = std::move(started), s = *d.startup] { started(s); });
    return;
  }
  d.started_cb = std::move(started);
}

void MattermostAdapter::post(bot::PostRequest request, std::function<void(bot::Result<bot::PostResult>)> done) {
  Impl& d = *impl_;
  ++d.stats.posts;
  auto parts = render(request.message, d.render_options);
  if (parts.empty()) {
    d.clock.call_after(bot::Duration::zero(), [done = std::move(done)] {
      done(bot::make_error(bot::Errc::invalid_argument, "mattermost: nothing to post"));
    });
    return;
  }
  d.post(std::move(request), std::move(parts), std::move(done));
}

bool MattermostAdapter::answer_in_band(const bot::InboundMessage& to, const bot::Message& message) {
  return impl_->answer_in_band(to, message);
}

void MattermostAdapter::stop() {
  Impl& d = *impl_;
  if (d.stopped) return;
  d.stopped = true;
  if (d.reconnect_timer) d.clock.cancel(d.reconnect_timer);
  d.reconnect_timer = 0;
  if (d.ws) d.ws->close("shutting down");
  log().info("mattermost: stopped");
}

bool MattermostAdapter::healthy() const { return problem().empty(); }

std::string MattermostAdapter::problem() const {
  const Impl& d = *impl_;
  if (!d.fatal.empty()) return d.fatal;
  if (!d.started) return "mattermost: not started";
  if (d.stopped) return "mattermost: stopped";
  if (!d.rest_problem.empty()) return d.rest_problem;
  if (!d.auth_ok) return "mattermost: users/me has not succeeded yet";
  if (d.settings.socket && !d.ws_open) return "mattermost: no websocket connection open";
  return "";
}

MattermostStats MattermostAdapter::stats() const { return impl_->stats; }

std::string MattermostAdapter::bot_user_id() const { return impl_->bot_user; }

common::HttpResponse MattermostAdapter::handle_slash(const common::HttpRequest& request) {
  return impl_->handle_slash(request);
}

common::HttpResponse MattermostAdapter::handle_action(const common::HttpRequest& request) {
  return impl_->handle_action(request);
}

void MattermostAdapter::route(common::HttpServer& server) {
  if (!impl_->settings.slash_token.empty()) {
    server.route("POST", impl_->settings.command_path, [this](const common::HttpRequest& r) { return handle_slash(r); });
  }
  server.route("POST", impl_->settings.action_path, [this](const common::HttpRequest& r) { return handle_action(r); });
}

}  // namespace runbot::mattermost
