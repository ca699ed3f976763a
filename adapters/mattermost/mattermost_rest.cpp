#include "adapters/mattermost/mattermost_rest.h"

#include <algorithm>
#include <charconv>
#include <memory>

namespace runbot::mattermost {

using nlohmann::json;

namespace {

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::optional<std::int64_t> number(const std::string& value) {
  std::int64_t n = 0;
  const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc{} || n < 0) return std::nullopt;
  return n;
}

std::chrono::milliseconds retry_after_of(const common::HttpClientResponse& res, std::int64_t now_epoch_s) {
  if (auto s = number(res.header("retry-after"))) return std::chrono::seconds(std::min<std::int64_t>(*s, 3600));
  if (auto r = number(res.header("x-ratelimit-reset"))) {
    const std::int64_t delay = *r < 1000000000 ? *r : *r - now_epoch_s;
    return std::chrono::seconds(std::clamp<std::int64_t>(delay, 1, 3600));
  }
  return std::chrono::seconds(1);
}

std::int64_t epoch_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

bot::Result<json> interpret_response(const std::string& what, const common::HttpClientResponse& res,
                                     std::int64_t now_epoch_s) {
  const std::string where = "mattermost " + what + ": ";
  if (res.status == 429) {
    bot::Error e = bot::make_error(bot::Errc::rate_limited, where + "rate limited (HTTP 429)");
    e.retry_after = retry_after_of(res, now_epoch_s);
    return e;
  }
  json j = json::parse(res.body, nullptr, false);
  const bool is_json = !j.is_discarded();
  if (res.status >= 200 && res.status < 300) {
    if (!is_json) return bot::make_error(bot::Errc::unavailable, where + "response is not JSON");
    return j;
  }
  std::string detail = " HTTP " + std::to_string(res.status);
  if (is_json && j.is_object()) {
    if (j.value("id", json()).is_string()) detail += " " + j["id"].get<std::string>();
    if (j.value("message", json()).is_string()) detail += " (" + j["message"].get<std::string>().substr(0, 200) + ")";
  }
  if (res.status == 401 || res.status == 403) {
    return bot::make_error(bot::Errc::unauthorized,
                           where + "rejected:" + detail + "; check mattermost.token and the bot's permissions");
  }
  if (res.status == 408) return bot::make_error(bot::Errc::timeout, where + detail);
  if (res.status >= 500) return bot::make_error(bot::Errc::unavailable, where + detail);
  return bot::make_error(bot::Errc::invalid_argument, where + detail);
}

MattermostRest::MattermostRest(common::HttpsClient& http, std::string server_url, std::string token,
                               std::chrono::milliseconds timeout)
    : http_(http), base_(std::move(server_url)), token_(std::move(token)), timeout_(timeout) {
  while (!base_.empty() && base_.back() == '/') base_.pop_back();
  base_ += "/api/v4";
}

void MattermostRest::send(std::string method, const std::string& path, std::string body, std::string what,
                          JsonCallback done) {
  common::HttpClientRequest req;
  req.method = std::move(method);
  req.url = base_ + path;
  req.timeout = timeout_;
  if (!body.empty()) req.headers.emplace_back("Content-Type", "application/json");
  req.headers.emplace_back("Authorization", "Bearer " + token_);
  req.body = std::move(body);
  ++calls_;
  http_.request(std::move(req), [what = std::move(what), done = std::move(done)](bot::Result<common::HttpClientResponse> res) {
    if (!res) {
      bot::Error e = res.error();
      e.message = "mattermost " + what + ": " + e.message;
      done(std::move(e));
      return;
    }
    done(interpret_response(what, *res, epoch_now()));
  });
}

namespace {
MattermostRest::JsonCallback id_of(MattermostRest::IdCallback done, std::string fallback = "") {
  return [done = std::move(done), fallback = std::move(fallback)](bot::Result<json> r) {
    if (!r) return done(r.error());
    done(r->is_object() && r->value("id", json()).is_string() ? (*r)["id"].get<std::string>() : fallback);
  };
}
}  // namespace

void MattermostRest::users_me(JsonCallback done) { send("GET", "/users/me", "", "users/me", std::move(done)); }

void MattermostRest::create_post(const std::string& channel, const std::string& root_id, json post, IdCallback done) {
  post["channel_id"] = channel;
  if (!root_id.empty()) post["root_id"] = root_id;
  send("POST", "/posts", dump(post), "posts", id_of(std::move(done)));
}

void MattermostRest::patch_post(const std::string& post_id, json post, IdCallback done) {
  send("PUT", "/posts/" + post_id + "/patch", dump(post), "posts/patch", id_of(std::move(done), post_id));
}

void MattermostRest::ephemeral_post(const std::string& user, const std::string& channel, const std::string& root_id,
                                    json post, IdCallback done) {
  post["channel_id"] = channel;
  if (!root_id.empty()) post["root_id"] = root_id;
  json body{{"user_id", user}, {"post", std::move(post)}};
  send("POST", "/posts/ephemeral", dump(body), "posts/ephemeral", id_of(std::move(done)));
}

void MattermostRest::my_channels(std::function<void(bot::Result<std::vector<ChannelRef>>)> done) {
  send("GET", "/users/me/teams", "", "users/me/teams", [this, done = std::move(done)](bot::Result<json> teams) {
    if (!teams) return done(teams.error());
    struct State {
      std::vector<std::string> teams;
      std::size_t next = 0;
      std::vector<ChannelRef> channels;
      std::function<void(bot::Result<std::vector<ChannelRef>>)> done;
    };
    auto st = std::make_shared<State>();
    st->done = done;
    if (teams->is_array()) {
      for (const auto& t : *teams) {
        if (t.is_object() && t.value("id", json()).is_string()) st->teams.push_back(t["id"].get<std::string>());
      }
    }
    auto step = std::make_shared<std::function<void()>>();
    *step = [this, st, step] {
      if (st->next >= st->teams.size()) {
        auto d = std::move(st->done);
        auto channels = std::move(st->channels);
        *step = nullptr;  // break the cycle
        return d(std::move(channels));
      }
      const std::string team = st->teams[st->next++];
      send("GET", "/users/me/teams/" + team + "/channels", "", "users/me/teams/channels",
           [st, step](bot::Result<json> r) {
             if (!r) {
               auto d = std::move(st->done);
               *step = nullptr;
               return d(r.error());
             }
             if (r->is_array()) {
               for (const auto& c : *r) {
                 if (!c.is_object() || !c.value("id", json()).is_string()) continue;
                 st->channels.push_back({c["id"].get<std::string>(), c.value("type", json()).is_string() ? c["type"].get<std::string>() : ""});
               }
             }
             (*step)();
           });
    };
    (*step)();
  });
}

void MattermostRest::send_raw(const std::string& path, std::string what,
                              std::function<void(bot::Result<common::HttpClientResponse>)> done) {
  common::HttpClientRequest req;
  req.method = "GET";
  req.url = base_ + path;
  req.timeout = timeout_;
  req.headers.emplace_back("Authorization", "Bearer " + token_);
  ++calls_;
  http_.request(std::move(req), [what = std::move(what), done = std::move(done)](bot::Result<common::HttpClientResponse> res) {
    if (!res) {
      bot::Error e = res.error();
      e.message = "mattermost " + what + ": " + e.message;
      return done(std::move(e));
    }
    done(std::move(*res));
  });
}

void MattermostRest::user(const std::string& user_id, JsonCallback done) {
  send("GET", "/users/" + user_id, "", "users/{id}", std::move(done));
}

void MattermostRest::my_teams(JsonCallback done) { send("GET", "/users/me/teams", "", "users/me/teams", std::move(done)); }

void MattermostRest::is_team_member(const std::string& team_id, const std::string& user_id,
                                    std::function<void(bot::Result<bool>)> done) {
  send_raw("/teams/" + team_id + "/members/" + user_id, "teams/members/{id}",
           [done = std::move(done)](bot::Result<common::HttpClientResponse> res) {
             if (!res) return done(res.error());
             if (res->status == 404) return done(false);
             auto j = interpret_response("teams/members/{id}", *res, epoch_now());
             if (!j) return done(j.error());
             // A member who left keeps a record with delete_at set.
             done(j->is_object() && j->value("delete_at", json(0)).is_number() && (*j)["delete_at"].get<std::int64_t>() == 0);
           });
}

void MattermostRest::user_groups(const std::string& user_id,
                                 std::function<void(bot::Result<std::optional<json>>)> done) {
  send_raw("/users/" + user_id + "/groups", "users/{id}/groups",
           [done = std::move(done)](bot::Result<common::HttpClientResponse> res) {
             if (!res) return done(res.error());
             // 404: older than 5.24; 501 or 403: no licence for groups, or the bot lacks
             // manage_system. Either way this server has no groups to offer the bot.
             if (res->status == 403 || res->status == 404 || res->status == 501) return done(std::optional<json>{});
             auto j = interpret_response("users/{id}/groups", *res, epoch_now());
             if (!j) return done(j.error());
             done(std::optional<json>(std::move(*j)));
           });
}

void MattermostRest::respond(const std::string& response_url, const json& body, std::function<void(bot::Status)> done) {
  common::HttpClientRequest req;
  req.method = "POST";
  req.url = response_url;
  req.timeout = timeout_;
  req.headers.emplace_back("Content-Type", "application/json");
  req.body = dump(body);
  ++calls_;
  http_.request(std::move(req), [done = std::move(done)](bot::Result<common::HttpClientResponse> res) {
    if (!res) {
      bot::Error e = res.error();
      e.message = "mattermost response_url: " + e.message;
      return done(std::move(e));
    }
    if (res->status >= 200 && res->status < 300) return done(bot::ok());
    common::HttpClientResponse r = *res;
    if (r.body.empty() || r.body.front() != '{') r.body = "{}";  // the hook answers plain text
    auto j = interpret_response("response_url", r, epoch_now());
    if (!j) return done(j.error());
    done(bot::make_error(bot::Errc::unavailable, "mattermost response_url: HTTP " + std::to_string(res->status)));
  });
}

void MattermostRest::channel_posts_page(const std::string& channel, int page, int per_page,
                                        std::function<void(bot::Result<std::vector<Post>>)> done) {
  send("GET", "/channels/" + channel + "/posts?page=" + std::to_string(page) + "&per_page=" + std::to_string(per_page),
       "", "channels/posts", [done = std::move(done)](bot::Result<json> r) {
         if (!r) return done(r.error());
         done(parse_post_list(*r));
       });
}

void MattermostRest::thread_posts(const std::string& post_id, std::function<void(bot::Result<std::vector<Post>>)> done) {
  send("GET", "/posts/" + post_id + "/thread", "", "posts/thread", [done = std::move(done)](bot::Result<json> r) {
    if (!r) return done(r.error());
    done(parse_post_list(*r));
  });
}

}  // namespace runbot::mattermost
