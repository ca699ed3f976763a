// Unit tests for decode_cluster_record: NTH webhook bodies (toJson template) for every Kind, in
// both NTH modes, runbot's own cluster CloudEvents, and records that must be rejected.
#include "events/cluster_decoder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "events/cloudevents.h"

namespace runbot::events {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;
using std::chrono::minutes;

bot::TimePoint at(const char* rfc3339) { return *bot::parse_time(rfc3339); }

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(RUNBOT_TESTDATA_DIR) + "/events/" + name, std::ios::binary);
  EXPECT_TRUE(in) << "missing fixture " << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Record record_of(std::string value, std::optional<bot::TimePoint> ts = std::nullopt) {
  Record r;
  r.topic = "runbot.cluster-events";
  r.partition = 2;
  r.offset = 17;
  r.value = std::move(value);
  r.timestamp = ts;
  return r;
}

bot::ClusterEvent decode_fixture(const std::string& name, std::optional<bot::TimePoint> ts = std::nullopt) {
  auto e = decode_cluster_record(record_of(fixture(name), ts));
  EXPECT_TRUE(e) << name << ": " << (e ? "" : e.error().message);
  return e ? *e : bot::ClusterEvent{};
}

TEST(NthWebhook, QueueModeSpotInterruptionDeadlineIsTwoMinutesAfterTheWarning) {
  auto e = decode_fixture("nth-webhook-tojson-sqs-spot-itn.json", at("2026-11-20T14:20:03Z"));
  EXPECT_EQ(e.kind, bot::ClusterEventKind::spot_interruption);
  EXPECT_EQ(e.source, "aws-node-termination-handler");
  EXPECT_EQ(e.dedupe_key,
            "spot-itn-event-31653535323764372d626233362d343630372d333337302d343136346462353661343065");
  EXPECT_EQ(e.time, at("2026-11-20T14:20:00Z"));  // when the warning was sent
  ASSERT_TRUE(e.deadline);
  EXPECT_EQ(*e.deadline, at("2026-11-20T14:22:00Z"));
  EXPECT_EQ(e.node.name.str(), "ip-10-0-3-17.ec2.internal");
  EXPECT_EQ(e.node.capacity, bot::CapacityType::spot);
  EXPECT_EQ(e.node.instance_type, "m6i.large");
  EXPECT_EQ(e.node.zone, "eu-west-1a");  // from NodeLabels: metadata is empty in queue mode
  EXPECT_EQ(e.reason, "SpotInterruption");
  EXPECT_EQ(e.object, "Node/ip-10-0-3-17.ec2.internal");
  EXPECT_EQ(e.message, "Spot Interruption notice for instance i-0b662ef9931388ba0 was sent at 2026-11-20 14:20:00 +0000 UTC");
}

TEST(NthWebhook, ImdsModeSpotInterruptionDeadlineIsStartTime) {
  auto e = decode_fixture("nth-webhook-tojson-imds-spot-itn.json", at("2026-11-20T14:18:05Z"));
  EXPECT_EQ(e.kind, bot::ClusterEventKind::spot_interruption);
  ASSERT_TRUE(e.deadline);
  EXPECT_EQ(*e.deadline, at("2026-11-20T14:20:00Z"));
  EXPECT_EQ(e.time, at("2026-11-20T14:18:05Z"));  // when NTH reported it (record timestamp)
  EXPECT_EQ(e.node.zone, "eu-west-1a");
  EXPECT_EQ(e.node.capacity, bot::CapacityType::spot);
}

TEST(NthWebhook, RealImdsLogEventWithoutMonitorIsImdsMode) {
  auto e = decode_fixture("real/nth-interruption-event-log-imds-spot-itn.json");
  EXPECT_EQ(e.kind, bot::ClusterEventKind::spot_interruption);
  EXPECT_EQ(e.node.name.str(), "ip-10-128-37-128.ec2.internal");
  ASSERT_TRUE(e.deadline);
  EXPECT_EQ(*e.deadline, at("2022-10-07T04:16:37Z"));
  EXPECT_EQ(e.time, at("2022-10-07T04:16:37Z"));  // no record timestamp: falls back to StartTime
  EXPECT_EQ(e.message, "Spot ITN received. Instance will be interrupted at 2022-10-07T04:16:37Z");
}

