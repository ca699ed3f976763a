// Mattermost reached over plain http:// (inside a cluster: http://mattermost.chat.svc:8065): the
// real bot::Bot behind a MattermostAdapter on a FakeMattermost without TLS. REST over http://,
// the socket over ws:// (derived from the server URL), the slash command through runbot's own
// HTTP server, and a dropped socket resumed. And https:// stays what it was: verified, and never
// quietly replaced by plain text.
#include <iostream>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "adapters/common/asio_clock.h"
#include "adapters/common/http_server.h"
#include "adapters/mattermost/mattermost_adapter.h"
#include "bot/app/config.h"
#include "bot/bot.h"
#include "tests/adapters/common/run_until.h"
#include "tests/support/fake_https_server.h"
#include "tests/support/fake_mattermost.h"
#include "tests/support/recording_job_queue.h"

namespace runbot::mattermost {
namespace {

using namespace std::chrono_literals;
using common::testing::run_until;
using nlohmann::json;
using runbot::testing::FakeMattermost;
using runbot::testing::FakeMattermostSettings;

constexpr const char* kAlice = "aliceuserid000000000000000";
constexpr const char* kChannel = "chan-deploys";

FakeMattermostSettings plain() {
  FakeMattermostSettings s;
  s.tls = false;
  return s;
}

class MattermostPlainHttp : public ::testing::Test {
 protected:
  MattermostPlainHttp() { fake.start(); }
  ~MattermostPlainHttp() override {
    if (the_bot) the_bot->stop();
    if (adapter) adapter->stop();
  }

  MattermostSettings settings() const {
    MattermostSettings s;
    s.server_url = fake.server_url();
    s.token = "mm-bot-token";
    s.slash_token = "slash-token-123";
    s.backoff_initial = 20ms;
    s.backoff_max = 200ms;
    s.ping_interval = 1000ms;
    s.idle_timeout = 5000ms;
    s.connect_timeout = 3000ms;
    s.request_timeout = 3000ms;
    return s;
  }

  // The real bot behind the adapter; returns the startup outcome.
  std::optional<bot::Status> start(MattermostSettings s) {
    auto cfg = app::parse_config(app::demo_config_yaml(), {});
    EXPECT_TRUE(cfg) << cfg.error().message;
    if (!cfg) return std::nullopt;
    outbox = std::make_unique<bot::Outbox>(cfg->outbox, clock, metrics);
    the_bot = std::make_unique<bot::Bot>(cfg->bot, bot::Registry{}, clock, jobs, *outbox, metrics, nullptr);
    auto created = MattermostAdapter::create(io, std::move(s));
    EXPECT_TRUE(created) << created.error().message;
    if (!created) return std::nullopt;
    adapter = std::move(*created);
    std::optional<bot::Status> started;
    adapter->on_started([&](bot::Status st) { started = st; });
    the_bot->attach(*adapter);
    the_bot->start();
    (void)run_until(io, [&] { return started.has_value(); });
    return started;
  }

  // Bot posts answering the post `id` in its thread.
  std::vector<json> answers_to(const std::string& id) const {
    std::vector<json> out;
    for (const auto& p : fake.bot_posts()) {
      if (p.value("root_id", "") == id) out.push_back(p);
    }
    return out;
  }

