// Large Socket Mode frames, against the real bot::Bot behind a SlackAdapter on FakeSlack: Slack's
// payloads for big messages, views and types runbot does not know can be a MiB or more. They must
// not end the socket, and a frame over the limit must cost only itself: every slash command on
// that socket is still acked with its answer on that same socket.
#include <algorithm>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

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
using nlohmann::json;

constexpr std::size_t kMiB = std::size_t{1} << 20;

class SlackFrames : public ::testing::Test {
 protected:
  SlackFrames() { fake.start(); }
  ~SlackFrames() override {
    harness.stop();
    if (adapter) adapter->stop();
  }

  // The real bot behind a SlackAdapter with `s`, connected (both sockets said hello).
  void connect(SlackSettings s) {
    ASSERT_TRUE(harness.build());
    auto created = SlackAdapter::create(io, s);
    ASSERT_TRUE(created) << created.error().message;
    adapter = std::move(*created);
    ASSERT_TRUE(harness.start(*adapter));
    ASSERT_TRUE(run_until(io, [&] { return fake.open_sockets().size() == 2 && adapter->stats().open_sockets == 2; }));
  }

  // The production defaults, with only the endpoint, trust anchor and test-speed timings changed.
  SlackSettings settings() const {
    SlackSettings s;
    s.app_token = "xapp-1-test";
    s.bot_token = "xoxb-test";
    s.api_base_url = fake.api_base_url();
    s.ca_file = ca.ca_file;
    s.backoff_initial = 20ms;
    s.backoff_max = 200ms;
    return s;
  }

  // An envelope of a type runbot does not know, carrying `bytes` of payload.
  std::string big_unknown(int socket, std::size_t bytes) {
    return fake.send_envelope(socket, "future_type", json{{"blob", std::string(bytes, 'u')}});
  }

  runbot::testing::TestCa ca = runbot::testing::TestCa::make();
  boost::asio::io_context io;
  runbot::testing::FakeSlack fake{io, ca};
  runbot::testing::BotHarness harness{io};
  runbot::testing::RecordingJobQueue& jobs = harness.jobs;
  std::unique_ptr<SlackAdapter> adapter;
};

TEST_F(SlackFrames, SlashCommandsBetweenMiBFramesAndAnOverLimitFrameAreAllAnsweredOnTheSameSocket) {
  const SlackSettings s = settings();
  connect(s);
  const auto sockets = fake.open_sockets();
  const int a = sockets[0];
  const int accepted = fake.sockets_accepted();
  const int opened = fake.connections_opened();

  constexpr int kCommands = 30;
  std::vector<std::string> slash_ids;
  std::vector<std::string> big_ids;
  std::map<std::string, std::string> env_of;  // slash envelope → the environment it asks about
  for (int i = 0; i < kCommands; ++i) {
    const std::string env = "front-end-pr-" + std::to_string(i);
    const std::string id = fake.send_slash(a, "describe " + env);
    slash_ids.push_back(id);
    env_of[id] = env;
    if (i % 3 == 0) big_ids.push_back(big_unknown(a, kMiB));  // 1 MiB: Slack sends frames this size
    if (i % 5 == 0) {
      // A big Events API event runbot ignores (a long message edited elsewhere).
      json event{{"type", "event_callback"}, {"event_id", "EvBig" + std::to_string(i)},
                 {"event", {{"type", "message"}, {"subtype", "message_changed"}, {"channel", "C0003"},
                            {"message", {{"text", std::string(kMiB, 'm')}}}}}};
      big_ids.push_back(fake.send_envelope(a, "events_api", event));
    }
    if (i == kCommands / 2) fake.send_raw(a, std::string(s.max_message_bytes + kMiB, 'o'));  // over the limit
  }

  auto acked_all = [&] {
    return std::all_of(slash_ids.begin(), slash_ids.end(), [&](const std::string& id) { return fake.ack_for(id); });
  };
  (void)run_until(io, acked_all, 15000ms);

  int lost = 0;
  int doubled = 0;
  for (const auto& id : slash_ids) {
    const auto* ack = fake.ack_for(id);
    if (!ack || !ack->has_payload || ack->socket != a ||
        ack->payload.value("text", "").find("'" + env_of[id] + "'") == std::string::npos) {
      ++lost;
      ADD_FAILURE() << "slash command " << env_of[id] << " was not answered in its ack on socket " << a
                    << (ack ? ": " + ack->payload.dump() : std::string(": no ack"));
    }
    if (fake.acks_for(id) > 1) ++doubled;
  }
  std::cout << "delivery-under-faults: case=slack-large-frames sent=" << kCommands << " lost=" << lost
            << " doubled=" << doubled << std::endl;
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(doubled, 0);
  for (const auto& id : big_ids) EXPECT_EQ(fake.acks_for(id), 1) << "a MiB envelope is acked like any other";
  EXPECT_EQ(adapter->stats().oversized, 1u) << "the frame over the limit was skipped and counted";
  EXPECT_EQ(fake.sockets_accepted(), accepted) << "no socket was replaced";
  EXPECT_EQ(fake.connections_opened(), opened) << "no reconnect";
  const auto open = fake.open_sockets();
  EXPECT_NE(std::find(open.begin(), open.end(), a), open.end()) << "the socket that got the frames is still open";
  EXPECT_TRUE(adapter->healthy()) << adapter->problem();
  EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
}

}  // namespace
}  // namespace runbot::slack
