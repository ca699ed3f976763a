// The `teams:` configuration section: parsing, secrets, and every problem named with its path.
#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "tests/app/config_problems.h"

#include "bot/app/config.h"

namespace runbot::app {
namespace {

const std::string kTeams = R"(
teams:
  app_id: 6c0b5c6e-1b2f-4c1e-9a57-6f0d8d1a2b3c
  app_password: ${TEAMS_APP_PASSWORD}
  tenant_id: 5e7a0c1d-aaaa-4bbb-8ccc-0123456789ab
)";

using testing::has_problem;

TEST(TeamsConfig, SectionIsParsedWithTheSecretFromTheEnvironment) {
  auto c = parse_config(demo_config_yaml() + kTeams + R"(
  messaging_path: /bot/messages
  token_url: https://login.example.test/tenant/oauth2/v2.0/token
  openid_metadata_url: https://login.example.test/v1/.well-known/openidconfiguration
  greet_on_install: false
  request_timeout: 5s
  messages_per_second: 1
  burst: 3
)",
                        {{"TEAMS_APP_PASSWORD", "s3cret"}});
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_TRUE(c->teams.has_value());
  EXPECT_EQ(c->teams->auth.app_id, "6c0b5c6e-1b2f-4c1e-9a57-6f0d8d1a2b3c");
  EXPECT_EQ(c->teams->connector.app_id, c->teams->auth.app_id) << "one app id for both directions";
  EXPECT_EQ(c->teams->connector.app_password, "s3cret");
  EXPECT_EQ(c->teams->connector.tenant_id, "5e7a0c1d-aaaa-4bbb-8ccc-0123456789ab");
  EXPECT_EQ(c->teams->connector.token_url, "https://login.example.test/tenant/oauth2/v2.0/token");
  EXPECT_EQ(c->teams->auth.openid_metadata_url,
            "https://login.example.test/v1/.well-known/openidconfiguration");
  EXPECT_EQ(c->teams->adapter.messaging_path, "/bot/messages");
  EXPECT_FALSE(c->teams->adapter.greet_on_install);
  EXPECT_EQ(c->teams->connector.timeout, std::chrono::seconds(5));
  EXPECT_EQ(c->teams_outbox.messages_per_second, 1.0);
  EXPECT_EQ(c->teams_outbox.burst, 3.0);
}

TEST(TeamsConfig, DefaultsFollowTheProtocol) {
  auto c = parse_config(demo_config_yaml() + kTeams, {{"TEAMS_APP_PASSWORD", "s3cret"}});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->teams->adapter.messaging_path, "/api/messages");
  EXPECT_EQ(c->teams->auth.openid_metadata_url,
            "https://login.botframework.com/v1/.well-known/openidconfiguration");
  EXPECT_EQ(c->teams->connector.token_url, "") << "derived from the tenant";
  // Under 7/s, 8/2 s and 60/30 s per conversation: burst + rate·window stays inside each.
  EXPECT_LE(c->teams_outbox.burst + 1 * c->teams_outbox.messages_per_second, 7.0);
  EXPECT_LE(c->teams_outbox.burst + 2 * c->teams_outbox.messages_per_second, 8.0);
  EXPECT_LE(c->teams_outbox.burst + 30 * c->teams_outbox.messages_per_second, 60.0);
  // …and 1800 an hour, which the bucket alone would exceed (1.5/s is 5400 an hour).
  EXPECT_EQ(c->teams_outbox.window, std::chrono::hours(1));
  EXPECT_EQ(c->teams_outbox.window_max, 1800u);

  const std::map<std::string, std::string> env{{"TEAMS_APP_PASSWORD", "s3cret"}};
  auto off = parse_config(demo_config_yaml() + kTeams + "  messages_per_hour: 0\n", env);
  ASSERT_TRUE(off) << off.error().message;
  EXPECT_EQ(off->teams_outbox.window_max, 0u);
  ConfigErrors errors;
  EXPECT_FALSE(parse_config(demo_config_yaml() + kTeams + "  messages_per_hour: 12.5\n", env, &errors));
  EXPECT_TRUE(has_problem(errors, "teams.messages_per_hour: must be a whole number"))
      << ::testing::PrintToString(errors.problems);
}

