#include "bot/app/config.h"

#include <fstream>

#include <gtest/gtest.h>

#include "bot/app/runtime.h"
#include "tests/app/config_problems.h"

namespace runbot::app {
namespace {

using testing::has_problem;

TEST(Config, EmbeddedDemoConfigIsValid) {
  auto c = parse_config(demo_config_yaml(), {});
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->bot.apps.size(), 3u);
  EXPECT_EQ(c->provisioner.backend, "demo");
  EXPECT_TRUE(c->kafka.brokers.empty());
  EXPECT_EQ(c->bot.apps.at(bot::AppName{"docs"}).default_ttl, std::chrono::hours(2));
}

TEST(Config, AnswerPacingIsSetPerPlatformAndBadValuesAreNamed) {
  // The demo configuration has a notifications section: the keys go into it.
  std::string yaml = demo_config_yaml();
  const std::string section = "notifications:\n";
  ASSERT_NE(yaml.find(section), std::string::npos);
  yaml.insert(yaml.find(section) + section.size(), "  answers_per_second: 4\n  answer_burst: 8\n  answer_max_attempts: 0\n");
  auto c = parse_config(yaml + R"(
mattermost: {server_url: https://chat.example.com, token: t, answers_per_second: 10, answer_burst: 100}
)",
                        {});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->outbox.answers_per_second, 4);
  EXPECT_EQ(c->outbox.answer_burst, 8);
  EXPECT_EQ(c->outbox.answer_max_attempts, 0) << "0 = retry until delivered";
  EXPECT_EQ(c->mattermost_outbox.answers_per_second, 10);
  EXPECT_EQ(c->mattermost_outbox.answer_burst, 100);
  EXPECT_EQ(c->slack_outbox.answers_per_second, bot::OutboxSettings{}.answers_per_second) << "the default";

  ConfigErrors errors;
  auto bad = parse_config(demo_config_yaml() + R"(
slack: {app_token: xapp-1, bot_token: xoxb-1, answers_per_second: 0, answer_max_attempts: many}
)",
                          {}, &errors);
  ASSERT_FALSE(bad);
  EXPECT_TRUE(has_problem(errors, "slack.answers_per_second")) << bad.error().message;
  EXPECT_TRUE(has_problem(errors, "slack.answer_max_attempts")) << bad.error().message;
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
      "provisioner.backend: must be exec, github-dispatch or demo, got 'magic'",
      "apps.Bad_App: app name must be a DNS-1123 label",
      "apps.Bad_App.colour: unknown key",
      "apps.Bad_App.repo: is required",
      "apps.Bad_App.default_ttl: is 2h, over max_ttl 1h",
      "apps.Bad_App.channels[0]: must be <platform>:<channel>",
  };
  for (const auto& e : expected) {
    EXPECT_TRUE(has_problem(errors, e)) << "missing problem: " << e << "\nin:\n" << c.error().message;
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
  auto c = parse_config(yaml, {{"KAFKA_BROKERS", "kafka:9092"},
                                 {"NTH_WEBHOOK_SECRET", "0123456789abcdef"},
                                 {"SLACK_APP_TOKEN", "xapp-1-A"},
                                 {"SLACK_BOT_TOKEN", "xoxb-1"}});
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->provisioner.backend, "exec");
  ASSERT_TRUE(c->slack.has_value());
  EXPECT_EQ(c->slack->connections, 2);
}

}  // namespace
}  // namespace runbot::app

