#include "adapters/teams/bot_connector.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "adapters/teams/teams_log.h"

namespace runbot::teams {

using nlohmann::json;
using std::chrono::milliseconds;

namespace {

constexpr std::string_view kBlocked = "bot blocked or uninstalled in this conversation";
constexpr milliseconds kBackoffMin{2000};
constexpr milliseconds kBackoffMax{20000};

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Retry-After as delta-seconds; HTTP dates are not worth parsing here (the backoff hint covers
// them).
std::optional<milliseconds> parse_retry_after(const std::string& value) {
  long long seconds = 0;
  const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec != std::errc{} || p != value.data() + value.size() || seconds < 0) return std::nullopt;
  return milliseconds(std::min(seconds, 3600LL) * 1000);
}

std::string str(const json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  if (it == j.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<long long>());
  return {};
}

// Bot Connector errors come as {"error":{"code","message"}}, Teams' blocking as
// {"errorCode":209,"message":"{…\"subCode\":\"MessageWritesBlocked\"…}"}.
std::string error_code_of(const json& j) {
  if (!j.is_object()) return {};
  if (auto it = j.find("error"); it != j.end() && it->is_object()) return str(*it, "code");
  return str(j, "code");
}

bool is_blocked_body(const json& j, const std::string& body) {
  if (str(j, "errorCode") == "209") return true;
  if (body.find("MessageWritesBlocked") != std::string::npos) return true;
  return false;
}

std::string normalize_url(std::string_view url) {
  std::string out(url);
  while (!out.empty() && out.back() == '/') out.pop_back();
  // Scheme and host are case-insensitive; the path is not.
  const auto scheme_end = out.find("://");
  if (scheme_end == std::string::npos) return out;
  const auto host_end = out.find('/', scheme_end + 3);
  const auto stop = host_end == std::string::npos ? out.size() : host_end;
  for (std::size_t i = 0; i < stop; ++i)
    out[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(out[i])));
  return out;
}

std::string form_encode(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

}  // namespace

std::string encode_path_segment(std::string_view segment) {
  return form_encode(segment);
}

std::string connector_url(std::string_view service_url,
                          std::initializer_list<std::string_view> segments) {
  std::string url(service_url);
  while (!url.empty() && url.back() == '/') url.pop_back();
  url += "/v3/conversations";
  for (auto s : segments) {
    url += '/';
    url += encode_path_segment(s);
  }
  return url;
}

milliseconds backoff_hint(int consecutive_failures, double jitter) {
  const int n = std::clamp(consecutive_failures, 1, 16);
  auto base = kBackoffMin * (1LL << (n - 1));
  base = std::min<milliseconds>(base, kBackoffMax);
  const double factor = 0.8 + 0.4 * std::clamp(jitter, 0.0, 1.0);
  return milliseconds(
      static_cast<long long>(std::llround(static_cast<double>(base.count()) * factor)));
}

bot::Result<json> interpret_connector_response(const std::string& what, const int status,
                                               const std::string& retry_after,
                                               const std::string& body, const milliseconds hint,
                                               const std::string_view service) {
  const std::string where = std::string(service) + " " + what + ": ";
  const json j = json::parse(body, nullptr, false);
  const std::string code = j.is_discarded() ? std::string{} : error_code_of(j);
  const std::string with_code = code.empty() ? "" : " " + code;
  if (status >= 200 && status < 300) {
    if (j.is_discarded() || !j.is_object()) return json::object();
    return j;
  }
  if (status == 429) {
    bot::Error e = bot::make_error(bot::Errc::rate_limited, where + "rate limited (HTTP 429)");
    e.retry_after = parse_retry_after(retry_after).value_or(hint);
    return e;
  }
  if (status == 412 || status >= 500) {
    bot::Error e = bot::make_error(bot::Errc::unavailable,
                                   where + "HTTP " + std::to_string(status) + with_code);
    e.retry_after = std::max(hint, parse_retry_after(retry_after).value_or(milliseconds::zero()));
    return e;
  }
  if (status == 408) {
    bot::Error e = bot::make_error(bot::Errc::timeout, where + "HTTP 408");
    e.retry_after = hint;
    return e;
  }
  if (status == 401) {
    return bot::make_error(
        bot::Errc::unauthorized,
        where + "HTTP 401" + with_code +
            " (the connector refused the bot's token: check teams app_id/app_password/tenant_id)");
  }
  if (status == 403 && is_blocked_body(j.is_discarded() ? json() : j, body)) {
    return bot::make_error(bot::Errc::invalid_argument,
                           where + std::string(kBlocked) + " (HTTP 403 MessageWritesBlocked)");
  }
  if (status == 413) {
    return bot::make_error(bot::Errc::invalid_argument,
                           where + "message too big (HTTP 413" + with_code + ")");
  }
  if (status >= 300 && status < 400) {
    return bot::make_error(bot::Errc::invalid_argument,
                           where + "unexpected redirect HTTP " + std::to_string(status));
  }
  return bot::make_error(bot::Errc::invalid_argument,
                         where + "HTTP " + std::to_string(status) + with_code);
}

bool is_blocked_error(const bot::Error& error) {
  return error.code == bot::Errc::invalid_argument &&
         error.message.find(kBlocked) != std::string::npos;
}

// ---------------------------------------------------------------------------- ClientCredentials

std::string token_url_of(const ConnectorSettings& settings) {
  if (!settings.token_url.empty()) return settings.token_url;
  return "https://login.microsoftonline.com/" + encode_path_segment(settings.tenant_id) +
         "/oauth2/v2.0/token";
}

struct ClientCredentials::State : std::enable_shared_from_this<ClientCredentials::State> {
  State(common::HttpsClient& h, ConnectorSettings s, std::string sc, std::string w, bot::Clock& c,
        Random r)
      : http(h),
        settings(std::move(s)),
        scope(std::move(sc)),
        what(std::move(w)),
        clock(c),
        random(std::move(r)) {
    settings.token_url = token_url_of(settings);
  }

