#include "adapters/teams/teams_adapter.h"

#include <algorithm>
#include <deque>
#include <map>
#include <optional>

#include <spdlog/spdlog.h>

#include "adapters/common/asio_clock.h"
#include "adapters/common/https_client.h"
#include "adapters/common/identity_cache.h"
#include "adapters/common/reply_address.h"
#include "adapters/common/tls_context.h"
#include "adapters/teams/bot_connector.h"
#include "adapters/teams/graph_client.h"
#include "adapters/teams/jwt_validator.h"
#include "adapters/teams/teams_log.h"
#include "adapters/teams/teams_protocol.h"
#include "adapters/teams/teams_renderer.h"
#include "bot/command.h"

namespace runbot::teams {

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kMaxToastChars = 2000;

common::HttpResponse text_response(int status, std::string body) {
  return common::HttpResponse{status, "text/plain; charset=utf-8", std::move(body), {}};
}

common::HttpResponse json_response(int status, const json& body) {
  return common::HttpResponse{status,
                              "application/json; charset=utf-8",
                              body.dump(-1, ' ', false, json::error_handler_t::replace),
                              {}};
}

bool is_https_url(const std::string& url) {
  return url.rfind("https://", 0) == 0 && url.size() > 8;
}

// The e-mail address in a TeamsChannelAccount: `email`, else the userPrincipalName when it looks
// like one (for most work accounts it is the sign-in address).
std::string email_of(const json& member) {
  auto field = [&member](const char* key) {
    auto it = member.find(key);
    return it != member.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (!member.is_object()) return {};
  if (std::string email = field("email"); !email.empty()) return email;
  if (std::string upn = field("userPrincipalName"); upn.find('@') != std::string::npos) return upn;
  return {};
}

}  // namespace

struct TeamsAdapter::Impl {
  // A command whose answers go into an HTTP body (an invoke) instead of a post.
  struct Capture {
    const bot::InboundMessage* message = nullptr;
    std::vector<bot::Message> answers;
  };

  Impl(boost::asio::io_context& io_, TeamsSettings settings_,
       std::shared_ptr<common::TlsContext> tls_)
      : settings(std::move(settings_)),
        clock(io_),
        http(io_, std::move(tls_)),
        validator(http, settings.auth, clock),
        connector(http, settings.connector, clock),
        graph(http, settings.connector, settings.graph, clock),
        seen(settings.adapter.dedupe_ttl, settings.adapter.dedupe_capacity) {
    if (settings.adapter.lookup_email || settings.adapter.lookup_groups) {
      common::IdentityCacheSettings cs;
      cs.ttl = settings.adapter.identity_cache_ttl;
      cs.deadline = settings.adapter.identity_deadline;
      cs.capacity = settings.adapter.identity_cache_capacity;
      identity = std::make_unique<common::IdentityCache>(
          cs, clock,
          [this](const std::string& user, common::IdentityCache::Done done) {
            look_up(user, std::move(done));
          },
          "teams");
    }
  }

  TeamsSettings settings;
  common::AsioClock clock;
  common::HttpsClient http;
  JwtValidator validator;
  BotConnector connector;
  GraphClient graph;  // used only for group lookups
  DedupeWindow seen;
  ReferenceStore store;
  std::map<std::string, ConversationRef> refs;  // by base conversation id
  RenderOptions render_options;                 // display names learned from activities
  std::map<std::string, bot::TimePoint> nameless;  // users whose name lookup failed, until
  InboundHandler handler;
  Capture* capture = nullptr;
  bool started = false;
  bool stopped = false;
  // An activity that arrived before the adapter could hand it on (before start(), or behind such
  // ones): its token is checked at once, then it waits in `held` until start() gives the handler,
  // or is answered 503 when its bound (early_hold, early_invoke_deadline) passes first.
  struct Early {
    std::string body;
    std::string remote;
    common::HttpServer::Respond respond;
    bool invoke = false;
    bot::TimePoint arrived{};
    bot::TimerId timer = 0;  // the bound: still held, or a released invoke not yet answered
    std::optional<bot::Result<VerifiedToken>> verified;  // once the token check is done
    bool released = false;
    bool answered = false;
  };
  std::deque<std::shared_ptr<Early>> held;  // in arrival order, none answered yet
  bool drain_scheduled = false;
  std::string credentials_problem;
  TeamsStats stats;
  // Where each user was last seen (the conversation to ask the connector about them in), for the
  // identity cache's lookups; bounded like the cache.
  struct Seen {
    std::string service_url;
    std::string conversation;
    std::string aad_object_id;  // for Microsoft Graph
  };
  std::map<std::string, Seen> seen_in;
  std::unique_ptr<common::IdentityCache> identity;  // only when a binding needs e-mail or groups

