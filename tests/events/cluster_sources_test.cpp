// Unit tests for decode_cluster_record on the formats real installations produce
// (cluster-events.md §2-§5, §7): every real payload in tests/testdata/events/real/, one
// reconstructed fixture per remaining source and shape, and malformed variants of each.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "events/cluster_decoder.h"
#include "events/event_time.h"

// Expectations are written with designated initializers that name only what matters for each
// payload; the rest keep their defaults. GCC 12 warns about every omitted member regardless.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace runbot::events {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using bot::CapacityType;
using bot::ClusterEventKind;
using nlohmann::json;

const std::string kDir = std::string(RUNBOT_TESTDATA_DIR) + "/events/";

bot::TimePoint at(const char* rfc3339) { return *bot::parse_time(rfc3339); }

std::string read(const std::string& path) {
  std::ifstream in(kDir + path, std::ios::binary);
  EXPECT_TRUE(in) << "missing fixture " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Record record_of(std::string value, std::optional<std::string> key = std::nullopt) {
  Record r;
  r.topic = "runbot.cluster-events";
  r.partition = 2;
  r.offset = 17;
  r.key = std::move(key);
  r.value = std::move(value);
  return r;
}

// What a user of the bot would see of a decoded event.
struct Expect {
  ClusterEventKind kind = ClusterEventKind::other;
  std::string reason;
  std::string dedupe;
  std::string source;
  std::string node;
  CapacityType capacity = CapacityType::unknown;
  std::string instance_type;
  std::string zone;
  std::string ns;
  std::string object;
  std::optional<std::string> deadline;  // RFC 3339
  std::optional<std::string> time;      // RFC 3339
  std::string message_has;
};

void check(const std::string& name, const bot::Result<bot::ClusterEvent>& got, const Expect& x) {
  ASSERT_TRUE(got) << name << ": " << got.error().message;
  const bot::ClusterEvent& e = *got;
  EXPECT_EQ(bot::to_string(e.kind), std::string(bot::to_string(x.kind))) << name;
  EXPECT_EQ(e.reason, x.reason) << name;
  EXPECT_EQ(e.dedupe_key, x.dedupe) << name;
  if (!x.source.empty()) {
    EXPECT_EQ(e.source, x.source) << name;
  }
  EXPECT_EQ(e.node.name.str(), x.node) << name;
  EXPECT_EQ(bot::to_string(e.node.capacity), std::string(bot::to_string(x.capacity))) << name;
  EXPECT_EQ(e.node.instance_type, x.instance_type) << name;
  EXPECT_EQ(e.node.zone, x.zone) << name;
  EXPECT_EQ(e.namespace_name, x.ns) << name;
  EXPECT_EQ(e.object, x.object) << name;
  if (x.deadline) {
    ASSERT_TRUE(e.deadline) << name << ": no deadline";
    EXPECT_EQ(bot::format_time(*e.deadline), bot::format_time(at(x.deadline->c_str()))) << name;
  } else {
    EXPECT_FALSE(e.deadline) << name << ": unexpected deadline " << bot::format_time(*e.deadline);
  }
  if (x.time) {
    EXPECT_EQ(bot::format_time(e.time), bot::format_time(at(x.time->c_str()))) << name;
  }
  if (!x.message_has.empty()) {
    EXPECT_THAT(e.message, HasSubstr(x.message_has)) << name;
  }
}

// ---------------------------------------------------------------------------------------------
// Every real payload. A file added to real/ without an expectation here fails the test.

struct RealCase {
  std::optional<std::string> key;  // the Kafka key a bridge would use (node name for IMDS)
  std::optional<Expect> expect;    // nullopt: must be rejected with `error_has`
  std::string error_has;
};

const std::map<std::string, RealCase>& real_cases() {
  static const std::map<std::string, RealCase> cases{
      {"cloudevents-json-format-data-base64-no-datacontenttype.json",
       {std::nullopt, std::nullopt,
        "unrecognised record: cloudevent type 'com.example.someevent' from '/mycontext' at "
        "runbot.cluster-events/2@17: cloudevent: data_base64 is not supported"}},
      {"cloudevents-json-format-json-object-data.json",
       {std::nullopt, std::nullopt, "unrecognised record: JSON at runbot.cluster-events/2@17 is not a CloudEvent"}},
      {"cloudevents-json-format-xml-string-data-null-extension.json",
       {std::nullopt, std::nullopt, "unsupported datacontenttype 'application/xml'"}},
      {"cloudevents-spec-v1.0.2-example-pr-opened.json",
       {std::nullopt, std::nullopt,
        "unrecognised record: cloudevent type 'com.github.pull_request.opened' from "
        "'https://github.com/cloudevents/spec/pull' at runbot.cluster-events/2@17: cloudevent: unsupported "
        "datacontenttype 'text/xml'"}},
      {"imds-rebalance-recommendation.json",
       {"ip-10-0-3-17.ec2.internal",
        Expect{.kind = ClusterEventKind::rebalance_recommendation, .reason = "RebalanceRecommendation",
               .dedupe = "imds-rebalance/ip-10-0-3-17.ec2.internal/2020-10-16T19:18:24.000Z", .source = "ec2-imds",
               .node = "ip-10-0-3-17.ec2.internal", .capacity = CapacityType::spot,
               .object = "Node/ip-10-0-3-17.ec2.internal", .time = "2020-10-16T19:18:24Z"},
        ""}},
      {"imds-scheduled-maintenance-event-aemm.json",
       {"ip-10-0-5-40.ec2.internal",
        Expect{.kind = ClusterEventKind::other, .reason = "ScheduledEvent",
               .dedupe = "instance-event-1234567890abcdef0/completed", .source = "ec2-imds",
               .node = "ip-10-0-5-40.ec2.internal", .object = "Node/ip-10-0-5-40.ec2.internal",
               .time = "2020-01-01T01:03:47Z",
               .message_has = "instance-reboot will occur between 2020-01-01T01:03:47.000Z and "
                              "2020-01-07T01:03:47.000Z because The instance is scheduled for instance-reboot "
                              "(state completed)"},
        ""}},
      {"imds-spot-instance-action.json",
       {"ip-10-0-3-17.ec2.internal",
        Expect{.kind = ClusterEventKind::spot_interruption, .reason = "SpotInterruption",
               .dedupe = "imds-spot-itn/ip-10-0-3-17.ec2.internal/2020-04-24T17:11:44.000Z",
               .node = "ip-10-0-3-17.ec2.internal", .capacity = CapacityType::spot,
               .object = "Node/ip-10-0-3-17.ec2.internal", .deadline = "2020-04-24T17:11:44Z",
               .message_has = "terminate"},
        ""}},
      {"k8s-core-v1-event-pulling-otel-doc.json",
       {"d210b74b-5c58-473f-ac51-3e21f6f8e2d1",
        Expect{.kind = ClusterEventKind::other, .reason = "Pulling",
               .dedupe = "d210b74b-5c58-473f-ac51-3e21f6f8e2d1/1", .source = "kubelet", .ns = "default",
               .object = "Pod/stanza-g6rzd", .time = "2020-08-13T16:43:57Z",
               .message_has = "Pulling image \"observiq/stanza:dev\""},
        ""}},
      {"karpenter-design-eventbridge-spot-interruption-warning.json",
       {std::nullopt,
        Expect{.kind = ClusterEventKind::spot_interruption, .reason = "SpotInterruption",
               .dedupe = "1e5527d7-bb36-4607-3370-4164db56a40e", .source = "aws.ec2", .capacity = CapacityType::spot,
               .object = "Instance/i-0123456789", .deadline = "2022-08-11T14:02:00Z", .time = "2022-08-11T14:00:00Z",
               .message_has = "i-0123456789 (action terminate)"},
        ""}},
      {"kubernetes-event-exporter-resmoio-stdout-successfulcreate.json",
       {"756accaa-7558-49b1-be8c-2f004ace2824",
        Expect{.kind = ClusterEventKind::other, .reason = "SuccessfulCreate",
               .dedupe = "756accaa-7558-49b1-be8c-2f004ace2824", .source = "replicaset-controller",
               .ns = "monitoring", .object = "ReplicaSet/event-exporter-6d778fb78d", .time = "2024-03-02T07:42:57Z",
               .message_has = "Created pod: event-exporter-6d778fb78d-glr2z"},
        ""}},
      {"nth-asg-direct-sqs-test-notification.json",
       {std::nullopt,
        Expect{.kind = ClusterEventKind::other, .reason = "TestNotification",
               .dedupe = "asg/3775fac9-93c3-7ead-8713-159816566000", .source = "aws.autoscaling",
               .object = "Instance/i-040107f6ba000e5ee", .time = "2022-01-31T23:07:47.872Z"},
        ""}},
      {"nth-eventbridge-asg-launch-lifecycle-action.json",
       {std::nullopt,
        Expect{.kind = ClusterEventKind::other, .reason = "ASGLaunchLifecycle",
               .dedupe = "83c632dd-0145-1ab0-ae93-a756ebf429b5", .source = "aws.autoscaling",
               .object = "Instance/i-0a68bf5ef13e21b52", .time = "2020-07-01T22:30:58Z",
               .message_has = "ASG nth-test1 is launching instance i-0a68bf5ef13e21b52"},
        ""}},
      {"nth-eventbridge-asg-terminate-lifecycle-action.json",
       {std::nullopt,
        Expect{.kind = ClusterEventKind::node_termination, .reason = "ASGLifecycle",
               .dedupe = "782d5b4c-0f6f-1fd6-9d62-ecf6aed0a470", .source = "aws.autoscaling",
               .object = "Instance/i-0633ac2b0d9769723", .deadline = "2020-07-01T22:19:58Z",
               .message_has = "is terminating instance i-0633ac2b0d9769723"},
        ""}},
      {"nth-eventbridge-aws-health-scheduled-change.json",
       {std::nullopt,
        Expect{.kind = ClusterEventKind::scheduled_maintenance,
               .reason = "AWS_EC2_DEDICATED_HOST_NETWORK_MAINTENANCE_SCHEDULED",
               .dedupe = "7fb65329-1628-4cf3-a740-95fg457h1402", .source = "aws.health",
               .object = "Instance/i-12345678", .deadline = "2016-06-05T15:10:09Z", .time = "2016-06-05T06:27:57Z",
               .message_has = "A description of the event will be provided here"},
        ""}},
      {"nth-eventbridge-ec2-state-change.json",
       {std::nullopt,
        Expect{.kind = ClusterEventKind::other, .reason = "StateChange",
               .dedupe = "7bf73129-1428-4cd3-a780-95db273d1602", .source = "aws.ec2",
               .object = "Instance/i-abcd1111", .message_has = "went into pending"},
        ""}},
      {"nth-eventbridge-rebalance-recommendation.json",
       {std::nullopt,
        Expect{.kind = ClusterEventKind::rebalance_recommendation, .reason = "RebalanceRecommendation",
               .dedupe = "5d5555d5-dd55-5555-5555-5555dd55d55d", .source = "aws.ec2", .capacity = CapacityType::spot,
               .object = "Instance/i-0b662ef9931388ba0", .time = "2020-10-26T14:14:14Z"},
        ""}},
      {"nth-eventbridge-spot-interruption-warning.json",
       {std::nullopt,
        Expect{.kind = ClusterEventKind::spot_interruption, .reason = "SpotInterruption",
               .dedupe = "1e5527d7-bb36-4607-3370-4164db56a40e", .source = "aws.ec2", .capacity = CapacityType::spot,
               .object = "Instance/i-0b662ef9931388ba0", .deadline = "1970-01-01T00:02:00Z",
               .time = "1970-01-01T00:00:00Z"},
        ""}},
      {"nth-interruption-event-log-imds-spot-itn.json",
       {std::nullopt,
        Expect{.kind = ClusterEventKind::spot_interruption, .reason = "SpotInterruption",
               .dedupe = "spot-itn-c375f2bb4fa7984f3455aef01a1717bf6a7d7689850d31a68f324ba46ba7ae52",
               .source = "aws-node-termination-handler", .node = "ip-10-128-37-128.ec2.internal",
               .capacity = CapacityType::spot, .object = "Node/ip-10-128-37-128.ec2.internal",
               .deadline = "2022-10-07T04:16:37Z"},
        ""}},
  };
  return cases;
}

TEST(RealPayloads, EveryFileDecodesOrIsRejectedAsExpected) {
  std::set<std::string> seen;
  for (const auto& entry : std::filesystem::directory_iterator(kDir + "real")) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() != ".json") continue;
    seen.insert(name);
    auto it = real_cases().find(name);
    ASSERT_NE(it, real_cases().end()) << "no expectation for real payload " << name;
    auto got = decode_cluster_record(record_of(read("real/" + name), it->second.key));
    if (it->second.expect) {
      check(name, got, *it->second.expect);
    } else {
      ASSERT_FALSE(got) << name << " decoded as " << bot::to_string(got->kind);
      EXPECT_EQ(got.error().code, bot::Errc::invalid_argument) << name;
      EXPECT_THAT(got.error().message, HasSubstr(it->second.error_has)) << name;
    }
  }
  EXPECT_EQ(seen.size(), real_cases().size()) << "an expected real payload is missing from real/";
}

