// The console adapter driven end to end with a fake clock: the bot, the outbox, the real
// provisioner with its demo backend and demo cluster, joined by an in-memory bus instead of Kafka
// (the integration tests run the same flow over real Kafka).
#include <sstream>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "adapters/console/console_adapter.h"
#include "bot/app/config.h"
#include "bot/app/file_state_store.h"
#include "bot/bot.h"
#include "deploy/demo_backend.h"
#include "deploy/provisioner.h"
#include "tests/support/fake_clock.h"
#include "tests/support/in_memory_bus.h"

namespace runbot {
namespace {

using namespace std::chrono_literals;

class ConsoleFlow : public ::testing::Test {
 protected:
  ConsoleFlow() { build(bot::Registry{}); }

  void build(bot::Registry registry) {
    auto cfg = app::parse_config(app::demo_config_yaml(), {});
    EXPECT_TRUE(cfg.has_value()) << (cfg ? "" : cfg.error().message);
    config = *cfg;
    console::ConsoleSettings cs;
    cs.user = "dev";
    cs.timestamps = false;
    adapter = std::make_unique<console::ConsoleAdapter>(io, cs, clock, out, nullptr);
    outbox = std::make_unique<bot::Outbox>(config.outbox, clock, metrics);
    config.bot.demo = true;
    the_bot = std::make_unique<bot::Bot>(config.bot, std::move(registry), clock, bus, *outbox, metrics, &store);
    cluster = std::make_unique<deploy::DemoCluster>(deploy::DemoClusterSettings{}, clock, bus);
    backend = std::make_unique<deploy::DemoBackend>(deploy::DemoSettings{}, *cluster, clock);
    provisioner = std::make_unique<deploy::Provisioner>(deploy::ProvisionerSettings{}, config.bot.apps, *backend, bus, clock);
    bus.connect([this](const bot::Job& j) { provisioner->on_job(j); }, the_bot.get());
    bot::BotHooks hooks;
    hooks.simulate_spot = [this](const bot::NodeName& n) { return cluster->simulate_spot_interruption(n); };
    the_bot->set_hooks(hooks);
    the_bot->attach(*adapter);
    the_bot->start();
  }

  // Runs time forward in one-second steps, letting the console's completions run too.
  void run(bot::Duration d) {
    for (bot::Duration t{}; t < d; t += 1s) {
      clock.advance(1s);
      io.poll();
      io.restart();
    }
  }

  std::string say(const std::string& line) {
    out.str("");
    adapter->feed_line(line);
    return out.str();
  }

  // Output since the last call.
  std::string take() {
    std::string s = out.str();
    out.str("");
    return s;
  }

  std::string node_of(const std::string& env) {
    const auto* e = the_bot->registry().find(bot::EnvId{env});
    EXPECT_TRUE(e && !e->nodes.empty());
    return e && !e->nodes.empty() ? e->nodes.front().str() : "";
  }

  std::string state_path = ::testing::TempDir() + "runbot-console-flow-" + std::to_string(::getpid()) + ".json";
  app::FileStateStore store{state_path};
  testing::FakeClock clock;
  boost::asio::io_context io;
  bot::Metrics metrics;
  testing::InMemoryBus bus{clock};
  std::ostringstream out;
  app::Config config;
  std::unique_ptr<console::ConsoleAdapter> adapter;
  std::unique_ptr<bot::Outbox> outbox;
  std::unique_ptr<bot::Bot> the_bot;
  std::unique_ptr<deploy::DemoCluster> cluster;
  std::unique_ptr<deploy::DemoBackend> backend;
  std::unique_ptr<deploy::Provisioner> provisioner;