  // ---- conversation references ----

  void load_references() {
    if (!store.load) return;
    std::size_t loaded = 0;
    for (const auto& [key, value] : store.load()) {
      if (key.rfind(kReferenceKeyPrefix, 0) != 0) continue;
      auto ref = reference_from_json(value);
      if (!ref) {
        log().warn("teams: stored conversation reference ignored key={} error={}", key,
                   ref.error().message);
        continue;
      }
      connector.trust_service_url(ref->service_url);
      refs[ref->conversation_id] = std::move(*ref);
      ++loaded;
    }
    log().info("teams: conversation references restored count={}", loaded);
  }

  void save_reference(const ConversationRef& ref) {
    if (store.save) store.save(reference_key(ref.conversation_id), reference_to_json(ref));
  }

  // Stores or refreshes the reference of the conversation `a` came from (serviceUrl can change).
  void remember(const Activity& a) {
    ConversationRef fresh = reference_of(a);
    auto it = refs.find(fresh.conversation_id);
    if (it != refs.end()) {
      if (it->second.blocked)
        log().info("teams: conversation writes again, unblocked conversation={}",
                   fresh.conversation_id);
      if (fresh.bot_name.empty()) fresh.bot_name = it->second.bot_name;
      if (fresh.team_id.empty()) fresh.team_id = it->second.team_id;
      if (fresh.conversation_type.empty()) fresh.conversation_type = it->second.conversation_type;
      if (it->second == fresh) return;
    }
    refs[fresh.conversation_id] = fresh;
    save_reference(fresh);
  }

  const ConversationRef* find_ref(const std::string& conversation) const {
    auto it = refs.find(base_conversation_id(conversation));
    return it == refs.end() ? nullptr : &it->second;
  }

  void remember_name(const Account& who) {
    if (who.id.empty() || who.name.empty()) return;
    auto& names = render_options.names;
    if (names.size() >= settings.adapter.max_names && !names.count(who.id)) names.clear();
    names[who.id] = who.name;
    nameless.erase(who.id);
  }

  // Calls `then` once the display names of the Teams users `m` mentions are known: names learned
  // from activities, else asked of the conversation's members (a restart forgets names; on-call
  // users in the config may never have written). A user the connector does not know is mentioned
  // by id and not asked about again for a while. Never calls `then` inside this call.
  void with_names(const bot::Message& m, const ConversationRef& ref, std::function<void()> then) {
    std::vector<std::string> unknown;
    for (const auto& u : m.mentions) {
      const std::string& id = u.str();
      if (!is_teams_user_id(id) || render_options.names.count(id)) continue;
      if (auto it = nameless.find(id); it != nameless.end() && clock.now() < it->second) continue;
      if (std::find(unknown.begin(), unknown.end(), id) == unknown.end()) unknown.push_back(id);
    }
    if (unknown.empty()) {
      clock.call_after(0ms, std::move(then));
      return;
    }
    auto remaining = std::make_shared<std::size_t>(unknown.size());
    auto done = std::make_shared<std::function<void()>>(std::move(then));
    for (const auto& id : unknown) {
      ++stats.name_lookups;
      connector.get_member(ref.service_url, ref.conversation_id, id,
                           [this, id, remaining, done](bot::Result<json> r) {
                             const std::string name =
                                 r && r->value("name", json()).is_string()
                                     ? (*r)["name"].get<std::string>()
                                     : std::string();
                             if (!name.empty()) {
                               remember_name(Account{id, name, ""});
                             } else {
                               if (nameless.size() >= settings.adapter.max_names) nameless.clear();
                               nameless[id] = clock.now() + settings.adapter.identity_cache_ttl;
                             }
                             if (--*remaining == 0) (*done)();
                           });
    }
  }

  // ---- inbound ----