TEST(RealPayloads, CloudEventSpecExamplesWithTheirHeaderAreStillNotClusterEvents) {
  // The same documents as they would arrive in structured mode, with the content-type header.
  for (const char* name : {"cloudevents-json-format-json-object-data.json",
                           "cloudevents-json-format-data-base64-no-datacontenttype.json",
                           "cloudevents-spec-v1.0.2-example-pr-opened.json"}) {
    Record r = record_of(read(std::string("real/") + name));
    r.headers = {{"content-type", "application/cloudevents+json; charset=UTF-8"}};
    auto got = decode_cluster_record(r);
    ASSERT_FALSE(got) << name;
    EXPECT_THAT(got.error().message, StartsWith("unrecognised record: ")) << name;
  }
  Record r = record_of(read("real/cloudevents-json-format-json-object-data.json"));
  r.headers = {{"content-type", "application/cloudevents+json"}};
  EXPECT_THAT(decode_cluster_record(r).error().message, HasSubstr("(keys: appinfoA, appinfoB, appinfoC)"));
}

// ---------------------------------------------------------------------------------------------
// Reconstructed fixtures: one per remaining source and shape.

TEST(ReconstructedPayloads, EachSourceAndShapeIsClassified) {
  struct Case {
    const char* file;
    Expect x;
    std::optional<std::string> key = std::nullopt;
  };
  const std::vector<Case> cases{
      {"k8s-resmoio-pod-backoff-reconstructed.json",
       Expect{.kind = ClusterEventKind::pod_warning, .reason = "BackOff",
              .dedupe = "5b0e8c1e-2f4a-4d7e-9a61-0f3d2c1b9e77", .source = "kubelet",
              .node = "ip-10-0-3-17.ec2.internal", .ns = "pr-1234", .object = "Pod/webapp-7c9d8f6b5-x2xkq",
              .time = "2026-11-20T14:10:02Z", .message_has = "Back-off restarting failed container app"}},
      {"k8s-resmoio-scheduled-new-style-reconstructed.json",
       Expect{.kind = ClusterEventKind::pod_scheduled, .reason = "Scheduled",
              .dedupe = "a3c1f0e2-6b7d-4c8e-9f01-23456789abcd", .source = "default-scheduler",
              .node = "ip-10-0-3-17.ec2.internal", .ns = "pr-1234", .object = "Pod/webapp-7c9d8f6b5-x2xkq",
              .time = "2026-11-20T14:09:58.412Z"}},
      {"k8s-opsgenie-pod-failedscheduling-reconstructed.json",
       Expect{.kind = ClusterEventKind::pod_warning, .reason = "FailedScheduling",
              .dedupe = "c0ffee00-1234-4abc-8def-0123456789ab/5", .source = "default-scheduler", .ns = "pr-77",
              .object = "Pod/api-5f6d7c8b9-qwert", .time = "2026-11-20T15:04:00Z",
              .message_has = "6 Insufficient memory"}},
      {"k8s-opsgenie-empty-involved-object-reconstructed.json",
       Expect{.kind = ClusterEventKind::other, .reason = "Pulled", .dedupe = "c0ffee00-1234-4abc-8def-0123456789ac/1",
              .source = "kubelet", .ns = "pr-77"}},
      {"k8s-layout-stringified-oomkilled-reconstructed.json",
       Expect{.kind = ClusterEventKind::pod_warning, .reason = "OOMKilled",
              .dedupe = "7e57ab1e-0000-4000-8000-000000000001", .source = "kubelet",
              .node = "ip-10-0-3-18.ec2.internal", .ns = "pr-1234", .object = "Pod/worker-6d5c4b3a2-zzkq1",
              .time = "2026-11-20T14:30:00Z"}},
      {"k8s-janitor-ttl-deployment-reconstructed.json",
       Expect{.kind = ClusterEventKind::namespace_expired, .reason = "TimeToLiveExpired",
              .dedupe = "e1d2c3b4-a5f6-4789-8abc-def012345678", .source = "kube-janitor", .ns = "pr-1234",
              .object = "Deployment/webapp", .deadline = "2026-11-23T14:10:30Z",
              .message_has = "with 3d TTL is 3d0h0m27s old"}},
      {"k8s-janitor-namespace-delete-notification-reconstructed.json",
       Expect{.kind = ClusterEventKind::namespace_expired, .reason = "DeleteNotification",
              .dedupe = "d00dfeed-1111-4222-8333-444455556666", .source = "kube-janitor", .ns = "pr-1234",
              .object = "Namespace/pr-1234", .deadline = "2026-11-23T14:10:30Z", .time = "2026-11-23T13:10:30Z"}},
      {"k8s-nth-v2-spot-interruption-imds-reconstructed.json",
       Expect{.kind = ClusterEventKind::spot_interruption, .reason = "SpotInterruption",
              .dedupe = "f00dcafe-0000-4000-8000-00000000a001", .source = "aws-node-termination-handler",
              .node = "ip-10-0-3-17.ec2.internal", .capacity = CapacityType::spot, .instance_type = "m6i.large",
              .zone = "eu-west-1a", .object = "Node/ip-10-0-3-17.ec2.internal", .deadline = "2026-11-20T14:20:00Z",
              .time = "2026-11-20T14:18:02Z", .message_has = "Spot ITN received. Instance will be interrupted at"}},
      {"k8s-nth-v2-scheduled-event-imds-reconstructed.json",
       Expect{.kind = ClusterEventKind::scheduled_maintenance, .reason = "ScheduledEvent",
              .dedupe = "f00dcafe-0000-4000-8000-00000000a002", .source = "aws-node-termination-handler",
              .node = "ip-10-0-5-40.ec2.internal", .capacity = CapacityType::on_demand, .instance_type = "m6i.xlarge",
              .zone = "eu-west-1b", .object = "Node/ip-10-0-5-40.ec2.internal", .deadline = "2026-11-21T09:00:00Z"}},
      {"k8s-nth-v1-sqstermination-spot-queue-reconstructed.json",
       Expect{.kind = ClusterEventKind::spot_interruption, .reason = "SQSTermination",
              .dedupe = "f00dcafe-0000-4000-8000-00000000a003", .source = "aws-node-termination-handler",
              .node = "ip-10-0-3-17.ec2.internal", .capacity = CapacityType::spot, .instance_type = "m6i.large",
              .zone = "eu-west-1a", .object = "Node/ip-10-0-3-17.ec2.internal", .deadline = "2026-11-20T14:22:00Z"}},
      {"k8s-karpenter-node-spot-interrupted-reconstructed.json",
       Expect{.kind = ClusterEventKind::spot_interruption, .reason = "SpotInterrupted",
              .dedupe = "ba5eba11-0000-4000-8000-00000000b001", .source = "karpenter",
              .node = "ip-10-0-7-99.eu-west-1.compute.internal", .capacity = CapacityType::spot,
              .instance_type = "c6a.2xlarge", .zone = "eu-west-1c",
              .object = "Node/ip-10-0-7-99.eu-west-1.compute.internal", .deadline = "2026-11-20T18:02:05Z"}},
      {"k8s-karpenter-nodeclaim-spot-interrupted-reconstructed.json",
       Expect{.kind = ClusterEventKind::other, .reason = "SpotInterrupted",
              .dedupe = "ba5eba11-0000-4000-8000-00000000b002", .source = "karpenter",
              .object = "NodeClaim/default-x8k2j"}},
      {"k8s-cluster-autoscaler-node-scale-down-reconstructed.json",
       Expect{.kind = ClusterEventKind::node_termination, .reason = "ScaleDown",
              .dedupe = "ca5ca1e0-0000-4000-8000-00000000c001", .source = "cluster-autoscaler",
              .node = "ip-10-0-9-12.ec2.internal", .capacity = CapacityType::on_demand, .instance_type = "m6i.large",
              .zone = "eu-west-1b", .object = "Node/ip-10-0-9-12.ec2.internal"}},
      {"k8s-cluster-autoscaler-pod-not-trigger-scale-up-reconstructed.json",
       Expect{.kind = ClusterEventKind::pod_warning, .reason = "NotTriggerScaleUp",
              .dedupe = "ca5ca1e0-0000-4000-8000-00000000c002", .source = "cluster-autoscaler", .ns = "pr-77",
              .object = "Pod/api-5f6d7c8b9-qwert", .message_has = "max node group size reached"}},
      {"ce-headerless-layout-k8s-event-reconstructed.json",
       Expect{.kind = ClusterEventKind::pod_warning, .reason = "ImagePullBackOff",
              .dedupe = "/clusters/preview-eu1/kubernetes-event-exporter/a3c1f0e2-6b7d-4c8e-9f01-23456789abce",
              .source = "kubelet", .node = "ip-10-0-3-17.ec2.internal", .ns = "pr-1234",
              .object = "Pod/webapp-7c9d8f6b5-x2xkq", .time = "2026-11-20T14:38:00Z"}},
      {"sns-asg-terminate-lifecycle-reconstructed.json",
       Expect{.kind = ClusterEventKind::node_termination, .reason = "ASGLifecycle",
              .dedupe = "asg/7f3c6b4e-2d1a-4b5c-8e9f-0a1b2c3d4e5f", .source = "aws.autoscaling",
              .object = "Instance/i-0633ac2b0d9769723", .deadline = "2026-11-20T20:00:00.123Z",
              .message_has = "ASG preview-eu1-spot is terminating instance i-0633ac2b0d9769723"}},
      {"imds-scheduled-events-array-reconstructed.json",
       Expect{.kind = ClusterEventKind::scheduled_maintenance, .reason = "ScheduledEvent",
              .dedupe = "instance-event-0d59937288b749b32/active", .source = "ec2-imds",
              .node = "ip-10-0-5-40.ec2.internal", .object = "Node/ip-10-0-5-40.ec2.internal",
              .deadline = "2026-11-21T09:00:00Z", .message_has = "system-reboot will occur between"},
       "ip-10-0-5-40.ec2.internal"},
  };
  for (const auto& c : cases) check(c.file, decode_cluster_record(record_of(read(c.file), c.key)), c.x);
}