  void TearDown() override { std::remove(state_path.c_str()); }
};

TEST_F(ConsoleFlow, UpGoesThroughProvisioningToReadyWithUrlInTheThread) {
  std::string answer = say("/ephemeral up front-end pr-123");
  EXPECT_NE(answer.find("runbot › Creating front-end-pr-123 (TTL 8h)"), std::string::npos) << answer;
  ASSERT_EQ(bus.jobs.size(), 1u);
  EXPECT_EQ(bus.jobs[0].verb, bot::JobVerb::up);
  EXPECT_EQ(bus.jobs[0].env.str(), "front-end-pr-123");
  run(10s);
  std::string started = take();
  EXPECT_NE(started.find("── thread front-end-pr-123"), std::string::npos) << started;
  EXPECT_NE(started.find("[front-end-pr-123] Environment front-end-pr-123 requested by @dev"), std::string::npos);
  EXPECT_NE(started.find("[front-end-pr-123] Stage "), std::string::npos);
  run(5min);
  std::string rest = take();
  EXPECT_NE(rest.find("[front-end-pr-123] front-end-pr-123 is ready: https://front-end-pr-123.demo.runbot.invalid"),
            std::string::npos)
      << rest;
  EXPECT_NE(rest.find("[Extend 4h: `extend front-end-pr-123 4h`]"), std::string::npos);
  EXPECT_EQ(the_bot->registry().find(bot::EnvId{"front-end-pr-123"})->state, bot::EnvState::ready);
  std::string list = say("list");
  EXPECT_NE(list.find("front-end-pr-123  ready"), std::string::npos) << list;
  std::string describe = say("describe front-end-pr-123");
  EXPECT_NE(describe.find("URL: https://front-end-pr-123.demo.runbot.invalid"), std::string::npos) << describe;
  EXPECT_NE(describe.find("simulated"), std::string::npos);
}

TEST_F(ConsoleFlow, TtlWarningsThenExpiryTearsDownAndReportsCost) {
  say("up docs 7");  // docs: TTL 2h
  run(5min);
  ASSERT_EQ(the_bot->registry().find(bot::EnvId{"docs-pr-7"})->state, bot::EnvState::ready);
  take();
  const bot::TimePoint expires = *the_bot->registry().find(bot::EnvId{"docs-pr-7"})->expires_at;
  run(expires - 31min - clock.now());
  EXPECT_EQ(take().find("expires in"), std::string::npos) << "no warning before 30 minutes are left";
  run(2min);
  std::string warn30 = take();
  EXPECT_NE(warn30.find("docs-pr-7 expires in 30m"), std::string::npos) << warn30;
  EXPECT_NE(warn30.find("[Let it expire: `let-expire docs-pr-7`]"), std::string::npos) << warn30;
  EXPECT_EQ(warn30.find("expires in 5m"), std::string::npos);
  run(expires - 5min - clock.now() + 1s);  // announcements follow the state snapshot (state.save_delay_ms)
  EXPECT_NE(take().find("docs-pr-7 expires in 5m"), std::string::npos);
  run(10min);
  std::string end = take();
  EXPECT_NE(end.find("docs-pr-7 expired after 2h"), std::string::npos) << end;
  EXPECT_NE(end.find("docs-pr-7 deleted (TTL expired)"), std::string::npos) << end;
  EXPECT_NE(end.find("total cost $0.2"), std::string::npos) << end;  // ~2h at $0.12/h
  EXPECT_EQ(the_bot->registry().find(bot::EnvId{"docs-pr-7"})->state, bot::EnvState::deleted);
  ASSERT_GE(bus.jobs.size(), 2u);
  EXPECT_EQ(bus.jobs.back().verb, bot::JobVerb::down);
  EXPECT_EQ(bus.jobs.back().reason, "ttl");
}

TEST_F(ConsoleFlow, SpotInterruptionIsAnnouncedToTheOwnerAndRecoveryFollows) {
  say("up front-end 1");
  run(5min);
  std::string node = node_of("front-end-pr-1");
  take();
  std::string answer = say("simulate spot " + node);
  EXPECT_NE(answer.find("Simulating a spot interruption of " + node), std::string::npos) << answer;
  run(5s);
  std::string notice = take();
  EXPECT_NE(notice.find("[front-end-pr-1] ⚠ spot interruption on node " + node), std::string::npos) << notice;
  EXPECT_NE(notice.find("@dev, front-end-pr-1 runs on this node"), std::string::npos);
  EXPECT_NE(notice.find("[#oncall] ⚠ spot interruption on node " + node), std::string::npos) << notice;
  ASSERT_EQ(bus.cluster_records.size(), 1u);
  EXPECT_EQ(bus.undecodable, 0);
  run(3min);
  std::string recovery = take();
  EXPECT_NE(recovery.find("front-end-pr-1 recovered: running on"), std::string::npos) << recovery;
  EXPECT_NE(node_of("front-end-pr-1"), node);
  EXPECT_NE(say("simulate spot no-such-node").find("no-such-node"), std::string::npos);
}

TEST_F(ConsoleFlow, DownAsksForConfirmationAndNoKeepsTheEnvironment) {
  say("up api pr-5");
  run(5min);
  std::string ask = say("down api-pr-5");
  EXPECT_NE(ask.find("Tear down api-pr-5? Reply `yes` or `no`"), std::string::npos) << ask;
  EXPECT_NE(say("no").find("Cancelled: api-pr-5 stays."), std::string::npos);
  EXPECT_NE(say("yes").find("nothing to confirm"), std::string::npos);
  say("down api-pr-5");
  EXPECT_NE(say("yes").find("Tearing down api-pr-5"), std::string::npos);
  run(2min);
  EXPECT_NE(take().find("api-pr-5 deleted (torn down)"), std::string::npos);
  EXPECT_EQ(the_bot->registry().find(bot::EnvId{"api-pr-5"})->state, bot::EnvState::deleted);
}

TEST_F(ConsoleFlow, DownDuringProvisioningCancelsTheUp) {
  say("up front-end 9");
  run(20s);
  say("down front-end-pr-9");
  say("yes");
  run(3min);
  std::string out_text = take();
  EXPECT_NE(out_text.find("up of front-end-pr-9 cancelled"), std::string::npos) << out_text;
  EXPECT_NE(out_text.find("front-end-pr-9 deleted"), std::string::npos) << out_text;
  EXPECT_EQ(out_text.find("is ready"), std::string::npos);
}

TEST_F(ConsoleFlow, EveryMistakeGetsAReasonAndTheUsage) {
  struct Case {
    std::string input;
    std::string reason;
    std::string usage;
  };
  std::vector<Case> cases{
      {"up nope 1", "unknown app 'nope' (known apps: api, docs, front-end)", "Usage: up <app> <pr>"},
      {"up front-end abc", "'abc' is not a pull request number", "Usage: up <app> <pr>"},
      {"up front-end 1 --ttl 9d", "TTL 9d is over front-end's maximum of 3d", "Usage: up <app> <pr>"},
      {"up front-end 1 --ttl soon", "--ttl: bad duration 'soon'", "Usage: up <app> <pr>"},
      {"frobnicate", "unknown command 'frobnicate'", "Commands: up, down, extend"},
      {"extend front-end-pr-404 1h", "no environment 'front-end-pr-404'", "Usage: extend <env> <duration>"},
      {"describe", "describe: missing argument", "Usage: describe <env>"},
      {"resume front-end-pr-404", "no environment 'front-end-pr-404'", "Usage: resume <env>"},
      {"events --since never", "--since: bad duration 'never'", "Usage: events"},
  };
  for (const auto& c : cases) {
    std::string answer = say(c.input);
    EXPECT_NE(answer.find(c.reason), std::string::npos) << c.input << " ->\n" << answer;
    EXPECT_NE(answer.find(c.usage), std::string::npos) << c.input << " ->\n" << answer;
  }
  EXPECT_TRUE(bus.jobs.empty()) << "no bad command may publish a job";
}

TEST_F(ConsoleFlow, ExtendSuspendResumeAndTheOverviewCommands) {
  say("up front-end 3");
  run(5min);
  std::string ext = say("extend front-end-pr-3 2h");
  EXPECT_NE(ext.find("Extended front-end-pr-3"), std::string::npos) << ext;
  EXPECT_NE(say("extend front-end-pr-3 3d").find("over front-end's maximum TTL of 3d"), std::string::npos);
  EXPECT_NE(say("suspend front-end-pr-3").find("Suspending front-end-pr-3"), std::string::npos);
  run(2min);
  EXPECT_EQ(the_bot->registry().find(bot::EnvId{"front-end-pr-3"})->state, bot::EnvState::suspended);
  EXPECT_NE(say("up front-end 3").find("is suspended"), std::string::npos);
  EXPECT_NE(say("resume front-end-pr-3").find("Resuming front-end-pr-3"), std::string::npos);
  run(2min);
  EXPECT_EQ(the_bot->registry().find(bot::EnvId{"front-end-pr-3"})->state, bot::EnvState::ready);
  std::string status = say("status");
  EXPECT_NE(status.find("Environments: 1 ready"), std::string::npos) << status;
  EXPECT_NE(status.find("Adapters: console ok"), std::string::npos);
  std::string nodes = say("nodes");
  EXPECT_NE(nodes.find("front-end-pr-3"), std::string::npos) << nodes;
  EXPECT_NE(nodes.find("spot"), std::string::npos);
  std::string events = say("events front-end-pr-3 --since 1h");
  EXPECT_NE(events.find("resumed"), std::string::npos) << events;
  std::string usage = say("usage");
  EXPECT_NE(usage.find("team web"), std::string::npos) << usage;
  EXPECT_NE(usage.find("@dev"), std::string::npos);
  EXPECT_NE(say("help").find("up <app> <pr>"), std::string::npos);
  EXPECT_NE(say("help extend").find("extend front-end-pr-123 4h"), std::string::npos);
}

TEST_F(ConsoleFlow, StateSurvivesARestartWithTtlAndThread) {
  say("up front-end 11");
  run(5min);
  auto loaded = store.load();
  ASSERT_TRUE(loaded.has_value());
  ASSERT_TRUE(loaded->has_value());
  auto registry = bot::Registry::restore(**loaded);
  ASSERT_TRUE(registry.has_value()) << registry.error().message;
  provisioner.reset();
  the_bot.reset();
  build(std::move(*registry));
  const auto* env = the_bot->registry().find(bot::EnvId{"front-end-pr-11"});
  ASSERT_NE(env, nullptr);
  EXPECT_EQ(env->state, bot::EnvState::ready);
  ASSERT_TRUE(env->expires_at.has_value());
  ASSERT_EQ(env->threads.size(), 1u);
  EXPECT_FALSE(env->threads[0].card_id.empty()) << "the thread's card is remembered";
  EXPECT_NE(say("list").find("front-end-pr-11  ready"), std::string::npos);
}

}  // namespace
}  // namespace runbot

