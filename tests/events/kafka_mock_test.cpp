// Component tests: producer, consumers and bindings against the in-process mock cluster
// (EmbeddedBroker), all on one io_context.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <cstdio>
#include <memory>

#include "events/embedded_broker.h"
#include "events/kafka_consumer.h"
#include "events/kafka_event_source.h"
#include "events/kafka_job_queue.h"
#include "events/kafka_producer.h"
#include "tests/events/kafka_scenarios.h"

namespace runbot::events {
namespace {

using ::testing::HasSubstr;
using testing::run_until;
using testing::test_settings;

std::unique_ptr<EmbeddedBroker> start_broker() {
  auto broker = EmbeddedBroker::start(KafkaSettings::Topics{});
  EXPECT_TRUE(broker) << broker.error().message;
  return broker ? std::move(*broker) : nullptr;
}

TEST(KafkaMock, JobsArriveInOrderPoisonIsSkippedAndCommittedOffsetsAreNotRedelivered) {
  auto broker = start_broker();
  ASSERT_TRUE(broker);
  testing::jobs_flow_with_poison_and_restart(test_settings(broker->bootstrap_servers()), "runbot-provisioner");
}

TEST(KafkaMock, LifecycleEventsAndNthRecordsReachTheSink) {
  auto broker = start_broker();
  ASSERT_TRUE(broker);
  testing::lifecycle_and_cluster_flow(test_settings(broker->bootstrap_servers()), "runbot-bot");
}

TEST(KafkaMock, PoisonRecordsGoToTheDeadLetterTopicAndCommittedOffsetsPassThem) {
  auto broker = start_broker();
  ASSERT_TRUE(broker);
  testing::poison_records_go_to_the_dead_letter_topic(test_settings(broker->bootstrap_servers()), "runbot-bot");
}

TEST(KafkaMock, DeferredOffsetsAreCommittedOnlyThroughCheckpoints) {
  auto broker = start_broker();
  ASSERT_TRUE(broker);
  testing::deferred_offsets_commit_only_through_checkpoints(test_settings(broker->bootstrap_servers()), "runbot-bot");
}

TEST(KafkaMock, RecordsAppliedToTheSavedStateAreSkippedAfterARestart) {
  auto broker = start_broker();
  ASSERT_TRUE(broker);
  testing::records_applied_to_the_state_are_not_handled_again(test_settings(broker->bootstrap_servers()), "runbot-bot");
}

TEST(KafkaMock, AConsumerRestartedWithNothingToReadKnowsItsLagIsZero) {
  auto broker = start_broker();
  ASSERT_TRUE(broker);
  testing::an_idle_restart_knows_its_lag(test_settings(broker->bootstrap_servers()), "runbot-bot");
}

TEST(KafkaMock, FailingDeadLetterDeliveryHoldsThePartitionUntilItSucceeds) {
  auto broker = start_broker();
  ASSERT_TRUE(broker);
  KafkaSettings settings = test_settings(broker->bootstrap_servers());
  settings.message_timeout = std::chrono::milliseconds(1500);
  boost::asio::io_context io;
  const std::string topic = settings.topics.cluster_events;
  testing::produce_all(io, settings, topic,
                       {{"k", std::string("good-1"), {}}, {"k", std::string("poison-1"), {}}, {"k", std::string("good-2"), {}},
                        {"other-key", std::string("good-other"), {}}});

  std::vector<std::string> handled;
  auto handler = [&](const Record& r) -> bot::Status {
    if (r.value->rfind("poison", 0) == 0) return bot::make_error(bot::Errc::invalid_argument, "poison " + *r.value);
    handled.push_back(*r.value);
    return bot::ok();
  };
  ConsumerOptions options;
  options.dead_letter.enabled = true;
  options.dead_letter.retry_backoff = std::chrono::milliseconds(100);
  options.dead_letter.max_backoff = std::chrono::milliseconds(400);
  // Every produce request fails (retriable) until cleared: DLQ deliveries time out.
  broker->fail_produce_requests(100000);
  auto consumer = KafkaConsumer::create(io, settings, "dlq-failure", {topic}, handler, options);
  ASSERT_TRUE(consumer) << consumer.error().message;
  ASSERT_TRUE(run_until(io, [&] { return (*consumer)->stats().dead_letter_retries >= 2; }, std::chrono::seconds(60)))
      << "retries=" << (*consumer)->stats().dead_letter_retries;
  // The poison record is neither in the DLQ nor committed past, and good-2 behind it waits.
  EXPECT_THAT(handled, ::testing::Contains("good-1"));
  EXPECT_THAT(handled, ::testing::Not(::testing::Contains("good-2")));
  EXPECT_EQ((*consumer)->stats().dead_lettered, 0u);
  EXPECT_EQ((*consumer)->stats().held_partitions, 1u);

  broker->clear_produce_errors();
  ASSERT_TRUE(run_until(io, [&] { return (*consumer)->stats().dead_lettered == 1 && handled.size() == 3; },
                        std::chrono::seconds(60)))
      << "dead_lettered=" << (*consumer)->stats().dead_lettered << " handled=" << handled.size();
  std::vector<std::string> same_key;
  for (const auto& h : handled) {
    if (h != "good-other") same_key.push_back(h);
  }
  EXPECT_THAT(same_key, ::testing::ElementsAre("good-1", "good-2"));
  EXPECT_EQ((*consumer)->stats().held_partitions, 0u);
  ASSERT_TRUE((*consumer)->close());
  auto dlq = testing::read_topic(io, settings, topic + ".dlq", "dlq-failure-reader", 1);
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].value, std::optional<std::string>("poison-1"));
  EXPECT_EQ(*dlq[0].header("dlq.error.message"), "poison poison-1");
}