namespace runbot::app {
namespace {

TEST(Config, PolicySectionIsParsedAndValidated) {
  auto c = parse_config(R"(
apps:
  web:
    repo: acme/web
    team: web
    teams: [web]
policy:
  default_role: viewer
  bindings:
    - role: admin
      users: [boss]
    - role: developer
      platform: slack
      channels: [C1]
  quotas: {per_user: 2, per_team: 5, total: 9}
  approvals_channel: console:approvals
  teams:
    web:
      members: [alice]
      monthly_budget: 250.5
      channel: console:web
)",
                        {});
  ASSERT_TRUE(c.has_value()) << c.error().message;
  const auto& p = c->bot.policy;
  EXPECT_TRUE(p.enabled);
  ASSERT_EQ(p.bindings.size(), 2u);
  EXPECT_EQ(p.bindings[0].role, bot::Role::admin);
  EXPECT_EQ(p.bindings[1].platform, "slack");
  EXPECT_EQ(p.quotas.per_team, 5);
  EXPECT_EQ(bot::format_money(*p.teams.at(bot::TeamName{"web"}).monthly_budget), "$250.50");
  EXPECT_EQ(p.app_teams.at(bot::AppName{"web"}).count(bot::TeamName{"web"}), 1u);

  ConfigErrors errors;
  auto bad = parse_config(R"(
apps:
  web:
    repo: acme/web
    teams: [nobody]
policy:
  default_role: king
  bindings:
    - role: admin
    - users: [x]
  quotas: {per_user: -1}
  teams:
    web: {monthly_budget: lots}
)",
                          {}, &errors);
  ASSERT_FALSE(bad.has_value());
  for (const char* expected : {"policy.default_role: must be viewer, developer, operator or admin",
                               "policy.bindings[0]: binds nobody", "policy.bindings[1].role: is required",
                               "policy.quotas.per_user: must be between 0", "policy.teams.web.monthly_budget: must be a number",
                               "apps.web.teams: team 'nobody' is not defined"}) {
    EXPECT_TRUE(has_problem(errors, expected)) << "missing: " << expected << "\n" << bad.error().message;
  }
}

}  // namespace
}  // namespace runbot::app

namespace runbot::app {
namespace {

// Inside a cluster Mattermost is often reached as http://mattermost.chat.svc:8065. That is
// accepted, with a warning (not a problem) that the bot token travels in clear text.
TEST(Config, MattermostOverPlainHttpIsAcceptedWithAClearTextWarning) {
  auto c = parse_config(demo_config_yaml() + "mattermost:\n  server_url: http://mattermost.chat.svc:8065\n  token: x\n", {});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->mattermost->server_url, "http://mattermost.chat.svc:8065");
  ASSERT_EQ(c->warnings.size(), 1u) << ::testing::PrintToString(c->warnings);
  EXPECT_EQ(c->warnings[0].rfind("mattermost.server_url: is http://: the bot token", 0), 0u) << c->warnings[0];
  EXPECT_NE(c->warnings[0].find("clear text"), std::string::npos) << c->warnings[0];

  auto secure = parse_config(demo_config_yaml() + "mattermost:\n  server_url: https://chat.example.com\n  token: x\n", {});
  ASSERT_TRUE(secure) << secure.error().message;
  EXPECT_TRUE(secure->warnings.empty()) << "https:// is the default and warns about nothing";

  // `runbot check-config` prints the warning and still succeeds.
  auto check = [](const std::string& yaml) {
    const std::string path = ::testing::TempDir() + "runbot-check-config.yaml";
    std::ofstream(path) << yaml;
    ::testing::internal::CaptureStdout();
    const int rc = check_config(path);
    return std::make_pair(rc, ::testing::internal::GetCapturedStdout());
  };
  const auto [rc, out] = check(demo_config_yaml() + "mattermost:\n  server_url: http://mattermost.chat.svc:8065\n  token: x\n");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find(": OK"), std::string::npos) << out;
  EXPECT_NE(out.find("  warning: mattermost.server_url: is http://: the bot token (and every message) travels in clear text"),
            std::string::npos)
      << out;
  const auto [secure_rc, secure_out] = check(demo_config_yaml() + "mattermost:\n  server_url: https://chat.example.com\n  token: x\n");
  EXPECT_EQ(secure_rc, 0) << secure_out;
  EXPECT_EQ(secure_out.find("warning"), std::string::npos) << secure_out;
}

