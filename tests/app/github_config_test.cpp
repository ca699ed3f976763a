// provisioner.github: the github-dispatch backend's keys, their defaults, and every problem named
// with its path.
#include <map>

#include <gtest/gtest.h>

#include "tests/app/config_problems.h"

#include "bot/app/config.h"

namespace runbot::app {
namespace {

using testing::has_problem;

const std::string kApps = R"(
apps:
  front-end:
    repo: acme/front-end
    url: https://{env}.preview.example.com
)";

const std::map<std::string, std::string> kEnv{{"GITHUB_TOKEN", "ghp_secret"},
                                              {"GITHUB_WEBHOOK_SECRET", "0123456789abcdef0123"}};

TEST(GithubConfig, SectionIsParsedWithSecretsFromTheEnvironment) {
  auto c = parse_config(R"(
provisioner:
  backend: github-dispatch
  github:
    api_url: https://github.example.com/api/v3
    repository: acme/previews
    token: ${GITHUB_TOKEN}
    webhook_secret: ${GITHUB_WEBHOOK_SECRET}
    event_type_prefix: preview-
    webhook_path: /github/events
    timeout: 45m
)" + kApps,
                        kEnv);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->provisioner.backend, "github-dispatch");
  const auto& g = c->provisioner.github;
  EXPECT_EQ(g.api_url, "https://github.example.com/api/v3");
  EXPECT_EQ(g.repository, "acme/previews");
  EXPECT_EQ(g.token, "ghp_secret");
  EXPECT_EQ(g.webhook_secret, "0123456789abcdef0123");
  EXPECT_EQ(g.event_type_prefix, "preview-");
  EXPECT_EQ(g.webhook_path, "/github/events");
  EXPECT_EQ(g.timeout, std::chrono::minutes(45));
}

TEST(GithubConfig, DefaultsFollowGitHub) {
  auto c = parse_config(R"(
provisioner:
  backend: github-dispatch
  github:
    repository: acme/previews
    token: ${GITHUB_TOKEN}
    webhook_secret: ${GITHUB_WEBHOOK_SECRET}
)" + kApps,
                        kEnv);
  ASSERT_TRUE(c) << c.error().message;
  const auto& g = c->provisioner.github;
  EXPECT_EQ(g.api_url, "https://api.github.com");
  EXPECT_EQ(g.event_type_prefix, "runbot-");
  EXPECT_EQ(g.webhook_path, "/hooks/github");
  EXPECT_EQ(g.timeout, std::chrono::minutes(30));
  EXPECT_EQ(g.ca_file, "");
}

TEST(GithubConfig, EveryProblemIsNamedWithItsPath) {
  ConfigErrors errors;
  auto bad = parse_config(R"(
http:
  port: -1
provisioner:
  backend: github-dispatch
  github:
    api_url: http://api.github.com
    repository: previews
    token: ${GITHUB_TOKEN}
    webhook_secret: short
    webhook_path: /healthz
    timeout: 0s
    ca_file: /nonexistent/ca.pem
    colour: blue
)" + kApps,
                          {}, &errors);
  ASSERT_FALSE(bad);
  for (const char* expected :
       {"provisioner.github.api_url: must be an https:// URL",
        "provisioner.github.repository: must be owner/name, got 'previews'",
        "provisioner.github.token: environment variable GITHUB_TOKEN is not set",
        "provisioner.github.webhook_secret: must be at least 16 characters",
        "provisioner.github.webhook_path: '/healthz' is already one of runbot's own paths",
        "provisioner.github.ca_file: cannot read '/nonexistent/ca.pem'",
        "provisioner.github.colour: unknown key",
        "http.port: is -1 (no HTTP server), but the github-dispatch provisioner needs one"}) {
    EXPECT_TRUE(has_problem(errors, expected)) << "missing: " << expected << "\n"
                                               << bad.error().message;
  }
  EXPECT_FALSE(has_problem(errors, "provisioner.github.token: is required"))
      << "one problem per key: the unset variable says it already";
}

TEST(GithubConfig, TheBackendNeedsItsSection) {
  ConfigErrors errors;
  auto bad = parse_config("provisioner:\n  backend: github-dispatch\n" + kApps, {}, &errors);
  ASSERT_FALSE(bad);
  EXPECT_TRUE(has_problem(errors, "provisioner.github: is required when provisioner.backend is github-dispatch"))
      << bad.error().message;
  auto missing = parse_config(R"(
provisioner:
  backend: github-dispatch
  github:
    api_url: https://api.github.com
)" + kApps,
                              {}, &errors);
  ASSERT_FALSE(missing);
  for (const char* expected : {"provisioner.github.repository: is required",
                               "provisioner.github.token: is required",
                               "provisioner.github.webhook_secret: is required"}) {
    EXPECT_TRUE(has_problem(errors, expected)) << "missing: " << expected;
  }
  // Another backend leaves a prepared section alone.
  auto exec = parse_config(R"(
provisioner:
  backend: exec
  exec:
    program: /bin/true
  github:
    repository: acme/previews
)" + kApps,
                           {});
  EXPECT_TRUE(exec) << exec.error().message;
  ConfigErrors wrong;
  EXPECT_FALSE(parse_config("provisioner:\n  backend: github\n" + kApps, {}, &wrong));
  EXPECT_TRUE(has_problem(wrong, "provisioner.backend: must be exec, github-dispatch or demo"));
}

}  // namespace
}  // namespace runbot::app
