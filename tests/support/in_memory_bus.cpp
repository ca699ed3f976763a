#include "tests/support/in_memory_bus.h"

#include "events/cluster_decoder.h"

namespace runbot::testing {

void InMemoryBus::publish(const bot::Job& job, std::function<void(bot::Status)> done) {
  jobs.push_back(job);
  clock_.call_after(bot::Duration::zero(), [this, job, done] {
    done(bot::ok());
    if (job_handler_) job_handler_(job);
  });
}

void InMemoryBus::publish(const bot::LifecycleEvent& event, std::function<void(bot::Status)> done) {
  events.push_back(event);
  clock_.call_after(bot::Duration::zero(), [this, event, done] {
    if (done) done(bot::ok());
    if (sink_) sink_->on_lifecycle(event);
  });
}

void InMemoryBus::publish_cluster_record(std::string key, std::string json_value, std::function<void(bot::Status)> done) {
  cluster_records.push_back(json_value);
  clock_.call_after(bot::Duration::zero(), [this, key, json_value, done] {
    if (done) done(bot::ok());
    events::Record r;
    r.topic = "runbot.cluster-events";
    r.key = key;
    r.value = json_value;
    auto decoded = events::decode_cluster_record(r);
    if (!decoded) {
      ++undecodable;
      return;
    }
    if (sink_) sink_->on_cluster(*decoded);
  });
}

}  // namespace runbot::testing
