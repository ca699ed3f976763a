#include "tests/events/kafka_scenarios.h"

#include <gmock/gmock.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "events/kafka_event_publisher.h"
#include "events/kafka_event_source.h"
#include "events/kafka_job_queue.h"
#include "events/kafka_job_source.h"
#include "events/kafka_consumer.h"
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
  // Per topic: both subscribed topics are listed, each caught up once its records are handled.
  ConsumerStats consumer_stats = (*source)->consumer().stats();
  ASSERT_EQ(consumer_stats.topics.size(), 2u);
  EXPECT_EQ(consumer_stats.topics.at(settings.topics.events).consumed, 2u);
  EXPECT_EQ(consumer_stats.topics.at(settings.topics.cluster_events).consumed, 2u);
  EXPECT_TRUE(consumer_stats.topics.at(settings.topics.events).last_record.has_value());
  EXPECT_TRUE(run_until(io, [&] {
    auto by_topic = (*source)->stats().lag_by_topic;
    return by_topic.size() == 2 && by_topic[settings.topics.events] == 0 && by_topic[settings.topics.cluster_events] == 0;
  })) << "lag_by_topic never reached 0 for both topics";
  ASSERT_TRUE((*source)->close());
}

std::string nth_body(const std::string& event_id) {
  std::ifstream in(std::string(RUNBOT_TESTDATA_DIR) + "/events/nth-webhook-tojson-sqs-spot-itn.json");
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str());
  j["EventID"] = event_id;
  return j.dump();
}

void produce_all(boost::asio::io_context& io, const KafkaSettings& settings, const std::string& topic,
                 const std::vector<RawRecord>& records) {
  auto producer = KafkaProducer::create(io, settings);
  ASSERT_TRUE(producer) << producer.error().message;
  size_t reported = 0;
  for (const auto& r : records) {
    (*producer)->produce(topic, r.key, r.value, r.headers, [&](bot::Status st) {
      EXPECT_TRUE(st) << (st ? "" : st.error().message);
      ++reported;
    });
  }
  ASSERT_TRUE(run_until(io, [&] { return reported == records.size(); }))
      << "delivery reports: " << reported << " of " << records.size();
}

std::vector<Record> read_topic(boost::asio::io_context& io, const KafkaSettings& settings, const std::string& topic,
                               const std::string& group, size_t count) {
  std::vector<Record> got;
  auto reader = KafkaConsumer::create(io, settings, group, {topic}, [&](const Record& r) {
    got.push_back(r);
    return bot::ok();
  });
  EXPECT_TRUE(reader) << reader.error().message;
  if (!reader) return got;
  EXPECT_TRUE(run_until(io, [&] { return got.size() >= count; }, std::chrono::seconds(60)))
      << "read " << got.size() << " of " << count << " records from " << topic;
  (void)(*reader)->close();
  return got;
}

