// The real bot::Bot behind the SlackAdapter, over FakeSlack: a slash command is acked with the
// bot's answer and becomes a job; a button click goes through the same command path.
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "adapters/common/asio_clock.h"
#include "adapters/slack/slack_adapter.h"
#include "bot/app/config.h"
#include "bot/bot.h"
#include "tests/adapters/common/bot_harness.h"
#include "tests/adapters/common/run_until.h"
#include "tests/support/recording_job_queue.h"
#include "tests/support/fake_slack.h"

namespace runbot::slack {
namespace {

using namespace std::chrono_literals;
using common::testing::run_until;

using CountingJobQueue = testing::RecordingJobQueue;

// The real bot behind a SlackAdapter connected to FakeSlack, with `extra_yaml` added to the demo
// configuration.
class SlackBotFlow : public ::testing::Test {
 protected:
  SlackBotFlow() { fake.start(); }
  ~SlackBotFlow() override {
    harness.stop();
    if (adapter) adapter->stop();
  }

  void connect(const std::string& extra_yaml = "") {
    ASSERT_TRUE(harness.build(extra_yaml));
    SlackSettings s;
    s.app_token = "xapp-1-test";
    s.bot_token = "xoxb-test";
    s.api_base_url = fake.api_base_url();
    s.ca_file = ca.ca_file;
    auto created = SlackAdapter::create(io, s);
    ASSERT_TRUE(created) << created.error().message;
    adapter = std::move(*created);
    ASSERT_TRUE(harness.start(*adapter));
  }

  testing::TestCa ca = testing::TestCa::make();
  boost::asio::io_context io;
  testing::FakeSlack fake{io, ca};
  testing::BotHarness harness{io};
  CountingJobQueue& jobs = harness.jobs;
  std::unique_ptr<SlackAdapter> adapter;
};

TEST_F(SlackBotFlow, SlashUpIsAnsweredInTheAckAndBecomesAJob) {
  connect();

  const std::string id = fake.send_slash(-1, "up front-end pr-123");
  ASSERT_TRUE(run_until(io, [&] { return fake.ack_for(id) != nullptr; }));
  const auto* ack = fake.ack_for(id);
  ASSERT_TRUE(ack->has_payload);
  const std::string text = ack->payload.value("text", "");
  EXPECT_NE(text.find("Creating front-end-pr-123"), std::string::npos) << text;
  ASSERT_EQ(jobs.jobs.size(), 1u);
  EXPECT_EQ(jobs.jobs[0].verb, bot::JobVerb::up);
  EXPECT_EQ(jobs.jobs[0].env.str(), "front-end-pr-123");

  const std::string bad = fake.send_slash(-1, "up nope 1");
  ASSERT_TRUE(run_until(io, [&] { return fake.ack_for(bad) != nullptr; }));
  EXPECT_NE(fake.ack_for(bad)->payload.value("text", "").find("unknown app 'nope'"), std::string::npos);
  EXPECT_EQ(jobs.jobs.size(), 1u) << "a bad command publishes nothing";
  EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
}

}  // namespace
}  // namespace runbot::slack

namespace runbot::slack {
namespace {

// Policies through Slack: a viewer is denied, a second environment over quota is queued, an
// over-budget request is approved with the button an admin sees, and the audit log shows it all.
TEST_F(SlackBotFlow, DenialsQueueingApprovalButtonsAndAuditOverSlack) {
  connect(R"(
policy:
  bindings:
    - {role: admin, platform: slack, users: [UBOSS]}
    - {role: developer, platform: slack, users: [U0002]}
  quotas: {per_user: 1}
  approvals_channel: slack:CAPPROVE
  teams:
    web: {members: [U0002], monthly_budget: 4, channel: slack:CWEB}
)");

  auto slash = [&](const std::string& text, const std::string& user) {
    const std::string id = fake.send_slash(-1, text, user);
    EXPECT_TRUE(run_until(io, [&] { return fake.ack_for(id) != nullptr; })) << text;
    const auto* ack = fake.ack_for(id);
    return ack && ack->has_payload ? ack->payload.value("text", "") : std::string();
  };

  EXPECT_NE(slash("up api 1", "UGUEST").find("`up` needs the developer role; @UGUEST has viewer. Ask @UBOSS to grant it."),
            std::string::npos);
  EXPECT_NE(slash("up api 1", "U0002").find("Creating api-pr-1"), std::string::npos);
  EXPECT_NE(slash("up api 2", "U0002").find("api-pr-2 is queued at position 1 (q-1)"), std::string::npos);
  ASSERT_EQ(jobs.jobs.size(), 1u);

  // front-end belongs to team web, budget $4: 8 hours at $0.63/h would exceed it.
  EXPECT_NE(slash("up front-end 7", "UBOSS").find("front-end-pr-7 waits for an admin's approval (q-2)"),
            std::string::npos);
  ASSERT_TRUE(run_until(io, [&] {
    for (const auto& c : fake.calls_to("chat.postMessage")) {
      if (c.body.value("channel", "") == "CAPPROVE") return true;
    }
    return false;
  }));
  std::string prompt;
  for (const auto& c : fake.calls_to("chat.postMessage")) {
    if (c.body.value("channel", "") == "CAPPROVE") prompt = c.body.dump();
  }
  EXPECT_NE(prompt.find("\"action_id\":\"approve\""), std::string::npos) << prompt;
  EXPECT_NE(prompt.find("\"value\":\"q-2\""), std::string::npos) << prompt;
  ASSERT_EQ(jobs.jobs.size(), 1u) << "nothing is published before approval";

  fake.send_block_action(-1, "approve", "q-2", "U0002", "CAPPROVE");  // a developer's click is denied
  fake.send_block_action(-1, "approve", "q-2", "UBOSS", "CAPPROVE");
  ASSERT_TRUE(run_until(io, [&] { return jobs.jobs.size() == 2; }));
  EXPECT_EQ(jobs.jobs[1].env.str(), "front-end-pr-7");

  std::string audit = slash("events --audit", "UBOSS");
  EXPECT_NE(audit.find("@UGUEST  up  denied"), std::string::npos) << audit;
  EXPECT_NE(audit.find("@U0002  approve (button)  denied"), std::string::npos) << audit;
  EXPECT_NE(audit.find("@UBOSS  approve (button)  ok"), std::string::npos) << audit;
  EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
}

}  // namespace
}  // namespace runbot::slack
