// Role bindings by e-mail address and by user group, end to end on Slack: the real bot::Bot with
// policy enabled behind a SlackAdapter over FakeSlack, which answers users.info and
// usergroups.list as Slack documents them.
#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "adapters/common/asio_clock.h"
#include "adapters/slack/slack_adapter.h"
#include "bot/app/config.h"
#include "bot/bot.h"
#include "tests/adapters/common/bot_harness.h"
#include "tests/adapters/common/run_until.h"
#include "tests/support/fake_slack.h"
#include "tests/support/recording_job_queue.h"

namespace runbot::slack {
namespace {

using namespace std::chrono_literals;
using common::testing::run_until;

class SlackIdentity : public ::testing::Test {
 protected:
  SlackIdentity() {
    fake.start();
    fake.add_user("U0DEV", "dev@acme.dev", "dana");
    fake.add_user("U0OTHER", "other@acme.dev", "olaf");
    fake.add_user("U0SRE", "sre1@acme.dev", "sam");
    fake.add_user("U0PLAT", "plat@acme.dev", "pat");
    fake.add_usergroup("S0SRE", "sre", {"U0SRE", "U0OTHER2"});
    fake.add_usergroup("S0PLAT", "platform", {"U0PLAT"});
  }
  ~SlackIdentity() override {
    harness.stop();
    if (adapter) adapter->stop();
  }

  // The real bot with `policy_yaml` added to the demo configuration; the adapter's settings come
  // from that configuration (as in runtime.cpp), pointed at the fake.
  void connect(const std::string& policy_yaml, std::chrono::milliseconds deadline = 2000ms) {
    ASSERT_TRUE(harness.build(policy_yaml + "slack: {app_token: xapp-1-test, bot_token: xoxb-test}\n"));
    SlackSettings s = *harness.config.slack;
    s.api_base_url = fake.api_base_url();
    s.ca_file = ca.ca_file;
    s.identity_deadline = deadline;
    auto created = SlackAdapter::create(io, s);
    ASSERT_TRUE(created) << created.error().message;
    adapter = std::move(*created);
    ASSERT_TRUE(harness.start(*adapter));
  }

  // What the user saw for a slash command: the ack's payload when it carried one, else the
  // text posted to the command's response_url.
  struct Answer {
    bool in_ack = false;
    std::string text;
  };
  Answer slash(const std::string& text, const std::string& user) {
    const std::size_t responses = fake.responses.size();
    const std::string id = fake.send_slash(-1, text, user);
    EXPECT_TRUE(run_until(io, [&] { return fake.ack_for(id) != nullptr; })) << text;
    const auto* ack = fake.ack_for(id);
    if (ack && ack->has_payload) return {true, ack->payload.value("text", "")};
    EXPECT_TRUE(run_until(io, [&] { return fake.responses.size() > responses; }))
        << "no answer to " << text;
    return {false,
            fake.responses.size() > responses ? fake.responses.back().body.value("text", "") : ""};
  }

  std::size_t calls(const std::string& method) const { return fake.calls_to(method).size(); }