TEST(TeamsConfig, PasswordFromAFile) {
  const std::string path = ::testing::TempDir() + "/teams-password";
  {
    std::ofstream f(path);
    f << "from-file\n";
  }
  auto c = parse_config(
      demo_config_yaml() +
          "teams:\n  app_id: 6c0b5c6e-1b2f-4c1e-9a57-6f0d8d1a2b3c\n  app_password: ${file:" + path +
          "}\n  tenant_id: t\n",
      {});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->teams->connector.app_password, "from-file");
}

TEST(TeamsConfig, EveryProblemIsNamedWithItsPath) {
  ConfigErrors errors;
  auto c = parse_config(demo_config_yaml() + R"(
teams:
  app_id: not-a-guid
  app_password: ${MISSING_SECRET}
  token_url: http://login.example.test/token
  openid_metadata_url: ftp://x
  messaging_path: api/messages
  ca_file: /nonexistent/ca.pem
  bogus: 1
)",
                        {}, &errors);
  ASSERT_FALSE(c);
  for (const char* expected :
       {"teams.app_id: must be the Microsoft App ID",
        "teams.app_password: environment variable MISSING_SECRET is not set",
        "teams.tenant_id: is required", "teams.token_url: must be an https:// URL",
        "teams.openid_metadata_url: must be an https:// URL",
        "teams.messaging_path: must start with /", "teams.ca_file: cannot read",
        "teams.bogus: unknown key"}) {
    EXPECT_TRUE(has_problem(errors, expected)) << "missing: " << expected << "\n"
                                               << c.error().message;
  }
  // The secret's value never appears in a problem.
  for (const auto& p : errors.problems) EXPECT_EQ(p.find("s3cret"), std::string::npos);
}

TEST(TeamsConfig, AppIdAndPasswordAreRequired) {
  ConfigErrors errors;
  auto c = parse_config(demo_config_yaml() + "teams:\n  tenant_id: t\n", {}, &errors);
  ASSERT_FALSE(c);
  EXPECT_TRUE(has_problem(errors, "teams.app_id: is required"));
  EXPECT_TRUE(has_problem(errors, "teams.app_password: is required"));
}

TEST(TeamsConfig, DisabledSectionBuildsNoAdapterButIsStillChecked) {
  auto c = parse_config(demo_config_yaml() + kTeams + "  enabled: false\n",
                        {{"TEAMS_APP_PASSWORD", "x"}});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_FALSE(c->teams.has_value());
  EXPECT_FALSE(parse_config(demo_config_yaml() + kTeams + "  enabled: false\n  messaging_path: x\n",
                            {{"TEAMS_APP_PASSWORD", "x"}}));
}

TEST(TeamsConfig, TeamsNeedsTheHttpServer) {
  ConfigErrors errors;
  auto c = parse_config(demo_config_yaml() + kTeams,
                        {{"TEAMS_APP_PASSWORD", "x"}, {"RUNBOT_HTTP_PORT", "-1"}}, &errors);
  ASSERT_FALSE(c);
  EXPECT_TRUE(has_problem(errors, "http.port: is -1 (no HTTP server), but teams needs one"))
      << c.error().message;
}

TEST(TeamsConfig, TeamsDestinationsMustBeConversationIds) {
  ConfigErrors errors;
  auto c =
      parse_config(demo_config_yaml() + kTeams + "policy:\n  approvals_channel: teams:general\n",
                   {{"TEAMS_APP_PASSWORD", "x"}}, &errors);
  ASSERT_FALSE(c);
  EXPECT_TRUE(has_problem(errors, "policy.approvals_channel: must be a Teams channel id"))
      << c.error().message;

  auto ok = parse_config(demo_config_yaml() + kTeams +
                             "policy:\n  approvals_channel: teams:19:0b7f2d8e9a@thread.tacv2\n",
                         {{"TEAMS_APP_PASSWORD", "x"}});
  EXPECT_TRUE(ok) << ok.error().message;

  ConfigErrors no_section;
  auto missing =
      parse_config(demo_config_yaml() + "policy:\n  approvals_channel: teams:19:x@thread.tacv2\n",
                   {}, &no_section);
  ASSERT_FALSE(missing);
  EXPECT_TRUE(has_problem(no_section,
                          "policy.approvals_channel: names a Teams conversation, but there is no"))
      << missing.error().message;
}

