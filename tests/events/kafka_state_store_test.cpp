// Unit tests of the state topic's pure logic: splitting a Registry snapshot into per-key records,
// choosing what to produce, folding records read back (last value wins, tombstones delete) and
// rebuilding the snapshot. No Kafka.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "bot/registry.h"
#include "events/kafka_state_store.h"
#include "tests/events/kafka_state_store_test_scenarios.h"

namespace runbot::events {
namespace {

using ::testing::HasSubstr;
using namespace state_topic;

Record rec(std::int64_t offset, std::optional<std::string> key, std::optional<std::string> value,
           Headers headers = record_headers()) {
  Record r;
  r.topic = "runbot.state";
  r.partition = 2;
  r.offset = offset;
  r.key = std::move(key);
  r.value = std::move(value);
  r.headers = std::move(headers);
  return r;
}

// Every record a sequence of saves produces, in order, as a consumer would read them.
std::vector<Record> log_of(const std::vector<std::string>& snapshots) {
  std::vector<Record> log;
  KeyValues last;
  for (const auto& s : snapshots) {
    auto next = split_snapshot(s);
    EXPECT_TRUE(next) << next.error().message;
    for (auto& r : changed_records(last, *next))
      log.push_back(rec(static_cast<std::int64_t>(log.size()), r.key, r.value));
    last = *next;
  }
  return log;
}

bot::Result<std::optional<std::string>> fold(const std::vector<Record>& log) {
  KeyValues state;
  for (const auto& r : log) {
    if (auto st = apply_record(state, r); !st) return st.error();
  }
  return merge_snapshot(state);
}

TEST(StateTopic, RegistryPartsAreWhatSplittingTheWholeSnapshotGives) {
  // KafkaStateStore::save_parts() uses the parts without parsing; they must match what
  // split_snapshot() makes of the whole snapshot, or every save would produce every record.
  bot::Registry r = testing::sample_registry(3);
  const bot::StateSnapshot parts = r.snapshot_parts();
  auto kv = split_snapshot(parts.whole());
  ASSERT_TRUE(kv) << kv.error().message;
  ASSERT_EQ(kv->size(), parts.environments.size() + 1);
  for (const auto& [id, json] : parts.environments) EXPECT_EQ(kv->at(kEnvKeyPrefix + id), json) << id;
  EXPECT_EQ(nlohmann::json::parse(kv->at(kRegistryKey)), nlohmann::json::parse(parts.registry));
}

TEST(StateTopic, SnapshotSplitsIntoOneRecordPerEnvironmentAndARegistryRecord) {
  bot::Registry r = testing::sample_registry(3);
  auto kv = split_snapshot(r.snapshot());
  ASSERT_TRUE(kv) << kv.error().message;
  std::vector<std::string> keys;
  for (const auto& [k, v] : *kv) keys.push_back(k);
  EXPECT_THAT(keys, ::testing::ElementsAre("env/app-0-pr-100", "env/app-1-pr-101",
                                           "env/app-2-pr-102", "registry"));
  auto registry = nlohmann::json::parse(kv->at("registry"));
  EXPECT_FALSE(registry.contains("environments"));
  EXPECT_TRUE(registry.contains("lifecycleIds"));
  EXPECT_EQ(nlohmann::json::parse(kv->at("env/app-1-pr-101")).at("id"), "app-1-pr-101");
}

TEST(StateTopic, MergedRecordsRestoreTheSameRegistry) {
  bot::Registry r = testing::sample_registry(3);
  auto kv = split_snapshot(r.snapshot());
  ASSERT_TRUE(kv);
  auto merged = merge_snapshot(*kv);
  ASSERT_TRUE(merged && *merged);
  auto restored = bot::Registry::restore(**merged);
  ASSERT_TRUE(restored) << restored.error().message;
  EXPECT_EQ(*restored, r);
}

TEST(StateTopic, OnlyChangedEnvironmentsAreProducedAndRemovedOnesGetATombstone) {
  bot::Registry r = testing::sample_registry(3);
  auto before = split_snapshot(r.snapshot());
  r.find(bot::EnvId{"app-1-pr-101"})->state = bot::EnvState::suspended;
  r.environments().erase(bot::EnvId{"app-2-pr-102"});
  auto after = split_snapshot(r.snapshot());
  ASSERT_TRUE(before && after);
  EXPECT_THAT(changed_records(*before, *after),
              ::testing::ElementsAre(StateRecord{"env/app-1-pr-101", after->at("env/app-1-pr-101")},
                                     StateRecord{"env/app-2-pr-102", std::nullopt}));
  EXPECT_TRUE(changed_records(*after, *after).empty()) << "an unchanged snapshot produces nothing";
}

TEST(StateTopic, ForcedKeysAreProducedAgainEvenWhenUnchanged) {
  auto kv = split_snapshot(testing::sample_registry(1).snapshot());
  ASSERT_TRUE(kv);
  EXPECT_THAT(changed_records(*kv, *kv, {"env/app-0-pr-100", "env/gone"}),
              ::testing::ElementsAre(StateRecord{"env/app-0-pr-100", kv->at("env/app-0-pr-100")},
                                     StateRecord{"env/gone", std::nullopt}));
}

TEST(StateTopic, LastValueWinsAndTombstonesDelete) {
  bot::Registry r = testing::sample_registry(3);
  std::vector<std::string> versions{r.snapshot()};
  r.find(bot::EnvId{"app-0-pr-100"})->url = "https://changed";
  r.environments().erase(bot::EnvId{"app-2-pr-102"});
  r.mark_lifecycle("evt-late");
  versions.push_back(r.snapshot());
  auto merged = fold(log_of(versions));
  ASSERT_TRUE(merged && *merged) << (merged ? "" : merged.error().message);
  auto restored = bot::Registry::restore(**merged);
  ASSERT_TRUE(restored) << restored.error().message;
  EXPECT_EQ(*restored, r);
  EXPECT_EQ(restored->find(bot::EnvId{"app-2-pr-102"}), nullptr);
}

TEST(StateTopic, QueuedMessagesAreRecordsOfTheirOwnTombstonedOnceSent) {
  // A chat backlog of thousands of messages must not be produced again with every save.
  bot::Registry r = testing::sample_registry(1);
  auto message = [](const std::string& id, int order) {
    return std::make_pair(id, nlohmann::json{{"id", id}, {"order", order}, {"kind", "reply"}}.dump());
  };
  r.set_outbox_journal(nlohmann::json::array(), {message("d-1", 1), message("d-2", 2)});
  std::vector<std::string> versions{r.snapshot()};
  auto before = split_snapshot(versions.back());
  ASSERT_TRUE(before) << before.error().message;
  EXPECT_EQ(before->count("outbox/d-1") + before->count("outbox/d-2"), 2u);
  r.set_outbox_journal(nlohmann::json::array(), {message("d-2", 2), message("d-3", 3)});  // d-1 sent, d-3 queued
  versions.push_back(r.snapshot());
  auto after = split_snapshot(versions.back());
  ASSERT_TRUE(after);
  auto changed = changed_records(*before, *after);
  std::vector<std::string> keys;
  for (const auto& c : changed) keys.push_back(c.key + (c.value ? "" : " (tombstone)"));
  EXPECT_THAT(keys, ::testing::ElementsAre("outbox/d-1 (tombstone)", "outbox/d-3"))
      << "d-2 and the unchanged registry are not produced again";
  auto merged = fold(log_of(versions));
  ASSERT_TRUE(merged && *merged);
  auto restored = bot::Registry::restore(**merged);
  ASSERT_TRUE(restored) << restored.error().message;
  EXPECT_EQ(restored->outbox_journal().at("items").size(), 2u);
  EXPECT_EQ(*restored, r);
  KeyValues state;
  auto wrong = apply_record(state, rec(0, "outbox/d-9", R"({"id":"d-8"})"));
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("outbox message record's \"id\" does not match its key"), std::string::npos)
      << wrong.error().message;
}

TEST(StateTopic, CompactedAndUncompactedLogsGiveTheSameSnapshot) {
  // A broker may or may not have compacted yet: with every version, with only the last value per
  // key, and with tombstones already removed, the reader must rebuild the same registry.
  bot::Registry r = testing::sample_registry(4);
  std::vector<std::string> versions{r.snapshot()};
  for (int i = 0; i < 5; ++i) {
    r.find(bot::EnvId{"app-1-pr-101"})->stage = "stage-" + std::to_string(i);
    r.mark_lifecycle("evt-v" + std::to_string(i));
    versions.push_back(r.snapshot());
  }
  r.environments().erase(bot::EnvId{"app-3-pr-103"});
  versions.push_back(r.snapshot());
  auto full = log_of(versions);

  std::map<std::string, Record> last_per_key;
  for (const auto& rec_ : full) last_per_key[*rec_.key] = rec_;
  std::vector<Record> compacted;
  std::vector<Record> compacted_without_tombstones;
  for (const auto& [k, rec_] : last_per_key) {
    compacted.push_back(rec_);
    if (rec_.value) compacted_without_tombstones.push_back(rec_);
  }
  std::sort(compacted.begin(), compacted.end(),
            [](const Record& a, const Record& b) { return a.offset < b.offset; });

  const std::string want = *merge_snapshot(*split_snapshot(r.snapshot())).value();
  for (const auto* log : {&full, &compacted, &compacted_without_tombstones}) {
    auto merged = fold(*log);
    ASSERT_TRUE(merged && *merged);
    EXPECT_EQ(**merged, want) << "log of " << log->size() << " records";
  }
  EXPECT_LT(compacted.size(), full.size());
}

TEST(StateTopic, EmptyTopicIsNoSnapshot) {
  auto merged = merge_snapshot({});
  ASSERT_TRUE(merged);
  EXPECT_FALSE(merged->has_value());
  // Everything deleted is also "no snapshot": the bot starts empty.
  KeyValues state;
  ASSERT_TRUE(apply_record(state, rec(0, "env/a", R"({"id":"a"})")));
  ASSERT_TRUE(apply_record(state, rec(1, "env/a", std::nullopt)));
  EXPECT_FALSE(merge_snapshot(state)->has_value());
}

TEST(StateTopic, EnvironmentsWithoutARegistryRecordStillRestore) {
  bot::Registry r = testing::sample_registry(2);
  auto kv = split_snapshot(r.snapshot());
  ASSERT_TRUE(kv);
  kv->erase(kRegistryKey);
  auto merged = merge_snapshot(*kv);
  ASSERT_TRUE(merged && *merged);
  auto restored = bot::Registry::restore(**merged);
  ASSERT_TRUE(restored) << restored.error().message;
  EXPECT_EQ(restored->environments(), r.environments());
}

TEST(StateTopic, UnusableRecordsAreErrorsNamingTopicPartitionAndOffset) {
  KeyValues state;
  auto bad_json = apply_record(state, rec(17, "env/a", "{not json"));
  ASSERT_FALSE(bad_json);
  EXPECT_EQ(bad_json.error().code, bot::Errc::invalid_argument);
  EXPECT_THAT(bad_json.error().message, HasSubstr("runbot.state partition 2 offset 17"));
  EXPECT_THAT(bad_json.error().message, HasSubstr("env/a"));
  EXPECT_THAT(apply_record(state, rec(1, "env/a", "[1,2]")).error().message,
              HasSubstr("not a JSON object"));
  EXPECT_THAT(apply_record(state, rec(2, "env/a", R"({"id":"b"})")).error().message,
              HasSubstr("does not match"));
  EXPECT_THAT(apply_record(state, rec(3, std::nullopt, "{}")).error().message, HasSubstr("no key"));
  EXPECT_THAT(apply_record(state, rec(4, "jobs/x", "{}")).error().message,
              HasSubstr("unknown key"));
  EXPECT_THAT(apply_record(state, rec(5, "env/", "{}")).error().message, HasSubstr("unknown key"));
  EXPECT_THAT(
      apply_record(state, rec(6, "registry", "{}", {{kVersionHeader, "2"}})).error().message,
      HasSubstr("reads version 1"));
  EXPECT_TRUE(state.empty());
}

TEST(StateTopic, SnapshotsThatAreNotTheRegistrysAreRejected) {
  EXPECT_FALSE(split_snapshot("nope"));
  EXPECT_FALSE(split_snapshot(R"({"version":1})"));
  EXPECT_FALSE(split_snapshot(R"({"version":1,"environments":[{"app":"x"}]})"));
  EXPECT_THAT(
      split_snapshot(R"({"version":1,"environments":[{"id":"x"},{"id":"x"}]})").error().message,
      HasSubstr("two environments"));
}

}  // namespace
}  // namespace runbot::events