TEST(ReconstructedPayloads, StructuredIngestCloudEventUnwrapsTheExporterEvent) {
  Record r = record_of(read("ce-structured-ingest-k8s-event-reconstructed.json"), "acme/webapp#1234");
  r.headers = {{"content-type", "application/cloudevents+json; charset=UTF-8"}};
  check("structured ingest CE", decode_cluster_record(r),
        Expect{.kind = ClusterEventKind::pod_warning, .reason = "BackOff",
               .dedupe = "/clusters/preview-eu1/kubernetes-event-exporter/5b0e8c1e-2f4a-4d7e-9a61-0f3d2c1b9e77-884213",
               .source = "kubelet", .node = "ip-10-0-3-17.ec2.internal", .ns = "pr-1234",
               .object = "Pod/webapp-7c9d8f6b5-x2xkq", .time = "2026-11-20T14:10:02Z"});
}

TEST(ReconstructedPayloads, BinaryIngestCloudEventUnwrapsTheExporterEvent) {
  Record r = record_of(read("k8s-resmoio-pod-backoff-reconstructed.json"), "acme/webapp#1234");
  r.headers = {{"ce_specversion", "1.0"},
               {"ce_id", "5b0e8c1e-884213"},
               {"ce_source", "/clusters/preview-eu1/kubernetes-event-exporter"},
               {"ce_type", "dev.acme.prenv.ingest.k8s-event.v1"},
               {"ce_time", "2026-11-20T14:10:03Z"},
               {"content-type", "application/json"}};
  check("binary ingest CE", decode_cluster_record(r),
        Expect{.kind = ClusterEventKind::pod_warning, .reason = "BackOff",
               .dedupe = "/clusters/preview-eu1/kubernetes-event-exporter/5b0e8c1e-884213", .source = "kubelet",
               .node = "ip-10-0-3-17.ec2.internal", .ns = "pr-1234", .object = "Pod/webapp-7c9d8f6b5-x2xkq"});

  // Without any time in the Event, the CE time is the occurrence time.
  auto j = json::parse(*r.value);
  for (const char* k : {"firstTimestamp", "lastTimestamp"}) j[k] = nullptr;
  j["metadata"].erase("creationTimestamp");
  r.value = j.dump();
  auto e = decode_cluster_record(r);
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->time, at("2026-11-20T14:10:03Z"));

  // A foreign binary CE whose data is not JSON.
  r.headers.back().second = "application/xml";
  auto xml = decode_cluster_record(r);
  ASSERT_FALSE(xml);
  EXPECT_THAT(xml.error().message,
              HasSubstr("unrecognised record: cloudevent type 'dev.acme.prenv.ingest.k8s-event.v1' from "
                        "'/clusters/preview-eu1/kubernetes-event-exporter' at runbot.cluster-events/2@17: "
                        "cloudevent: unsupported content-type 'application/xml'"));
}