  common::HttpsClient& http;
  ConnectorSettings settings;
  std::string scope;
  std::string what;
  bot::Clock& clock;
  Random random;
  std::string token;            // "" when none is cached
  bot::TimePoint refresh_at{};  // use the cached token until then
  bool refreshing = false;
  std::vector<TokenCallback> waiters;
  std::uint64_t n_requests = 0;

  void get(TokenCallback done) {
    if (!token.empty() && clock.now() < refresh_at) {
      done(token);
      return;
    }
    waiters.push_back(std::move(done));
    if (refreshing) return;
    refreshing = true;
    ++n_requests;
    common::HttpClientRequest req;
    req.method = "POST";
    req.url = settings.token_url;
    req.timeout = settings.timeout;
    req.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    req.headers.emplace_back("Accept", "application/json");
    req.body = "grant_type=client_credentials&client_id=" + form_encode(settings.app_id) +
               "&client_secret=" + form_encode(settings.app_password) +
               "&scope=" + form_encode(scope);
    const auto started = clock.now();
    std::weak_ptr<State> weak = weak_from_this();
    http.request(std::move(req), [weak, started](bot::Result<common::HttpClientResponse> res) {
      auto self = weak.lock();
      if (!self) return;
      self->done(self->parse(res, started));
    });
  }

  bot::Result<std::string> parse(const bot::Result<common::HttpClientResponse>& res,
                                 bot::TimePoint started) {
    if (!res) return bot::make_error(res.error().code, what + ": " + res.error().message);
    const json j = json::parse(res->body, nullptr, false);
    if (res->status != 200) {
      // AAD's error code ("invalid_client", …) helps; its description may echo request details, so
      // it stays out.
      const std::string code = j.is_object() ? str(j, "error") : "";
      const std::string why =
          what + ": HTTP " + std::to_string(res->status) + (code.empty() ? "" : " " + code);
      if (res->status == 429 || res->status >= 500) {
        bot::Error e = bot::make_error(
            res->status == 429 ? bot::Errc::rate_limited : bot::Errc::unavailable, why);
        e.retry_after =
            parse_retry_after(res->header("retry-after")).value_or(backoff_hint(1, random()));
        return e;
      }
      return bot::make_error(bot::Errc::unauthorized,
                             why + " (check teams app_id, app_password and tenant_id)");
    }
    const std::string access = j.is_object() ? str(j, "access_token") : "";
    if (access.empty())
      return bot::make_error(bot::Errc::unavailable, what + ": answer has no access_token");
    long long expires_in = 3600;
    if (auto it = j.find("expires_in"); it != j.end()) {
      if (it->is_number_integer()) {
        expires_in = it->get<long long>();
      } else if (it->is_string()) {
        expires_in = std::atoll(it->get<std::string>().c_str());  // older endpoints send a string
      }
    }
    expires_in = std::max(expires_in, 1LL);
    // Renew refresh_before the end, but never later than half-way for short-lived tokens.
    const std::chrono::seconds life{expires_in};
    const auto margin = std::min<std::chrono::seconds>(settings.refresh_before, life / 2);
    refresh_at = started + std::chrono::duration_cast<milliseconds>(life - margin);
    return access;
  }

