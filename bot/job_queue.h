#pragma once
// JobQueue: where the bot publishes provisioning jobs (Kafka topic `runbot.jobs` in production).
#include <functional>

#include "bot/model.h"
#include "bot/result.h"

namespace runbot::bot {

class JobQueue {
 public:
  virtual ~JobQueue() = default;
  // Publishes `job` keyed by job.env. `done` runs once, on the bot's executor, when the job is
  // durably accepted (Kafka delivery report) or has failed for good.
  virtual void publish(const Job& job, std::function<void(Status)> done) = 0;
};

}  // namespace runbot::bot
