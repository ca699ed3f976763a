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

namespace runbot::events {
namespace {

bot::Errc admin_errc(rd_kafka_resp_err_t code) {
  return code == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
                 code == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED
             ? bot::Errc::unauthorized
             : bot::Errc::invalid_argument;
}

// Creates one topic. ok() also when it already exists; `existed` says which.
bot::Status create_one_topic(rd_kafka_t* rk, const std::string& topic, int partitions,
                             int replication, const std::map<std::string, std::string>& configs,
                             std::chrono::milliseconds timeout, bool& existed) {
  char err[512];
  rd_kafka_NewTopic_t* t =
      rd_kafka_NewTopic_new(topic.c_str(), partitions, replication, err, sizeof err);
  if (!t) return bot::make_error(bot::Errc::invalid_argument, "topic " + topic + ": " + err);
  for (const auto& [name, value] : configs) {
    if (rd_kafka_NewTopic_set_config(t, name.c_str(), value.c_str()) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_NewTopic_destroy(t);
      return bot::make_error(bot::Errc::invalid_argument,
                             "topic " + topic + ": config " + name + " rejected");
    }
  }
  detail::QueuePtr queue(rd_kafka_queue_new(rk));
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_request_timeout(options, static_cast<int>(timeout.count()), err,
                                            sizeof err);
  rd_kafka_CreateTopics(rk, &t, 1, options, queue.get());
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_NewTopic_destroy(t);

  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue.get(), static_cast<int>(timeout.count()) + 1000);
  if (!ev)
    return bot::make_error(bot::Errc::unavailable,
                           "Kafka did not answer CreateTopics for " + topic + " in time");
  bot::Status result = bot::ok();
  existed = false;
  if (rd_kafka_event_error(ev)) {
    result =
        bot::make_error(bot::Errc::unavailable,
                        "CreateTopics " + topic + " failed: " + rd_kafka_event_error_string(ev));
  } else if (const rd_kafka_CreateTopics_result_t* res = rd_kafka_event_CreateTopics_result(ev)) {
    size_t count = 0;
    const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(res, &count);
    for (size_t i = 0; i < count; ++i) {
      rd_kafka_resp_err_t code = rd_kafka_topic_result_error(results[i]);
      if (code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) existed = true;
      if (code == RD_KAFKA_RESP_ERR_NO_ERROR || code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        continue;
      const char* msg = rd_kafka_topic_result_error_string(results[i]);
      result = bot::make_error(admin_errc(code), "cannot create topic " + topic + ": " +
                                                     (msg ? msg : rd_kafka_err2str(code)));
    }
  }
  rd_kafka_event_destroy(ev);
  return result;
}

// The topic's cleanup.policy as the cluster reports it.
bot::Result<std::string> describe_cleanup_policy(rd_kafka_t* rk, const std::string& topic,
                                                 std::chrono::milliseconds timeout) {
  char err[512];
  rd_kafka_ConfigResource_t* resource =
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str());
  detail::QueuePtr queue(rd_kafka_queue_new(rk));
  rd_kafka_AdminOptions_t* options =
      rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
  rd_kafka_AdminOptions_set_request_timeout(options, static_cast<int>(timeout.count()), err,
                                            sizeof err);
  rd_kafka_DescribeConfigs(rk, &resource, 1, options, queue.get());
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_ConfigResource_destroy(resource);

  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue.get(), static_cast<int>(timeout.count()) + 1000);
  if (!ev)
    return bot::make_error(bot::Errc::unavailable,
                           "Kafka did not answer DescribeConfigs for " + topic + " in time");
  bot::Result<std::string> result = bot::make_error(
      bot::Errc::internal, "DescribeConfigs " + topic + ": no cleanup.policy in the answer");
  if (rd_kafka_event_error(ev)) {
    result =
        bot::make_error(bot::Errc::unavailable,
                        "DescribeConfigs " + topic + " failed: " + rd_kafka_event_error_string(ev));
  } else if (const rd_kafka_DescribeConfigs_result_t* res =
                 rd_kafka_event_DescribeConfigs_result(ev)) {
    size_t count = 0;
    const rd_kafka_ConfigResource_t** resources =
        rd_kafka_DescribeConfigs_result_resources(res, &count);
    for (size_t i = 0; i < count; ++i) {
      if (rd_kafka_resp_err_t code = rd_kafka_ConfigResource_error(resources[i])) {
        const char* msg = rd_kafka_ConfigResource_error_string(resources[i]);
        result = bot::make_error(admin_errc(code), "DescribeConfigs " + topic + ": " +
                                                       (msg ? msg : rd_kafka_err2str(code)));
        break;
      }
      size_t n = 0;
      const rd_kafka_ConfigEntry_t** entries = rd_kafka_ConfigResource_configs(resources[i], &n);
      for (size_t k = 0; k < n; ++k) {
        if (std::string(rd_kafka_ConfigEntry_name(entries[k])) != "cleanup.policy") continue;
        const char* value = rd_kafka_ConfigEntry_value(entries[k]);
        result = std::string(value ? value : "");
      }
    }
  }
  rd_kafka_event_destroy(ev);
  return result;
}

}  // namespace

std::map<std::string, std::string> compacted_topic_configs() {
  return {{"cleanup.policy", "compact"},
          {"min.compaction.lag.ms", "60000"},
          {"delete.retention.ms", "86400000"},
          {"segment.ms", "3600000"},
          {"max.message.bytes", "8388608"}};
}

bot::Status ensure_compacted_topic(const KafkaSettings& settings, const std::string& topic,
                                   int partitions, int replication,
                                   const std::map<std::string, std::string>& overrides,
                                   std::chrono::milliseconds timeout) {
  auto conf = detail::make_conf(settings, {});
  if (!conf) return conf.error();
  auto handle = detail::make_handle(RD_KAFKA_PRODUCER, std::move(*conf), "admin client");
  if (!handle) return handle.error();
  auto configs = compacted_topic_configs();
  for (const auto& [name, value] : overrides) configs[name] = value;
  bool existed = false;
  if (auto st = create_one_topic(handle->get(), topic, partitions, replication, configs, timeout,
                                 existed);
      !st) {
    return st;
  }
  if (!existed) {
    detail::log().info("created compacted topic={} partitions={}", topic, partitions);
    return bot::ok();
  }
  auto policy = describe_cleanup_policy(handle->get(), topic, timeout);
  if (!policy) return policy.error();
  if (policy->find("compact") == std::string::npos) {
    return bot::make_error(
        bot::Errc::invalid_argument,
        "topic " + topic + " exists with cleanup.policy=" + *policy +
            "; runbot's state needs a compacted topic (e.g. kafka-configs.sh --alter "
            "--entity-type topics --entity-name " +
            topic + " --add-config cleanup.policy=compact), or configure another topic");
  }
  return bot::ok();
}

}  // namespace runbot::events