TEST(NthWebhook, RebalanceRecommendationHasNoDeadline) {
  for (const char* name : {"nth-webhook-tojson-imds-rebalance-recommendation.json",
                           "nth-webhook-tojson-sqs-rebalance-recommendation.json"}) {
    auto e = decode_fixture(name);
    EXPECT_EQ(e.kind, bot::ClusterEventKind::rebalance_recommendation) << name;
    EXPECT_FALSE(e.deadline) << name;
    EXPECT_EQ(e.node.capacity, bot::CapacityType::spot) << name;
    EXPECT_EQ(e.reason, "RebalanceRecommendation") << name;
  }
}

TEST(NthWebhook, ImdsScheduledEventDeadlineIsWindowStart) {
  auto e = decode_fixture("nth-webhook-tojson-imds-scheduled-event.json");
  EXPECT_EQ(e.kind, bot::ClusterEventKind::scheduled_maintenance);
  EXPECT_EQ(e.dedupe_key, "instance-event-0d59937288b749b32");
  ASSERT_TRUE(e.deadline);
  EXPECT_EQ(*e.deadline, at("2026-11-21T09:00:00Z"));
  EXPECT_EQ(e.node.capacity, bot::CapacityType::on_demand);
  EXPECT_EQ(e.node.instance_type, "m6i.xlarge");
  EXPECT_EQ(e.node.zone, "eu-west-1b");
}

TEST(NthWebhook, QueueModeScheduledEventHasNoKnownDeadline) {
  auto j = json::parse(fixture("nth-webhook-tojson-imds-scheduled-event.json"));
  j["Monitor"] = "SQS_MONITOR";
  auto e = decode_cluster_record(record_of(j.dump()));
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->kind, bot::ClusterEventKind::scheduled_maintenance);
  EXPECT_FALSE(e->deadline);
}

TEST(NthWebhook, StateChangeAsgLifecycleAndSqsTerminateAreNodeTerminations) {
  struct Case {
    const char* file;
    const char* reason;
    const char* deadline;
    bot::CapacityType capacity;
  };
  for (const auto& c : {Case{"nth-webhook-tojson-sqs-state-change.json", "StateChange", "2026-11-20T15:01:30Z",
                             bot::CapacityType::on_demand},
                        Case{"nth-webhook-tojson-sqs-asg-lifecycle.json", "ASGLifecycle", "2026-11-20T16:00:00Z",
                             bot::CapacityType::unknown},
                        Case{"nth-webhook-tojson-sqs-terminate-aws-health.json", "SQSTermination",
                             "2026-11-20T17:30:00Z", bot::CapacityType::unknown}}) {
    auto e = decode_fixture(c.file);
    EXPECT_EQ(e.kind, bot::ClusterEventKind::node_termination) << c.file;
    EXPECT_EQ(e.reason, c.reason) << c.file;
    ASSERT_TRUE(e.deadline) << c.file;
    EXPECT_EQ(*e.deadline, at(c.deadline)) << c.file;
    EXPECT_EQ(e.node.capacity, c.capacity) << c.file;
  }
}

TEST(NthWebhook, AsgLaunchLifecycleIsOther) {
  auto j = json::parse(fixture("nth-webhook-tojson-sqs-asg-lifecycle.json"));
  j["Kind"] = "ASG_LAUNCH_LIFECYCLE";
  auto e = decode_cluster_record(record_of(j.dump()));
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->kind, bot::ClusterEventKind::other);
  EXPECT_FALSE(e->deadline) << "a node joining has no deadline";
}

TEST(NthWebhook, DefaultSlackTemplateIsRejectedWithAHint) {
  auto e = decode_cluster_record(record_of(fixture("nth-webhook-default-template.txt")));
  ASSERT_FALSE(e);
  EXPECT_THAT(e.error().message, HasSubstr("unrecognised record: value at runbot.cluster-events/2@17 is not valid JSON"));
  EXPECT_THAT(e.error().message, HasSubstr("WEBHOOK_TEMPLATE='{{ toJson . }}'"));
}

