// Integration tests against a REAL Kafka broker at $RUNBOT_TEST_KAFKA (e.g. 127.0.0.1:19092).
// Start one with:  bash .ci/kafka/fetch.sh && export RUNBOT_TEST_KAFKA=$(bash .ci/kafka/start.sh)
// and stop it with bash .ci/kafka/stop.sh. Without the variable these tests FAIL on purpose.
// Topic names and group ids carry a per-run suffix, so reruns against a persistent broker start clean.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "tests/events/kafka_scenarios.h"

namespace runbot::events {
namespace {

std::string broker_or_fail() {
  const char* addr = std::getenv("RUNBOT_TEST_KAFKA");
  if (!addr || !*addr) {
    ADD_FAILURE() << "RUNBOT_TEST_KAFKA is not set. These tests need a real Kafka broker: run\n"
                     "  bash .ci/kafka/fetch.sh && export RUNBOT_TEST_KAFKA=$(bash .ci/kafka/start.sh)\n"
                     "then rerun, and bash .ci/kafka/stop.sh afterwards.";
    return {};
  }
  return addr;
}

std::string run_suffix(const char* test) {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return std::string(".") + test + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
}

TEST(KafkaRealBroker, JobsArriveInOrderPoisonIsSkippedAndCommittedOffsetsAreNotRedelivered) {
  std::string addr = broker_or_fail();
  if (addr.empty()) return;
  std::string suffix = run_suffix("jobs");
  testing::jobs_flow_with_poison_and_restart(testing::test_settings(addr, suffix), "runbot-provisioner" + suffix);
}

TEST(KafkaRealBroker, LifecycleEventsAndNthRecordsReachTheSink) {
  std::string addr = broker_or_fail();
  if (addr.empty()) return;
  std::string suffix = run_suffix("events");
  testing::lifecycle_and_cluster_flow(testing::test_settings(addr, suffix), "runbot-bot" + suffix);
}

TEST(KafkaRealBroker, PoisonRecordsGoToTheDeadLetterTopicAndCommittedOffsetsPassThem) {
  std::string addr = broker_or_fail();
  if (addr.empty()) return;
  std::string suffix = run_suffix("dlq");
  testing::poison_records_go_to_the_dead_letter_topic(testing::test_settings(addr, suffix), "runbot-bot" + suffix);
}

TEST(KafkaRealBroker, DeferredOffsetsAreCommittedOnlyThroughCheckpoints) {
  std::string addr = broker_or_fail();
  if (addr.empty()) return;
  std::string suffix = run_suffix("deferred");
  testing::deferred_offsets_commit_only_through_checkpoints(testing::test_settings(addr, suffix), "runbot-bot" + suffix);
}

}  // namespace
}  // namespace runbot::events