TEST(Config, MattermostSectionIsParsedAndValidated) {
  auto c = parse_config(demo_config_yaml() + R"(
mattermost:
  server_url: https://chat.example.com
  token: ${MM_TOKEN}
  socket: false
  slash_token: abc
  action_url: https://runbot.example.com/hooks/mattermost/action
  idle_timeout: 90s
  messages_per_second: 2
)",
                        {{"MM_TOKEN", "tok"}});
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_TRUE(c->mattermost.has_value());
  EXPECT_EQ(c->mattermost->token, "tok");
  EXPECT_FALSE(c->mattermost->socket);
  EXPECT_EQ(c->mattermost->slash_token, "abc");
  EXPECT_EQ(c->mattermost->idle_timeout, std::chrono::seconds(90));
  EXPECT_EQ(c->mattermost_outbox.messages_per_second, 2.0);
  EXPECT_FALSE(parse_config(demo_config_yaml() + "mattermost:\n  server_url: ftp://chat\n  token: x\n", {}));
  EXPECT_FALSE(parse_config(demo_config_yaml() + "mattermost:\n  server_url: wss://chat\n  token: x\n", {}))
      << "the server's URL, not the socket's";
  EXPECT_FALSE(parse_config(demo_config_yaml() + "mattermost:\n  server_url: https://chat\n", {})) << "a token is required";
  EXPECT_FALSE(parse_config(demo_config_yaml() + "mattermost:\n  server_url: https://chat\n  token: x\n  bogus: 1\n", {}));
}

}  // namespace
}  // namespace runbot::app

namespace runbot::app {
namespace {

// The adapters look users up only when a binding of their platform needs e-mail or groups, and
// remember them as long as `identity_cache` says.
TEST(Config, IdentityLookupsFollowThePolicyAndTheCacheTtlIsValidated) {
  const std::string adapters = R"(
slack: {app_token: xapp-1-A, bot_token: xoxb-1, identity_cache: 5m}
mattermost: {server_url: https://chat.example.com, token: tok}
)";
  auto none = parse_config(demo_config_yaml() + adapters + R"(
policy:
  bindings:
    - {role: admin, users: [boss]}
    - {role: developer, platform: mattermost, emails: [dev@acme.dev]}
)",
                           {});
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_FALSE(none->slack->lookup_email);
  EXPECT_FALSE(none->slack->lookup_groups);
  EXPECT_EQ(none->slack->identity_cache_ttl, std::chrono::minutes(5));
  EXPECT_TRUE(none->mattermost->lookup_email);
  EXPECT_FALSE(none->mattermost->lookup_groups);
  EXPECT_EQ(none->mattermost->identity_cache_ttl, std::chrono::minutes(10)) << "the default";

  auto groups = parse_config(demo_config_yaml() + adapters + "policy:\n  bindings:\n    - {role: operator, groups: [sre]}\n", {});
  ASSERT_TRUE(groups) << groups.error().message;
  EXPECT_TRUE(groups->slack->lookup_groups);
  EXPECT_TRUE(groups->mattermost->lookup_groups);
  EXPECT_FALSE(groups->slack->lookup_email);

  auto disabled = parse_config(
      demo_config_yaml() + adapters + "policy:\n  enabled: false\n  bindings:\n    - {role: operator, groups: [sre]}\n", {});
  ASSERT_TRUE(disabled) << disabled.error().message;
  EXPECT_FALSE(disabled->slack->lookup_groups) << "no policy, no lookups";