// Variants of the reconstructed Events that exercise the remaining reasons.
json fixture_json(const char* name) { return json::parse(read(name)); }

bot::Result<bot::ClusterEvent> decode_json(const json& j, std::optional<bot::TimePoint> ts = std::nullopt) {
  Record r = record_of(j.dump());
  r.timestamp = ts;
  return decode_cluster_record(r);
}

TEST(KubernetesEvents, PodWarningReasonsAndAnyWarningArePodWarnings) {
  json base = fixture_json("k8s-resmoio-pod-backoff-reconstructed.json");
  for (const char* reason : {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "FailedScheduling", "OOMKilled",
                             "BackOff", "Failed", "FailedMount", "SomethingNewButWarning"}) {
    json j = base;
    j["reason"] = reason;
    auto e = decode_json(j);
    ASSERT_TRUE(e) << reason << ": " << e.error().message;
    EXPECT_EQ(e->kind, ClusterEventKind::pod_warning) << reason;
    EXPECT_EQ(e->reason, reason);
    EXPECT_EQ(e->object, "Pod/webapp-7c9d8f6b5-x2xkq");
    EXPECT_EQ(e->namespace_name, "pr-1234");
  }
  json normal = base;
  normal["type"] = "Normal";
  normal["reason"] = "Started";
  EXPECT_EQ(decode_json(normal)->kind, ClusterEventKind::other) << "a Normal event with an unknown reason";
  json rs = base;
  rs["involvedObject"]["kind"] = "ReplicaSet";
  rs["reason"] = "FailedCreate";
  EXPECT_EQ(decode_json(rs)->kind, ClusterEventKind::other) << "warnings on other objects are not pod warnings";
}