void poison_records_go_to_the_dead_letter_topic(const KafkaSettings& settings, const std::string& group) {
  boost::asio::io_context io;
  const std::string topic = settings.topics.cluster_events;
  const std::string key = "ip-10-0-3-17.ec2.internal";  // one key: one partition, offsets 0..n-1 in order
  const Headers poison_ce{{"ce_specversion", "1.0"},
                          {"ce_id", "bogus-1"},
                          {"ce_source", "/runbot/test"},
                          {"ce_type", "io.runbot.cluster.meteor-strike.v1"},
                          {"content-type", "application/json"},
                          {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}};
  const std::vector<RawRecord> records{
      {key, nth_body("spot-itn-event-good-1"), {}},          // 0
      {key, std::string("this is not json"), {}},            // 1 poison
      {key, nth_body("spot-itn-event-good-2"), {}},          // 2
      {key, nth_body("spot-itn-event-good-3"), {}},          // 3
      {key, std::string("{\"kind\":\"Pod\"}"), poison_ce},   // 4 poison, a CloudEvent
      {key, nth_body("spot-itn-event-good-4"), {}},          // 5
      {key, std::string("{\"hello\":\"world\"}"), {}},       // 6 poison
      {key, std::string("[1,2,3]"), {}},                     // 7 poison, right after another
      {key, nth_body("spot-itn-event-good-5"), {}},          // 8
      {key, nth_body("spot-itn-event-good-6"), {}},          // 9
  };
  const std::vector<std::int64_t> poison_offsets{1, 4, 6, 7};
  produce_all(io, settings, topic, records);

  RecordingSink sink;
  {
    auto source = KafkaEventSource::create(io, settings, sink, group);
    ASSERT_TRUE(source) << source.error().message;
    ASSERT_TRUE(run_until(io, [&] { return sink.cluster.size() >= 6 && (*source)->dead_lettered() >= 4; },
                          std::chrono::seconds(60)))
        << "good=" << sink.cluster.size() << " dead_lettered=" << (*source)->dead_lettered();
    std::vector<std::string> ids;
    for (const auto& e : sink.cluster) ids.push_back(e.dedupe_key);
    EXPECT_THAT(ids, ::testing::ElementsAre("spot-itn-event-good-1", "spot-itn-event-good-2", "spot-itn-event-good-3",
                                            "spot-itn-event-good-4", "spot-itn-event-good-5", "spot-itn-event-good-6"));
    EXPECT_EQ((*source)->dead_lettered(), 4u);
    bot::EventSourceStats stats = (*source)->stats();
    EXPECT_EQ(stats.consumed, 10u);
    EXPECT_EQ(stats.skipped_invalid, 4u);
    EXPECT_TRUE(run_until(io, [&] { return (*source)->stats().lag == 0; })) << "lag=" << (*source)->stats().lag;
    EXPECT_EQ((*source)->consumer().stats().held_partitions, 0u);
    ASSERT_TRUE((*source)->close());
  }

  std::vector<Record> dlq = read_topic(io, settings, topic + ".dlq", group + "-dlq-reader", poison_offsets.size());
  ASSERT_EQ(dlq.size(), poison_offsets.size());
  std::string partition;
  for (size_t i = 0; i < dlq.size(); ++i) {
    const Record& d = dlq[i];
    const RawRecord& original = records[static_cast<size_t>(poison_offsets[i])];
    SCOPED_TRACE("dlq record " + std::to_string(i));
    EXPECT_EQ(d.key, std::optional<std::string>(key));
    EXPECT_EQ(d.value, original.value);
    ASSERT_TRUE(d.header("dlq.original.topic"));
    EXPECT_EQ(*d.header("dlq.original.topic"), topic);
    ASSERT_TRUE(d.header("dlq.original.offset"));
    EXPECT_EQ(*d.header("dlq.original.offset"), std::to_string(poison_offsets[i]));
    ASSERT_TRUE(d.header("dlq.original.partition"));
    if (partition.empty()) partition = *d.header("dlq.original.partition");
    EXPECT_EQ(*d.header("dlq.original.partition"), partition) << "one key, one partition";
    ASSERT_TRUE(d.header("dlq.error.class"));
    EXPECT_EQ(*d.header("dlq.error.class"), "invalid_argument");
    ASSERT_TRUE(d.header("dlq.error.message"));
    ASSERT_TRUE(d.header("dlq.attempts"));
    EXPECT_EQ(*d.header("dlq.attempts"), "1");
    ASSERT_TRUE(d.header("dlq.first_failure_ts"));
    EXPECT_TRUE(bot::parse_time(*d.header("dlq.first_failure_ts"))) << *d.header("dlq.first_failure_ts");
  }
  EXPECT_THAT(*dlq[0].header("dlq.error.message"), ::testing::HasSubstr("is not valid JSON"));
  EXPECT_THAT(*dlq[1].header("dlq.error.message"), ::testing::HasSubstr("cloudevent data: "));
  EXPECT_THAT(*dlq[2].header("dlq.error.message"), ::testing::HasSubstr("unrecognised record"));
  // The CloudEvent's ce_* and content-type headers travel along; others do not.
  Record original_ce;
  original_ce.headers = poison_ce;
  for (const char* h : {"ce_specversion", "ce_id", "ce_source", "ce_type", "content-type"}) {
    ASSERT_TRUE(dlq[1].header(h)) << h;
    EXPECT_EQ(*dlq[1].header(h), *original_ce.header(h)) << h;
  }
  EXPECT_EQ(dlq[1].header("traceparent"), nullptr);
  EXPECT_EQ(dlq[0].header("ce_id"), nullptr);

  // Same group again: the committed offsets are past every record, poison included.
  produce_all(io, settings, topic, {{key, nth_body("spot-itn-event-good-7"), {}}});
  RecordingSink again;
  auto source = KafkaEventSource::create(io, settings, again, group);
  ASSERT_TRUE(source) << source.error().message;
  ASSERT_TRUE(run_until(io, [&] { return !again.cluster.empty(); }, std::chrono::seconds(60))) << "good-7 never arrived";
  ASSERT_EQ(again.cluster.size(), 1u);
  EXPECT_EQ(again.cluster[0].dedupe_key, "spot-itn-event-good-7");
  EXPECT_EQ((*source)->stats().consumed, 1u) << "records before the restart were delivered again";
  EXPECT_EQ((*source)->dead_lettered(), 0u);
  ASSERT_TRUE((*source)->close());
}

