// The Teams renderer against golden files (one per notification the announcer produces, plus
// Teams-specific cases) and against what a Teams user would notice: card layout, buttons and
// their fallbacks, mentions, size. Regenerate the goldens after an intended change with
//   RUNBOT_UPDATE_GOLDEN=1 ctest -R TeamsRenderer
// and review the diff; a normal run only compares.
#include "adapters/teams/teams_renderer.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "tests/support/announcer_cases.h"

#include "bot/announcer.h"
#include "bot/command.h"

namespace runbot::teams {
namespace {

using namespace std::chrono_literals;
using bot::Message;
using nlohmann::json;

constexpr const char* kGoldenDir = RUNBOT_TEAMS_GOLDEN_DIR;
constexpr const char* kAlice = "29:1abcAliceXyZ";
constexpr const char* kBob = "29:1defBobQwErT";

using Fixture = testing::AnnouncerFixture;
using testing::announcer_cases;

RenderOptions names() {
  RenderOptions o;
  o.names = {{kAlice, "Alice"}, {kBob, "Bob"}};
  return o;
}

// The announcer's interruption with Teams user ids: mentions become <at> tags with entities.
Message teams_interruption() {
  Fixture f;
  f.env.owner = bot::UserId{kAlice};
  return bot::announce::interruption(f.env, f.spot(), f.now);
}

Message teams_interruption_summary() {
  Fixture f;
  f.env.owner = bot::UserId{kAlice};
  bot::Environment other = f.env;
  other.id = bot::EnvId{"api-pr-7"};
  other.owner = bot::UserId{kBob};
  const std::vector<const bot::Environment*> affected = {&f.env, &other};
  return bot::announce::interruption_summary(f.spot(), affected, f.now);
}

Message long_log_failure(std::size_t lines) {
  Fixture f;
  bot::LifecycleEvent failure;
  failure.kind = bot::LifecycleKind::failed;
  failure.stage = "migrate";
  failure.reason = "database migration failed";
  failure.exit_status = 3;
  for (std::size_t i = 1; i <= lines; ++i) {
    failure.log_tail.push_back(
        "2026-11-26T11:59:" + std::to_string(10 + i % 50) + "Z migrate step " + std::to_string(i) +
        ": ALTER TABLE orders ADD COLUMN note_" + std::to_string(i) + " text");
  }
  return bot::announce::failed(f.env, f.app, failure);
}

std::map<std::string, Message> all_golden_cases() {
  auto cases = announcer_cases();
  cases["teams_interruption_mentions"] = teams_interruption();
  cases["teams_interruption_summary_mentions"] = teams_interruption_summary();
  cases["truncated_long_log"] = long_log_failure(600);
  return cases;
}

bool updating_goldens() {
  const char* v = std::getenv("RUNBOT_UPDATE_GOLDEN");
  return v != nullptr && std::string(v) == "1";
}

std::filesystem::path golden_path(const std::string& name) {
  return std::filesystem::path(kGoldenDir) / (name + ".json");
}

const json& card_of(const json& activity) {
  return activity["attachments"][0]["content"];
}

std::string body_text(const json& activity) {
  std::string out;
  auto walk = [&out](const json& items, auto& self) -> void {
    for (const auto& b : items) {
      if (b["type"] == "TextBlock") out += b["text"].get<std::string>() + "\n";
      if (b["type"] == "Container") self(b["items"], self);
      if (b["type"] == "FactSet") {
        for (const auto& f : b["facts"])
          out += f["title"].get<std::string>() + ": " + f["value"].get<std::string>() + "\n";
      }
    }
  };
  walk(card_of(activity)["body"], walk);
  return out;
}

std::size_t bytes(const json& activity) {
  return activity.dump().size();
}

// ---------------------------------------------------------------------------------------------
// Golden files

class TeamsRendererGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(TeamsRendererGolden, MatchesGoldenFile) {
  const auto cases = all_golden_cases();
  const json rendered = render(cases.at(GetParam()), names());
  const auto path = golden_path(GetParam());
  if (updating_goldens()) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream out(path);
    out << rendered.dump(2) << '\n';
    ASSERT_TRUE(out.good()) << "cannot write " << path;
    return;
  }
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << path << " is missing; run with RUNBOT_UPDATE_GOLDEN=1 to create it";
  const json golden = json::parse(in);
  EXPECT_TRUE(rendered == golden)
      << path
      << " differs; JSON patch from golden to rendered: " << json::diff(golden, rendered).dump(2)
      << "\nIf the change is intended, rerun with RUNBOT_UPDATE_GOLDEN=1 and review the diff.";
}

std::vector<std::string> golden_names() {
  std::vector<std::string> out;
  for (const auto& [name, message] : all_golden_cases()) out.push_back(name);
  return out;
}

INSTANTIATE_TEST_SUITE_P(AllNotifications, TeamsRendererGolden, ::testing::ValuesIn(golden_names()),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           return param.param;
                         });