  void on_request(const common::HttpRequest& req, common::HttpServer::Respond respond) {
    ++stats.requests;
    if (stopped) {
      respond(text_response(503, "runbot is stopping\n"));
      return;
    }
    auto envelope = parse_envelope(req.body);
    if (!envelope) {
      ++stats.malformed;
      log().warn("teams: request refused remote={} error={}", req.remote, envelope.error().message);
      respond(text_response(400, "the body is not a JSON activity\n"));
      return;
    }
    std::string authorization;
    if (auto h = req.headers.find("authorization"); h != req.headers.end())
      authorization = h->second;
    // The route is live before the bot is (runbot starts its chat adapters once the Kafka
    // consumers have joined), and the Bot Connector does not resend an activity refused with 503:
    // hold early ones, and queue behind them what arrives until they have been handed on.
    if (!started || !handler || !held.empty())
      return hold(req, *envelope, std::move(authorization), std::move(respond));
    validator.validate(
        std::move(authorization), envelope->channel_id, envelope->service_url,
        [this, body = req.body, remote = req.remote, respond](bot::Result<VerifiedToken> v) {
          on_verified(std::move(v), body, remote, respond);
        });
  }

  // ---- activities that arrive before start() ----

  void hold(const common::HttpRequest& req, const Envelope& envelope, std::string authorization,
            common::HttpServer::Respond respond) {
    const bool invoke = envelope.type == "invoke";
    if (held.size() >= settings.adapter.early_capacity) {
      ++stats.early_refused;
      log().warn(
          "teams: activity refused with 503, runbot is not ready yet and {} early activities "
          "already wait (the Bot Connector will not resend it) type={} remote={}",
          held.size(), envelope.type, req.remote);
      respond(text_response(503, "runbot is starting and cannot hold more activities\n"));
      return;
    }
    auto e = std::make_shared<Early>();
    e->body = req.body;
    e->remote = req.remote;
    e->respond = std::move(respond);
    e->invoke = invoke;
    e->arrived = clock.now();
    const auto bound = invoke ? std::min(settings.adapter.early_hold,
                                         settings.adapter.early_invoke_deadline)
                              : settings.adapter.early_hold;
    std::weak_ptr<Early> weak = e;
    e->timer = clock.call_after(bound, [this, weak] {
      if (auto early = weak.lock()) on_early_deadline(early);
    });
    held.push_back(e);
    ++stats.early_held;
    // Checked now, so that a bad token gets its 401 at once and the keys are fetched meanwhile.
    validator.validate(
        std::move(authorization), envelope.channel_id, envelope.service_url,
        [this, e](bot::Result<VerifiedToken> v) { on_early_checked(e, std::move(v)); });
  }

  void on_early_checked(const std::shared_ptr<Early>& e, bot::Result<VerifiedToken> v) {
    if (e->answered) return;  // its bound passed first: it already got 503
    const bool refused = !v;
    e->verified = std::move(v);
    if (refused) {
      // 401 (or 503 for unavailable keys) at once: nothing of it is trusted, so order is moot.
      std::erase(held, e);
      release(e);
      drain();
      return;
    }
    drain();
  }

  // Hands held activities on in arrival order, once there is a handler; stops at one whose token
  // check is still running (its completion drains again).
  void drain() {
    while (started && handler && !stopped && !held.empty() && held.front()->verified) {
      auto e = held.front();
      held.pop_front();
      release(e);
    }
  }

  void schedule_drain() {
    if (drain_scheduled) return;
    drain_scheduled = true;
    clock.call_after(0ms, [this] {
      drain_scheduled = false;
      drain();
    });
  }

  void release(const std::shared_ptr<Early>& e) {
    e->released = true;
    if (e->timer) clock.cancel(e->timer);
    e->timer = 0;
    std::weak_ptr<Early> weak = e;
    if (e->invoke && *e->verified) {
      // Still answered by its deadline, even if the command waits for an identity lookup.
      e->timer = clock.call_at(e->arrived + settings.adapter.early_invoke_deadline, [this, weak] {
        if (auto early = weak.lock()) on_early_deadline(early);
      });
    }
    common::HttpServer::Respond respond = [this, e](common::HttpResponse r) {
      answer_early(e, std::move(r));
    };
    bot::Result<VerifiedToken> verified = std::move(*e->verified);
    on_verified(std::move(verified), e->body, e->remote, respond, e);
  }

  void answer_early(const std::shared_ptr<Early>& e, common::HttpResponse r) {
    if (e->answered) return;
    e->answered = true;
    if (e->timer) clock.cancel(e->timer);
    e->timer = 0;
    e->respond(std::move(r));
  }

