#include "bot/app/config.h"

#include <fstream>

#include <gtest/gtest.h>

namespace runbot::app {
namespace {

TEST(Config, EmbeddedDemoConfigIsValid) {
  auto c = parse_config(demo_config_yaml(), {});
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->bot.apps.size(), 3u);
  EXPECT_EQ(c->provisioner.backend, "demo");
  EXPECT_TRUE(c->kafka.brokers.empty());
  EXPECT_EQ(c->bot.apps.at(bot::AppName{"docs"}).default_ttl, std::chrono::hours(2));
}

TEST(Config, EveryProblemIsNamedAtOnceWithItsPath) {
  ConfigErrors errors;
  auto c = parse_config(R"(
http:
  port: 99999
provisioner:
  backend: magic
notifications:
  ttl_warnings: [30m, soon]
  oncall_channel: irc:#ops
apps:
  Bad_App:
    max_ttl: 1h
    default_ttl: 2h
    colour: red
    channels: [nowhere]
)",
                        {}, &errors);
  ASSERT_FALSE(c.has_value());
  std::vector<std::string> expected{
      "http.port: must be between -1 and 65535, got 99999",
      "notifications.ttl_warnings[1]: bad duration 'soon'",
      "notifications.oncall_channel: must be <platform>:<channel>, got 'irc:#ops'",
      "provisioner.backend: must be exec or demo, got 'magic'",
      "apps.Bad_App: app name must be a DNS-1123 label",
      "apps.Bad_App.colour: unknown key",
      "apps.Bad_App.repo: is required",
      "apps.Bad_App.default_ttl: is 2h, over max_ttl 1h",
      "apps.Bad_App.channels[0]: must be <platform>:<channel>",
  };
  for (const auto& e : expected) {
    bool found = false;
    for (const auto& p : errors.problems) found = found || p.rfind(e, 0) == 0;
    EXPECT_TRUE(found) << "missing problem: " << e << "\nin:\n" << c.error().message;
  }
  EXPECT_EQ(errors.problems.size(), expected.size()) << c.error().message;
  EXPECT_NE(c.error().message.find("9 problems in the configuration"), std::string::npos);
}

TEST(Config, SecretsComeFromTheEnvironmentOrFilesAndOverridesWin) {
  std::string secret = ::testing::TempDir() + "runbot-secret";
  std::ofstream(secret) << "s3cret\n";
  auto c = parse_config("kafka:\n  brokers: ${BROKERS}\n  properties:\n    sasl.password: ${file:" + secret +
                            "}\napps:\n  a:\n    repo: acme/a\n",
                        {{"BROKERS", "k1:9092"}, {"RUNBOT_HTTP_PORT", "9999"}, {"RUNBOT_LOG_LEVEL", "debug"}});
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->kafka.brokers, "k1:9092");
  EXPECT_EQ(c->kafka.properties.at("sasl.password"), "s3cret");
  EXPECT_EQ(c->http_port, 9999);
  EXPECT_EQ(c->log_level, "debug");
  auto missing = parse_config("kafka:\n  brokers: ${NOPE}\napps:\n  a:\n    repo: r\n", {});
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message.find("kafka.brokers: environment variable NOPE is not set"), std::string::npos);
}

TEST(Config, BrokenYamlAndEmptyFilesAreClearErrors) {
  auto broken = parse_config("apps: [unclosed", {});
  ASSERT_FALSE(broken.has_value());
  EXPECT_NE(broken.error().message.find("not valid YAML"), std::string::npos);
  auto empty = parse_config("", {});
  ASSERT_FALSE(empty.has_value());
  EXPECT_NE(empty.error().message.find("the file is empty"), std::string::npos);
  auto unreadable = load_config("/nonexistent/runbot.yaml", {});
  ASSERT_FALSE(unreadable.has_value());
  EXPECT_NE(unreadable.error().message.find("cannot read configuration file"), std::string::npos);
}

TEST(Config, TheShippedExampleIsValidGivenItsSecrets) {
  std::string secret = ::testing::TempDir() + "runbot-kafka-pw";
  std::ofstream(secret) << "pw";
  std::ifstream in(RUNBOT_SOURCE_DIR "/deploy/examples/runbot.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string yaml = ss.str();
  yaml.replace(yaml.find("/var/run/secrets/kafka/password"), std::string("/var/run/secrets/kafka/password").size(), secret);
  auto c = parse_config(yaml, {{"KAFKA_BROKERS", "kafka:9092"}, {"NTH_WEBHOOK_SECRET", "0123456789abcdef"}});
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->provisioner.backend, "exec");
}

}  // namespace
}  // namespace runbot::app