  testing::TestCa ca = testing::TestCa::make();
  boost::asio::io_context io;
  testing::FakeSlack fake{io, ca};
  testing::BotHarness harness{io};
  testing::RecordingJobQueue& jobs = harness.jobs;
  std::unique_ptr<SlackAdapter> adapter;
};

const char* kEmailPolicy = R"(
policy:
  bindings:
    - {role: admin, platform: slack, users: [U0BOSS]}
    - {role: developer, emails: [dev@acme.dev]}
)";

TEST_F(SlackIdentity, AUserBoundByEmailMayCreateAnEnvironmentWhileAnotherInTheChannelIsDenied) {
  connect(kEmailPolicy);

  // Not cached yet: acked at once without a payload, answered through response_url.
  const std::string first = fake.send_slash(-1, "up front-end pr-1", "U0DEV");
  ASSERT_TRUE(run_until(io, [&] { return fake.ack_for(first) != nullptr; }));
  EXPECT_FALSE(fake.ack_for(first)->has_payload) << "an uncached user's command is acked empty";
  EXPECT_LT(fake.ack_for(first)->latency, 1s);
  ASSERT_TRUE(run_until(io, [&] { return !fake.responses.empty(); }));
  EXPECT_NE(fake.responses.back().body.value("text", "").find("Creating front-end-pr-1"),
            std::string::npos)
      << fake.responses.back().body.dump();
  EXPECT_EQ(fake.responses.back().body.value("response_type", ""), "ephemeral");
  ASSERT_EQ(jobs.jobs.size(), 1u);
  EXPECT_EQ(jobs.jobs[0].requested_by.str(), "U0DEV");
  ASSERT_EQ(calls("users.info"), 1u);
  EXPECT_EQ(fake.calls_to("users.info")[0].body.value("user", ""), "U0DEV");
  EXPECT_EQ(calls("usergroups.list"), 0u) << "no binding names a group";

  // Same channel, another user: the e-mail does not match, so the default role applies.
  const Answer denied = slash("up front-end pr-2", "U0OTHER");
  EXPECT_NE(denied.text.find("`up` needs the developer role; <@U0OTHER> has viewer"),
            std::string::npos)
      << denied.text;
  EXPECT_EQ(denied.text.find("looked up"), std::string::npos)
      << "the lookup worked: " << denied.text;
  EXPECT_EQ(jobs.jobs.size(), 1u);

  // Cached now: the answer is back in the ack, with no new lookup.
  const Answer again = slash("up docs pr-3", "U0DEV");
  EXPECT_TRUE(again.in_ack);
  EXPECT_NE(again.text.find("Creating docs-pr-3"), std::string::npos) << again.text;
  EXPECT_EQ(calls("users.info"), 2u) << "one lookup per user, the second command used the cache";
  EXPECT_EQ(jobs.jobs.size(), 2u);
  EXPECT_EQ(adapter->stats().deferred, 2u);
  EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
}

TEST_F(SlackIdentity, GroupBindingsMatchByHandleOrIdAndTheDirectoryIsFetchedOnce) {
  connect(R"(
policy:
  bindings:
    - {role: developer, platform: slack, groups: [sre]}
    - {role: developer, platform: slack, groups: [S0PLAT]}
)");
  EXPECT_NE(slash("up api pr-1", "U0SRE").text.find("Creating api-pr-1"), std::string::npos)
      << "by handle";
  EXPECT_NE(slash("up api pr-2", "U0PLAT").text.find("Creating api-pr-2"), std::string::npos)
      << "by id";
  EXPECT_NE(slash("up api pr-3", "U0DEV").text.find("needs the developer role"), std::string::npos)
      << "in no group";
  EXPECT_EQ(jobs.jobs.size(), 2u);
  EXPECT_EQ(calls("usergroups.list"), 1u) << "one directory for every user, for the TTL";
  EXPECT_EQ(calls("users.info"), 0u) << "no binding names an e-mail";
  ASSERT_FALSE(fake.calls_to("usergroups.list").empty());
  EXPECT_EQ(fake.calls_to("usergroups.list")[0].body.value("include_users", ""), "true");

  // A mention waits for the lookup too, and is answered ephemerally in the channel.
  fake.send_mention(-1, "up docs pr-4", "U0SRE");
  ASSERT_TRUE(run_until(io, [&] { return jobs.jobs.size() == 3; }));
  EXPECT_EQ(jobs.jobs[2].env.str(), "docs-pr-4");
  EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
}

TEST_F(SlackIdentity, AFailedLookupStillAnswersAndTheDenialSaysTheLookupFailed) {
  fake.fail_status_next("users.info", 500);
  connect(kEmailPolicy);
  const Answer denied = slash("up front-end pr-1", "U0DEV");
  EXPECT_NE(denied.text.find("needs the developer role"), std::string::npos) << denied.text;
  EXPECT_NE(denied.text.find("could not be looked up (slack users.info: HTTP 500)"),
            std::string::npos)
      << denied.text;
  EXPECT_TRUE(jobs.jobs.empty());
  // What needs no binding still works for the same user.
  const Answer help = slash("help", "U0DEV");
  EXPECT_FALSE(help.text.empty());
  EXPECT_EQ(help.text.find("needs the"), std::string::npos) << help.text;
}

TEST_F(SlackIdentity, AMissingScopeIsNamedInTheDenial) {
  connect(kEmailPolicy);
  fake.set_scope("users:read", false);
  const Answer denied = slash("up front-end pr-1", "U0DEV");
  EXPECT_NE(denied.text.find("missing_scope"), std::string::npos) << denied.text;
  EXPECT_NE(denied.text.find("needed=users:read"), std::string::npos) << denied.text;
  // With users:read but not users:read.email Slack leaves the address out; that is named too.
  fake.set_scope("users:read", true);
  fake.set_scope("users:read.email", false);
  const Answer other = slash("up front-end pr-2", "U0OTHER");
  EXPECT_NE(other.text.find("users:read.email"), std::string::npos) << other.text;
  EXPECT_TRUE(jobs.jobs.empty());
}

TEST_F(SlackIdentity, ASlowLookupIsCutOffAtTheDeadline) {
  fake.delay_next("users.info", 1500ms);
  connect(kEmailPolicy, 200ms);
  const Answer denied = slash("up front-end pr-1", "U0DEV");
  EXPECT_FALSE(denied.in_ack);
  EXPECT_NE(denied.text.find("no answer within 200 ms"), std::string::npos) << denied.text;
  EXPECT_TRUE(jobs.jobs.empty());
}

TEST_F(SlackIdentity, NoLookupsWhenNoBindingUsesEmailsOrGroups) {
  connect(R"(
policy:
  bindings:
    - {role: developer, platform: slack, users: [U0DEV]}
)");
  const Answer ok = slash("up front-end pr-1", "U0DEV");
  EXPECT_TRUE(ok.in_ack) << "answered in the ack, nothing to wait for";
  EXPECT_NE(ok.text.find("Creating front-end-pr-1"), std::string::npos) << ok.text;
  fake.send_mention(-1, "list", "U0OTHER");
  ASSERT_TRUE(run_until(io, [&] { return !fake.calls_to("chat.postEphemeral").empty(); }));
  EXPECT_EQ(calls("users.info"), 0u);
  EXPECT_EQ(calls("usergroups.list"), 0u);
  EXPECT_EQ(adapter->stats().identity_waits, 0u);
}

}  // namespace
}  // namespace runbot::slack