  void on_early_deadline(const std::shared_ptr<Early>& e) {
    e->timer = 0;
    if (e->answered) return;
    ++stats.early_refused;
    const auto waited =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock.now() - e->arrived);
    if (!e->released) {
      std::erase(held, e);
      log().warn(
          "teams: activity refused with 503, runbot was not ready within {} of its arrival (the "
          "Bot Connector will not resend it) type={} remote={} token_checked={}",
          bot::format_duration(waited), e->invoke ? "invoke" : "activity", e->remote,
          e->verified.has_value());
    } else {
      log().warn(
          "teams: invoke refused with 503, its command was not done within {} of its arrival "
          "(Teams gives up after 5 s) remote={}",
          bot::format_duration(waited), e->remote);
    }
    answer_early(e, text_response(503, "runbot is not ready for Teams activities\n"));
    // Later ones may now be at the front.
    drain();
  }

  // stop(): what is still held will not be handed on.
  void refuse_held() {
    auto list = std::move(held);
    held.clear();
    for (auto& e : list) {
      ++stats.early_refused;
      log().warn("teams: early activity refused with 503, runbot is stopping remote={}", e->remote);
      answer_early(e, text_response(503, "runbot is stopping\n"));
    }
  }

  void on_verified(bot::Result<VerifiedToken> verified, const std::string& body,
                   const std::string& remote, const common::HttpServer::Respond& respond,
                   const std::shared_ptr<Early>& early = nullptr) {
    if (!verified) {
      if (verified.error().code == bot::Errc::unavailable) {
        ++stats.unavailable;
        log().error("teams: activity not checked, signing keys unavailable remote={} error={}",
                    remote, verified.error().message);
        respond(text_response(503, "cannot check the token now\n"));
        return;
      }
      ++stats.rejected;
      log().warn("teams: activity refused remote={} error={}", remote, verified.error().message);
      respond(text_response(401, "unauthorized\n"));
      return;
    }
    auto parsed = parse_activity(body);
    if (!parsed) {
      ++stats.malformed;
      log().warn("teams: malformed activity refused remote={} error={}", remote,
                 parsed.error().message);
      respond(text_response(400, parsed.error().message + "\n"));
      return;
    }
    Activity a = std::move(*parsed);
    connector.trust_service_url(a.service_url);
    remember_name(a.from);
    remember(a);
    if (!a.id.empty() && !seen.first_time(a.id + "|" + a.conversation.id, clock.now())) {
      ++stats.duplicates;
      log().info("teams: duplicate activity ignored type={} id={} conversation={}", a.type, a.id,
                 a.conversation.id);
      respond(a.type == "invoke" ? json_response(200, invoke_message("Already done."))
                                 : text_response(200, ""));
      return;
    }
    if (a.type == "message") return on_message(std::move(a), respond);
    if (a.type == "invoke") return on_invoke(a, respond, early);
    if (a.type == "conversationUpdate" && a.bot_added()) return on_installed(a, respond);
    ++stats.ignored;
    log().debug("teams: activity acknowledged and ignored type={} conversation={}", a.type,
                a.conversation.id);
    respond(text_response(200, ""));
  }

  void on_message(Activity a, const common::HttpServer::Respond& respond) {
    bot::InboundMessage m = to_inbound(a);
    if (auto click = button_click(a)) {
      auto command = bot::command_for_button(click->action, click->value);
      if (!command) {
        ++stats.ignored;
        log().info("teams: click without a command ignored action={}", click->action);
        respond(text_response(200, ""));
        return;
      }
      m.text = *command;
      m.is_button = true;
    }
    // The Bot Connector only needs to know the activity arrived; the command runs on the next turn,
    // once the sender's e-mail is known when a binding needs it.
    respond(text_response(200, ""));
    identify(a, std::move(m), [this](const bot::InboundMessage& known) { dispatch(known); });
  }

