// Role bindings by e-mail address and by group, end to end on Mattermost: the real bot::Bot with
// policy enabled behind a MattermostAdapter over FakeMattermost, which answers GET /users/{id},
// team membership and /users/{id}/groups as the server does.
#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "adapters/common/asio_clock.h"
#include "adapters/mattermost/mattermost_adapter.h"
#include "bot/app/config.h"
#include "bot/bot.h"
#include "tests/adapters/common/bot_harness.h"
#include "tests/adapters/common/run_until.h"
#include "tests/support/fake_mattermost.h"
#include "tests/support/recording_job_queue.h"

namespace runbot::mattermost {
namespace {

using namespace std::chrono_literals;
using common::testing::run_until;
using nlohmann::json;

constexpr const char* kDev = "devuserid00000000000000000";
constexpr const char* kOther = "otheruserid000000000000000";
constexpr const char* kSre = "sreuserid00000000000000000";
constexpr const char* kChannel = "chan-deploys";

class MattermostIdentity : public ::testing::Test {
 protected:
  MattermostIdentity() {
    fake.start();
    fake.add_user(kDev, "dana", "dev@acme.dev");
    fake.add_user(kOther, "olaf", "other@acme.dev");
    fake.add_user(kSre, "sam", "sre1@acme.dev");
  }
  ~MattermostIdentity() override {
    harness.stop();
    if (adapter) adapter->stop();
  }

  void connect(const std::string& policy_yaml) {
    ASSERT_TRUE(harness.build(policy_yaml +
                              "mattermost: {server_url: https://chat.example.com, token: mm-bot-token, "
                              "slash_token: slash-token-123}\n"));
    MattermostSettings s = *harness.config.mattermost;
    s.server_url = fake.server_url();
    s.ca_file = ca.ca_file;
    auto created = MattermostAdapter::create(io, s);
    ASSERT_TRUE(created) << created.error().message;
    adapter = std::move(*created);
    ASSERT_TRUE(harness.start(*adapter));
    ASSERT_TRUE(run_until(io, [&] { return fake.socket_open(); }));
  }

  // The bot's answer in the thread of a mention by `user`.
  std::string mention(const std::string& user, const std::string& text) {
    const std::string id = fake.post_as(user, kChannel, "@runbot " + text);
    std::string answer;
    EXPECT_TRUE(run_until(io,
                          [&] {
                            for (const auto& p : fake.bot_posts()) {
                              if (p.value("root_id", "") == id) answer = p.value("message", "");
                            }
                            return !answer.empty();
                          }))
        << "no answer to " << text;
    return answer;
  }

  common::HttpRequest slash_request(const std::string& user, const std::string& text,
                                    const std::string& hook) {
    common::HttpRequest r;
    r.method = "POST";
    r.path = r.target = "/hooks/mattermost/command";
    r.headers["content-type"] = "application/x-www-form-urlencoded";
    std::string url = fake.response_url(hook);
    std::string encoded;
    for (char c : url)
      encoded += c == ':' ? std::string("%3A") : c == '/' ? std::string("%2F") : std::string(1, c);
    r.body =
        "channel_id=" + std::string(kChannel) + "&command=%2Fephemeral&team_id=team1&text=" + text +
        "&token=slash-token-123&user_id=" + user + "&user_name=someone&response_url=" + encoded;
    r.remote = "127.0.0.1:5555";
    return r;
  }

  // Calls to exactly `path` (calls_to matches a prefix).
  std::size_t calls(const std::string& method, const std::string& path) const {
    std::size_t n = 0;
    for (const auto& c : fake.calls_to(method, path)) n += c.path == path;
    return n;
  }
  std::size_t calls_under(const std::string& method, const std::string& prefix) const {
    return fake.calls_to(method, prefix).size();
  }