TEST(TeamsRenderer, EveryGoldenFileBelongsToACase) {
  const auto cases = all_golden_cases();
  for (const auto& entry : std::filesystem::directory_iterator(kGoldenDir)) {
    if (entry.path().extension() != ".json") continue;
    EXPECT_TRUE(cases.count(entry.path().stem().string())) << "stale golden file " << entry.path();
  }
}

// ---------------------------------------------------------------------------------------------
// What a Teams user sees

TEST(TeamsRenderer, EveryNotificationIsOneAdaptiveCard15UnderTheSizeBudget) {
  for (const auto& [name, m] : all_golden_cases()) {
    const json a = render(m, names());
    EXPECT_EQ(a["type"], "message") << name;
    ASSERT_EQ(a["attachments"].size(), 1u) << name;
    EXPECT_EQ(a["attachments"][0]["contentType"], "application/vnd.microsoft.card.adaptive")
        << name;
    EXPECT_EQ(card_of(a)["type"], "AdaptiveCard") << name;
    EXPECT_EQ(card_of(a)["version"], "1.5") << name;
    EXPECT_FALSE(card_of(a)["body"].empty()) << name;
    EXPECT_FALSE(a["summary"].get<std::string>().empty()) << name;
    EXPECT_LE(bytes(a), kMaxActivityBytes) << name;
  }
}

TEST(TeamsRenderer, TitleIsBoldAndColouredBySeverity) {
  const auto cases = announcer_cases();
  const json failed = render(cases.at("failed"));
  const json& title = card_of(failed)["body"][0];
  EXPECT_EQ(title["text"], "front-end-pr-123 failed at stage deploy");
  EXPECT_EQ(title["weight"], "Bolder");
  EXPECT_EQ(title["color"], "Attention");
  EXPECT_EQ(card_of(render(cases.at("ready")))["body"][0]["color"], "Good");
  EXPECT_EQ(card_of(render(cases.at("ttl_warning")))["body"][0]["color"], "Warning");
}

TEST(TeamsRenderer, ReadyEnvironmentHasOpenExtendTearDownButtons) {
  Fixture f;
  const json card = card_of(render(bot::announce::ready(f.env, f.app, 5min, 4h)));
  const json& actions = card["actions"];
  ASSERT_EQ(actions.size(), 3u);
  EXPECT_EQ(actions[0]["type"], "Action.OpenUrl");
  EXPECT_EQ(actions[0]["title"], "Open");
  EXPECT_EQ(actions[0]["url"], "https://front-end-pr-123.preview.example.com");

  EXPECT_EQ(actions[1]["type"], "Action.Execute");
  EXPECT_EQ(actions[1]["title"], "Extend 4h");
  EXPECT_EQ(actions[1]["verb"], "extend");
  EXPECT_EQ(actions[1]["data"], (json{{"action", "extend"}, {"value", "front-end-pr-123 4h"}}));
  EXPECT_EQ(actions[2]["verb"], "down");
  EXPECT_EQ(actions[2]["style"], "destructive");
  // What a click sends back maps to the command a user could type.
  EXPECT_EQ(*bot::command_for_button(actions[2]["data"]["action"].get<std::string>(),
                                     actions[2]["data"]["value"].get<std::string>()),
            "down front-end-pr-123");
}

