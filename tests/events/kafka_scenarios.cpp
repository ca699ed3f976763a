#include "tests/events/kafka_scenarios.h"

#include <gmock/gmock.h>

#include <fstream>
#include <sstream>

#include "events/kafka_event_publisher.h"
#include "events/kafka_event_source.h"
#include "events/kafka_job_queue.h"
#include "events/kafka_job_source.h"
#include "events/kafka_producer.h"

namespace runbot::events::testing {
namespace {

bot::Job make_job(int n) {
  bot::Job job;
  job.id = bot::JobId{"job-" + std::to_string(n)};
  job.verb = n % 2 ? bot::JobVerb::up : bot::JobVerb::extend;
  job.env = bot::EnvId{"front-end-pr-7"};  // one key: one partition, so order is observable
  job.app = bot::AppName{"front-end"};
  job.pr = 7;
  job.namespace_name = "front-end-pr-7";
  job.requested_by = bot::UserId{"U1"};
  job.requested_at = *bot::parse_time("2026-11-20T14:00:00Z") + std::chrono::seconds(n);
  job.ttl = std::chrono::hours(n);
  return job;
}

// Produces and waits for every delivery report; asserts they all succeeded.
void publish_jobs(boost::asio::io_context& io, KafkaJobQueue& queue, int from, int to) {
  int reported = 0;
  int failed = 0;
  for (int n = from; n <= to; ++n) {
    queue.publish(make_job(n), [&](bot::Status st) {
      ++reported;
      if (!st) {
        ++failed;
        ADD_FAILURE() << "delivery failed: " << st.error().message;
      }
    });
  }
  ASSERT_TRUE(run_until(io, [&] { return reported == to - from + 1; }))
      << "delivery reports received: " << reported << " of " << (to - from + 1);
  EXPECT_EQ(failed, 0);
}

class RecordingSink : public bot::EventSink {
 public:
  void on_lifecycle(const bot::LifecycleEvent& e) override { lifecycle.push_back(e); }
  void on_cluster(const bot::ClusterEvent& e) override { cluster.push_back(e); }
  std::vector<bot::LifecycleEvent> lifecycle;
  std::vector<bot::ClusterEvent> cluster;
};

}  // namespace

void jobs_flow_with_poison_and_restart(const KafkaSettings& settings, const std::string& group) {
  boost::asio::io_context io;
  auto producer = KafkaProducer::create(io, settings);
  ASSERT_TRUE(producer) << producer.error().message;
  KafkaJobQueue queue(**producer, settings.topics);

  publish_jobs(io, queue, 1, 3);
  // A poison record on the same partition (same key), between good ones.
  bool poison_delivered = false;
  (*producer)->produce(settings.topics.jobs, "front-end-pr-7", std::string("this is not a job"),
                       {{"ce_specversion", "1.0"}}, [&](bot::Status st) {
                         EXPECT_TRUE(st);
                         poison_delivered = true;
                       });
  ASSERT_TRUE(run_until(io, [&] { return poison_delivered; }));
  publish_jobs(io, queue, 4, 5);

  std::vector<std::string> received;
  auto on_job = [&](const bot::Job& job) {
    received.push_back(job.id.str());
    if (job.id.str() == "job-2") {
      EXPECT_EQ(job, make_job(2));
    }
  };
  {
    auto source = KafkaJobSource::create(io, settings, on_job, group);
    ASSERT_TRUE(source) << source.error().message;
    ASSERT_TRUE(run_until(io, [&] { return received.size() >= 5; }))
        << "received " << received.size() << " of 5 jobs";
    EXPECT_THAT(received, ::testing::ElementsAre("job-1", "job-2", "job-3", "job-4", "job-5"));
    ConsumerStats stats = (*source)->stats();
    EXPECT_EQ(stats.consumed, 6u);
    EXPECT_EQ(stats.skipped_invalid, 1u);
    EXPECT_TRUE(stats.last_record.has_value());
    EXPECT_TRUE(run_until(io, [&] { return (*source)->stats().lag == 0; }))
        << "lag=" << (*source)->stats().lag;
    ASSERT_TRUE((*source)->close());
  }

  // Same group again: committed offsets mean only the new job arrives.
  received.clear();
  publish_jobs(io, queue, 6, 6);
  auto again = KafkaJobSource::create(io, settings, on_job, group);
  ASSERT_TRUE(again) << again.error().message;
  ASSERT_TRUE(run_until(io, [&] { return !received.empty(); })) << "job-6 never arrived";
  EXPECT_THAT(received, ::testing::ElementsAre("job-6"));
  EXPECT_EQ((*again)->stats().skipped_invalid, 0u) << "the poison record was delivered again";
  ASSERT_TRUE((*again)->close());
  EXPECT_TRUE((*producer)->flush(std::chrono::seconds(5)));
}

void lifecycle_and_cluster_flow(const KafkaSettings& settings, const std::string& group) {
  boost::asio::io_context io;
  auto producer = KafkaProducer::create(io, settings);
  ASSERT_TRUE(producer) << producer.error().message;
  KafkaEventPublisher publisher(**producer, settings.topics);

  bot::LifecycleEvent ready;
  ready.id = "evt-1";
  ready.source = "/runbot/provisioner/demo";
  ready.kind = bot::LifecycleKind::ready;
  ready.env = bot::EnvId{"front-end-pr-9"};
  ready.job = bot::JobId{"job-9"};
  ready.time = *bot::parse_time("2026-11-20T14:05:00Z");
  ready.url = "https://front-end-pr-9.preview.example.com";
  ready.nodes = {bot::NodeInfo{bot::NodeName{"ip-10-0-3-17.ec2.internal"}, bot::CapacityType::spot, "m6i.large", "eu-west-1a"}};
  bot::LifecycleEvent failed = ready;
  failed.id = "evt-2";
  failed.kind = bot::LifecycleKind::failed;
  failed.url.clear();
  failed.nodes.clear();
  failed.reason = "helm exited";
  failed.exit_status = 1;

  std::ifstream in(std::string(RUNBOT_TESTDATA_DIR) + "/events/nth-webhook-tojson-sqs-spot-itn.json");
  std::stringstream nth;
  nth << in.rdbuf();
  ASSERT_FALSE(nth.str().empty());

  int delivered = 0;
  auto count = [&](bot::Status st) {
    EXPECT_TRUE(st) << (st ? "" : st.error().message);
    ++delivered;
  };
  publisher.publish(ready, count);
  publisher.publish(failed, count);
  publisher.publish_cluster_record("ip-10-0-3-17.ec2.internal", nth.str(), count);
  publisher.publish_cluster_record("", "{\"hello\": \"world\"}", count);  // unrecognised
  ASSERT_TRUE(run_until(io, [&] { return delivered == 4; })) << "delivered " << delivered << " of 4";

  RecordingSink sink;
  auto source = KafkaEventSource::create(io, settings, sink, group);
  ASSERT_TRUE(source) << source.error().message;
  ASSERT_TRUE(run_until(io, [&] { return sink.lifecycle.size() == 2 && (*source)->stats().consumed == 4; }))
      << "lifecycle=" << sink.lifecycle.size() << " cluster=" << sink.cluster.size();
  EXPECT_EQ(sink.lifecycle[0], ready);
  EXPECT_EQ(sink.lifecycle[1], failed);
  ASSERT_EQ(sink.cluster.size(), 1u);
  EXPECT_EQ(sink.cluster[0].kind, bot::ClusterEventKind::spot_interruption);
  EXPECT_EQ(sink.cluster[0].node.name.str(), "ip-10-0-3-17.ec2.internal");
  ASSERT_TRUE(sink.cluster[0].deadline.has_value());
  EXPECT_EQ(*sink.cluster[0].deadline, *bot::parse_time("2026-11-20T14:22:00Z"));
  bot::EventSourceStats stats = (*source)->stats();
  EXPECT_EQ(stats.consumed, 4u);
  EXPECT_EQ(stats.skipped_invalid, 1u);
  EXPECT_TRUE(stats.last_event.has_value());
  ASSERT_TRUE((*source)->close());
}

}  // namespace runbot::events::testing