  runbot::testing::TestCa ca = runbot::testing::TestCa::make();
  boost::asio::io_context io;
  FakeMattermost fake{io, ca, plain()};
  common::AsioClock clock{io};
  bot::Metrics metrics;
  runbot::testing::RecordingJobQueue jobs{clock};
  std::unique_ptr<bot::Outbox> outbox;
  std::unique_ptr<bot::Bot> the_bot;
  std::unique_ptr<MattermostAdapter> adapter;
};

TEST_F(MattermostPlainHttp, MentionsSlashCommandAndAResumeAfterADropAllWorkOverHttp) {
  ASSERT_EQ(fake.server_url().rfind("http://", 0), 0u);
  const auto started = start(settings());
  ASSERT_TRUE(started.has_value()) << "no startup outcome";
  ASSERT_TRUE(*started) << started->error().message;
  ASSERT_TRUE(run_until(io, [&] { return fake.socket_open() && fake.hellos_sent() == 1; }));
  EXPECT_FALSE(fake.calls_to("GET", "/api/v4/users/me").empty()) << "REST went over http://";

  // runbot's HTTP server, where the Mattermost server sends the slash command.
  common::HttpServerSettings hs;
  hs.port = 0;
  common::HttpServer server(io, hs);
  adapter->route(server);
  const auto port = server.start();
  ASSERT_TRUE(port) << port.error().message;

  struct Sent {
    std::string what;   // the environment asked about
    std::string id;     // the mention's post id ("" for the slash command)
    int answers = 0;
  };
  std::vector<Sent> sent;
  auto mention = [&](int i) {
    const std::string env = "front-end-pr-" + std::to_string(i);
    sent.push_back({env, fake.post_as(kAlice, kChannel, "@runbot describe " + env)});
  };
  for (int i = 0; i < 5; ++i) mention(i);
  ASSERT_TRUE(run_until(io, [&] { return answers_to(sent.back().id).size() == 1; }));

  // The slash command, as the Mattermost server POSTs it (form, token), over plain HTTP.
  std::optional<std::pair<int, std::string>> slash;
  const std::string body = "channel_id=" + std::string(kChannel) +
                           "&channel_name=deploys&command=%2Fephemeral&team_domain=acme&text=describe+slash-env"
                           "&token=slash-token-123&user_id=" + kAlice + "&user_name=alice";
  runbot::testing::plain_http_request(
      io, "POST", "http://127.0.0.1:" + std::to_string(*port) + "/hooks/mattermost/command",
      {{"Content-Type", "application/x-www-form-urlencoded"}}, body,
      [&](int status, std::string text) { slash = std::make_pair(status, std::move(text)); }, 3000ms);
  ASSERT_TRUE(run_until(io, [&] { return slash.has_value(); }));
  Sent slash_sent{"slash-env", "", 0};
  if (slash->first == 200 && slash->second.find("'slash-env'") != std::string::npos) slash_sent.answers = 1;
  EXPECT_EQ(slash->first, 200) << slash->second;
  sent.push_back(slash_sent);

  // A drop mid-stream: the posts made meanwhile are replayed on the resumed ws:// socket.
  fake.drop();
  for (int i = 5; i < 10; ++i) mention(i);
  ASSERT_TRUE(run_until(io, [&] { return fake.resumes_accepted() == 1 && fake.socket_open(); }))
      << "resumes=" << fake.resumes_accepted();
  for (int i = 10; i < 12; ++i) mention(i);
  (void)run_until(io, [&] {
    for (const auto& s : sent) {
      if (!s.id.empty() && answers_to(s.id).empty()) return false;
    }
    return true;
  });
  int lost = 0;
  int doubled = 0;
  for (auto& s : sent) {
    if (!s.id.empty()) {
      const auto answers = answers_to(s.id);
      s.answers = static_cast<int>(answers.size());
      if (!answers.empty() && answers[0].value("message", "").find("'" + s.what + "'") == std::string::npos) {
        ADD_FAILURE() << "the answer to " << s.what << " is about something else: " << answers[0].dump();
        s.answers = 0;
      }
    }
    if (s.answers == 0) ++lost;
    if (s.answers > 1) ++doubled;
  }
  std::cout << "delivery-under-faults: case=mattermost-plain-http sent=" << sent.size() << " lost=" << lost
            << " doubled=" << doubled << std::endl;
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(doubled, 0);
  EXPECT_EQ(fake.hellos_sent(), 1) << "the drop was resumed without loss";
  EXPECT_EQ(adapter->stats().resumes, 1u);
  EXPECT_TRUE(adapter->healthy()) << adapter->problem();
  EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
  server.stop();
}

// https:// is still TLS with verification: a server whose certificate the CA bundle does not
// vouch for is refused, and an https:// URL never falls back to plain text.
TEST(MattermostHttpsStaysVerified, AnUntrustedCertificateOrAPlainServerBehindHttpsIsRefused) {
  auto ca = runbot::testing::TestCa::make();
  boost::asio::io_context io;
  FakeMattermost tls_fake(io, ca);
  tls_fake.start();
  FakeMattermost plain_fake(io, ca, plain());
  plain_fake.start();
  auto attempt = [&](const std::string& url, const std::string& ca_file) {
    MattermostSettings s;
    s.server_url = url;
    s.token = "mm-bot-token";
    s.ca_file = ca_file;
    s.connect_timeout = 2000ms;
    s.request_timeout = 2000ms;
    auto created = MattermostAdapter::create(io, s);
    EXPECT_TRUE(created) << created.error().message;
    std::optional<bot::Status> started;
    if (!created) return started;
    (*created)->on_started([&](bot::Status st) { started = st; });
    (*created)->start([](const bot::InboundMessage&) {});
    (void)run_until(io, [&] { return started.has_value(); });
    (*created)->stop();
    return started;
  };
  const auto untrusted = attempt(tls_fake.server_url(), ca.other_ca_file);
  ASSERT_TRUE(untrusted.has_value());
  ASSERT_FALSE(*untrusted);
  EXPECT_NE(untrusted->error().message.find("TLS"), std::string::npos) << untrusted->error().message;
  EXPECT_TRUE(tls_fake.calls.empty()) << "nothing was sent to an unverified server";

  const std::string port = plain_fake.server_url().substr(plain_fake.server_url().rfind(':') + 1);
  const auto downgraded = attempt("https://127.0.0.1:" + port, ca.ca_file);
  ASSERT_TRUE(downgraded.has_value());
  ASSERT_FALSE(*downgraded) << "https:// against a plain server must fail, not fall back";
  EXPECT_TRUE(plain_fake.calls.empty()) << "no request went out in plain text";

  const auto trusted = attempt(tls_fake.server_url(), ca.ca_file);
  ASSERT_TRUE(trusted.has_value());
  EXPECT_TRUE(*trusted) << trusted->error().message;
}

}  // namespace
}  // namespace runbot::mattermost