  void done(bot::Result<std::string> result) {
    refreshing = false;
    if (result) {
      token = *result;
    } else {
      token.clear();
      log().warn("{}: refresh failed error=\"{}\"", what, result.error().message);
    }
    auto waiting = std::move(waiters);
    waiters.clear();
    for (auto& w : waiting) w(result);
  }
};

ClientCredentials::ClientCredentials(common::HttpsClient& http, ConnectorSettings settings,
                                     std::string scope, std::string what, bot::Clock& clock,
                                     Random random)
    : state_(std::make_shared<State>(http, std::move(settings), std::move(scope), std::move(what),
                                     clock, std::move(random))) {}

ClientCredentials::~ClientCredentials() = default;

void ClientCredentials::get(TokenCallback done) {
  state_->get(std::move(done));
}

void ClientCredentials::invalidate(const std::string& used) {
  if (state_->token == used) state_->token.clear();
}

std::uint64_t ClientCredentials::requests() const {
  return state_->n_requests;
}

// ---------------------------------------------------------------------------- BotConnector

namespace {

ClientCredentials::Random or_default(ClientCredentials::Random random) {
  if (random) return random;
  return [gen = std::make_shared<std::mt19937_64>(std::random_device{}())]() {
    return std::uniform_real_distribution<double>(0.0, 1.0)(*gen);
  };
}

}  // namespace

struct BotConnector::Impl : std::enable_shared_from_this<BotConnector::Impl> {
  Impl(common::HttpsClient& h, ConnectorSettings s, bot::Clock& c, Random r)
      : http(h),
        settings(std::move(s)),
        clock(c),
        random(or_default(std::move(r))),
        tokens(h, settings, settings.scope, "teams token", c, random) {}

  using ResponseCallback = std::function<void(bot::Result<json>)>;

  common::HttpsClient& http;
  ConnectorSettings settings;
  bot::Clock& clock;
  Random random;
  ClientCredentials tokens;
  std::set<std::string> trusted;
  std::map<std::string, int> failures;  // consecutive retryable failures per conversation
  bot::DeferredCalls deferred{clock};
  std::uint64_t n_calls = 0;

  void later(std::function<void()> fn) { deferred.later(std::move(fn)); }

  void call(std::string what, std::string method, std::string url, std::string conversation,
            json body, ResponseCallback done) {
    std::weak_ptr<Impl> weak = weak_from_this();
    later([weak, what = std::move(what), method = std::move(method), url = std::move(url),
           conversation = std::move(conversation), body = dump(body),
           done = std::move(done)]() mutable {
      auto self = weak.lock();
      if (!self) return;
      self->attempt(std::move(what), std::move(method), std::move(url), std::move(conversation),
                    std::move(body), false, std::move(done));
    });
  }

  void attempt(std::string what, std::string method, std::string url, std::string conversation,
               std::string body, bool retried, ResponseCallback done) {
    std::weak_ptr<Impl> weak = weak_from_this();
    // Every public entry point deferred before it got here, so a cached token may be used inside
    // tokens.get().
    tokens.get([weak, what, method, url, conversation, body, retried,
                done](bot::Result<std::string> tok) mutable {
      auto self = weak.lock();
      if (!self) return;
      if (!tok) {
        bot::Error e = tok.error();
        e.message = "teams connector " + what + ": no token: " + e.message;
        return done(std::move(e));
      }
      common::HttpClientRequest req;
      req.method = method;
      req.url = url;
      req.timeout = self->settings.timeout;
      req.headers.emplace_back("Authorization", "Bearer " + *tok);  // verbatim, as §3.5 asks
      // A GET carries no body (call() is given null for it).
      if (body != "null") {
        req.headers.emplace_back("Content-Type", "application/json; charset=utf-8");
        req.body = body;
      }
      req.headers.emplace_back("Accept", "application/json");
      ++self->n_calls;
      const std::string used = *tok;
      self->http.request(std::move(req), [weak, what, method, url, conversation, body, retried,
                                          done, used](
                                             bot::Result<common::HttpClientResponse> res) mutable {
        auto me = weak.lock();
        if (!me) return;
        if (res && res->status == 401 && !retried) {
          // The token may have been revoked or rotated early: renew it once and try once more.
          me->tokens.invalidate(used);
          log().info("teams connector: 401, refreshing the token and retrying once call={}", what);
          return me->attempt(std::move(what), std::move(method), std::move(url),
                             std::move(conversation), std::move(body), true, std::move(done));
        }
        me->answered(what, conversation, res, std::move(done));
      });
    });
  }

  void answered(const std::string& what, const std::string& conversation,
                const bot::Result<common::HttpClientResponse>& res, ResponseCallback done) {
    int& n = failures[conversation];
    if (!res) {
      bot::Error e = res.error();
      e.message = "teams connector " + what + ": " + e.message;
      if (e.is_retryable()) e.retry_after = backoff_hint(++n, random());
      return done(std::move(e));
    }
    auto out = interpret_connector_response(what, res->status, res->header("retry-after"),
                                            res->body, backoff_hint(n + 1, random()));
    if (out) {
      failures.erase(conversation);
    } else if (out.error().is_retryable()) {
      ++n;
    } else {
      failures.erase(conversation);
    }
    done(std::move(out));
  }