void deferred_offsets_commit_only_through_checkpoints(const KafkaSettings& settings, const std::string& group) {
  boost::asio::io_context io;
  const std::string topic = settings.topics.cluster_events;
  const std::string key = "ip-10-0-3-17.ec2.internal";  // one partition
  produce_all(io, settings, topic, {{key, nth_body("deferred-1"), {}}, {key, nth_body("deferred-2"), {}}});
  {
    RecordingSink sink;
    auto source = KafkaEventSource::create(io, settings, sink, group, /*defer_offsets=*/true);
    ASSERT_TRUE(source) << source.error().message;
    int after = 0;
    (*source)->set_after_record([&] { ++after; });
    ASSERT_TRUE(run_until(io, [&] { return sink.cluster.size() == 2; }, std::chrono::seconds(60)));
    EXPECT_EQ(after, 2) << "after_record runs for each accepted record";
    std::uint64_t mark = (*source)->consumer().checkpoint();
    EXPECT_GT(mark, 0u);
    EXPECT_EQ((*source)->consumer().deferred_partitions(), 1u);
    (*source)->consumer().commit_through(mark);
    EXPECT_EQ((*source)->consumer().deferred_partitions(), 0u);
    // Handled but never committed through: a crash here must not lose them.
    produce_all(io, settings, topic,
                {{key, nth_body("deferred-3"), {}}, {key, std::string("not json"), {}}, {key, nth_body("deferred-4"), {}}});
    ASSERT_TRUE(run_until(io, [&] { return sink.cluster.size() == 4 && (*source)->dead_lettered() == 1; },
                          std::chrono::seconds(60)));
    std::uint64_t uncommitted = (*source)->consumer().checkpoint();
    EXPECT_GT(uncommitted, mark);
    EXPECT_EQ((*source)->consumer().deferred_partitions(), 1u);
    ASSERT_TRUE((*source)->close());
  }
  RecordingSink again;
  auto source = KafkaEventSource::create(io, settings, again, group, /*defer_offsets=*/true);
  ASSERT_TRUE(source) << source.error().message;
  ASSERT_TRUE(run_until(io, [&] { return again.cluster.size() == 2 && (*source)->dead_lettered() == 1; },
                        std::chrono::seconds(60)))
      << "redelivered=" << again.cluster.size();
  EXPECT_EQ(again.cluster[0].dedupe_key, "deferred-3");
  EXPECT_EQ(again.cluster[1].dedupe_key, "deferred-4");
  EXPECT_EQ((*source)->stats().consumed, 3u) << "exactly the records after the last commit point";
  (*source)->consumer().commit_through((*source)->consumer().checkpoint());
  ASSERT_TRUE((*source)->close());
}