  testing::TestCa ca = testing::TestCa::make();
  boost::asio::io_context io;
  testing::FakeMattermost fake{io, ca};
  testing::BotHarness harness{io};
  testing::RecordingJobQueue& jobs = harness.jobs;
  std::unique_ptr<MattermostAdapter> adapter;
};

const char* kEmailPolicy = R"(
policy:
  bindings:
    - {role: admin, platform: mattermost, users: [bossuserid]}
    - {role: developer, emails: [dev@acme.dev]}
)";

TEST_F(MattermostIdentity,
       AUserBoundByEmailMayCreateAnEnvironmentWhileAnotherInTheChannelIsDenied) {
  connect(kEmailPolicy);
  EXPECT_NE(mention(kDev, "up front-end pr-1").find("Creating front-end-pr-1"), std::string::npos);
  ASSERT_EQ(jobs.jobs.size(), 1u);
  EXPECT_EQ(jobs.jobs[0].requested_by.str(), kDev);
  const std::string denied = mention(kOther, "up front-end pr-2");
  EXPECT_NE(denied.find("needs the developer role"), std::string::npos) << denied;
  EXPECT_EQ(denied.find("looked up"), std::string::npos) << denied;
  EXPECT_EQ(jobs.jobs.size(), 1u);
  // The second command of the same user is served from the cache.
  EXPECT_NE(mention(kDev, "up docs pr-3").find("Creating docs-pr-3"), std::string::npos);
  EXPECT_EQ(calls("GET", std::string("/api/v4/users/") + kDev), 1u);
  EXPECT_EQ(calls_under("GET", "/api/v4/teams/"), 0u) << "no binding names a group";
  EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
}

TEST_F(MattermostIdentity, TeamAndGroupBindingsMatchByNameAndGroupsAreOptional) {
  fake.add_team_member(kDev);
  fake.add_group(kSre, "grp-sre-id", "sre");
  connect(R"(
policy:
  bindings:
    - {role: developer, platform: mattermost, groups: [acme]}
    - {role: developer, platform: mattermost, groups: [sre]}
)");
  EXPECT_NE(mention(kDev, "up api pr-1").find("Creating api-pr-1"), std::string::npos)
      << "by team name";
  EXPECT_NE(mention(kSre, "up api pr-2").find("Creating api-pr-2"), std::string::npos)
      << "by group name";
  const std::string denied = mention(kOther, "up api pr-3");
  EXPECT_NE(denied.find("needs the developer role"), std::string::npos) << denied;
  EXPECT_EQ(jobs.jobs.size(), 2u);
  EXPECT_EQ(calls("GET", "/api/v4/users/me/teams"), 1u)
      << "the bot's teams are fetched once for every user";
  EXPECT_EQ(calls("GET", std::string("/api/v4/users/") + kDev), 0u) << "no binding names an e-mail";
  EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
}

TEST_F(MattermostIdentity, AServerWithoutGroupsIsNoErrorAndTeamsStillCount) {
  fake.add_team_member(kDev);
  fake.set_groups_status(501);
  connect(
      "policy:\n  bindings:\n    - {role: developer, platform: mattermost, groups: [acme, sre]}\n");
  EXPECT_NE(mention(kDev, "up api pr-1").find("Creating api-pr-1"), std::string::npos);
  const std::string denied = mention(kSre, "up api pr-2");
  EXPECT_NE(denied.find("needs the developer role"), std::string::npos) << denied;
  EXPECT_EQ(denied.find("looked up"), std::string::npos)
      << "501 means no groups, not a failure: " << denied;
  EXPECT_EQ(calls("GET", "/api/v4/users/" + std::string(kSre) + "/groups"), 0u)
      << "after the server said no, groups are not asked for again within the TTL";
}

TEST_F(MattermostIdentity, HiddenEmailsAndFailedLookupsAreNamedInTheDenial) {
  fake.set_hide_emails(true);
  connect(kEmailPolicy);
  const std::string hidden = mention(kDev, "up front-end pr-1");
  EXPECT_NE(hidden.find("hides this user's e-mail address"), std::string::npos) << hidden;
  fake.set_hide_emails(false);
  fake.fail_next("GET /users/id", 500);
  const std::string failed = mention(kOther, "up front-end pr-2");
  EXPECT_NE(failed.find("could not be looked up (mattermost users/{id}:"), std::string::npos)
      << failed;
  EXPECT_NE(failed.find("HTTP 500"), std::string::npos) << failed;
  EXPECT_TRUE(jobs.jobs.empty());
}

TEST_F(MattermostIdentity, AnUncachedSlashCommandIsAnsweredEmptyAtOnceThenThroughResponseUrl) {
  connect(kEmailPolicy);
  auto first = adapter->handle_slash(slash_request(kDev, "up+front-end+pr-1", "hook1"));
  EXPECT_EQ(first.status, 200);
  const json body = json::parse(first.body);
  EXPECT_EQ(body.value("text", "x"), "") << "an empty ephemeral response posts nothing";
  EXPECT_TRUE(jobs.jobs.empty()) << "nothing happens before the user is known";
  ASSERT_TRUE(run_until(io, [&] { return !fake.responses.empty(); }));
  EXPECT_NE(fake.responses[0].value("text", "").find("Creating front-end-pr-1"), std::string::npos)
      << fake.responses[0].dump();
  EXPECT_EQ(fake.responses[0].value("response_type", ""), "ephemeral");
  EXPECT_EQ(jobs.jobs.size(), 1u);
  // Cached now: the answer is the HTTP response itself.
  auto second = adapter->handle_slash(slash_request(kDev, "up+docs+pr-2", "hook2"));
  EXPECT_NE(json::parse(second.body).value("text", "").find("Creating docs-pr-2"),
            std::string::npos)
      << second.body;
  EXPECT_EQ(fake.responses.size(), 1u);
  EXPECT_EQ(adapter->stats().deferred, 1u);
  EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
}

TEST_F(MattermostIdentity, NoLookupsWhenNoBindingUsesEmailsOrGroups) {
  connect("policy:\n  bindings:\n    - {role: developer, platform: mattermost, users: [" +
          std::string(kDev) + "]}\n");
  EXPECT_NE(mention(kDev, "up front-end pr-1").find("Creating front-end-pr-1"), std::string::npos);
  auto slash = adapter->handle_slash(slash_request(kOther, "help", "hook1"));
  EXPECT_FALSE(json::parse(slash.body).value("text", "").empty())
      << "answered in the HTTP response";
  EXPECT_EQ(calls("GET", std::string("/api/v4/users/") + kDev), 0u);
  EXPECT_EQ(calls("GET", std::string("/api/v4/users/") + kOther), 0u);
  EXPECT_EQ(calls_under("GET", "/api/v4/teams/"), 0u);
  EXPECT_EQ(adapter->stats().deferred, 0u);
}

}  // namespace
}  // namespace runbot::mattermost