  bool check_trusted(const std::string& service_url, const std::string& what,
                     const std::function<void(bot::Error)>& fail) {
    if (trusted.count(normalize_url(service_url))) return true;
    log().warn("teams connector: refused a call to an untrusted service url call={}", what);
    later([fail] {
      fail(bot::make_error(
          bot::Errc::invalid_argument,
          "teams connector: untrusted service url (not seen in a validated activity)"));
    });
    return false;
  }
};

BotConnector::BotConnector(common::HttpsClient& http, ConnectorSettings settings, bot::Clock& clock,
                           Random random)
    : impl_(std::make_shared<Impl>(http, std::move(settings), clock, std::move(random))) {}

BotConnector::~BotConnector() {
  impl_->deferred.cancel_all();
}

void BotConnector::trust_service_url(const std::string& service_url) {
  if (service_url.empty()) return;
  impl_->trusted.insert(normalize_url(service_url));
}

bool BotConnector::is_trusted(const std::string& service_url) const {
  return impl_->trusted.count(normalize_url(service_url)) > 0;
}

namespace {

void give_id(const BotConnector::IdCallback& done, bot::Result<json> res,
             const std::string& fallback) {
  if (!res) return done(res.error());
  const std::string id = str(*res, "id");
  done(id.empty() ? fallback : id);
}

}  // namespace

void BotConnector::send(const std::string& service_url, const std::string& conversation_id,
                        json activity, IdCallback done) {
  if (!impl_->check_trusted(service_url, "send", [done](bot::Error e) { done(std::move(e)); }))
    return;
  impl_->call(
      "send", "POST", connector_url(service_url, {conversation_id, "activities"}), conversation_id,
      std::move(activity),
      [done = std::move(done)](bot::Result<json> res) { give_id(done, std::move(res), ""); });
}

void BotConnector::reply(const std::string& service_url, const std::string& conversation_id,
                         const std::string& reply_to_id, json activity, IdCallback done) {
  if (!impl_->check_trusted(service_url, "reply", [done](bot::Error e) { done(std::move(e)); }))
    return;
  if (activity.is_object() && !activity.contains("replyToId")) activity["replyToId"] = reply_to_id;
  impl_->call(
      "reply", "POST", connector_url(service_url, {conversation_id, "activities", reply_to_id}),
      conversation_id, std::move(activity),
      [done = std::move(done)](bot::Result<json> res) { give_id(done, std::move(res), ""); });
}

void BotConnector::update(const std::string& service_url, const std::string& conversation_id,
                          const std::string& activity_id, json activity, IdCallback done) {
  if (!impl_->check_trusted(service_url, "update", [done](bot::Error e) { done(std::move(e)); }))
    return;
  impl_->call("update", "PUT",
              connector_url(service_url, {conversation_id, "activities", activity_id}),
              conversation_id, std::move(activity),
              [done = std::move(done), activity_id](bot::Result<json> res) {
                give_id(done, std::move(res), activity_id);
              });
}

void BotConnector::create_conversation(const std::string& service_url, json params,
                                       JsonCallback done) {
  if (!impl_->check_trusted(service_url, "create_conversation",
                            [done](bot::Error e) { done(std::move(e)); }))
    return;
  impl_->call("create_conversation", "POST", connector_url(service_url, {}), "", std::move(params),
              std::move(done));
}

void BotConnector::get_member(const std::string& service_url, const std::string& conversation_id,
                              const std::string& user_id, JsonCallback done) {
  if (!impl_->check_trusted(service_url, "get_member",
                            [done](bot::Error e) { done(std::move(e)); }))
    return;
  // Failures are counted apart from the conversation's sends, so a failing lookup does not
  // lengthen the backoff hints of the outbox's posts there.
  impl_->call(
      "get_member", "GET", connector_url(service_url, {conversation_id, "members", user_id}),
      "members|" + conversation_id, json(), [done = std::move(done)](bot::Result<json> res) {
        // interpret_connector_response calls every other 4xx invalid_argument; for a lookup
        // a 404 means "no such member here", which callers may treat apart.
        if (!res && res.error().code == bot::Errc::invalid_argument &&
            res.error().message.find(": HTTP 404") != std::string::npos) {
          bot::Error e = res.error();
          e.code = bot::Errc::not_found;
          return done(std::move(e));
        }
        done(std::move(res));
      });
}

std::uint64_t BotConnector::token_requests() const {
  return impl_->tokens.requests();
}
std::uint64_t BotConnector::calls() const {
  return impl_->n_calls;
}

}  // namespace runbot::teams
