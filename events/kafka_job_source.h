#pragma once
// KafkaJobSource: the provisioner's side of the jobs topic. One KafkaConsumer (group
// "runbot-provisioner" by default) over settings.topics.jobs; each record is decoded with
// decode_job and handed to `on_job`. Undecodable records are logged once, counted in
// stats().skipped_invalid and skipped. The offset is stored after on_job returns, so a job whose
// handling was interrupted by a crash is delivered again (on_job must be idempotent per job id).
//
// Ownership: owned by the provisioner's composition root. Threading: on_job runs on the loop
// thread of `io`; all methods must be called there. Errors: create() fails like
// KafkaConsumer::create.
#include <functional>
#include <memory>
#include <string>

#include "bot/model.h"
#include "events/kafka_consumer.h"
#include "events/kafka_settings.h"

namespace boost::asio {
class io_context;
}

namespace runbot::events {

class KafkaJobSource {
 public:
  using JobHandler = std::function<void(const bot::Job&)>;

  static bot::Result<std::unique_ptr<KafkaJobSource>> create(boost::asio::io_context& io,
                                                             const KafkaSettings& settings,
                                                             JobHandler on_job,
                                                             std::string group_id = "runbot-provisioner");

  ConsumerStats stats() const { return consumer_->stats(); }
  // Graceful shutdown: commits stored offsets and leaves the group (blocks briefly).
  bot::Status close() { return consumer_->close(); }
  KafkaConsumer& consumer() { return *consumer_; }

 private:
  KafkaJobSource() = default;
  std::unique_ptr<KafkaConsumer> consumer_;
};

}  // namespace runbot::events