  // `early`: the invoke arrived before start(); once it has been answered (its deadline passed)
  // its command must not run any more.
  void on_invoke(const Activity& a, const common::HttpServer::Respond& respond,
                 const std::shared_ptr<Early>& early = nullptr) {
    if (a.name != "adaptiveCard/action") {
      ++stats.ignored;
      log().info("teams: invoke not handled name={}", a.name);
      respond(text_response(501, ""));
      return;
    }
    ++stats.invokes;
    auto click = button_click(a);
    if (!click) {
      respond(
          json_response(200, invoke_error(400, "BadRequest", "runbot could not read this button")));
      return;
    }
    auto command = bot::command_for_button(click->action, click->value);
    if (!command) {
      respond(json_response(200, invoke_message("Nothing to do for this button.")));
      return;
    }
    bot::InboundMessage m = to_inbound(a);
    m.text = *command;
    m.is_button = true;
    if (identity) {
      if (auto known = identity->cached(m.user.str())) {
        common::apply_identity(m, *known);
      } else {
        // The invoke must be answered within 5 s: the cache answers within identity_deadline
        // (create() keeps it under 3 s), and the HTTP answer waits for it.
        ++stats.deferred_invokes;
        identify(a, std::move(m), [this, respond, early](const bot::InboundMessage& identified) {
          answer_invoke(identified, respond, early);
        });
        return;
      }
    }
    if (early) {
      // A message's command runs on the next loop turn: so does a held invoke's, so that it runs
      // after the messages that arrived before it.
      clock.call_after(0ms, [this, m = std::move(m), respond, early] {
        answer_invoke(m, respond, early);
      });
      return;
    }
    answer_invoke(m, respond, early);
  }

  // Runs the command of an invoke and answers it in the HTTP body.
  void answer_invoke(const bot::InboundMessage& m, const common::HttpServer::Respond& respond,
                     const std::shared_ptr<Early>& early = nullptr) {
    if (early && early->answered) return;  // refused with 503 at its deadline: do not run it
    if (stopped) {
      respond(text_response(503, "runbot is stopping\n"));
      return;
    }
    Capture c;
    c.message = &m;
    Capture* outer = capture;
    capture = &c;
    dispatch(m);
    capture = outer;
    std::string toast;
    for (auto& answer : c.answers) toast += (toast.empty() ? "" : "\n\n") + render_plain(answer, kMaxToastChars);
    bot::Message combined;
    combined.title = toast.empty() ? "Done." : toast;
    respond(json_response(200, invoke_message(render_plain(combined, kMaxToastChars))));
  }

  void on_installed(const Activity& a, const common::HttpServer::Respond& respond) {
    ++stats.installs;
    const ConversationRef* ref = find_ref(reference_of(a).conversation_id);
    log().info("teams: bot added conversation={} type={} team={}",
               ref ? ref->conversation_id : a.conversation.id, a.conversation.type, a.team_id);
    respond(text_response(200, ""));
    if (!settings.adapter.greet_on_install || !ref) return;
    bot::Message hello;
    hello.kind = bot::NoticeKind::reply;
    hello.severity = bot::Severity::success;
    hello.title = "runbot is installed here";
    const std::string name = a.recipient.name.empty() ? "runbot" : a.recipient.name;
    if (a.conversation.type == "personal") {
      hello.text = "Type a command, for example `help` or `list --mine`.";
    } else {
      hello.text = "Mention @" + name + " with a command, for example `@" + name +
                   " help`. To get notifications "
                   "in another channel of this team, mention @" +
                   name + " there once.";
    }
    hello.fields.push_back({"Id for runbot's config", ref->conversation_id});
    const std::string conversation = ref->conversation_id;
    connector.send(ref->service_url, conversation, render(hello, render_options),
                   [this, conversation](bot::Result<std::string> r) {
                     if (!r) {
                       note_error(conversation, r.error());
                       log().warn("teams: hello not delivered conversation={} error={}",
                                  conversation, r.error().message);
                     }
                   });
  }

  // ---- who is asking (identity lookups for role bindings) ----

  // Calls `run` with `m` once its sender's e-mail address and groups are known (at once, on the
  // next loop turn, when no binding needs them); never inside this call.
  void identify(const Activity& a, bot::InboundMessage m,
                std::function<void(const bot::InboundMessage&)> run) {
    if (!identity) {
      clock.call_after(0ms, [m = std::move(m), run = std::move(run)] { run(m); });
      return;
    }
    const std::string user = m.user.str();
    if (seen_in.size() >= settings.adapter.identity_cache_capacity && !seen_in.count(user))
      seen_in.clear();
    // The base conversation (a channel, not one of its threads): the member list is the same.
    seen_in[user] = Seen{a.service_url, reference_of(a).conversation_id, a.from.aad_object_id};
    identity->get(user,
                  [m = std::move(m), run = std::move(run)](const common::Identity& id) mutable {
                    // Even after stop(): `run` decides (an invoke still gets its HTTP answer).
                    common::apply_identity(m, id);
                    run(m);
                  });
  }

