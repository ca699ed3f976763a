// The Slack renderer against golden files (one per notification the announcer produces, plus
// split cases) and against the rules a Slack user would notice: buttons, escaping, mentions,
// limits. Regenerate the goldens after an intended change with
//   RUNBOT_UPDATE_GOLDEN=1 ctest -R SlackRenderer
// and review the diff; a normal run only compares.
#include "adapters/slack/slack_renderer.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/support/announcer_cases.h"

#include "bot/announcer.h"
#include "bot/command.h"

namespace runbot::slack {
namespace {

using namespace std::chrono_literals;
using bot::Message;
using nlohmann::json;

constexpr const char* kGoldenDir = RUNBOT_SLACK_GOLDEN_DIR;

using Fixture = testing::AnnouncerFixture;
using testing::announcer_cases;

// A failure whose log tail is far over one message: split into payloads in order.
Message long_log_failure(std::size_t lines) {
  Fixture f;
  bot::LifecycleEvent failure;
  failure.kind = bot::LifecycleKind::failed;
  failure.stage = "migrate";
  failure.reason = "database migration failed";
  failure.exit_status = 3;
  for (std::size_t i = 1; i <= lines; ++i) {
    failure.log_tail.push_back("2026-11-26T11:59:" + std::to_string(10 + i % 50) + "Z migrate step " +
                               std::to_string(i) + ": ALTER TABLE orders ADD COLUMN note_" + std::to_string(i) +
                               " text <ok>");
  }
  return bot::announce::failed(f.env, f.app, failure);
}

std::map<std::string, Message> all_golden_cases() {
  auto cases = announcer_cases();
  cases["split_long_log"] = long_log_failure(400);
  return cases;
}

// ---------------------------------------------------------------------------------------------
// Helpers

std::size_t chars(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

json render_all(const Message& m) { return json(render(m)); }

std::vector<json> buttons_of(const std::vector<json>& payloads) {
  std::vector<json> out;
  for (const auto& p : payloads) {
    for (const auto& b : p["blocks"]) {
      if (b["type"] != "actions") continue;
      for (const auto& e : b["elements"]) out.push_back(e);
    }
  }
  return out;
}

std::string all_block_text(const std::vector<json>& payloads) {
  std::string out;
  for (const auto& p : payloads) out += p["blocks"].dump();
  return out;
}

// The limits Slack enforces (chat-protocols.md §1.8, §1.10); a violation rejects the whole post.
void expect_within_slack_limits(const std::vector<json>& payloads) {
  ASSERT_FALSE(payloads.empty());
  for (const auto& p : payloads) {
    ASSERT_TRUE(p.contains("text") && p["text"].is_string());
    EXPECT_FALSE(p["text"].get<std::string>().empty());
    EXPECT_LE(chars(p["text"].get<std::string>()), kMaxFallbackTextChars);
    ASSERT_TRUE(p["blocks"].is_array());
    EXPECT_GE(p["blocks"].size(), 1u);
    EXPECT_LE(p["blocks"].size(), kMaxBlocksPerPayload);
    std::size_t total = 0;
    for (const auto& b : p["blocks"]) {
      const std::string type = b["type"];
      total += chars(b.dump());
      if (type == "header") {
        EXPECT_EQ(b["text"]["type"], "plain_text");
        EXPECT_LE(chars(b["text"]["text"]), kMaxHeaderChars);
      } else if (type == "section") {
        ASSERT_TRUE(b.contains("text") || b.contains("fields")) << b.dump();
        if (b.contains("text")) {
          EXPECT_FALSE(b["text"]["text"].get<std::string>().empty());
          EXPECT_LE(chars(b["text"]["text"]), kMaxSectionTextChars);
        }
        if (b.contains("fields")) {
          EXPECT_GE(b["fields"].size(), 1u);
          EXPECT_LE(b["fields"].size(), kMaxFieldsPerSection);
          for (const auto& f : b["fields"]) EXPECT_LE(chars(f["text"]), kMaxFieldTextChars);
        }
      } else if (type == "context") {
        EXPECT_LE(b["elements"].size(), 10u);
        for (const auto& e : b["elements"]) EXPECT_LE(chars(e["text"]), kMaxContextTextChars);
      } else if (type == "actions") {
        EXPECT_GE(b["elements"].size(), 1u);
        EXPECT_LE(b["elements"].size(), kMaxActionsElements);
        std::set<std::string> ids;
        for (const auto& e : b["elements"]) {
          EXPECT_TRUE(ids.insert(e["action_id"].get<std::string>()).second)
              << "duplicate action_id in one actions block: " << b.dump();
          EXPECT_LE(chars(e["text"]["text"]), kMaxButtonTextChars);
          EXPECT_LE(chars(e["action_id"]), 255u);
          if (e.contains("value")) {
            EXPECT_LE(chars(e["value"]), kMaxButtonValueChars);
          }
          if (e.contains("url")) {
            EXPECT_LE(chars(e["url"]), kMaxButtonUrlChars);
          }
        }
      } else {
        ADD_FAILURE() << "unexpected block type " << type;
      }
    }
    EXPECT_LE(total, kMaxBlockCharsPerPayload);
  }
}

std::filesystem::path golden_path(const std::string& name) { return std::filesystem::path(kGoldenDir) / (name + ".json"); }

bool updating_goldens() {
  const char* v = std::getenv("RUNBOT_UPDATE_GOLDEN");
  return v != nullptr && std::string(v) == "1";
}

// ---------------------------------------------------------------------------------------------
// Golden files

class SlackRendererGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(SlackRendererGolden, MatchesGoldenFile) {
  const auto cases = all_golden_cases();
  const json rendered = render_all(cases.at(GetParam()));
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
  EXPECT_TRUE(rendered == golden) << path << " differs; JSON patch from golden to rendered: "
                              << json::diff(golden, rendered).dump(2)
                              << "\nIf the change is intended, rerun with RUNBOT_UPDATE_GOLDEN=1 and review the diff.";
}

std::vector<std::string> golden_names() {
  std::vector<std::string> names;
  for (const auto& [name, message] : all_golden_cases()) names.push_back(name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(AllNotifications, SlackRendererGolden, ::testing::ValuesIn(golden_names()),
                         [](const ::testing::TestParamInfo<std::string>& param) { return param.param; });

TEST(SlackRenderer, EveryGoldenFileBelongsToACase) {
  // A golden left behind by a renamed case would never be compared again.
  const auto cases = all_golden_cases();
  for (const auto& entry : std::filesystem::directory_iterator(kGoldenDir)) {
    if (entry.path().extension() != ".json") continue;
    EXPECT_TRUE(cases.count(entry.path().stem().string())) << "stale golden file " << entry.path();
  }
}

// ---------------------------------------------------------------------------------------------
// What a user sees

TEST(SlackRenderer, ReadyEnvironmentHasOpenExtendTearDownButtons) {
  Fixture f;
  const auto payloads = render(bot::announce::ready(f.env, f.app, 5min, 4h));
  ASSERT_EQ(payloads.size(), 1u);
  const auto buttons = buttons_of(payloads);
  ASSERT_EQ(buttons.size(), 3u);

  EXPECT_EQ(buttons[0]["text"]["text"], "Open");
  EXPECT_EQ(buttons[0]["action_id"], "open");
  EXPECT_EQ(buttons[0]["value"], "front-end-pr-123");
  EXPECT_EQ(buttons[0]["url"], "https://front-end-pr-123.preview.example.com");
  EXPECT_EQ(buttons[0]["style"], "primary");

  EXPECT_EQ(buttons[1]["text"]["text"], "Extend 4h");
  EXPECT_EQ(buttons[1]["action_id"], "extend");
  EXPECT_EQ(buttons[1]["value"], "front-end-pr-123 4h");
  EXPECT_FALSE(buttons[1].contains("url"));
  EXPECT_EQ(buttons[1]["style"], "primary");

  EXPECT_EQ(buttons[2]["text"]["text"], "Tear down");
  EXPECT_EQ(buttons[2]["action_id"], "down");
  EXPECT_EQ(buttons[2]["value"], "front-end-pr-123");
  EXPECT_EQ(buttons[2]["style"], "danger");
}

TEST(SlackRenderer, TearDownButtonHasNoSlackDialogBecauseTheBotAsksYesOrNo) {
  Fixture f;
  const auto buttons = buttons_of(render(bot::announce::ready(f.env, f.app, 5min, 4h)));
  ASSERT_EQ(buttons.size(), 3u);
  // One confirmation, the bot's own ("Reply yes or no"), on every platform: a Slack dialog on top
  // would ask twice.
  for (const auto& b : buttons) EXPECT_FALSE(b.contains("confirm")) << b.dump();
  EXPECT_EQ(*bot::command_for_button(buttons[2]["action_id"].get<std::string>(), buttons[2]["value"].get<std::string>()),
            "down front-end-pr-123");
}

TEST(SlackRenderer, TtlWarningOffersExtendAndLetItExpire) {
  const auto cases = announcer_cases();
  const auto payloads = render(cases.at("ttl_warning"));
  ASSERT_EQ(payloads.size(), 1u);
  const auto buttons = buttons_of(payloads);
  ASSERT_EQ(buttons.size(), 2u);
  EXPECT_EQ(buttons[0]["text"]["text"], "Extend 4h");
  EXPECT_EQ(buttons[0]["action_id"], "extend");
  EXPECT_EQ(buttons[0]["value"], "front-end-pr-123 4h");
  EXPECT_EQ(buttons[1]["text"]["text"], "Let it expire");
  EXPECT_EQ(buttons[1]["action_id"], "let_expire");
  EXPECT_EQ(buttons[1]["value"], "front-end-pr-123");
  EXPECT_FALSE(buttons[1].contains("style"));
  // The owner is pinged where Slack resolves mentions, and the warning is marked as one.
  const std::string first = payloads[0]["blocks"][0]["text"]["text"];
  EXPECT_EQ(first.rfind(":warning: *front-end-pr-123 expires in 30m*", 0), 0u) << first;
  EXPECT_NE(all_block_text(payloads).find("<@U024BE7LH>, it will be torn down"), std::string::npos);
}

TEST(SlackRenderer, FailedMessageShowsLogAsCodeBlockThenRetryAndTearDown) {
  const auto cases = announcer_cases();
  const auto payloads = render(cases.at("failed"));
  ASSERT_EQ(payloads.size(), 1u);
  const json& blocks = payloads[0]["blocks"];
  EXPECT_EQ(blocks[0]["text"]["text"], ":x: *front-end-pr-123 failed at stage deploy*");
  std::string code;
  for (const auto& b : blocks) {
    if (b.contains("text") && b["text"]["text"].get<std::string>().rfind("```", 0) == 0) code = b["text"]["text"];
  }
  EXPECT_EQ(code,
            "```\nRelease \"front-end-pr-123\" does not exist. Installing it now.\n"
            "Error: timed out waiting for the condition\n"
            "pod/front-end-7d9f4b-x2x8l  0/1  CrashLoopBackOff  4  2m\n```");
  const auto buttons = buttons_of(payloads);
  ASSERT_EQ(buttons.size(), 2u);
  EXPECT_EQ(buttons[0]["action_id"], "retry");
  EXPECT_EQ(buttons[0]["value"], "front-end 123");
  EXPECT_EQ(buttons[1]["action_id"], "down");
  EXPECT_EQ(blocks.back()["type"], "actions");
}

TEST(SlackRenderer, EveryNonLinkButtonIsACommandTheParserAccepts) {
  auto cases = all_golden_cases();
  std::size_t checked = 0;
  for (const auto& [name, message] : cases) {
    for (const auto& b : buttons_of(render(message))) {
      SCOPED_TRACE(name + ": " + b.dump());
      const std::string action = b["action_id"];
      const std::string value = b.value("value", "");
      const auto command = bot::command_for_button(action, value);
      if (b.contains("url")) {
        EXPECT_EQ(action, "open");
        continue;
      }
      ASSERT_TRUE(command.has_value()) << "no command for this button";
      const auto parsed = bot::parse_command(*command);
      EXPECT_TRUE(parsed.has_value()) << "'" << *command << "' rejected: " << parsed.error().message;
      ++checked;
    }
  }
  EXPECT_GE(checked, 10u);  // ready, failed, ttl warning, status card and the confirmation have some
}

TEST(SlackRenderer, ConfirmationYesAndNoKeepTheirActionIdInSeparateActionsBlocks) {
  const auto cases = announcer_cases();
  const auto payloads = render(cases.at("confirmation"));
  ASSERT_EQ(payloads.size(), 1u);
  std::vector<json> actions;
  for (const auto& b : payloads[0]["blocks"]) {
    if (b["type"] == "actions") actions.push_back(b);
  }
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[0]["elements"][0]["action_id"], "confirm");
  EXPECT_EQ(actions[0]["elements"][0]["value"], "yes");
  EXPECT_EQ(actions[0]["elements"][0]["style"], "primary");
  EXPECT_EQ(actions[1]["elements"][0]["action_id"], "confirm");
  EXPECT_EQ(actions[1]["elements"][0]["value"], "no");
  // Backticks in the title are Slack code spans; the user id is a mention.
  const std::string all = all_block_text(payloads);
  EXPECT_NE(all.find("Reply `yes` or `no`"), std::string::npos);
  EXPECT_NE(all.find("owned by <@U024BE7LH>."), std::string::npos);
}

TEST(SlackRenderer, EveryPayloadHasNonEmptyFallbackTextAndStaysWithinSlackLimits) {
  for (const auto& [name, message] : all_golden_cases()) {
    SCOPED_TRACE(name);
    expect_within_slack_limits(render(message));
  }
  Message empty;
  SCOPED_TRACE("empty message");
  expect_within_slack_limits(render(empty));
}

TEST(SlackRenderer, FallbackTextIsThePlainTextOfTheMessage) {
  const auto cases = announcer_cases();
  const auto payloads = render(cases.at("ready"));
  ASSERT_EQ(payloads.size(), 1u);
  EXPECT_EQ(payloads[0]["text"],
            "front-end-pr-123 is ready: https://front-end-pr-123.preview.example.com\n"
            "Took 5m · TTL 8h · $0.63/h · owner <@U024BE7LH>");
}

TEST(SlackRenderer, UserProvidedTextIsEscaped) {
  Message m;
  m.kind = bot::NoticeKind::failed;
  m.severity = bot::Severity::danger;
  m.title = "<script>alert(1)</script> & <!channel>";
  m.text = "see <https://evil.example|docs> & more";
  m.fields = {{"Reason <b>", "a > b"}};
  m.code = {"if (a < b && c > d) {}"};
  const auto payloads = render(m);
  ASSERT_EQ(payloads.size(), 1u);
  const json& blocks = payloads[0]["blocks"];
  EXPECT_EQ(blocks[0]["text"]["text"], ":x: *&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;!channel&gt;*");
  EXPECT_EQ(blocks[1]["text"]["text"], "see &lt;https://evil.example|docs&gt; &amp; more");
  EXPECT_EQ(blocks[2]["fields"][0]["text"], "*Reason &lt;b&gt;*\na &gt; b");
  EXPECT_EQ(blocks[3]["text"]["text"], "```\nif (a &lt; b &amp;&amp; c &gt; d) {}\n```");
  // The notification text is escaped too: no <!channel> ping, no disguised link.
  const std::string text = payloads[0]["text"];
  EXPECT_EQ(text.find('<'), std::string::npos) << text;
  EXPECT_NE(text.find("&lt;script&gt;"), std::string::npos);
}

TEST(SlackRenderer, MentionsAreSlackUserLinksAndEveryMentionedUserIsPinged) {
  const auto cases = announcer_cases();
  // The summary lists owners in a code block, where Slack shows "@U…" literally; they are still
  // pinged once each in a context line.
  const auto payloads = render(cases.at("interruption_summary"));
  ASSERT_EQ(payloads.size(), 1u);
  const json& blocks = payloads[0]["blocks"];
  bool cc_found = false;
  for (const auto& b : blocks) {
    if (b["type"] == "context") {
      EXPECT_EQ(b["elements"][0]["text"], "cc <@U024BE7LH> <@U0G9QF9C6>");
      cc_found = true;
    }
  }
  EXPECT_TRUE(cc_found) << blocks.dump(2);

  // A mention already in the text is not repeated.
  const auto ready = render(cases.at("ready"));
  const std::string all = all_block_text(ready);
  EXPECT_NE(all.find("owner <@U024BE7LH>"), std::string::npos);
  EXPECT_EQ(all.find("cc "), std::string::npos);

  // Something that only looks like an at-sign is left alone.
  Message m;
  m.title = "mail ops@UNKNOWN1 or @runbot, not a user; @U024BE7LH is";
  EXPECT_EQ(render(m)[0]["blocks"][0]["text"]["text"],
            "*mail ops@UNKNOWN1 or @runbot, not a user; <@U024BE7LH> is*");
}

TEST(SlackRenderer, SeverityIsShownAsAnEmojiBeforeTheTitle) {
  const auto cases = announcer_cases();
  auto first_text = [&](const std::string& name) -> std::string {
    return render(cases.at(name))[0]["blocks"][0]["text"]["text"];
  };
  EXPECT_EQ(first_text("ready").rfind(":white_check_mark: *", 0), 0u);
  EXPECT_EQ(first_text("failed").rfind(":x: *", 0), 0u);
  EXPECT_EQ(first_text("expired").rfind(":warning: *", 0), 0u);
  EXPECT_EQ(first_text("requested").rfind("*Environment front-end-pr-123", 0), 0u);  // info: no emoji
  // A title with its own glyph keeps it alone.
  EXPECT_EQ(first_text("interruption").rfind("*⚠ spot interruption", 0), 0u);
}

TEST(SlackRenderer, StatusCardIsOneCompactPayloadWithHeaderFieldsAndButtons) {
  const auto cases = announcer_cases();
  const auto payloads = render(cases.at("status_card_ready"));
  ASSERT_EQ(payloads.size(), 1u);
  const json& blocks = payloads[0]["blocks"];
  ASSERT_EQ(blocks.size(), 3u) << blocks.dump(2);
  EXPECT_EQ(blocks[0]["type"], "header");
  EXPECT_EQ(blocks[0]["text"]["text"], "✔ front-end-pr-123 · ready");
  EXPECT_EQ(blocks[1]["type"], "section");
  ASSERT_TRUE(blocks[1].contains("fields"));
  EXPECT_EQ(blocks[1]["fields"][0]["text"], "*App*\nfront-end (PR #123)");
  EXPECT_EQ(blocks[1]["fields"][1]["text"], "*Owner*\n<@U024BE7LH>");
  EXPECT_EQ(blocks[2]["type"], "actions");
  EXPECT_EQ(blocks[2]["elements"].size(), 3u);
}

TEST(SlackRenderer, StatusCardWithHugeValuesStillFitsOneEditableMessage) {
  Fixture f;
  f.env.url = "https://front-end-pr-123.preview.example.com/?" + std::string(5000, 'q');
  for (int i = 0; i < 300; ++i) f.env.nodes.push_back(bot::NodeName{"ip-10-0-9-" + std::to_string(i)});
  const auto payloads = render(bot::announce::status_card(f.env, f.app, f.now));
  ASSERT_EQ(payloads.size(), 1u);
  expect_within_slack_limits(payloads);
  const std::string all = all_block_text(payloads);
  EXPECT_NE(all.find("qqq…"), std::string::npos) << "a shortened value must say so";
  // The button cannot carry a url over Slack's limit; the rest of the card is intact.
  const auto buttons = buttons_of(payloads);
  ASSERT_EQ(buttons.size(), 3u);
  EXPECT_FALSE(buttons[0].contains("url"));
}

// ---------------------------------------------------------------------------------------------
// Splitting: nothing is lost, nothing is reordered, no payload is over a limit.

std::vector<std::string> code_lines_of(const std::vector<json>& payloads) {
  std::vector<std::string> lines;
  for (const auto& p : payloads) {
    for (const auto& b : p["blocks"]) {
      if (!b.contains("text")) continue;
      std::string t = b["text"]["text"];
      if (t.rfind("```\n", 0) != 0) continue;
      t = t.substr(4, t.size() - 8);
      std::istringstream in(t);
      for (std::string l; std::getline(in, l);) lines.push_back(l);
      if (!t.empty() && t.back() == '\n') lines.push_back("");
    }
  }
  return lines;
}

TEST(SlackRenderer, LongLogIsSplitAcrossPayloadsInOrderWithNothingLost) {
  const Message m = long_log_failure(400);
  const auto payloads = render(m);
  ASSERT_GE(payloads.size(), 3u);
  expect_within_slack_limits(payloads);

  std::vector<std::string> expected;
  for (const auto& l : m.code) expected.push_back(escape_mrkdwn(l));
  EXPECT_EQ(code_lines_of(payloads), expected);

  // The title opens the first payload, the buttons close the last, the others say what they continue.
  EXPECT_EQ(payloads.front()["blocks"][0]["text"]["text"], ":x: *front-end-pr-123 failed at stage migrate*");
  EXPECT_EQ(payloads.back()["blocks"].back()["type"], "actions");
  for (std::size_t k = 1; k < payloads.size(); ++k) {
    const std::string label = payloads[k]["blocks"][0]["elements"][0]["text"];
    EXPECT_EQ(label, "_front-end-pr-123 failed at stage migrate (part " + std::to_string(k + 1) + " of " +
                         std::to_string(payloads.size()) + ")_");
    EXPECT_EQ(payloads[k]["text"].get<std::string>().rfind("front-end-pr-123 failed at stage migrate (part ", 0), 0u);
  }
  EXPECT_EQ(buttons_of(payloads).size(), 2u);
}

TEST(SlackRenderer, HugeSingleLineIsSplitWithoutCuttingCharactersOrEntities) {
  Message m;
  m.title = "describe";
  std::string text;
  for (int i = 0; i < 4000; ++i) text += (i % 3 == 0) ? "é" : (i % 3 == 1 ? "&" : "x");
  m.text = text;
  const auto payloads = render(m);
  ASSERT_EQ(payloads.size(), 1u);
  expect_within_slack_limits(payloads);
  std::string joined;
  for (const auto& b : payloads[0]["blocks"]) {
    if (b.contains("text") && b["text"]["text"].get<std::string>() != "*describe*") joined += b["text"]["text"];
  }
  EXPECT_EQ(joined, escape_mrkdwn(text));
  // Every section is valid UTF-8 on its own: nlohmann would throw on a cut sequence.
  EXPECT_NO_THROW(payloads[0].dump());
  for (const auto& b : payloads[0]["blocks"]) {
    const std::string t = b["text"]["text"];
    std::size_t amps = 0;
    std::size_t entities = 0;
    for (std::size_t i = 0; i < t.size(); ++i) {
      amps += t[i] == '&';
      entities += t.compare(i, 5, "&amp;") == 0;
    }
    EXPECT_EQ(amps, entities) << "an entity was cut";
  }
}

TEST(SlackRenderer, ManyFieldsAreSplitIntoSectionsOfAtMostTen) {
  Message m;
  m.title = "status";
  for (int i = 1; i <= 23; ++i) m.fields.push_back({"Field " + std::to_string(i), "value " + std::to_string(i)});
  const auto payloads = render(m);
  ASSERT_EQ(payloads.size(), 1u);
  expect_within_slack_limits(payloads);
  std::vector<std::string> seen;
  for (const auto& b : payloads[0]["blocks"]) {
    if (!b.contains("fields")) continue;
    for (const auto& f : b["fields"]) seen.push_back(f["text"]);
  }
  ASSERT_EQ(seen.size(), 23u);
  EXPECT_EQ(seen.front(), "*Field 1*\nvalue 1");
  EXPECT_EQ(seen.back(), "*Field 23*\nvalue 23");
}

TEST(SlackRenderer, LongFieldValueContinuesInTheNextFieldUnderTheSameLabel) {
  Message m;
  m.title = "describe front-end-pr-123";
  m.fields = {{"Values", std::string(4500, 'v')}, {std::string(3000, 'L'), "x"}};
  const auto payloads = render(m);
  ASSERT_EQ(payloads.size(), 1u);
  expect_within_slack_limits(payloads);
  std::vector<std::string> fields;
  for (const auto& b : payloads[0]["blocks"]) {
    if (b.contains("fields")) {
      for (const auto& f : b["fields"]) fields.push_back(f["text"]);
    }
  }
  ASSERT_EQ(fields.size(), 4u);
  EXPECT_EQ(fields[0].rfind("*Values*\n", 0), 0u);
  EXPECT_EQ(fields[1].rfind("*Values (continued)*\n", 0), 0u);
  EXPECT_EQ(fields[2].rfind("*Values (continued)*\n", 0), 0u);
  EXPECT_EQ(fields[3].substr(fields[3].size() - 2), "\nx");  // an over-long label does not crowd out the value
}

TEST(SlackRenderer, ManyButtonsAreSplitIntoActionsBlocksOfAtMost25) {
  Message m;
  m.title = "pick one";
  for (int i = 1; i <= 30; ++i) {
    m.buttons.push_back({"Extend pr-" + std::to_string(i), "extend", "front-end-pr-" + std::to_string(i) + " 1h", ""});
  }
  // Same action in every button: Slack wants unique action ids per actions block.
  const auto payloads = render(m);
  expect_within_slack_limits(payloads);
  EXPECT_EQ(buttons_of(payloads).size(), 30u);

  Message distinct;
  distinct.title = "pick one";
  for (int i = 1; i <= 30; ++i) distinct.buttons.push_back({"B" + std::to_string(i), "a" + std::to_string(i), "v", ""});
  const auto p2 = render(distinct);
  expect_within_slack_limits(p2);
  std::vector<std::size_t> sizes;
  for (const auto& b : p2[0]["blocks"]) {
    if (b["type"] == "actions") sizes.push_back(b["elements"].size());
  }
  EXPECT_EQ(sizes, (std::vector<std::size_t>{25, 5}));
}

TEST(SlackRenderer, LongTextIsSplitAtLineBreaks) {
  Message m;
  m.title = "a long answer";
  for (int i = 0; i < 20; ++i) m.text += std::string(2000, static_cast<char>('a' + i)) + "\n";
  const auto payloads = render(m);
  ASSERT_GE(payloads.size(), 2u);
  expect_within_slack_limits(payloads);
  std::string joined;
  for (const auto& p : payloads) {
    for (const auto& b : p["blocks"]) {
      if (b["type"] != "section") continue;
      const std::string t = b["text"]["text"];
      if (t == "*a long answer*") continue;
      std::istringstream in(t);
      for (std::string line; std::getline(in, line);) EXPECT_EQ(line.size(), 2000u) << "a paragraph was cut";
      joined += t + "\n";
    }
  }
  EXPECT_TRUE(joined == m.text) << "sections are not the paragraphs in order";
}

TEST(SlackRenderer, ManySmallBlocksStayUnderFiftyPerPayload) {
  Message m;
  m.title = "usage";
  for (int i = 1; i <= 600; ++i) m.fields.push_back({"u" + std::to_string(i), std::to_string(i) + "h"});
  const auto payloads = render(m);
  ASSERT_GE(payloads.size(), 2u);
  expect_within_slack_limits(payloads);
  std::size_t fields = 0;
  std::string last;
  for (const auto& p : payloads) {
    for (const auto& b : p["blocks"]) {
      if (!b.contains("fields")) continue;
      fields += b["fields"].size();
      last = b["fields"].back()["text"];
    }
  }
  EXPECT_EQ(fields, 600u);
  EXPECT_EQ(last, "*u600*\n600h");
}

TEST(SlackRenderer, RenderingIsPure) {
  const Message m = long_log_failure(120);
  EXPECT_EQ(render(m), render(m));
}

}  // namespace
}  // namespace runbot::slack
