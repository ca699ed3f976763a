// The bot-interface bindings: KafkaJobQueue, KafkaEventPublisher, KafkaEventSource, KafkaJobSource.
#include "events/cloudevents.h"
#include "events/cluster_decoder.h"
#include "events/kafka_event_publisher.h"
#include "events/kafka_event_source.h"
#include "events/kafka_job_queue.h"
#include "events/kafka_job_source.h"

namespace runbot::events {

KafkaJobQueue::KafkaJobQueue(KafkaProducer& producer, KafkaSettings::Topics topics, std::string source)
    : producer_(producer), topics_(std::move(topics)), source_(std::move(source)) {}

void KafkaJobQueue::publish(const bot::Job& job, std::function<void(bot::Status)> done) {
  EncodedRecord r = encode_job(job, source_);
  producer_.produce(topics_.jobs, r.key, std::move(r.value), r.headers, std::move(done));
}

KafkaEventPublisher::KafkaEventPublisher(KafkaProducer& producer, KafkaSettings::Topics topics)
    : producer_(producer), topics_(std::move(topics)) {}

void KafkaEventPublisher::publish(const bot::LifecycleEvent& event, std::function<void(bot::Status)> done) {
  EncodedRecord r = encode_lifecycle(event);
  producer_.produce(topics_.events, r.key, std::move(r.value), r.headers, std::move(done));
}

void KafkaEventPublisher::publish_cluster_record(std::string key, std::string json_value,
                                                 std::function<void(bot::Status)> done) {
  producer_.produce(topics_.cluster_events, key, std::move(json_value), {}, std::move(done));
}

bot::Result<std::unique_ptr<KafkaEventSource>> KafkaEventSource::create(boost::asio::io_context& io,
                                                                        const KafkaSettings& settings,
                                                                        bot::EventSink& sink,
                                                                        std::string group_id,
                                                                        bool defer_offsets) {
  std::unique_ptr<KafkaEventSource> self{new KafkaEventSource()};
  self->events_topic_ = settings.topics.events;
  self->sink_ = &sink;
  KafkaEventSource* raw = self.get();
  auto handler = [raw](const Record& record) -> bot::Status {
    if (record.topic == raw->events_topic_) {
      auto event = decode_lifecycle(record);
      if (!event) return event.error();
      raw->sink_->on_lifecycle(*event);
    } else {
      auto event = decode_cluster_record(record);
      if (!event) return event.error();
      raw->sink_->on_cluster(*event);
    }
    if (raw->after_record_) raw->after_record_();
    return bot::ok();
  };
  ConsumerOptions options;
  options.dead_letter.enabled = true;
  options.defer_offset_store = defer_offsets;
  auto consumer = KafkaConsumer::create(io, settings, std::move(group_id),
                                        {settings.topics.events, settings.topics.cluster_events},
                                        std::move(handler), options);
  if (!consumer) return consumer.error();
  self->consumer_ = std::move(*consumer);
  return self;
}

bot::EventSourceStats KafkaEventSource::stats() const {
  ConsumerStats s = consumer_->stats();
  bot::EventSourceStats out{s.consumed, s.skipped_invalid, s.dead_lettered, s.lag, s.last_record, {}};
  for (const auto& [topic, t] : s.topics) out.lag_by_topic.emplace(topic, t.lag);
  return out;
}

std::uint64_t KafkaEventSource::dead_lettered() const { return consumer_->stats().dead_lettered; }

bot::Status KafkaEventSource::close() { return consumer_->close(); }

bot::Result<std::unique_ptr<KafkaJobSource>> KafkaJobSource::create(boost::asio::io_context& io,
                                                                    const KafkaSettings& settings,
                                                                    JobHandler on_job,
                                                                    std::string group_id) {
  std::unique_ptr<KafkaJobSource> self{new KafkaJobSource()};
  auto handler = [on_job = std::move(on_job)](const Record& record) -> bot::Status {
    auto job = decode_job(record);
    if (!job) return job.error();
    on_job(*job);
    return bot::ok();
  };
  auto consumer = KafkaConsumer::create(io, settings, std::move(group_id), {settings.topics.jobs},
                                        std::move(handler));
  if (!consumer) return consumer.error();
  self->consumer_ = std::move(*consumer);
  return self;
}

}  // namespace runbot::events