TEST(NthWebhook, UnparseableBodiesGiveSpecificErrors) {
  const std::string good = fixture("nth-webhook-tojson-sqs-spot-itn.json");
  auto mutated = [&](auto fn) {
    auto j = json::parse(good);
    fn(j);
    return j.dump();
  };
  std::vector<std::pair<std::string, std::string>> cases{
      {good.substr(0, good.size() / 2), "is not valid JSON"},
      {"[1, 2, 3]", "is not a JSON object"},
      {"\"SPOT_ITN\"", "is not a JSON object"},
      {mutated([](json& j) { j["Kind"] = "METEOR_STRIKE"; }), "nth webhook: unknown Kind 'METEOR_STRIKE'"},
      {mutated([](json& j) { j["EventID"] = ""; }), "nth webhook: field 'EventID' is missing or empty"},
      {mutated([](json& j) { j["NodeName"] = ""; }), "nth webhook: field 'NodeName' is missing or empty"},
      {mutated([](json& j) { j.erase("StartTime"); }), "nth webhook: field 'StartTime' is missing"},
      {mutated([](json& j) { j["StartTime"] = "Friday afternoon"; }),
       "nth webhook: field 'StartTime': 'Friday afternoon' is not a time"},
      {mutated([](json& j) { j["Kind"] = 3; }), "nth webhook: field 'Kind' must be a string"},
      {mutated([](json& j) { j["NodeLabels"] = "zone=a"; }), "nth webhook: field 'NodeLabels' must be an object"},
  };
  for (const auto& [body, expected] : cases) {
    auto e = decode_cluster_record(record_of(body));
    ASSERT_FALSE(e) << expected;
    EXPECT_EQ(e.error().code, bot::Errc::invalid_argument);
    EXPECT_THAT(e.error().message, HasSubstr(expected));
  }
}

TEST(NthWebhook, GoFormattedStartTimeFromACustomTemplateIsAccepted) {
  auto j = json::parse(fixture("nth-webhook-tojson-sqs-spot-itn.json"));
  j["StartTime"] = "2026-11-20 14:20:00 +0000 UTC";
  auto e = decode_cluster_record(record_of(j.dump()));
  ASSERT_TRUE(e) << e.error().message;
  ASSERT_TRUE(e->deadline);
  EXPECT_EQ(*e->deadline, at("2026-11-20T14:22:00Z"));
}

TEST(ClusterDecoder, OtherJsonIsUnrecognised) {
  auto e = decode_cluster_record(record_of(R"({"hello":"world","involved":{"kind":"Pod"}})"));
  ASSERT_FALSE(e);
  EXPECT_THAT(e.error().message,
              HasSubstr("unrecognised record: JSON at runbot.cluster-events/2@17 is not a CloudEvent, Kubernetes Event"));
  EXPECT_THAT(e.error().message, HasSubstr("(keys: hello, involved)"));
  Record tombstone = record_of("");
  tombstone.value.reset();
  auto t = decode_cluster_record(tombstone);
  ASSERT_FALSE(t);
  EXPECT_THAT(t.error().message, HasSubstr("unrecognised record: null value"));
}

TEST(ClusterDecoder, OwnCloudEventsAreDecodedInBothModes) {
  bot::ClusterEvent e;
  e.dedupe_key = "demo-1";
  e.source = "/runbot/demo";
  e.kind = bot::ClusterEventKind::pod_warning;
  e.time = at("2026-11-20T14:00:00Z");
  e.namespace_name = "front-end-pr-123";
  e.object = "Pod/front-end-7d9f";
  e.reason = "CrashLoopBackOff";
  EncodedRecord enc = encode_cluster_event(e, "/runbot/demo");
  Record binary = record_of(*enc.value);
  binary.headers = enc.headers;
  auto b = decode_cluster_record(binary);
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(*b, e);

  json whole{{"specversion", "1.0"}, {"id", "demo-1"}, {"source", "/runbot/demo"},
             {"type", "io.runbot.cluster.pod-warning.v1"}, {"data", json::parse(*enc.value)}};
  Record structured = record_of(whole.dump());
  structured.headers = {{"content-type", "application/cloudevents+json"}};
  auto s = decode_cluster_record(structured);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(*s, e);

  whole["type"] = "io.runbot.env.ready.v1";
  structured.value = whole.dump();
  auto wrong = decode_cluster_record(structured);
  ASSERT_FALSE(wrong);
  EXPECT_THAT(wrong.error().message, HasSubstr("is not a cluster event"));
}

}  // namespace
}  // namespace runbot::events
