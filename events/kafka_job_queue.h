#pragma once
// KafkaJobQueue: bot::JobQueue on Kafka. Encodes each job as a binary-mode CloudEvent
// (io.runbot.job.<verb>.v1, key = env id) and produces it to settings.topics.jobs.
//
// Ownership: owned by bot/app; borrows the KafkaProducer, which must outlive it. Threading: call
// on the loop thread; `done` runs there from the delivery report. Errors: those of
// KafkaProducer::produce (retryable when the broker is unavailable or the queue is full).
#include <string>

#include "bot/job_queue.h"
#include "events/kafka_producer.h"
#include "events/kafka_settings.h"

namespace runbot::events {

class KafkaJobQueue : public bot::JobQueue {
 public:
  // `source` is the CloudEvents source naming this bot instance, e.g. "/runbot/bot/<pod>".
  KafkaJobQueue(KafkaProducer& producer, KafkaSettings::Topics topics, std::string source = "/runbot/bot");

  void publish(const bot::Job& job, std::function<void(bot::Status)> done) override;

 private:
  KafkaProducer& producer_;
  KafkaSettings::Topics topics_;
  std::string source_;
};

}  // namespace runbot::events
