#include "bot/command.h"

#include <gtest/gtest.h>

namespace runbot::bot {
namespace {

Command parse_ok(const std::string& text) {
  auto r = parse_command(text);
  EXPECT_TRUE(r.has_value()) << text << " -> " << (r ? "" : r.error().message);
  return r ? *r : Command{};
}

std::string parse_error(const std::string& text) {
  auto r = parse_command(text);
  EXPECT_FALSE(r.has_value()) << text << " unexpectedly parsed";
  return r ? "" : r.error().message;
}

TEST(CommandGrammar, UpTakesAppPrAndOptions) {
  Command c = parse_ok("/ephemeral up front-end pr-123 --ttl 4h --image sha-1 --set a=b --set=c=d=e");
  EXPECT_EQ(c.verb, Verb::up);
  EXPECT_EQ(c.app.str(), "front-end");
  EXPECT_EQ(c.pr, 123);
  EXPECT_EQ(c.ttl, std::chrono::hours(4));
  EXPECT_EQ(c.image, "sha-1");
  EXPECT_EQ(c.values.at("a"), "b");
  EXPECT_EQ(c.values.at("c"), "d=e");
}

TEST(CommandGrammar, PrAcceptsCommonSpellings) {
  EXPECT_EQ(parse_ok("up app 7").pr, 7);
  EXPECT_EQ(parse_ok("up app #8").pr, 8);
  EXPECT_EQ(parse_ok("up app PR-9").pr, 9);
  EXPECT_EQ(parse_ok("up app pr10").pr, 10);
}

TEST(CommandGrammar, MentionsAndSlashPrefixAreStripped) {
  EXPECT_EQ(parse_ok("@runbot list").verb, Verb::list);
  EXPECT_EQ(parse_ok("<@U024BE7LH> status").verb, Verb::status);
  EXPECT_EQ(parse_ok("/ephemeral nodes").verb, Verb::nodes);
  EXPECT_EQ(parse_ok("  HELP  ").verb, Verb::help);
}

TEST(CommandGrammar, EveryVerbParsesWithItsArguments) {
  EXPECT_EQ(parse_ok("down front-end-pr-1").env.str(), "front-end-pr-1");
  Command e = parse_ok("extend front-end-pr-1 90m");
  EXPECT_EQ(e.duration, std::chrono::minutes(90));
  EXPECT_EQ(parse_ok("suspend a-pr-1").verb, Verb::suspend);
  EXPECT_EQ(parse_ok("resume a-pr-1").verb, Verb::resume);
  Command l = parse_ok("list --mine --app Front-End --state ready");
  EXPECT_TRUE(l.mine);
  EXPECT_EQ(l.filter_app->str(), "front-end");
  EXPECT_EQ(*l.filter_state, EnvState::ready);
  EXPECT_EQ(parse_ok("describe a-pr-1").env.str(), "a-pr-1");
  EXPECT_EQ(parse_ok("status").verb, Verb::status);
  EXPECT_EQ(parse_ok("nodes").verb, Verb::nodes);
  Command ev = parse_ok("events a-pr-1 --node ip-1 --since 2h --warnings");
  EXPECT_EQ(ev.env.str(), "a-pr-1");
  EXPECT_EQ(ev.node->str(), "ip-1");
  EXPECT_EQ(*ev.since, std::chrono::hours(2));
  EXPECT_TRUE(ev.warnings);
  Command u = parse_ok("usage --team web --since 7d");
  EXPECT_EQ(u.team->str(), "web");
  EXPECT_EQ(*u.since, std::chrono::hours(24 * 7));
  EXPECT_EQ(*parse_ok("help up").topic, Verb::up);
  EXPECT_EQ(parse_ok("yes").verb, Verb::yes);
  EXPECT_EQ(parse_ok("no").verb, Verb::no);
  Command s = parse_ok("simulate spot ip-10-0-1-1");
  EXPECT_EQ(s.node->str(), "ip-10-0-1-1");
}

TEST(CommandGrammar, ErrorsSayPreciselyWhatIsWrong) {
  EXPECT_EQ(parse_error(""), "no command given");
  EXPECT_EQ(parse_error("/ephemeral"), "no command given");
  EXPECT_EQ(parse_error("deploy front-end 1"), "unknown command 'deploy'");
  EXPECT_EQ(parse_error("up front-end"), "up: missing argument");
  EXPECT_EQ(parse_error("up front-end 1 2"), "up: unexpected argument '2'");
  EXPECT_NE(parse_error("up front-end abc").find("'abc' is not a pull request number"), std::string::npos);
  EXPECT_EQ(parse_error("up front-end 0"), "pull request number must be positive");
  EXPECT_NE(parse_error("up front-end 1 --ttl 5x").find("--ttl: bad duration '5x'"), std::string::npos);
  EXPECT_EQ(parse_error("up front-end 1 --ttl"), "--ttl needs a value");
  EXPECT_EQ(parse_error("up front-end 1 --set novalue"), "--set expects key=value, got 'novalue'");
  EXPECT_EQ(parse_error("up front-end 1 --force"), "unknown option '--force' for up");
  EXPECT_EQ(parse_error("list --mine=yes"), "--mine takes no value");
  EXPECT_NE(parse_error("list --state sleeping").find("unknown state 'sleeping'"), std::string::npos);
  EXPECT_NE(parse_error("down Front_End").find("is not an environment id"), std::string::npos);
  EXPECT_NE(parse_error("extend a-pr-1 soon").find("bad duration 'soon'"), std::string::npos);
  EXPECT_EQ(parse_error("extend a-pr-1"), "extend: missing argument");
  EXPECT_EQ(parse_error("status now"), "status: unexpected argument 'now'");
  EXPECT_EQ(parse_error("help deploy"), "no help for unknown command 'deploy'");
  EXPECT_EQ(parse_error("simulate flood ip-1"), "simulate: only 'spot' can be simulated");
}

TEST(CommandGrammar, EveryListedVerbHasUsageSummaryAndExamples) {
  for (Verb v : listed_verbs()) {
    EXPECT_NE(std::string(usage_of(v)).find(to_string(v)), std::string::npos);
    EXPECT_FALSE(std::string(summary_of(v)).empty());
    EXPECT_FALSE(examples_of(v).empty()) << to_string(v);
    for (const auto& ex : examples_of(v)) {
      if (v == Verb::help || ex.find('<') != std::string::npos) continue;
      EXPECT_TRUE(parse_command(ex).has_value()) << "example does not parse: " << ex;
    }
  }
}

TEST(Duration, ParsesAndFormats) {
  EXPECT_EQ(*parse_duration("1h30m"), std::chrono::minutes(90));
  EXPECT_EQ(*parse_duration("2d"), std::chrono::hours(48));
  EXPECT_EQ(*parse_duration("45s"), std::chrono::seconds(45));
  EXPECT_EQ(*parse_duration("1w"), std::chrono::hours(168));
  EXPECT_FALSE(parse_duration("").has_value());
  EXPECT_FALSE(parse_duration("0m").has_value());
  EXPECT_FALSE(parse_duration("h").has_value());
  EXPECT_FALSE(parse_duration("10").has_value());
  EXPECT_FALSE(parse_duration("-5m").has_value());
  EXPECT_FALSE(parse_duration("99999999999999999999h").has_value());
  EXPECT_EQ(format_duration(std::chrono::seconds(45)), "45s");
  EXPECT_EQ(format_duration(std::chrono::minutes(200)), "3h 20m");
  EXPECT_EQ(format_duration(std::chrono::hours(52)), "2d 4h");
  EXPECT_EQ(format_duration(std::chrono::hours(4)), "4h");
}

TEST(Time, Rfc3339RoundTripsAndAcceptsOffsets) {
  auto t = parse_time("2026-11-26T12:03:11.250Z");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(format_time(*t), "2026-11-26T12:03:11.250Z");
  EXPECT_EQ(*parse_time("2026-11-26T14:03:11+02:00"), *parse_time("2026-11-26T12:03:11Z"));
  EXPECT_FALSE(parse_time("2026-11-26 12:03").has_value());
  EXPECT_FALSE(parse_time("2026-13-26T12:03:11Z").has_value());
  EXPECT_FALSE(parse_time("2026-11-26T12:03:11").has_value());
}

}  // namespace
}  // namespace runbot::bot

namespace runbot::bot {
namespace {

TEST(CommandGrammar, ButtonsMapToTheCommandsTheyStandFor) {
  EXPECT_EQ(*command_for_button("extend", "front-end-pr-1 4h"), "extend front-end-pr-1 4h");
  EXPECT_EQ(*command_for_button("down", "front-end-pr-1"), "down front-end-pr-1");
  EXPECT_EQ(*command_for_button("retry", "front-end 1"), "up front-end 1");
  EXPECT_EQ(*command_for_button("let_expire", "front-end-pr-1"), "let-expire front-end-pr-1");
  EXPECT_EQ(*command_for_button("confirm", "yes"), "yes");
  EXPECT_FALSE(command_for_button("confirm", "maybe").has_value());
  EXPECT_FALSE(command_for_button("open", "front-end-pr-1").has_value());
  for (const char* action : {"extend", "down", "retry", "let_expire"}) {
    const char* value = std::string(action) == "retry" ? "front-end 1"
                        : std::string(action) == "extend" ? "front-end-pr-1 4h"
                                                          : "front-end-pr-1";
    EXPECT_TRUE(parse_command(*command_for_button(action, value)).has_value()) << action;
  }
}

}  // namespace
}  // namespace runbot::bot
