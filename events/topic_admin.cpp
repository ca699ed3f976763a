#include "events/topic_admin.h"

#include <string>
#include <vector>

#include "events/rdkafka_util.h"

namespace runbot::events {

bot::Status ensure_topics(const KafkaSettings& settings, int partitions, int replication,
                          std::chrono::milliseconds timeout) {
  auto conf = detail::make_conf(settings, {});
  if (!conf) return conf.error();
  auto handle = detail::make_handle(RD_KAFKA_PRODUCER, std::move(*conf), "admin client");
  if (!handle) return handle.error();
  rd_kafka_t* rk = handle->get();
  const std::vector<std::string> names{settings.topics.jobs, settings.topics.events, settings.topics.cluster_events};
  std::vector<rd_kafka_NewTopic_t*> topics;
  char err[512];
  for (const auto& n : names) {
    rd_kafka_NewTopic_t* t = rd_kafka_NewTopic_new(n.c_str(), partitions, replication, err, sizeof err);
    if (!t) {
      for (auto* made : topics) rd_kafka_NewTopic_destroy(made);
      return bot::make_error(bot::Errc::invalid_argument, "topic " + n + ": " + err);
    }
    topics.push_back(t);
  }
  detail::QueuePtr queue(rd_kafka_queue_new(rk));
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_request_timeout(options, static_cast<int>(timeout.count()), err, sizeof err);
  rd_kafka_CreateTopics(rk, topics.data(), topics.size(), options, queue.get());
  rd_kafka_AdminOptions_destroy(options);
  for (auto* t : topics) rd_kafka_NewTopic_destroy(t);

  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue.get(), static_cast<int>(timeout.count()) + 1000);
  if (!ev) return bot::make_error(bot::Errc::unavailable, "Kafka did not answer CreateTopics in time");
  bot::Status result = bot::ok();
  if (rd_kafka_event_error(ev)) {
    result = bot::make_error(bot::Errc::unavailable,
                             std::string("CreateTopics failed: ") + rd_kafka_event_error_string(ev));
  } else if (const rd_kafka_CreateTopics_result_t* res = rd_kafka_event_CreateTopics_result(ev)) {
    size_t count = 0;
    const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(res, &count);
    for (size_t i = 0; i < count; ++i) {
      rd_kafka_resp_err_t code = rd_kafka_topic_result_error(results[i]);
      if (code == RD_KAFKA_RESP_ERR_NO_ERROR || code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) continue;
      bot::Errc errc = code == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
                               code == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED
                           ? bot::Errc::unauthorized
                           : bot::Errc::invalid_argument;
      const char* msg = rd_kafka_topic_result_error_string(results[i]);
      result = bot::make_error(errc, std::string("cannot create topic ") + rd_kafka_topic_result_name(results[i]) +
                                         ": " + (msg ? msg : rd_kafka_err2str(code)));
      break;
    }
  }
  rd_kafka_event_destroy(ev);
  return result;
}

}  // namespace runbot::events
