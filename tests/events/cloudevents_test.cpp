// Unit tests for the CloudEvents codec: round trips, structured mode, and one specific error per
// kind of malformed record.
#include "events/cloudevents.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bot/model_json.h"

namespace runbot::events {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

bot::TimePoint at(const char* rfc3339) { return *bot::parse_time(rfc3339); }

bot::Job sample_job(bot::JobVerb verb) {
  bot::Job job;
  job.id = bot::JobId{"job-42"};
  job.verb = verb;
  job.env = bot::EnvId{"front-end-pr-123"};
  job.app = bot::AppName{"front-end"};
  job.pr = 123;
  job.namespace_name = "front-end-pr-123";
  job.requested_by = bot::UserId{"U024BE7LH"};
  job.requested_at = at("2026-11-20T14:03:11.250Z");
  if (verb == bot::JobVerb::up || verb == bot::JobVerb::extend) {
    job.ttl = std::chrono::hours(8);
    job.expires_at = at("2026-11-20T22:03:11Z");
  }
  if (verb == bot::JobVerb::up) {
    job.image = "sha-3f2c9e1";
    job.values = {{"replicas", "2"}};
  }
  if (verb == bot::JobVerb::down) job.reason = "ttl";
  return job;
}

bot::LifecycleEvent sample_event(bot::LifecycleKind kind) {
  bot::LifecycleEvent e;
  e.id = "evt-7";
  e.source = "/runbot/provisioner/demo";
  e.kind = kind;
  e.env = bot::EnvId{"front-end-pr-123"};
  e.job = bot::JobId{"job-42"};
  e.verb = bot::JobVerb::up;
  e.time = at("2026-11-20T14:05:00Z");
  e.stage = "helm";
  e.stage_index = 2;
  e.stage_count = 4;
  e.message = "installing chart";
  if (kind == bot::LifecycleKind::ready) {
    e.url = "https://front-end-pr-123.preview.example.com";
    e.nodes = {bot::NodeInfo{bot::NodeName{"ip-10-0-3-17"}, bot::CapacityType::spot, "m6i.large", "eu-west-1a"}};
  }
  if (kind == bot::LifecycleKind::failed) {
    e.reason = "helm exited";
    e.exit_status = 1;
    e.log_tail = {"Error: timed out"};
  }
  if (kind == bot::LifecycleKind::extended) e.expires_at = at("2026-11-21T14:05:00Z");
  return e;
}

Record to_record(const EncodedRecord& enc, std::string topic = "runbot.jobs") {
  Record r;
  r.topic = std::move(topic);
  r.partition = 0;
  r.offset = 5;
  r.key = enc.key;
  r.value = enc.value;
  r.headers = enc.headers;
  return r;
}

void set_header(Record& r, const std::string& name, const std::string& value) {
  for (auto& [k, v] : r.headers) {
    if (k == name) v = value;
  }
}

void drop_header(Record& r, const std::string& name) {
  std::erase_if(r.headers, [&](const auto& h) { return h.first == name; });
}

TEST(CloudEventsCodec, EveryJobVerbRoundTripsInBinaryMode) {
  for (auto verb : {bot::JobVerb::up, bot::JobVerb::down, bot::JobVerb::extend, bot::JobVerb::suspend,
                    bot::JobVerb::resume}) {
    bot::Job job = sample_job(verb);
    EncodedRecord enc = encode_job(job, "/runbot/bot");
    EXPECT_EQ(enc.key, "front-end-pr-123");
    Record r = to_record(enc);
    EXPECT_EQ(*r.header("ce_type"), std::string("io.runbot.job.") + bot::to_string(verb) + ".v1");
    EXPECT_EQ(*r.header("ce_id"), "job-42");
    EXPECT_EQ(*r.header("ce_specversion"), "1.0");
    EXPECT_EQ(*r.header("ce_source"), "/runbot/bot");
    EXPECT_EQ(*r.header("ce_subject"), "front-end-pr-123");
    EXPECT_EQ(*r.header("ce_partitionkey"), "front-end-pr-123");
    EXPECT_EQ(*r.header("ce_time"), "2026-11-20T14:03:11.250Z");
    EXPECT_EQ(*r.header("content-type"), "application/json");
    auto decoded = decode_job(r);
    ASSERT_TRUE(decoded) << decoded.error().message;
    EXPECT_EQ(*decoded, job) << bot::to_string(verb);
  }
}

TEST(CloudEventsCodec, EveryLifecycleKindRoundTripsInBinaryMode) {
  for (auto kind : {bot::LifecycleKind::accepted, bot::LifecycleKind::progress, bot::LifecycleKind::ready,
                    bot::LifecycleKind::updated, bot::LifecycleKind::failed, bot::LifecycleKind::suspended,
                    bot::LifecycleKind::resumed, bot::LifecycleKind::extended, bot::LifecycleKind::deleted,
                    bot::LifecycleKind::cancelled, bot::LifecycleKind::rescheduled}) {
    bot::LifecycleEvent event = sample_event(kind);
    Record r = to_record(encode_lifecycle(event), "runbot.events");
    EXPECT_EQ(*r.header("ce_type"), std::string("io.runbot.env.") + bot::to_string(kind) + ".v1");
    EXPECT_EQ(*r.header("ce_id"), "evt-7");
    EXPECT_EQ(*r.header("ce_source"), "/runbot/provisioner/demo");
    auto decoded = decode_lifecycle(r);
    ASSERT_TRUE(decoded) << decoded.error().message;
    EXPECT_EQ(*decoded, event) << bot::to_string(kind);
  }
}

TEST(CloudEventsCodec, ClusterEventRoundTripsKeyedByNode) {
  bot::ClusterEvent e;
  e.dedupe_key = "spot-itn-abc";
  e.source = "aws-node-termination-handler";
  e.kind = bot::ClusterEventKind::spot_interruption;
  e.time = at("2026-11-20T14:18:00Z");
  e.deadline = at("2026-11-20T14:20:00Z");
  e.node = bot::NodeInfo{bot::NodeName{"ip-10-0-3-17"}, bot::CapacityType::spot, "m6i.large", "eu-west-1a"};
  e.reason = "SpotInterruption";
  EncodedRecord enc = encode_cluster_event(e, "/runbot/demo");
  EXPECT_EQ(enc.key, "ip-10-0-3-17");
  Record r = to_record(enc, "runbot.cluster-events");
  EXPECT_EQ(*r.header("ce_type"), "io.runbot.cluster.spot-interruption.v1");
  auto decoded = decode_cluster_cloudevent(r);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(*decoded, e);
}

TEST(CloudEventsCodec, StructuredModeLifecycleEventIsDecoded) {
  bot::LifecycleEvent event = sample_event(bot::LifecycleKind::ready);
  json whole{{"specversion", "1.0"},
             {"id", "evt-7"},
             {"source", "/runbot/provisioner/demo"},
             {"type", "io.runbot.env.ready.v1"},
             {"subject", "front-end-pr-123"},
             {"time", "2026-11-20T14:05:00Z"},
             {"datacontenttype", "application/json"},
             {"dataschema", nullptr},
             {"data", bot::to_json(event)}};
  Record r;
  r.topic = "runbot.events";
  r.value = whole.dump();
  r.headers = {{"Content-Type", "Application/CloudEvents+JSON; charset=UTF-8"}};
  ASSERT_TRUE(is_cloudevent(r));
  auto decoded = decode_lifecycle(r);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(*decoded, event);
  auto attrs = decode_attributes(r);
  ASSERT_TRUE(attrs);
  EXPECT_TRUE(attrs->structured);
  EXPECT_EQ(attrs->subject, "front-end-pr-123");
}

TEST(CloudEventsCodec, StructuredModeJobIsDecoded) {
  bot::Job job = sample_job(bot::JobVerb::down);
  json whole{{"specversion", "1.0"}, {"id", "job-42"}, {"source", "/runbot/bot"},
             {"type", "io.runbot.job.down.v1"}, {"data", bot::to_json(job)}};
  Record r;
  r.value = whole.dump();
  r.headers = {{"content-type", "application/cloudevents+json"}};
  auto decoded = decode_job(r);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(*decoded, job);
}

// Each malformed record must fail with a message that tells an operator what is wrong.
struct Malformed {
  const char* name;
  std::function<void(Record&)> mutate;
  const char* expected;
};

TEST(CloudEventsCodec, MalformedBinaryRecordsGiveSpecificErrors) {
  const Record good = to_record(encode_lifecycle(sample_event(bot::LifecycleKind::ready)), "runbot.events");
  std::vector<Malformed> cases{
      {"missing ce_type", [](Record& r) { drop_header(r, "ce_type"); }, "missing header ce_type"},
      {"missing ce_id", [](Record& r) { drop_header(r, "ce_id"); }, "missing header ce_id"},
      {"empty ce_source", [](Record& r) { set_header(r, "ce_source", ""); }, "header ce_source is empty"},
      {"wrong specversion", [](Record& r) { set_header(r, "ce_specversion", "0.3"); },
       "unsupported specversion '0.3' (expected 1.0)"},
      {"bad JSON", [](Record& r) { r.value = "{\"id\": \"evt-7\", "; }, "data is not valid JSON"},
      {"null value", [](Record& r) { r.value.reset(); }, "null value"},
      {"wrong type prefix", [](Record& r) { set_header(r, "ce_type", "io.runbot.job.up.v1"); },
       "cloudevent type 'io.runbot.job.up.v1' is not a lifecycle event (expected io.runbot.env.<kind>.v1)"},
      {"wrong version", [](Record& r) { set_header(r, "ce_type", "io.runbot.env.ready.v2"); },
       "unsupported version"},
      {"unknown kind", [](Record& r) { set_header(r, "ce_type", "io.runbot.env.exploded.v1"); },
       "unknown kind 'exploded'"},
      {"kind mismatch", [](Record& r) { set_header(r, "ce_type", "io.runbot.env.failed.v1"); },
       "type kind 'failed' disagrees with data kind 'ready'"},
      {"bad env",
       [](Record& r) {
         auto j = json::parse(*r.value);
         j["env"] = "Front_End#123";
         r.value = j.dump();
       },
       "lifecycle event field 'env' is not a DNS-1123 label"},
      {"non-JSON content-type", [](Record& r) { set_header(r, "content-type", "text/xml"); },
       "unsupported content-type 'text/xml'"},
      {"bad ce_time", [](Record& r) { set_header(r, "ce_time", "yesterday"); }, "attribute time"},
  };
  for (const auto& c : cases) {
    Record r = good;
    c.mutate(r);
    auto decoded = decode_lifecycle(r);
    ASSERT_FALSE(decoded) << c.name;
    EXPECT_EQ(decoded.error().code, bot::Errc::invalid_argument) << c.name;
    EXPECT_FALSE(decoded.error().is_retryable()) << c.name;
    EXPECT_THAT(decoded.error().message, HasSubstr(c.expected)) << c.name;
  }
}

TEST(CloudEventsCodec, MalformedStructuredRecordsGiveSpecificErrors) {
  json good{{"specversion", "1.0"}, {"id", "job-42"}, {"source", "/runbot/bot"},
            {"type", "io.runbot.job.up.v1"}, {"data", bot::to_json(sample_job(bot::JobVerb::up))}};
  auto structured = [](std::string value) {
    Record r;
    r.value = std::move(value);
    r.headers = {{"content-type", "application/cloudevents+json"}};
    return r;
  };
  auto without = [&](const char* key) {
    json j = good;
    j.erase(key);
    return j.dump();
  };
  auto with = [&](const char* key, json v) {
    json j = good;
    j[key] = std::move(v);
    return j.dump();
  };
  std::vector<std::pair<Record, std::string>> cases{
      {structured("{not json"), "value is not valid JSON"},
      {structured("[1,2]"), "value is not a JSON object"},
      {structured(without("type")), "missing attribute 'type'"},
      {structured(with("type", nullptr)), "missing attribute 'type'"},
      {structured(with("id", 42)), "attribute 'id' is not a string"},
      {structured(with("specversion", "0.3")), "unsupported specversion '0.3'"},
      {structured(without("data")), "event has no data"},
      {structured(with("data_base64", "aGVsbG8=")), "data_base64 is not supported"},
      {structured(with("datacontenttype", "text/xml")), "unsupported datacontenttype 'text/xml'"},
      {structured(with("type", "io.runbot.job.down.v1")), "type verb 'down' disagrees with data verb 'up'"},
      {structured(with("type", "com.github.pull_request.opened")), "is not a job"},
  };
  for (auto& [r, expected] : cases) {
    auto decoded = decode_job(r);
    ASSERT_FALSE(decoded) << expected;
    EXPECT_THAT(decoded.error().message, HasSubstr(expected));
  }
  Record batch = structured("[]");
  batch.headers = {{"content-type", "application/cloudevents-batch+json"}};
  auto decoded = decode_job(batch);
  ASSERT_FALSE(decoded);
  EXPECT_THAT(decoded.error().message, HasSubstr("batch mode"));
}

TEST(CloudEventsCodec, JobWithBadEnvInDataIsRejected) {
  Record r = to_record(encode_job(sample_job(bot::JobVerb::up), "/runbot/bot"));
  auto j = json::parse(*r.value);
  j["env"] = "-bad-";
  r.value = j.dump();
  auto decoded = decode_job(r);
  ASSERT_FALSE(decoded);
  EXPECT_THAT(decoded.error().message, HasSubstr("job field 'env' is not a DNS-1123 label"));
}

TEST(CloudEventsCodec, PlainJsonIsNotACloudEvent) {
  Record r;
  r.value = R"({"EventID":"x","Kind":"SPOT_ITN"})";
  EXPECT_FALSE(is_cloudevent(r));
  auto decoded = decode_job(r);
  ASSERT_FALSE(decoded);
  EXPECT_THAT(decoded.error().message, HasSubstr("missing header ce_specversion"));
}

TEST(RecordHeaders, LookupIsCaseInsensitiveAndLastWins) {
  Record r;
  r.headers = {{"ce_id", "first"}, {"CE_ID", "second"}};
  ASSERT_NE(r.header("Ce_Id"), nullptr);
  EXPECT_EQ(*r.header("ce_id"), "second");
  EXPECT_EQ(r.header("ce_type"), nullptr);
}

}  // namespace
}  // namespace runbot::events