TEST(KubernetesEvents, NewStyleKubeletWarningTakesTheNodeFromReportingInstance) {
  json j = fixture_json("k8s-resmoio-pod-backoff-reconstructed.json");
  j["source"] = json::object();
  j["reportingComponent"] = "kubelet";
  j["reportingInstance"] = "ip-10-0-3-99.ec2.internal";
  auto e = decode_json(j);
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->source, "kubelet");
  EXPECT_EQ(e->node.name.str(), "ip-10-0-3-99.ec2.internal");
}

TEST(KubernetesEvents, OpsgenieReExportsOfOneEventHaveDistinctDedupeKeys) {
  json j = fixture_json("k8s-opsgenie-pod-failedscheduling-reconstructed.json");
  auto first = decode_json(j);
  j["count"] = 6;
  auto second = decode_json(j);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->dedupe_key, "c0ffee00-1234-4abc-8def-0123456789ab/5");
  EXPECT_EQ(second->dedupe_key, "c0ffee00-1234-4abc-8def-0123456789ab/6");
  // resmoio exports once per Event: count is not part of the key.
  json r = fixture_json("k8s-resmoio-pod-backoff-reconstructed.json");
  r["count"] = 9;
  EXPECT_EQ(decode_json(r)->dedupe_key, "5b0e8c1e-2f4a-4d7e-9a61-0f3d2c1b9e77");
}

TEST(KubernetesEvents, NthReasonsInBothLogFormatVersions) {
  json base = fixture_json("k8s-nth-v2-spot-interruption-imds-reconstructed.json");
  struct Case {
    const char* reason;
    const char* message;
    ClusterEventKind kind;
    std::optional<const char*> deadline;
  };
  for (const auto& c : std::vector<Case>{
           {"RebalanceRecommendation", "Rebalance recommendation received. Instance will be cordoned at 2026-11-20T14:05:00Z \n",
            ClusterEventKind::rebalance_recommendation, std::nullopt},
           {"StateChange", "Instance i-0b662ef9931388ba0 went into stopping at 2026-11-20 14:18:00 +0000 UTC \n",
            ClusterEventKind::node_termination, "2026-11-20T14:18:02Z"},
           {"ASGLifecycle", "ASG Lifecycle Termination event received. \n", ClusterEventKind::node_termination,
            "2026-11-20T14:18:02Z"},
           {"UnknownInterruption", "?", ClusterEventKind::node_termination, "2026-11-20T14:18:02Z"},
           {"SQSTermination", "Rebalance Recommendation event received. Instance i-0b662ef9931388ba0 will be cordoned",
            ClusterEventKind::rebalance_recommendation, std::nullopt},
           {"SQSTermination", "AWS Health scheduled change event received for instance i-0b662ef9931388ba0",
            ClusterEventKind::scheduled_maintenance, std::nullopt},
           {"SQSTermination", "Instance i-0b662ef9931388ba0 went into terminated", ClusterEventKind::node_termination,
            "2026-11-20T14:18:02Z"},
           {"SpotInterruption",
            "Spot Interruption event received. Instance i-0b662ef9931388ba0 will be interrupted at 2026-11-20 14:18:00 +0000 UTC \n",
            ClusterEventKind::spot_interruption, "2026-11-20T14:20:00Z"},
           {"CordonAndDrain", "Node successfully cordoned and drained", ClusterEventKind::other, std::nullopt},
           {"CordonAndDrainError", "There was a problem while trying to cordon and drain the node: timeout",
            ClusterEventKind::other, std::nullopt},
           {"MonitorError", "There was a problem monitoring for events in monitor 'SQS_MONITOR'",
            ClusterEventKind::other, std::nullopt},
       }) {
    json j = base;
    j["reason"] = c.reason;
    j["message"] = c.message;
    auto e = decode_json(j);
    ASSERT_TRUE(e) << c.reason << ": " << e.error().message;
    EXPECT_EQ(bot::to_string(e->kind), std::string(bot::to_string(c.kind))) << c.reason << " / " << c.message;
    EXPECT_EQ(e->reason, c.reason);
    EXPECT_EQ(e->node.name.str(), "ip-10-0-3-17.ec2.internal");
    EXPECT_TRUE(e->namespace_name.empty()) << "NTH events live in 'default' but are about the node";
    if (c.deadline) {
      ASSERT_TRUE(e->deadline) << c.reason;
      EXPECT_EQ(*e->deadline, at(*c.deadline)) << c.reason << " / " << c.message;
    } else {
      EXPECT_FALSE(e->deadline) << c.reason;
    }
  }
}

