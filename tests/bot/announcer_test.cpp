#include "bot/announcer.h"

#include <gtest/gtest.h>

namespace runbot::bot {
namespace {

using namespace std::chrono_literals;

struct Fixture {
  AppSpec app;
  Environment env;
  TimePoint now = TimePoint{} + 1000h;
  Fixture() {
    app.name = AppName{"front-end"};
    app.repo = "acme/front-end";
    app.rate_per_hour = Money::dollars(0.625);
    env.id = EnvId{"front-end-pr-123"};
    env.app = app.name;
    env.pr = 123;
    env.owner = env.requester = UserId{"alice"};
    env.state = EnvState::ready;
    env.url = "https://front-end-pr-123.example";
    env.ttl = 8h;
    env.created_at = env.metered_until = now - 3min;
    env.expires_at = now + 8h;
  }
};

std::vector<std::string> labels(const Message& m) {
  std::vector<std::string> out;
  for (const auto& b : m.buttons) out.push_back(b.label);
  return out;
}

TEST(Announcer, ReadyEnvironmentHasOpenExtendTearDownButtons) {
  Fixture f;
  Message m = announce::ready(f.env, f.app, 3min, 4h);
  EXPECT_EQ(m.title, "front-end-pr-123 is ready: https://front-end-pr-123.example");
  EXPECT_EQ(labels(m), (std::vector<std::string>{"Open", "Extend 4h", "Tear down"}));
  EXPECT_EQ(m.buttons[0].url, f.env.url);
  EXPECT_EQ(m.buttons[1].value, "front-end-pr-123 4h");
  EXPECT_NE(m.text.find("Took 3m"), std::string::npos);
  EXPECT_NE(m.text.find("$0.63/h"), std::string::npos);
}

TEST(Announcer, FailureShowsStageReasonLogAndRetry) {
  Fixture f;
  LifecycleEvent e;
  e.stage = "deploy";
  e.reason = "helm upgrade failed";
  e.exit_status = 2;
  e.log_tail = {"Error: timed out"};
  Message m = announce::failed(f.env, f.app, e);
  EXPECT_EQ(m.title, "front-end-pr-123 failed at stage deploy");
  EXPECT_EQ(m.text, "helm upgrade failed (exit status 2)");
  EXPECT_EQ(m.code, e.log_tail);
  EXPECT_EQ(labels(m), (std::vector<std::string>{"Retry", "Tear down"}));
  EXPECT_EQ(m.buttons[0].value, "front-end 123");
}

TEST(Announcer, TtlWarningOffersExtendOrLetItExpire) {
  Fixture f;
  Message m = announce::ttl_warning(f.env, 30min, 4h);
  EXPECT_EQ(m.title, "front-end-pr-123 expires in 30m");
  EXPECT_EQ(labels(m), (std::vector<std::string>{"Extend 4h", "Let it expire"}));
  EXPECT_EQ(m.mentions, std::vector<UserId>{UserId{"alice"}});
}

TEST(Announcer, InterruptionNamesNodeDeadlineAndOwner) {
  Fixture f;
  ClusterEvent e;
  e.kind = ClusterEventKind::spot_interruption;
  e.node = {NodeName{"ip-10-0-1-17"}, CapacityType::spot, "m5.large", "eu-west-1a"};
  e.deadline = f.now + 2min;
  Message m = announce::interruption(f.env, e, f.now);
  EXPECT_EQ(m.title, "⚠ spot interruption on node ip-10-0-1-17 (spot, m5.large, eu-west-1a)");
  EXPECT_NE(m.text.find("@alice"), std::string::npos);
  EXPECT_NE(m.text.find("(in 2m)"), std::string::npos);
  EXPECT_EQ(m.mentions, std::vector<UserId>{UserId{"alice"}});
}

TEST(Announcer, DeletedReportsLifetimeAndTotalCost) {
  Fixture f;
  f.env.created_at = f.env.metered_until = f.now - 24h;
  Message m = announce::deleted(f.env, f.app, f.now, "TTL expired");
  EXPECT_EQ(m.title, "front-end-pr-123 deleted (TTL expired)");
  EXPECT_EQ(m.text, "Lifetime 1d · total cost $15.00.");
}

TEST(Announcer, StatusCardShowsStateUrlTtlAndCost) {
  Fixture f;
  Message m = announce::status_card(f.env, f.app, f.now);
  EXPECT_EQ(m.title, "✔ front-end-pr-123 · ready");
  auto field = [&m](const std::string& label) {
    for (const auto& fl : m.fields) {
      if (fl.label == label) return fl.value;
    }
    return std::string("<missing>");
  };
  EXPECT_EQ(field("URL"), f.env.url);
  EXPECT_EQ(field("TTL left").substr(0, 3), "8h ");
  EXPECT_EQ(field("Cost"), "$0.03 at $0.63/h");
}

}  // namespace
}  // namespace runbot::bot
