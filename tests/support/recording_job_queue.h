#pragma once
// RecordingJobQueue: a JobQueue for tests that keeps every job and acknowledges it through the
// clock (never inline: a FakeClock, or an AsioClock in tests with real sockets), or fails it when
// told to.
#include <vector>

#include "bot/job_queue.h"
#include "bot/clock.h"

namespace runbot::testing {

class RecordingJobQueue final : public bot::JobQueue {
 public:
  explicit RecordingJobQueue(bot::Clock& clock) : clock_(clock) {}
  void publish(const bot::Job& job, std::function<void(bot::Status)> done) override {
    jobs.push_back(job);
    bot::Status result = fail_next ? bot::Status(bot::make_error(bot::Errc::unavailable, "broker down")) : bot::ok();
    fail_next = false;
    clock_.call_after(bot::Duration::zero(), [done, result] { done(result); });
  }
  std::vector<bot::Job> jobs;
  bool fail_next = false;

 private:
  bot::Clock& clock_;
};

}  // namespace runbot::testing
