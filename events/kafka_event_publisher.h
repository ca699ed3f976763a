#pragma once
// KafkaEventPublisher: bot::EventPublisher on Kafka, used by the provisioner and the demo cluster.
// publish() produces a lifecycle event as a binary-mode CloudEvent (io.runbot.env.<kind>.v1,
// key = env id) to settings.topics.events; publish_cluster_record() produces the raw JSON value
// with no headers to settings.topics.cluster_events, exactly as an NTH webhook bridge would.
//
// Ownership: borrows the KafkaProducer, which must outlive it. Threading: call on the loop
// thread; `done` runs there. Errors: those of KafkaProducer::produce.
#include <string>

#include "bot/event_sink.h"
#include "events/kafka_producer.h"
#include "events/kafka_settings.h"

namespace runbot::events {

class KafkaEventPublisher : public bot::EventPublisher {
 public:
  KafkaEventPublisher(KafkaProducer& producer, KafkaSettings::Topics topics);

  void publish(const bot::LifecycleEvent& event, std::function<void(bot::Status)> done) override;
  void publish_cluster_record(std::string key, std::string json_value,
                              std::function<void(bot::Status)> done) override;

 private:
  KafkaProducer& producer_;
  KafkaSettings::Topics topics_;
};

}  // namespace runbot::events