// E-mail bindings make the adapter ask the Bot Connector who is asking; group bindings ask
// Microsoft Graph.
TEST(TeamsConfig, EmailLookupsFollowThePolicyAndTheIdentityCacheIsValidated) {
  const std::map<std::string, std::string> env{{"TEAMS_APP_PASSWORD", "s3cret"}};
  auto emails = parse_config(demo_config_yaml() + kTeams + R"(  identity_cache: 5m
policy:
  bindings:
    - {role: developer, emails: [dev@acme.dev]}
)",
                             env);
  ASSERT_TRUE(emails) << emails.error().message;
  EXPECT_TRUE(emails->teams->adapter.lookup_email);
  EXPECT_EQ(emails->teams->adapter.identity_cache_ttl, std::chrono::minutes(5));

  auto elsewhere = parse_config(demo_config_yaml() + kTeams + R"(
policy:
  bindings:
    - {role: developer, platform: slack, emails: [dev@acme.dev]}
    - {role: operator, groups: [sre]}
)",
                                env);
  ASSERT_TRUE(elsewhere) << elsewhere.error().message;
  EXPECT_FALSE(elsewhere->teams->adapter.lookup_email)
      << "a Slack-only e-mail binding needs no Teams e-mail lookup";
  EXPECT_TRUE(elsewhere->teams->adapter.lookup_groups) << "a group binding for every platform";
  EXPECT_FALSE(emails->teams->adapter.lookup_groups);
  EXPECT_EQ(elsewhere->teams->adapter.identity_cache_ttl, std::chrono::minutes(10))
      << "the default";

  for (const char* bad : {"25h", "500ms", "soon"}) {
    ConfigErrors errors;
    auto c =
        parse_config(demo_config_yaml() + kTeams + "  identity_cache: " + bad + "\n", env, &errors);
    EXPECT_FALSE(c) << bad;
    EXPECT_TRUE(has_problem(errors, "teams.identity_cache: "))
        << bad << "\n"
        << ::testing::PrintToString(errors.problems);
  }
}

TEST(TeamsConfig, GraphDefaultsToTheGlobalCloudAndItsScopeFollowsTheUrl) {
  const std::map<std::string, std::string> env{{"TEAMS_APP_PASSWORD", "s3cret"}};
  auto global = parse_config(demo_config_yaml() + kTeams, env);
  ASSERT_TRUE(global) << global.error().message;
  EXPECT_EQ(global->teams->graph.url, "https://graph.microsoft.com/v1.0");
  EXPECT_EQ(global->teams->graph.scope, "https://graph.microsoft.com/.default");

  auto gov = parse_config(demo_config_yaml() + kTeams + "  graph_url: https://graph.microsoft.us/v1.0\n", env);
  ASSERT_TRUE(gov) << gov.error().message;
  EXPECT_EQ(gov->teams->graph.url, "https://graph.microsoft.us/v1.0");
  EXPECT_EQ(gov->teams->graph.scope, "https://graph.microsoft.us/.default");

  auto test = parse_config(demo_config_yaml() + kTeams +
                               "  graph_url: https://127.0.0.1:8443/graph/v1.0\n"
                               "  graph_scope: https://graph.microsoft.com/.default\n",
                           env);
  ASSERT_TRUE(test) << test.error().message;
  EXPECT_EQ(test->teams->graph.scope, "https://graph.microsoft.com/.default") << "given, not derived";

  for (const char* bad : {"http://graph.microsoft.com/v1.0", "graph.microsoft.com", "https://"}) {
    ConfigErrors errors;
    EXPECT_FALSE(parse_config(demo_config_yaml() + kTeams + "  graph_url: " + bad + "\n", env, &errors))
        << bad;
    EXPECT_TRUE(has_problem(errors, "teams.graph_url: must be an https:// URL"))
        << bad << "\n"
        << ::testing::PrintToString(errors.problems);
  }
}

}  // namespace
}  // namespace runbot::app