TEST(KafkaMock, UndeliverableJobReportsARetryableTimeout) {
  boost::asio::io_context io;
  KafkaSettings settings = test_settings("127.0.0.1:1");  // nothing listens there
  settings.message_timeout = std::chrono::milliseconds(300);
  auto producer = KafkaProducer::create(io, settings);
  ASSERT_TRUE(producer) << producer.error().message;
  KafkaJobQueue queue(**producer, settings.topics);
  bot::Job job;
  job.id = bot::JobId{"job-1"};
  job.env = bot::EnvId{"front-end-pr-1"};
  job.app = bot::AppName{"front-end"};
  job.pr = 1;
  std::optional<bot::Status> result;
  queue.publish(job, [&](bot::Status st) { result = std::move(st); });
  EXPECT_FALSE(result.has_value()) << "done must not run inline";
  ASSERT_TRUE(run_until(io, [&] { return result.has_value(); }));
  ASSERT_FALSE(*result);
  EXPECT_EQ(result->error().code, bot::Errc::timeout);
  EXPECT_TRUE(result->error().is_retryable());
  EXPECT_THAT(result->error().message, HasSubstr("runbot.jobs"));
  EXPECT_EQ((*producer)->in_flight(), 0u);
}

TEST(KafkaMock, BadPropertyStopsProducerAndConsumerCreation) {
  boost::asio::io_context io;
  KafkaSettings settings = test_settings("127.0.0.1:9092");
  settings.properties["no.such.thing"] = "1";
  auto producer = KafkaProducer::create(io, settings);
  ASSERT_FALSE(producer);
  EXPECT_THAT(producer.error().message, HasSubstr("'no.such.thing'"));
  auto consumer = KafkaConsumer::create(io, settings, "g", {"t"}, [](const Record&) { return bot::ok(); });
  ASSERT_FALSE(consumer);
  EXPECT_THAT(consumer.error().message, HasSubstr("'no.such.thing'"));
}

TEST(EmbeddedBroker, KcatInAnotherProcessListsTheTopics) {
  if (std::system("command -v kcat >/dev/null 2>&1") != 0) GTEST_SKIP() << "kcat is not installed";
  auto broker = start_broker();
  ASSERT_TRUE(broker);
  std::string cmd = "kcat -b " + broker->bootstrap_servers() + " -L -m 10 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  ASSERT_TRUE(pipe);
  std::string out;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, pipe.get())) out.append(buf, n);
  EXPECT_THAT(out, HasSubstr("topic \"runbot.jobs\" with 4 partitions"));
  EXPECT_THAT(out, HasSubstr("topic \"runbot.events\" with 4 partitions"));
  EXPECT_THAT(out, HasSubstr("topic \"runbot.cluster-events\" with 4 partitions"));
}

}  // namespace
}  // namespace runbot::events