namespace runbot {
namespace {

// The same console, with policies on: denials, the quota queue, approvals and the audit log.
class ConsolePolicy : public ::testing::Test {
 protected:
  ConsolePolicy() {
    auto cfg = app::parse_config(app::demo_config_yaml() + R"(
policy:
  bindings:
    - role: admin
      users: [boss]
    - role: developer
      users: [dev]
    - role: developer
      emails: [erin@acme.dev]
    - role: operator
      platform: console
      groups: [sre]
  quotas: {per_user: 1}
  approvals_channel: console:approvals
  teams:
    web: {members: [dev], monthly_budget: 4, channel: console:web}
)",
                                 {});
    EXPECT_TRUE(cfg.has_value()) << (cfg ? "" : cfg.error().message);
    config = *cfg;
    for (const char* user : {"dev", "boss", "guest", "erin", "gus"}) {
      console::ConsoleSettings cs;
      cs.user = user;
      cs.timestamps = false;
      // As console.email / console.groups in the config give them.
      if (cs.user == "erin") cs.email = "erin@acme.dev";
      if (cs.user == "gus") cs.groups = {"web-devs", "sre"};
      consoles[user] = std::make_unique<console::ConsoleAdapter>(io, cs, clock, out, nullptr);
    }
    outbox = std::make_unique<bot::Outbox>(config.outbox, clock, metrics);
    the_bot = std::make_unique<bot::Bot>(config.bot, bot::Registry{}, clock, bus, *outbox, metrics, nullptr);
    cluster = std::make_unique<deploy::DemoCluster>(deploy::DemoClusterSettings{}, clock, bus);
    backend = std::make_unique<deploy::DemoBackend>(deploy::DemoSettings{}, *cluster, clock);
    provisioner = std::make_unique<deploy::Provisioner>(deploy::ProvisionerSettings{}, config.bot.apps, *backend, bus, clock);
    bus.connect([this](const bot::Job& j) { provisioner->on_job(j); }, the_bot.get());
    // One outbox adapter for the platform; every console user speaks through its own adapter.
    the_bot->attach(*consoles["dev"]);
    consoles["boss"]->start([this](const bot::InboundMessage& m) { the_bot->handle(m, *consoles["boss"]); });
    for (const char* user : {"guest", "erin", "gus"}) {
      consoles[user]->start([this, user](const bot::InboundMessage& m) { the_bot->handle(m, *consoles[user]); });
    }
    the_bot->start();
  }