void records_applied_to_the_state_are_not_handled_again(const KafkaSettings& settings, const std::string& group) {
  boost::asio::io_context io;
  const std::string topic = settings.topics.cluster_events;
  const std::string key = "ip-10-0-3-17.ec2.internal";  // one partition
  produce_all(io, settings, topic, {{key, nth_body("applied-1"), {}}, {key, nth_body("applied-2"), {}}});
  KafkaConsumer::Positions saved;
  {
    RecordingSink sink;
    auto source = KafkaEventSource::create(io, settings, sink, group, /*defer_offsets=*/true);
    ASSERT_TRUE(source) << source.error().message;
    ASSERT_TRUE(run_until(io, [&] { return sink.cluster.size() == 2; }, std::chrono::seconds(60)));
    (*source)->consumer().commit_through((*source)->consumer().checkpoint());
    // Handled and in the state (positions() saved with it), but never committed: a crash here.
    produce_all(io, settings, topic,
                {{key, nth_body("applied-3"), {}}, {key, std::string("not json"), {}}, {key, nth_body("applied-4"), {}}});
    ASSERT_TRUE(run_until(io, [&] { return sink.cluster.size() == 4 && (*source)->dead_lettered() == 1; },
                          std::chrono::seconds(60)));
    saved = (*source)->consumer().positions();
    ASSERT_EQ(saved.size(), 1u);
    EXPECT_EQ(saved.begin()->first.first, topic);
    ASSERT_TRUE((*source)->close());
  }
  // The next run starts from that state: the three records come again and are skipped.
  produce_all(io, settings, topic, {{key, nth_body("applied-5"), {}}});
  RecordingSink again;
  auto source = KafkaEventSource::create(io, settings, again, group, /*defer_offsets=*/true);
  ASSERT_TRUE(source) << source.error().message;
  (*source)->consumer().skip_applied(saved);
  ASSERT_TRUE(run_until(io, [&] { return !again.cluster.empty(); }, std::chrono::seconds(60)));
  ASSERT_EQ(again.cluster.size(), 1u);
  EXPECT_EQ(again.cluster[0].dedupe_key, "applied-5");
  const ConsumerStats stats = (*source)->consumer().stats();
  EXPECT_EQ(stats.skipped_applied, 3u) << "applied-3, the poison record and applied-4";
  EXPECT_EQ(stats.consumed, 1u);
  EXPECT_EQ(stats.dead_lettered, 0u) << "the poison record is in the DLQ already";
  EXPECT_EQ((*source)->consumer().positions().at(saved.begin()->first), saved.begin()->second + 1);
  (*source)->consumer().commit_through((*source)->consumer().checkpoint());
  ASSERT_TRUE((*source)->close());

  // Positions beyond a partition's end belong to an older incarnation of the topic (deleted and
  // created again): nothing is skipped there.
  RecordingSink fresh;
  auto other = KafkaEventSource::create(io, settings, fresh, group + "-recreated", /*defer_offsets=*/true);
  ASSERT_TRUE(other) << other.error().message;
  KafkaConsumer::Positions beyond;
  for (std::int32_t p = 0; p < 4; ++p) beyond[{topic, p}] = 1000000;
  (*other)->consumer().skip_applied(beyond);
  ASSERT_TRUE(run_until(io, [&] { return fresh.cluster.size() == 5; }, std::chrono::seconds(60)))
      << "handled " << fresh.cluster.size() << " of the topic's 5 good records";
  EXPECT_EQ((*other)->consumer().stats().skipped_applied, 0u);
  EXPECT_LT((*other)->consumer().positions().at(saved.begin()->first), 1000000)
      << "the stale position is not saved with the next snapshot";
  ASSERT_TRUE((*other)->close());
}

void an_idle_restart_knows_its_lag(const KafkaSettings& settings, const std::string& group) {
  boost::asio::io_context io;
  const std::string topic = settings.topics.cluster_events;
  produce_all(io, settings, topic, {{"ip-10-0-3-17.ec2.internal", nth_body("idle-1"), {}}});
  {
    RecordingSink sink;
    auto source = KafkaEventSource::create(io, settings, sink, group);
    ASSERT_TRUE(source) << source.error().message;
    ASSERT_TRUE(run_until(io, [&] { return sink.cluster.size() == 1; }, std::chrono::seconds(60)));
    ASSERT_TRUE((*source)->close());
  }
  RecordingSink sink;
  auto source = KafkaEventSource::create(io, settings, sink, group);
  ASSERT_TRUE(source) << source.error().message;
  EXPECT_TRUE(run_until(io, [&] {
    return (*source)->consumer().assigned_partitions() > 0 && (*source)->stats().lag == 0;
  }, std::chrono::seconds(30))) << "lag=" << (*source)->stats().lag << ": unknown although nothing is left to read";
  EXPECT_TRUE(sink.cluster.empty());
  EXPECT_EQ((*source)->stats().skipped_invalid, 0u) << "end-of-partition is not an error";
  ASSERT_TRUE((*source)->close());
}

}  // namespace runbot::events::testing