TEST(TeamsRenderer, ExecuteButtonsFallBackToSubmitWithTheSameData) {
  const auto cases = announcer_cases();
  for (const char* name : {"ready", "failed", "ttl_warning", "confirmation"}) {
    for (const auto& a : card_of(render(cases.at(name)))["actions"]) {
      if (a["type"] == "Action.OpenUrl") continue;
      ASSERT_EQ(a["type"], "Action.Execute") << name;
      ASSERT_TRUE(a.contains("fallback")) << name << " " << a.dump();
      EXPECT_EQ(a["fallback"]["type"], "Action.Submit");
      EXPECT_EQ(a["fallback"]["data"], a["data"]);
      EXPECT_EQ(a["fallback"]["title"], a["title"]);
    }
  }
}

TEST(TeamsRenderer, ConfirmationHasYesAndNoButtons) {
  const json card = card_of(render(announcer_cases().at("confirmation")));
  ASSERT_EQ(card["actions"].size(), 2u);
  EXPECT_EQ(card["actions"][0]["data"], (json{{"action", "confirm"}, {"value", "yes"}}));
  EXPECT_EQ(card["actions"][1]["data"], (json{{"action", "confirm"}, {"value", "no"}}));
  EXPECT_EQ(*bot::command_for_button("confirm", "yes"), "yes");
}

TEST(TeamsRenderer, FieldsBecomeAFactSet) {
  const json card = card_of(render(announcer_cases().at("status_card_ready")));
  bool found = false;
  for (const auto& b : card["body"]) {
    if (b["type"] != "FactSet") continue;
    found = true;
    EXPECT_FALSE(b["facts"].empty());
    for (const auto& f : b["facts"]) {
      EXPECT_TRUE(f["title"].is_string());
      EXPECT_TRUE(f["value"].is_string());
    }
  }
  EXPECT_TRUE(found) << card.dump(2);
}

TEST(TeamsRenderer, LogLinesAreMonospaceInOrder) {
  const json card = card_of(render(announcer_cases().at("failed")));
  std::vector<std::string> lines;
  for (const auto& b : card["body"]) {
    if (b["type"] != "Container") continue;
    for (const auto& t : b["items"]) {
      EXPECT_EQ(t["fontType"], "Monospace");
      lines.push_back(t["text"]);
    }
  }
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "Release \"front-end-pr-123\" does not exist. Installing it now.");
  EXPECT_EQ(lines[2], "pod/front-end-7d9f4b-x2x8l  0/1  CrashLoopBackOff  4  2m");
}

