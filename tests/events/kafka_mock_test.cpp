// Component tests: producer, consumers and bindings against the in-process mock cluster
// (EmbeddedBroker), all on one io_context.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <cstdio>
#include <memory>

#include "events/embedded_broker.h"
#include "events/kafka_consumer.h"
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