  ConfigErrors errors;
  auto bad = parse_config(demo_config_yaml() + R"(
slack: {app_token: xapp-1-A, bot_token: xoxb-1, identity_cache: 25h}
mattermost: {server_url: https://chat.example.com, token: tok, identity_cache: soon}
)",
                          {}, &errors);
  ASSERT_FALSE(bad);
  for (const char* expected : {"slack.identity_cache: must be between 1s and 24h", "mattermost.identity_cache: "}) {
    EXPECT_TRUE(has_problem(errors, expected)) << "missing: " << expected << "\n" << bad.error().message;
  }
}

TEST(Config, TheConsoleUserMayCarryAnEmailAndGroupsForBindings) {
  auto c = parse_config(demo_config_yaml() + "console:\n  user: erin\n  email: erin@acme.dev\n  groups: [sre, web]\n", {});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->console_user, "erin");
  EXPECT_EQ(c->console_email, "erin@acme.dev");
  EXPECT_EQ(c->console_groups, (std::vector<std::string>{"sre", "web"}));

  ConfigErrors errors;
  auto bad = parse_config(demo_config_yaml() + "console:\n  email: erin\n  groups: sre\n", {}, &errors);
  ASSERT_FALSE(bad);
  for (const char* expected : {"console.email: must be an e-mail address, got 'erin'", "console.groups: "}) {
    EXPECT_TRUE(has_problem(errors, expected)) << "missing: " << expected << "\n" << bad.error().message;
  }
}

TEST(Config, HttpTlsNeedsBothFilesAndEachMustBeReadable) {
  // parse_config only checks that the files exist and can be read; HttpServer::start() loads them.
  const std::string cert = ::testing::TempDir() + "runbot-tls.crt";
  const std::string key = ::testing::TempDir() + "runbot-tls.key";
  std::ofstream(cert) << "certificate chain\n";
  std::ofstream(key) << "private key\n";
  const std::string apps = "apps:\n  a:\n    repo: acme/a\n";

  auto c = parse_config("http:\n  port: 8443\n  tls_cert_file: " + cert + "\n  tls_key_file: " + key + "\n" + apps, {});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->http_port, 8443);
  EXPECT_EQ(c->http_tls_cert_file, cert);
  EXPECT_EQ(c->http_tls_key_file, key);

  auto plain = parse_config(demo_config_yaml(), {});
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ(plain->http_tls_cert_file, "");
  EXPECT_EQ(plain->http_tls_key_file, "");

  // A value from a variable, like every other string.
  auto from_env = parse_config("http:\n  tls_cert_file: ${CERT}\n  tls_key_file: ${KEY}\n" + apps,
                               {{"CERT", cert}, {"KEY", key}});
  ASSERT_TRUE(from_env) << from_env.error().message;
  EXPECT_EQ(from_env->http_tls_key_file, key);

  auto expect_only = [&](const std::string& yaml, const std::string& expected) {
    ConfigErrors errors;
    auto bad = parse_config(yaml + apps, {}, &errors);
    ASSERT_FALSE(bad) << yaml;
    ASSERT_EQ(errors.problems.size(), 1u) << bad.error().message;
    EXPECT_EQ(errors.problems[0], expected);
  };
  expect_only("http:\n  tls_cert_file: " + cert + "\n",
              "http.tls_key_file: is required when http.tls_cert_file is set (the certificate's private key)");
  expect_only("http:\n  tls_key_file: " + key + "\n",
              "http.tls_cert_file: is required when http.tls_key_file is set (the certificate chain)");
  expect_only("http:\n  tls_cert_file: /nonexistent/tls.crt\n  tls_key_file: " + key + "\n",
              "http.tls_cert_file: cannot read '/nonexistent/tls.crt'");
  expect_only("http:\n  tls_cert_file: " + cert + "\n  tls_key_file: /nonexistent/tls.key\n",
              "http.tls_key_file: cannot read '/nonexistent/tls.key'");
  expect_only("http:\n  tls_cert_file: ''\n  tls_key_file: " + key + "\n",
              "http.tls_cert_file: must not be empty (leave out both TLS keys for plain HTTP)");
  expect_only("http:\n  tls_certificate: " + cert + "\n",
              "http.tls_certificate: unknown key (expected one of: address, port, tls_cert_file, tls_key_file)");
}

}  // namespace
}  // namespace runbot::app