TEST(TeamsRenderer, MentionOfATeamsUserIsAnAtTagWithAMatchingEntity) {
  const json a = render(teams_interruption(), names());
  const std::string text = body_text(a);
  EXPECT_NE(text.find("<at>Alice</at>, front-end-pr-123 runs on this node"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("@29:"), std::string::npos) << text;
  const json& entities = card_of(a)["msteams"]["entities"];
  ASSERT_EQ(entities.size(), 1u);
  EXPECT_EQ(entities[0]["type"], "mention");
  EXPECT_EQ(entities[0]["text"], "<at>Alice</at>");
  EXPECT_EQ(entities[0]["mentioned"]["id"], kAlice);
  EXPECT_EQ(entities[0]["mentioned"]["name"], "Alice");
}

TEST(TeamsRenderer, UnknownNameFallsBackToTheIdAndEveryEntityMatchesTheText) {
  const json a = render(teams_interruption_summary());  // no names known
  const std::string text = body_text(a);
  const json& entities = card_of(a)["msteams"]["entities"];
  ASSERT_EQ(entities.size(), 2u) << a.dump(2);
  for (const auto& e : entities) {
    EXPECT_NE(text.find(e["text"].get<std::string>()), std::string::npos) << e.dump();
    EXPECT_EQ(e["text"], "<at>" + e["mentioned"]["name"].get<std::string>() + "</at>");
  }
  EXPECT_EQ(entities[0]["mentioned"]["name"], kAlice);
}

TEST(TeamsRenderer, NonTeamsIdsStayPlainTextWithoutEntities) {
  // Slack-style ids in a Teams card would make the connector refuse the mention entity.
  const json a = render(announcer_cases().at("interruption"));
  EXPECT_NE(body_text(a).find("@U024BE7LH"), std::string::npos);
  EXPECT_FALSE(card_of(a)["msteams"].contains("entities"));
}

TEST(TeamsRenderer, LongLogKeepsTheNewestLinesAndSaysSomeWereCut) {
  const Message m = long_log_failure(600);
  const json a = render(m);
  EXPECT_LE(bytes(a), kMaxActivityBytes);
  const std::string text = body_text(a);
  EXPECT_NE(text.find("earlier lines not shown: too long for a Teams message"), std::string::npos);
  EXPECT_NE(text.find(m.code.back()), std::string::npos) << "the newest log line must survive";
  EXPECT_EQ(text.find(m.code.front() + "\n"), std::string::npos);
  EXPECT_EQ(card_of(a)["actions"].size(), 2u) << "Retry and Tear down survive";
}

TEST(TeamsRenderer, HugeTextIsShortenedVisibly) {
  Message m;
  m.kind = bot::NoticeKind::reply;
  m.title = "describe front-end-pr-123";
  for (int i = 0; i < 3000; ++i) m.text += "event " + std::to_string(i) + " happened\n";
  RenderOptions o;
  const json a = render(m, o);
  EXPECT_LE(bytes(a), kMaxActivityBytes);
  const std::string text = body_text(a);
  EXPECT_NE(text.find("describe front-end-pr-123"), std::string::npos);
  EXPECT_NE(text.find("(text shortened: too long for a Teams message)"), std::string::npos);
  EXPECT_NE(text.find("event 0 happened"), std::string::npos);
}

TEST(TeamsRenderer, SmallerBudgetIsRespected) {
  RenderOptions o;
  o.max_bytes = 4000;
  for (const auto& [name, m] : all_golden_cases()) EXPECT_LE(bytes(render(m, o)), 4000u) << name;
}

TEST(TeamsRenderer, EmptyMessageStillSaysSomething) {
  Message m;
  m.kind = bot::NoticeKind::updated;
  const json a = render(m);
  EXPECT_EQ(card_of(a)["body"][0]["text"], "runbot updated");
  EXPECT_EQ(a["summary"], "runbot updated");
}

TEST(TeamsRenderer, PlainTextForToastsIsBounded) {
  EXPECT_EQ(render_plain(announcer_cases().at("extended")).find("front-end-pr-123"), 0u);
  Message m;
  m.title = std::string(5000, 'x');
  EXPECT_EQ(render_plain(m, 100), std::string(99, 'x') + "…");
}

TEST(TeamsRenderer, RecognisesTeamsUserIds) {
  EXPECT_TRUE(is_teams_user_id("29:1abcAliceXyZ"));
  EXPECT_TRUE(is_teams_user_id("8:orgid:7faf8ab2-3c4d-4e5f-8a9b-0c1d2e3f4a5b"));
  EXPECT_FALSE(is_teams_user_id("U024BE7LH"));
  EXPECT_FALSE(is_teams_user_id("28:608cacfd"));  // a bot
  EXPECT_FALSE(is_teams_user_id("29:"));
  EXPECT_FALSE(is_teams_user_id("29:abc<def>"));
}

}  // namespace
}  // namespace runbot::teams
