#pragma once
// InMemoryBus: stands in for Kafka in component tests. Jobs published by the bot reach the job
// handler, lifecycle events reach the EventSink, and raw cluster records are decoded by the real
// events::decode_cluster_record before reaching the sink. Every hop goes through the FakeClock,
// so deliveries are asynchronous as with Kafka. Integration tests use a real broker instead.
#include <functional>
#include <vector>

#include "bot/event_sink.h"
#include "bot/job_queue.h"
#include "tests/support/fake_clock.h"

namespace runbot::testing {

class InMemoryBus final : public bot::JobQueue, public bot::EventPublisher {
 public:
  explicit InMemoryBus(FakeClock& clock) : clock_(clock) {}

  void connect(std::function<void(const bot::Job&)> on_job, bot::EventSink* sink) {
    job_handler_ = std::move(on_job);
    sink_ = sink;
  }

  void publish(const bot::Job& job, std::function<void(bot::Status)> done) override;
  void publish(const bot::LifecycleEvent& event, std::function<void(bot::Status)> done) override;
  void publish_cluster_record(std::string key, std::string json_value, std::function<void(bot::Status)> done) override;

  std::vector<bot::Job> jobs;
  std::vector<bot::LifecycleEvent> events;
  std::vector<std::string> cluster_records;
  int undecodable = 0;

 private:
  FakeClock& clock_;
  std::function<void(const bot::Job&)> job_handler_;
  bot::EventSink* sink_ = nullptr;
};

}  // namespace runbot::testing