  // The identity cache's lookup, in parallel: the e-mail from the Bot Connector's
  // GET v3/conversations/{conversation}/members/{user} where the user was last seen, the groups
  // from Microsoft Graph by the user's aadObjectId.
  void look_up(const std::string& user, common::IdentityCache::Done done) {
    auto where = seen_in.find(user);
    if (where == seen_in.end()) {
      clock.call_after(0ms, [done = std::move(done)] {
        common::Identity id;
        id.error = "teams: no conversation known to look this user up in";
        done(id);
      });
      return;
    }
    auto p = std::make_shared<common::IdentityGathering>();
    p->remaining = (settings.adapter.lookup_email ? 1 : 0) + (settings.adapter.lookup_groups ? 1 : 0);
    p->done = std::move(done);
    if (settings.adapter.lookup_email) {
      connector.get_member(where->second.service_url, where->second.conversation, user,
                           [p](bot::Result<json> r) {
                             if (!r) {
                               p->failed(r.error().message +
                                         (r.error().code == bot::Errc::not_found
                                              ? " (not a member of this conversation)"
                                              : ""));
                             } else {
                               p->found.email = email_of(*r);
                               if (p->found.email.empty())
                                 p->failed(
                                     "teams: the connector gave no e-mail address for this user (a "
                                     "guest?)");
                             }
                             p->one_done();
                           });
    }
    if (settings.adapter.lookup_groups) {
      graph.member_groups(where->second.aad_object_id,
                          [p](bot::Result<std::vector<DirectoryGroup>> r) {
                            if (!r) {
                              p->failed(r.error().message);
                            } else {
                              // Bindings may name a group by its display name or its object id.
                              for (const auto& g : *r) {
                                if (!g.name.empty()) p->found.groups.push_back(g.name);
                                p->found.groups.push_back(g.id);
                              }
                            }
                            p->one_done();
                          });
    }
  }

  void dispatch(const bot::InboundMessage& m) {
    if (!handler || stopped) return;
    ++stats.handled;
    handler(m);
  }

  // ---- outbound ----

  // Records what an error says about the conversation or the credentials.
  void note_error(const std::string& conversation, const bot::Error& e) {
    if (e.code == bot::Errc::unauthorized) credentials_problem = "teams: " + e.message;
    if (!is_blocked_error(e)) return;
    ++stats.blocked;
    auto it = refs.find(base_conversation_id(conversation));
    if (it == refs.end() || it->second.blocked) return;
    it->second.blocked = true;
    save_reference(it->second);
    log().error(
        "teams: the bot was blocked or removed; not sending there until someone writes to it again "
        "conversation={}",
        it->second.conversation_id);
  }

  // The conversation a reply in `thread` goes to: the thread's own conversation in channels, the
  // chat itself elsewhere.
  static std::string conversation_of(const ConversationRef& ref, const std::string& thread) {
    if (thread.empty() || ref.conversation_type != "channel") return ref.conversation_id;
    auto m = parse_message_id(thread);
    return m ? m->conversation : thread;
  }

  void post(bot::PostRequest req, std::function<void(bot::Result<bot::PostResult>)> done) {
    ++stats.posts;
    // An answer goes into the thread the command came from (InboundMessage::reply_to).
    if (!req.reply_to.empty() && req.thread.empty()) {
      if (auto to = common::ReplyAddress::parse(req.reply_to)) req.thread = to->thread;
    }
    const std::string channel = req.channel.str();
    auto fail_now = [this, &done](bot::Error e) {
      ++stats.post_failures;
      clock.call_after(0ms, [done = std::move(done), e = std::move(e)] { done(e); });
    };
    const ConversationRef* found = find_ref(channel);
    if (!found) {
      log().warn("teams: no conversation reference channel={}", channel);
      return fail_now(
          bot::make_error(bot::Errc::invalid_argument,
                          "teams: runbot cannot post to " + channel +
                              ": it has no conversation reference there. Install the runbot "
                              "app in that team or chat and mention the bot there once (see "
                              "adapters/teams/README.md)"));
    }
    if (found->blocked) {
      return fail_now(
          bot::make_error(bot::Errc::invalid_argument,
                          "teams: the bot is blocked or removed in " + channel + "; not sending"));
    }
    const ConversationRef ref = *found;
    auto pending = std::make_shared<bot::PostRequest>(std::move(req));
    with_names(pending->message, ref, [this, pending, ref, done = std::move(done)]() mutable {
      send_post(std::move(*pending), ref, std::move(done));
    });
  }