TEST(KubernetesEvents, KarpenterNodeReasonsAndNewStyleReportingComponent) {
  json base = fixture_json("k8s-karpenter-node-spot-interrupted-reconstructed.json");
  struct Case {
    const char* reason;
    ClusterEventKind kind;
    bool deadline;
  };
  for (const auto& c : {Case{"SpotRebalanceRecommendation", ClusterEventKind::rebalance_recommendation, false},
                        Case{"InstanceStopping", ClusterEventKind::node_termination, true},
                        Case{"InstanceTerminating", ClusterEventKind::node_termination, true},
                        Case{"TerminatingOnInterruption", ClusterEventKind::node_termination, true},
                        Case{"InstanceUnhealthy", ClusterEventKind::node_termination, false},
                        Case{"DisruptionTerminating", ClusterEventKind::node_termination, false},
                        Case{"Unconsolidatable", ClusterEventKind::other, false}}) {
    json j = base;
    j["reason"] = c.reason;
    auto e = decode_json(j);
    ASSERT_TRUE(e) << c.reason << ": " << e.error().message;
    EXPECT_EQ(e->kind, c.kind) << c.reason;
    EXPECT_EQ(e->deadline.has_value(), c.deadline) << c.reason;
    EXPECT_EQ(e->node.name.str(), "ip-10-0-7-99.eu-west-1.compute.internal");
  }
  json new_style = base;
  new_style["source"] = json::object();
  new_style["reportingComponent"] = "karpenter";
  auto e = decode_json(new_style);
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->kind, ClusterEventKind::spot_interruption) << "identified by reportingComponent";
  EXPECT_EQ(e->source, "karpenter");
  // Karpenter's FailedScheduling on a Pod is a pod warning.
  json pod = fixture_json("k8s-opsgenie-pod-failedscheduling-reconstructed.json");
  pod["source"]["component"] = "karpenter";
  EXPECT_EQ(decode_json(pod)->kind, ClusterEventKind::pod_warning);
}

TEST(KubernetesEvents, JanitorOtherReasonsAreOtherAndTheNamespaceIsRequired) {
  json j = fixture_json("k8s-janitor-ttl-deployment-reconstructed.json");
  j["reason"] = "ExpiryTimeReached";
  auto expiry = decode_json(j);
  ASSERT_TRUE(expiry) << expiry.error().message;
  EXPECT_EQ(expiry->kind, ClusterEventKind::namespace_expired);
  j["reason"] = "SomethingElse";
  EXPECT_EQ(decode_json(j)->kind, ClusterEventKind::other);
  // Python kube-janitor on a Namespace: no namespace anywhere (§3.3).
  json ns = fixture_json("k8s-janitor-namespace-delete-notification-reconstructed.json");
  ns["reason"] = "TimeToLiveExpired";
  ns["involvedObject"]["kind"] = "ConfigMap";
  ns["involvedObject"].erase("namespace");
  ns["metadata"].erase("namespace");
  auto e = decode_json(ns);
  ASSERT_FALSE(e);
  EXPECT_THAT(e.error().message, HasSubstr("kube-janitor TimeToLiveExpired names no namespace"));
}

TEST(KubernetesEvents, AutoscalerPodEventsOtherThanWarningsAreOther) {
  json j = fixture_json("k8s-cluster-autoscaler-pod-not-trigger-scale-up-reconstructed.json");
  j["reason"] = "TriggeredScaleUp";
  j["message"] = "pod triggered scale-up: [{preview-eu1-spot 3->4 (max: 10)}]";
  EXPECT_EQ(decode_json(j)->kind, ClusterEventKind::other);
  json node = fixture_json("k8s-cluster-autoscaler-node-scale-down-reconstructed.json");
  node["reason"] = "ScaleDownFailed";
  node["type"] = "Warning";
  EXPECT_EQ(decode_json(node)->kind, ClusterEventKind::other);
}

// ---------------------------------------------------------------------------------------------
// Malformed variants.

struct Bad {
  std::string what;
  std::function<void(json&)> mutate;
  std::string error_has;
};

void expect_errors(const char* fixture, const std::vector<Bad>& cases, std::optional<std::string> key = std::nullopt) {
  for (const auto& c : cases) {
    json j = fixture_json(fixture);
    c.mutate(j);
    auto got = decode_cluster_record(record_of(j.dump(), key));
    ASSERT_FALSE(got) << fixture << " / " << c.what << " decoded as " << bot::to_string(got->kind);
    EXPECT_EQ(got.error().code, bot::Errc::invalid_argument);
    EXPECT_THAT(got.error().message, HasSubstr(c.error_has)) << fixture << " / " << c.what;
  }
}

TEST(Malformed, TruncatedAndNonObjectValuesOfEveryShape) {
  for (const auto& entry : std::filesystem::directory_iterator(kDir)) {
    if (entry.path().extension() != ".json") continue;
    const std::string text = read(entry.path().filename().string());
    auto got = decode_cluster_record(record_of(text.substr(0, text.size() / 2)));
    ASSERT_FALSE(got) << entry.path();
    EXPECT_THAT(got.error().message,
                HasSubstr("unrecognised record: value at runbot.cluster-events/2@17 is not valid JSON"));
  }
  auto number = decode_cluster_record(record_of("42"));
  ASSERT_FALSE(number);
  EXPECT_THAT(number.error().message, HasSubstr("is not a JSON object (number)"));
  auto array = decode_cluster_record(record_of("[1,2]"));
  ASSERT_FALSE(array);
  EXPECT_THAT(array.error().message, HasSubstr("is not a JSON object (array)"));
}

