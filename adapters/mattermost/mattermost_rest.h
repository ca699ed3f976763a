#pragma once
// MattermostRest: the REST calls runbot makes (chat-protocols.md §2.2, §2.6) over
// common::HttpsClient, with `Authorization: Bearer <token>`. Errors come back as bot::Error
// values classified by interpret_response() so the outbox knows whether retrying can help:
//
//   HTTP 429                      → rate_limited, retry_after = Retry-After, else
//                                   X-Ratelimit-Reset (< 1e9: seconds; else an epoch), else 1 s
//   HTTP 5xx, network errors      → unavailable (408 → timeout)
//   HTTP 401, 403                 → unauthorized (not retried): the message says to check the token
//   other 4xx                     → invalid_argument (not retried)
//
// Messages name the call and Mattermost's error id; they never contain the token or bodies.
//
// Ownership and executor: borrows the HttpsClient (which must outlive it); callbacks run on the
// client's io_context thread, never inside the call.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "adapters/common/https_client.h"
#include "adapters/mattermost/mattermost_protocol.h"
#include "bot/result.h"

namespace runbot::mattermost {

struct ChannelRef {
  std::string id;
  std::string type;  // O, P, D, G
};

class MattermostRest {
 public:
  using JsonCallback = std::function<void(bot::Result<nlohmann::json>)>;
  using IdCallback = std::function<void(bot::Result<std::string>)>;

  // `server_url` without /api/v4.
  MattermostRest(common::HttpsClient& http, std::string server_url, std::string token,
                 std::chrono::milliseconds timeout);

  // GET /users/me: id, username.
  void users_me(JsonCallback done);
  // POST /posts with channel_id, root_id (when not empty) and the rendered post; gives the id.
  void create_post(const std::string& channel, const std::string& root_id, nlohmann::json post, IdCallback done);
  // PUT /posts/{id}/patch with message and props; gives the id.
  void patch_post(const std::string& post_id, nlohmann::json post, IdCallback done);
  // POST /posts/ephemeral to `user`; gives the (ephemeral) id.
  void ephemeral_post(const std::string& user, const std::string& channel, const std::string& root_id,
                      nlohmann::json post, IdCallback done);
  // The channels the bot is a member of, over all its teams (GET /users/me/teams, then
  // /users/me/teams/{team}/channels for each).
  void my_channels(std::function<void(bot::Result<std::vector<ChannelRef>>)> done);
  // ---- who is asking (identity lookups; README "Who is asking") ----
  // GET /users/{id}: the user object; `email` is empty when the server's privacy settings hide it
  // from the bot.
  void user(const std::string& user_id, JsonCallback done);
  // GET /users/me/teams: the bot's teams (id, name, display_name).
  void my_teams(JsonCallback done);
  // GET /teams/{team}/members/{user} (needs only view_team, which the bot has in its own teams):
  // true when the user is an active member; 404 (no such member) is false, not an error.
  void is_team_member(const std::string& team_id, const std::string& user_id, std::function<void(bot::Result<bool>)> done);
  // GET /users/{id}/groups (server 5.24+, licensed, and the bot needs manage_system for another
  // user's groups): the groups, or nullopt when this server does not let the bot see them
  // (403, 404, 501), which is not an error.
  void user_groups(const std::string& user_id, std::function<void(bot::Result<std::optional<nlohmann::json>>)> done);
  // POST a slash command's response_url (<SiteURL>/hooks/commands/<id>; no token: the URL is
  // the credential) with a command response body.
  void respond(const std::string& response_url, const nlohmann::json& body, std::function<void(bot::Status)> done);

  // GET /channels/{id}/posts?page=<page>&per_page=<per_page> (per_page at most 200): one page of
  // the channel's posts, replies included, in the answer's `order` (newest first; page 0 is the
  // newest).
  void channel_posts_page(const std::string& channel, int page, int per_page,
                          std::function<void(bot::Result<std::vector<Post>>)> done);
  // GET /posts/{id}/thread (path unverified in chat-protocols.md §2.2): the root and every reply
  // of the thread `post_id` is in, in the answer's `order`.
  void thread_posts(const std::string& post_id, std::function<void(bot::Result<std::vector<Post>>)> done);

  std::uint64_t calls() const { return calls_; }

 private:
  void send(std::string method, const std::string& path, std::string body, std::string what, JsonCallback done);
  // Like send(), but hands over the raw response (for calls where some statuses are answers).
  void send_raw(const std::string& path, std::string what,
                std::function<void(bot::Result<common::HttpClientResponse>)> done);

  common::HttpsClient& http_;
  std::string base_;
  std::string token_;
  std::chrono::milliseconds timeout_;
  std::uint64_t calls_ = 0;
};

// Classifies one HTTP exchange. `now_epoch_s` turns an absolute X-Ratelimit-Reset into a delay.
bot::Result<nlohmann::json> interpret_response(const std::string& what, const common::HttpClientResponse& res,
                                               std::int64_t now_epoch_s);

}  // namespace runbot::mattermost