  // post() once the names its mentions need are known.
  void send_post(bot::PostRequest req, const ConversationRef& ref,
                 std::function<void(bot::Result<bot::PostResult>)> done) {
    const std::string channel = req.channel.str();
    auto fail_now = [this, &done](bot::Error e) {
      ++stats.post_failures;
      clock.call_after(0ms, [done = std::move(done), e = std::move(e)] { done(e); });
    };
    json activity = render(req.message, render_options);
    auto finish = [this, channel, env = req.env.str(), done = std::move(done)](
                      bot::Result<std::string> id, const std::string& conversation) {
      if (!id) {
        ++stats.post_failures;
        note_error(conversation, id.error());
        log().warn("teams: post failed channel={} env={} error={} retryable={}", channel, env,
                   id.error().message, id.error().is_retryable());
        return done(id.error());
      }
      credentials_problem.clear();
      done(bot::PostResult{*id});
    };

    if (!req.edit.empty()) {
      auto target = parse_message_id(req.edit);
      if (!target) {
        return fail_now(bot::make_error(
            bot::Errc::invalid_argument,
            "teams: cannot edit message " + req.edit + ": not a runbot message id"));
      }
      const std::string edit = req.edit;
      connector.update(
          ref.service_url, target->conversation, target->activity_id, std::move(activity),
          [finish, edit, conversation = target->conversation](bot::Result<std::string> r) {
            finish(r ? bot::Result<std::string>(edit) : r, conversation);
          });
      return;
    }
    if (req.thread.empty() && ref.conversation_type == "channel") {
      // A new thread in a channel: a proactive conversation whose id names the thread.
      json params = {
          {"isGroup", true},
          {"channelData",
           {{"channel", {{"id", ref.conversation_id}}}, {"tenant", {{"id", ref.tenant_id}}}}},
          {"activity", std::move(activity)},
          {"tenantId", ref.tenant_id}};
      if (!ref.bot_id.empty()) params["bot"] = {{"id", ref.bot_id}, {"name", ref.bot_name}};
      connector.create_conversation(
          ref.service_url, std::move(params),
          [finish, channel = ref.conversation_id](bot::Result<json> r) {
            if (!r) return finish(r.error(), channel);
            const std::string id =
                r->value("id", json()).is_string() ? (*r)["id"].get<std::string>() : "";
            const std::string root = r->value("activityId", json()).is_string()
                                         ? (*r)["activityId"].get<std::string>()
                                         : "";
            if (id.find(";messageid=") != std::string::npos) return finish(id, channel);
            if (!root.empty()) return finish(thread_conversation_id(channel, root), channel);
            finish(
                bot::make_error(bot::Errc::unavailable, "teams: new thread created without an id"),
                channel);
          });
      return;
    }
    const std::string conversation = conversation_of(ref, req.thread);
    connector.send(ref.service_url, conversation, std::move(activity),
                   [finish, conversation](bot::Result<std::string> r) {
                     if (!r) return finish(r.error(), conversation);
                     finish(message_id(conversation, *r), conversation);
                   });
  }
};