TEST(Malformed, KubernetesEvents) {
  expect_errors("k8s-resmoio-pod-backoff-reconstructed.json",
                {{"reason missing", [](json& j) { j.erase("reason"); j["reason"] = nullptr; },
                  "k8s event at runbot.cluster-events/2@17: field 'reason' is missing or empty"},
                 {"reason a number", [](json& j) { j["reason"] = json::array({1}); }, "field 'reason' must be a string"},
                 {"count a word", [](json& j) { j["count"] = "three"; }, "field 'count' must be an integer"},
                 {"involvedObject a string", [](json& j) { j["involvedObject"] = "Pod/x"; },
                  "field 'involvedObject' must be an object"},
                 {"involvedObject null", [](json& j) { j["involvedObject"] = nullptr; },
                  "field 'involvedObject' is missing"},
                 {"source a string", [](json& j) { j["source"] = "kubelet"; }, "field 'source' must be an object"},
                 {"bad time", [](json& j) { j["lastTimestamp"] = "yesterday"; },
                  "field 'lastTimestamp': 'yesterday' is not a time"},
                 {"time a number", [](json& j) { j["lastTimestamp"] = 1700000000; },
                  "field 'lastTimestamp' must be a time string"},
                 {"no uid", [](json& j) { j["metadata"].erase("uid"); },
                  "field 'metadata.uid' is missing or empty (needed to dedupe)"},
                 {"no time at all",
                  [](json& j) {
                    j["firstTimestamp"] = j["lastTimestamp"] = nullptr;
                    j["metadata"].erase("creationTimestamp");
                  },
                  "no time (lastTimestamp, series.lastObservedTime, eventTime"},
                 {"Scheduled without a node",
                  [](json& j) {
                    j["reason"] = "Scheduled";
                    j["message"] = "Successfully assigned pr-1234/webapp";
                  },
                  "Scheduled message does not name a node: 'Successfully assigned pr-1234/webapp'"}});
  expect_errors("k8s-nth-v2-spot-interruption-imds-reconstructed.json",
                {{"no node anywhere",
                  [](json& j) {
                    j["involvedObject"] = json::object({{"kind", "Node"}});
                    j["source"].erase("host");
                    j["metadata"]["annotations"].erase("local-hostname");
                  },
                  "NTH SpotInterruption event names no node"},
                 {"annotations a list", [](json& j) { j["metadata"]["annotations"] = json::array(); },
                  "field 'metadata.annotations' must be an object"}});
  // An unknown reason is not an error: the event is `other`.
  json j = fixture_json("k8s-nth-v2-spot-interruption-imds-reconstructed.json");
  j["reason"] = "MeteorStrike";
  EXPECT_EQ(decode_json(j)->kind, ClusterEventKind::other);
  // The Kafka timestamp stands in when an Event carries no time.
  json no_time = fixture_json("k8s-resmoio-pod-backoff-reconstructed.json");
  no_time["firstTimestamp"] = no_time["lastTimestamp"] = nullptr;
  no_time["metadata"].erase("creationTimestamp");
  auto e = decode_json(no_time, at("2026-11-20T14:10:05Z"));
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->time, at("2026-11-20T14:10:05Z"));
}

TEST(Malformed, EventBridge) {
  expect_errors("real/nth-eventbridge-spot-interruption-warning.json",
                {{"unknown detail-type", [](json& j) { j["detail-type"] = "EC2 Meteor Strike Warning"; },
                  "unrecognised record: EventBridge detail-type 'EC2 Meteor Strike Warning' (source 'aws.ec2') at "
                  "runbot.cluster-events/2@17"},
                 {"no detail", [](json& j) { j.erase("detail"); },
                  "eventbridge event at runbot.cluster-events/2@17: field 'detail' is missing"},
                 {"detail an array", [](json& j) { j["detail"] = json::array(); }, "field 'detail' must be an object"},
                 {"no instance", [](json& j) { j["detail"].erase("instance-id"); },
                  "field 'detail.instance-id' is missing or empty"},
                 {"bad time", [](json& j) { j["time"] = "soon"; }, "field 'time': 'soon' is not a time"},
                 {"no time", [](json& j) { j.erase("time"); }, "field 'time' is missing"},
                 {"id an object", [](json& j) { j["id"] = json::object(); }, "field 'id' must be a string"},
                 {"no id", [](json& j) { j.erase("id"); }, "field 'id' is missing or empty"}});
  expect_errors("real/nth-eventbridge-aws-health-scheduled-change.json",
                {{"no startTime", [](json& j) { j["detail"].erase("startTime"); }, "field 'detail.startTime' is missing"},
                 {"startTime garbage", [](json& j) { j["detail"]["startTime"] = "Sat 5 June"; },
                  "field 'detail.startTime': 'Sat 5 June' is not a time"},
                 {"no entities", [](json& j) { j["detail"]["affectedEntities"] = json::array(); },
                  "AWS Health scheduledChange names no instance"},
                 {"entities an object", [](json& j) { j["detail"]["affectedEntities"] = json::object(); },
                  "field 'detail.affectedEntities' must be an array"}});
  expect_errors("real/nth-eventbridge-ec2-state-change.json",
                {{"no state", [](json& j) { j["detail"].erase("state"); }, "field 'detail.state' is missing or empty"}});
  expect_errors("real/nth-eventbridge-asg-terminate-lifecycle-action.json",
                {{"no instance", [](json& j) { j["detail"].erase("EC2InstanceId"); },
                  "field 'detail.EC2InstanceId' is missing or empty"}});
  // Terminating states are node terminations; other Health categories are `other`.
  json stop = fixture_json("real/nth-eventbridge-ec2-state-change.json");
  for (const char* state : {"stopping", "stopped", "shutting-down", "terminated"}) {
    stop["detail"]["state"] = state;
    auto e = decode_json(stop);
    ASSERT_TRUE(e) << e.error().message;
    EXPECT_EQ(e->kind, ClusterEventKind::node_termination) << state;
    ASSERT_TRUE(e->deadline);
    EXPECT_EQ(*e->deadline, at("2015-11-11T21:29:54Z"));
  }
  json health = fixture_json("real/nth-eventbridge-aws-health-scheduled-change.json");
  health["detail"]["eventTypeCategory"] = "issue";
  EXPECT_EQ(decode_json(health)->kind, ClusterEventKind::other);
}

