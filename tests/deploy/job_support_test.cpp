// kube-janitor annotation values, templates, and the exec line protocol.
#include "deploy/job_support.h"

#include <gtest/gtest.h>

#include "deploy/exec_backend.h"

namespace runbot::deploy {
namespace {

using namespace std::chrono_literals;

TEST(JanitorTtl, UsesOneUnitAsKubeJanitorRequires) {
  EXPECT_EQ(janitor_ttl(8h), "8h");
  EXPECT_EQ(janitor_ttl(90min), "90m");
  EXPECT_EQ(janitor_ttl(36h), "36h");
  EXPECT_EQ(janitor_ttl(48h), "2d");
  EXPECT_EQ(janitor_ttl(24h * 14), "2w");
  EXPECT_EQ(janitor_ttl(61s), "61s");
  EXPECT_EQ(janitor_ttl(1500ms), "2s");  // rounded up, never shorter than asked
  EXPECT_EQ(janitor_ttl(0ms), "1s");     // "0s" would mean "never delete"
}

TEST(JanitorExpires, IsUtcWithoutFraction) {
  auto t = bot::parse_time("2026-11-26T20:15:30.789Z");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(janitor_expires(*t), "2026-11-26T20:15:30Z");
}

TEST(Templates, ExpandEnvAppAndPr) {
  bot::Job j;
  j.env = bot::EnvId{"front-end-pr-12"};
  j.app = bot::AppName{"front-end"};
  j.pr = 12;
  EXPECT_EQ(expand_template("https://{env}.x/{app}/{pr}/{other}", j),
            "https://front-end-pr-12.x/front-end/12/{other}");
  bot::AppSpec app;
  app.namespace_template = "pr-{pr}";
  EXPECT_EQ(namespace_for(j, app), "pr-12");
  j.namespace_name = "explicit";
  EXPECT_EQ(namespace_for(j, app), "explicit");
}

TEST(ProgressLine, StageWithFractionAndMessage) {
  auto p = parse_progress_line("runbot:stage deploy 2/5 helm upgrade --install web\r");
  EXPECT_EQ(p.type, ProgressLine::Type::stage);
  EXPECT_EQ(p.stage, "deploy");
  EXPECT_EQ(p.index, 2);
  EXPECT_EQ(p.count, 5);
  EXPECT_EQ(p.text, "helm upgrade --install web");
}

TEST(ProgressLine, StageWithoutFraction) {
  auto p = parse_progress_line("runbot:stage migrate running 3 migrations");
  EXPECT_EQ(p.type, ProgressLine::Type::stage);
  EXPECT_EQ(p.index, 0);
  EXPECT_EQ(p.text, "running 3 migrations");
  EXPECT_EQ(parse_progress_line("runbot:stage smoke").stage, "smoke");
}

TEST(ProgressLine, UrlAndNode) {
  auto u = parse_progress_line("runbot:url https://a.example/x?y=1");
  EXPECT_EQ(u.type, ProgressLine::Type::url);
  EXPECT_EQ(u.text, "https://a.example/x?y=1");
  auto n = parse_progress_line(
      "runbot:node ip-10-0-1-5 capacity=on-demand type=m5.large zone=eu-west-1b");
  ASSERT_EQ(n.type, ProgressLine::Type::node);
  EXPECT_EQ(n.node, (bot::NodeInfo{bot::NodeName{"ip-10-0-1-5"}, bot::CapacityType::on_demand,
                                   "m5.large", "eu-west-1b"}));
}

TEST(ProgressLine, MalformedProtocolLinesAreLogLines) {
  for (const char* line :
       {"runbot:stage", "runbot:url", "runbot:url a b", "runbot:node", "runbot:unknown x",
        "hello runbot:stage x", "Release \"web\" deployed"}) {
    auto p = parse_progress_line(line);
    EXPECT_EQ(p.type, ProgressLine::Type::log) << line;
    EXPECT_EQ(p.text, line);
  }
}

}  // namespace
}  // namespace runbot::deploy