bot::Result<std::unique_ptr<TeamsAdapter>> TeamsAdapter::create(boost::asio::io_context& io,
                                                                TeamsSettings settings) {
  std::vector<std::string> problems;
  if (settings.auth.app_id.empty())
    problems.push_back("teams.app_id is empty (the Microsoft App ID)");
  if (settings.connector.app_id.empty()) settings.connector.app_id = settings.auth.app_id;
  if (settings.connector.app_id != settings.auth.app_id) {
    problems.push_back("teams: the connector and the JWT check must use the same app id");
  }
  if (settings.connector.app_password.empty())
    problems.push_back("teams.app_password is empty (the client secret)");
  if (settings.connector.tenant_id.empty() && settings.connector.token_url.empty()) {
    problems.push_back("teams.tenant_id is empty (the Entra tenant of a SingleTenant bot)");
  }
  if (!settings.connector.token_url.empty() && !is_https_url(settings.connector.token_url)) {
    problems.push_back("teams.token_url must be an https:// URL");
  }
  if (!is_https_url(settings.auth.openid_metadata_url))
    problems.push_back("teams.openid_metadata_url must be an https:// URL");
  if (settings.adapter.messaging_path.empty() || settings.adapter.messaging_path.front() != '/') {
    problems.push_back("teams.messaging_path must start with /");
  }
  // An uncached invoke waits for the lookup, and Teams gives up on an invoke after 5 s.
  if ((settings.adapter.lookup_email || settings.adapter.lookup_groups) &&
      (settings.adapter.identity_deadline <= 0ms || settings.adapter.identity_deadline > 3s)) {
    problems.push_back(
        "teams: identity_deadline must be between 1ms and 3s (invokes are due in 5 s)");
  }
  // Held activities must still be answered before the Bot Connector (15 s) or Teams (5 s for an
  // invoke) gives up on them.
  if (settings.adapter.early_hold < 0ms || settings.adapter.early_hold > 15s)
    problems.push_back(
        "teams: early_hold must be between 0 and 15s (the Bot Connector waits 15 s)");
  if (settings.adapter.early_invoke_deadline <= 0ms ||
      settings.adapter.early_invoke_deadline > 5s) {
    problems.push_back(
        "teams: early_invoke_deadline must be between 1ms and 5s (Teams waits 5 s for an invoke)");
  }
  if (settings.adapter.lookup_groups && !is_https_url(settings.graph.url))
    problems.push_back("teams.graph_url must be an https:// URL");
  auto tls = common::TlsContext::create(settings.adapter.ca_file);
  if (!tls) problems.push_back("teams.ca_file: " + tls.error().message);
  if (!problems.empty()) {
    std::string all;
    for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
    return bot::make_error(bot::Errc::invalid_argument, all);
  }
  auto impl = std::make_shared<Impl>(io, std::move(settings), std::move(*tls));
  return std::unique_ptr<TeamsAdapter>(new TeamsAdapter(std::move(impl)));
}

TeamsAdapter::TeamsAdapter(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

// Destroying Impl destroys the connector and the validator before the HTTPS client, so pending
// calls are dropped without their callbacks (which would reach the outbox).
TeamsAdapter::~TeamsAdapter() {
  impl_->stopped = true;
}

void TeamsAdapter::set_reference_store(ReferenceStore store) {
  impl_->store = std::move(store);
}

void TeamsAdapter::start(InboundHandler handler) {
  Impl& d = *impl_;
  if (handler) d.handler = std::move(handler);
  if (d.started) return;
  d.started = true;
  d.load_references();
  d.validator.prefetch();
  log().info("teams: started path={} app_id={} early_activities={}",
             d.settings.adapter.messaging_path, d.settings.auth.app_id, d.held.size());
  // On the next turn: the handler never runs inside start() (the bot starts its outbox after
  // attaching its adapters).
  if (!d.held.empty()) d.schedule_drain();
}

void TeamsAdapter::post(bot::PostRequest request,
                        std::function<void(bot::Result<bot::PostResult>)> done) {
  impl_->post(std::move(request), std::move(done));
}

bool TeamsAdapter::answer_in_band(const bot::InboundMessage& to, const bot::Message& message) {
  Impl& d = *impl_;
  if (!d.capture || d.capture->message != &to) return false;
  d.capture->answers.push_back(message);
  // A toast cannot carry buttons (the teardown confirmation): such an answer is posted into the
  // thread as well.
  return message.buttons.empty();
}

void TeamsAdapter::stop() {
  Impl& d = *impl_;
  if (d.stopped) return;
  d.stopped = true;
  d.refuse_held();
  log().info("teams: stopped");
}

bool TeamsAdapter::healthy() const {
  return problem().empty();
}

std::string TeamsAdapter::problem() const {
  const Impl& d = *impl_;
  if (!d.started) return "teams: not started";
  if (d.stopped) return "teams: stopped";
  return d.credentials_problem;
}

TeamsStats TeamsAdapter::stats() const {
  return impl_->stats;
}

bool TeamsAdapter::has_reference(const std::string& conversation) const {
  return impl_->find_ref(conversation) != nullptr;
}

void TeamsAdapter::route(common::HttpServer& server) {
  // A weak reference: a request that arrives after the adapter is gone gets 503.
  server.route_async("POST", impl_->settings.adapter.messaging_path,
                     [weak = std::weak_ptr<Impl>(impl_)](const common::HttpRequest& r,
                                                         common::HttpServer::Respond respond) {
                       if (auto impl = weak.lock()) return impl->on_request(r, std::move(respond));
                       respond(text_response(503, "runbot's Teams adapter is gone\n"));
                     });
}

}  // namespace runbot::teams