TEST(Malformed, AsgSnsAndImdsDocuments) {
  expect_errors("real/nth-asg-direct-sqs-test-notification.json",
                {{"terminating without instance",
                  [](json& j) {
                    j["LifecycleTransition"] = "autoscaling:EC2_INSTANCE_TERMINATING";
                    j.erase("EC2InstanceId");
                  },
                  "asg lifecycle message at runbot.cluster-events/2@17: field 'EC2InstanceId' is missing or empty"},
                 {"bad Time", [](json& j) { j["Time"] = "31/01/2022"; }, "field 'Time': '31/01/2022' is not a time"}});
  expect_errors("sns-asg-terminate-lifecycle-reconstructed.json",
                {{"Message not JSON", [](json& j) { j["Message"] = "Lifecycle action TERMINATING"; },
                  "unrecognised record: SNS notification at runbot.cluster-events/2@17: Message is not JSON"}});
  expect_errors("real/imds-spot-instance-action.json",
                {{"bad time", [](json& j) { j["time"] = "in two minutes"; },
                  "imds document at runbot.cluster-events/2@17: field 'time': 'in two minutes' is not a time"},
                 {"action an object", [](json& j) { j["action"] = json::object(); }, "field 'action' must be a string"}},
                "ip-10-0-3-17.ec2.internal");
  expect_errors("imds-scheduled-events-array-reconstructed.json",
                {{"item without EventId", [](json& j) { j[1].erase("EventId"); },
                  "(scheduled event #1): field 'EventId' is missing or empty"},
                 {"NotBefore in an unknown layout", [](json& j) { j[0]["NotBefore"] = "2026/11/14 09:00"; },
                  "(scheduled event #0): field 'NotBefore': '2026/11/14 09:00' is not a time"},
                 {"an item is a string", [](json& j) { j[1] = "instance-event-1"; },
                  "scheduled event #1 is not an object"}},
                "ip-10-0-5-40.ec2.internal");
  // Every scheduled event completed or canceled: nothing to warn about.
  json done = fixture_json("imds-scheduled-events-array-reconstructed.json");
  done[1]["State"] = "completed";
  auto e = decode_json(done);
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->kind, ClusterEventKind::other);
  EXPECT_EQ(e->dedupe_key, "instance-event-0aaaaaaaaaaaaaaa1/canceled");
}

TEST(Malformed, CloudEventEnvelopes) {
  expect_errors("ce-headerless-layout-k8s-event-reconstructed.json",
                {{"data a string", [](json& j) { j["data"] = "{\"reason\":\"BackOff\"}"; },
                  "data is a string, not a JSON object"},
                 {"wrong specversion", [](json& j) { j["specversion"] = "0.3"; },
                  "unrecognised record: header-less cloudevent: unsupported specversion '0.3'"},
                 {"data of an unknown shape", [](json& j) { j["data"] = json{{"hello", "world"}}; },
                  "unrecognised record: JSON at runbot.cluster-events/2@17 is not a CloudEvent"},
                 {"wrapped event is malformed", [](json& j) { j["data"]["count"] = "many"; },
                  "cloudevent type 'dev.acme.prenv.ingest.k8s-event.v1': k8s event at runbot.cluster-events/2@17: "
                  "field 'count' must be an integer"}});
  Record binary = record_of("{}");
  binary.headers = {{"ce_specversion", "1.0"}, {"ce_source", "/x"}, {"ce_type", "dev.acme.x.v1"}};
  auto e = decode_cluster_record(binary);
  ASSERT_FALSE(e);
  EXPECT_THAT(e.error().message, HasSubstr("cloudevent: missing header ce_id"));
}

TEST(Malformed, DeeplyNestedEnvelopesStop) {
  json inner = fixture_json("real/nth-asg-direct-sqs-test-notification.json");
  for (int i = 0; i < 6; ++i) inner = json{{"Type", "Notification"}, {"Message", inner.dump()}};
  auto e = decode_json(inner);
  ASSERT_FALSE(e);
  EXPECT_THAT(e.error().message, HasSubstr("envelopes nested too deep"));
}

// ---------------------------------------------------------------------------------------------

TEST(EventTime, AllThreeAwsLayoutsAndGoTimeStringParse) {
  EXPECT_EQ(*parse_event_time("2026-11-20T14:20:00Z"), at("2026-11-20T14:20:00Z"));
  EXPECT_EQ(*parse_event_time("2024-03-02T07:42:57.123456Z"), at("2024-03-02T07:42:57.123Z"));
  EXPECT_EQ(*parse_event_time("Sat, 05 Jun 2016 15:10:09 GMT"), at("2016-06-05T15:10:09Z"));
  EXPECT_EQ(*parse_event_time("2 Jan 2006 15:04:05 GMT"), at("2006-01-02T15:04:05Z"));
  EXPECT_EQ(*parse_event_time("21 Nov 2026 09:00:00 GMT"), at("2026-11-21T09:00:00Z"));
  EXPECT_EQ(*parse_event_time("2026-11-20 14:20:00 +0000 UTC"), at("2026-11-20T14:20:00Z"));
  EXPECT_EQ(*parse_event_time("2026-11-20 15:20:00.5 +0100 CET m=+12.3"), at("2026-11-20T14:20:00.500Z"));
  EXPECT_EQ(*parse_event_time(" 2026-11-20T14:20:00Z \n"), at("2026-11-20T14:20:00Z"));
  for (const char* bad : {"", "soon", "32 Jan 2026 10:00:00 GMT", "5 Foo 2026 10:00:00 GMT", "2 Jan 2006 15:04:05 PST",
                          "2026-11-20 14:20:00", "Sat, 05 Jun 2016 25:10:09 GMT"}) {
    auto t = parse_event_time(bad);
    ASSERT_FALSE(t) << bad;
    EXPECT_THAT(t.error().message, HasSubstr("is not a time (expected RFC 3339, RFC 1123"));
  }
  EXPECT_TRUE(is_go_zero_time("0001-01-01T00:00:00Z"));
  EXPECT_FALSE(is_go_zero_time("2026-01-01T00:00:00Z"));
}

}  // namespace
}  // namespace runbot::events
