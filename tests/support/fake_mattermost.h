#pragma once
// FakeMattermost: a loopback Mattermost for component tests (chat-protocols.md §2). HTTPS and WSS
// on 127.0.0.1, port 0, with a certificate from TestCa; or, with settings.tls = false, plain HTTP
// and WS on that port (a server reached inside a cluster as http://…:8065):
//
//   GET  /api/v4/websocket[?connection_id=&sequence_number=]  the socket. Authenticated by the
//        Authorization header (wrong token: 401) and/or an authentication_challenge (answered
//        {"status":"OK","seq_reply":N}). A resume whose sequence_number is still in the
//        connection's 128-event replay buffer replays from there with no hello; otherwise a new
//        connection_id, seq reset to 0 and a fresh hello.
//   GET  /api/v4/users/me, /users/me/teams, /users/me/teams/{team}/channels
//   POST /api/v4/posts (201; the post is also broadcast as a `posted` event, like the server;
//        `props` are stored as sent, plus from_bot "true" as the server adds for bot accounts, and
//        come back on every GET), PUT /api/v4/posts/{id}/patch (props replaced as sent),
//        POST /api/v4/posts/ephemeral
//   GET  /api/v4/channels/{id}/posts?since=<ms>   posts created since then; or
//        ?page=&per_page= (default 0 and 60, capped at 200): a page, replies included, newest
//        first. Both answer a post list {"order": [ids], "posts": {id: post}, ...}
//   GET  /api/v4/posts/{id}/thread     the post list of the whole thread `id` is in (root and
//                                      replies, newest first); 404 for an unknown post
//   GET  /api/v4/users/{id}            the user; `email` is "" when hide_emails (the server's
//                                      privacy setting sanitises it for the bot); 404 unknown
//   GET  /api/v4/teams/{team}/members/{user}   the team member, 404 when not a member
//   GET  /api/v4/users/{id}/groups     the user's groups, or groups_status (403/404/501 as servers
//                                      without licence, too old, or without manage_system answer)
//   POST /hooks/commands/{id}          a slash command's response_url (no Authorization)
//
// Every event written gets the connection's next seq and goes to its replay buffer; while no
// socket is open events are only buffered (so a resume replays them). forget_history() makes the
// next resume fail (a gap that cannot be replayed). fail_next()/rate_limit_next() inject errors
// and 429s (with Retry-After and X-Ratelimit-*) per "METHOD path-kind" key.
//
// Records everything runbot sends (REST calls, client frames) and checks it against §2: frames
// over 8 KB, Authorization missing on REST calls, posts without channel_id or over 16 383 chars,
// root_id naming no post, props that are not an object, per_page over 200, `since` mixed with
// page/per_page. Every violation is appended to `problems`.
//
// Ownership and executor: borrows an io_context; every method must be called on its thread.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/tls_test_ca.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace runbot::testing {

struct FakeMattermostSettings {
  std::string token = "mm-bot-token";
  std::string bot_user_id = "botuserid00000000000000000";
  std::string bot_name = "runbot";
  std::string team_id = "team1";
  // The channels the bot is a member of: id → type (O, P, D, G).
  std::map<std::string, std::string> channels{{"chan-deploys", "O"}, {"dm-alice", "D"}};
  std::size_t replay_buffer = 128;
  std::string team_name = "acme";  // the bot's one team: team_id / team_name
  bool hide_emails = false;
  int groups_status = 200;
  bool tls = true;  // false: plain HTTP/WS, server_url() is http://127.0.0.1:<port>
};

class FakeMattermost {
 public:
  struct Call {
    std::string method;  // "GET", "POST", "PUT"
    std::string path;    // "/api/v4/posts" (no query)
    std::string query;
    nlohmann::json body; // parsed JSON body, or null
    int status = 0;      // what the fake answered
  };

  FakeMattermost(boost::asio::io_context& io, const TestCa& ca, FakeMattermostSettings settings = {});
  ~FakeMattermost();
  FakeMattermost(const FakeMattermost&) = delete;
  FakeMattermost& operator=(const FakeMattermost&) = delete;

  std::uint16_t start();  // binds 127.0.0.1:0; returns the port
  void stop();
  std::string server_url() const;  // https://127.0.0.1:<port> (http:// without TLS)

  // ---- socket ----
  bool socket_open() const;      // a socket is open and authenticated
  int sockets_accepted() const;
  int hellos_sent() const;
  int resumes_accepted() const;  // resumes served from the replay buffer
  std::string connection_id() const;
  std::int64_t last_seq() const;  // seq of the newest event of the current connection
  // A user's post in `channel` (type from settings.channels, default O), stored for REST and sent
  // as a `posted` event. Returns the post id.
  std::string post_as(const std::string& user, const std::string& channel, const std::string& message,
                      const std::string& root_id = "", const std::string& user_name = "alice");
  // Stores a post for REST only, as if its event had been lost (or as history that was there
  // before the test), with these props when given.
  std::string post_silently(const std::string& user, const std::string& channel, const std::string& message,
                            const std::string& root_id = "", nlohmann::json props = nullptr);
  // An event with the next seq and this data (e.g. a `posted` with a broken post string).
  void send_event(const std::string& event, nlohmann::json data);
  void send_raw(std::string text);  // no seq, written as is
  void drop();                      // abrupt: TCP closed without a close frame
  // The current socket goes silent but stays open: no events, no pongs, nothing read (a hung
  // server or a dead path). Events from now on are only buffered, so a resume replays them.
  void go_silent();
  // The next event gets its seq and goes to the replay buffer but is not written to the socket
  // (lost in transit, unannounced): the client sees a seq gap at the event after it.
  void lose_next_event();
  void forget_history();            // the next resume cannot be replayed

  // ---- REST failure injection; key e.g. "POST /posts", "GET /users/me", "PUT /patch" ----
  void fail_next(const std::string& key, int status, int count = 1);
  void rate_limit_next(const std::string& key, int retry_after_seconds, int count = 1);
  // Turns on the server's rate limiter (RateLimitSettings, chat-protocols.md §2.6): a token
  // bucket of `burst` refilled at `per_second` over every REST call; an empty bucket answers 429
  // "limit exceeded" with Retry-After (whole seconds) and X-Ratelimit-*. Counted in rate_limited.
  void set_rate_limit(double per_second, int burst);

  // ---- the server's people ----
  void add_user(const std::string& id, const std::string& username, const std::string& email);
  void add_team_member(const std::string& user);  // of the bot's team
  void add_group(const std::string& user, const std::string& group_id, const std::string& group_name);
  void set_groups_status(int status);  // 200, or 403/404/501 for a server without groups
  void set_hide_emails(bool hide);     // Privacy: Show Email Address off (for the bot)
  std::string response_url(const std::string& id) const;  // <server_url>/hooks/commands/<id>

  // ---- records ----
  std::vector<nlohmann::json> responses;  // bodies POSTed to response_urls, in order
  std::vector<Call> calls;
  std::vector<nlohmann::json> client_frames;
  std::vector<std::string> problems;
  int rate_limited = 0;  // REST calls refused by set_rate_limit()'s limiter
  std::vector<Call> calls_to(const std::string& method, const std::string& path_prefix) const;
  // Posts created through REST by the bot (POST /posts), in order.
  std::vector<nlohmann::json> bot_posts() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace runbot::testing