  std::string say(const std::string& user, const std::string& line) {
    out.str("");
    consoles[user]->feed_line(line);
    return out.str();
  }
  void run(bot::Duration d) {
    for (bot::Duration t{}; t < d; t += 1s) {
      clock.advance(1s);
      io.poll();
      io.restart();
    }
  }

  testing::FakeClock clock;
  boost::asio::io_context io;
  bot::Metrics metrics;
  testing::InMemoryBus bus{clock};
  std::ostringstream out;
  app::Config config;
  std::map<std::string, std::unique_ptr<console::ConsoleAdapter>> consoles;
  std::unique_ptr<bot::Outbox> outbox;
  std::unique_ptr<bot::Bot> the_bot;
  std::unique_ptr<deploy::DemoCluster> cluster;
  std::unique_ptr<deploy::DemoBackend> backend;
  std::unique_ptr<deploy::Provisioner> provisioner;
};

TEST_F(ConsolePolicy, DenialsQueueingApprovalsAndAudit) {
  EXPECT_NE(say("guest", "up api 1").find("`up` needs the developer role; @guest has viewer. Ask @boss to grant it."),
            std::string::npos);
  EXPECT_NE(say("dev", "up api 1").find("Creating api-pr-1"), std::string::npos);
  run(5min);
  std::string queued = say("dev", "up api 2");
  EXPECT_NE(queued.find("api-pr-2 is queued at position 1 (q-1)"), std::string::npos) << queued;
  EXPECT_NE(say("dev", "list").find("q-1  api-pr-2  @dev  queued #1"), std::string::npos);
  // front-end belongs to team web ($4 budget); 8h at $0.63/h would exceed it.
  say("boss", "down api-pr-1");
  say("boss", "yes");
  run(3min);
  std::string started = out.str();
  EXPECT_NE(started.find("q-1 (api-pr-2) is starting now"), std::string::npos) << started;
  std::string waits = say("boss", "up front-end 7");
  EXPECT_NE(waits.find("front-end-pr-7 waits for an admin's approval (q-2)"), std::string::npos) << waits;
  EXPECT_NE(waits.find("[#approvals] Approval needed: front-end-pr-7 for @boss (q-2)"), std::string::npos) << waits;
  EXPECT_NE(waits.find("[Approve: `approve q-2`] [Deny: `deny q-2`]"), std::string::npos) << waits;
  EXPECT_NE(say("boss", "approve q-2").find("Approved q-2 (front-end-pr-7)"), std::string::npos);
  std::string audit = say("boss", "events --audit");
  EXPECT_NE(audit.find("@guest  up  denied  up api 1"), std::string::npos) << audit;
  EXPECT_NE(audit.find("@boss  approve  ok  approve q-2"), std::string::npos) << audit;
  EXPECT_NE(say("dev", "events --audit").find("needs the operator role"), std::string::npos);
}

TEST_F(ConsolePolicy, BindingsByEmailAndGroupMatchTheConsoleUsersIdentity) {
  // erin is a developer by her e-mail address, gus an operator by his group; guest is neither.
  EXPECT_NE(say("erin", "up docs 7").find("Creating docs-pr-7"), std::string::npos);
  EXPECT_NE(say("guest", "events --audit").find("`events --audit` needs the operator role; @guest has viewer."),
            std::string::npos);
  const std::string audit = say("gus", "events --audit");
  EXPECT_EQ(audit.find("needs the"), std::string::npos) << audit;
  EXPECT_NE(audit.find("erin"), std::string::npos) << "erin's command is on record:\n" << audit;
  EXPECT_NE(say("gus", "up docs 8").find("Creating docs-pr-8"), std::string::npos) << "operators may create too";
}

}  // namespace
}  // namespace runbot
