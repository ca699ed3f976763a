#include "events/embedded_broker.h"

#include <algorithm>
#include <vector>

#include "events/rdkafka_util.h"
// After rdkafka.h (pulled in by rdkafka_util.h), as rdkafka_mock.h requires.
#include <librdkafka/rdkafka_mock.h>

namespace runbot::events {

using detail::log;

namespace {
constexpr std::int16_t kProduceApiKey = 0;  // RD_KAFKAP_Produce (not in the public headers)
}  // namespace

struct EmbeddedBroker::Impl {
  detail::HandlePtr rk;  // the dedicated handle the mock cluster hangs off
  rd_kafka_mock_cluster_t* cluster = nullptr;
  int brokers = 1;

  ~Impl() {
    if (cluster) rd_kafka_mock_cluster_destroy(cluster);
    rk.reset();
  }
};

bot::Result<std::unique_ptr<EmbeddedBroker>> EmbeddedBroker::start(const KafkaSettings::Topics& topics,
                                                                   int brokers, int partitions) {
  if (brokers < 1 || partitions < 1) {
    return bot::make_error(bot::Errc::invalid_argument, "embedded broker: brokers and partitions must be >= 1");
  }
  detail::ConfPtr conf{rd_kafka_conf_new()};
  // The handle never connects anywhere; keep its own logs quiet.
  if (auto st = detail::set_property(conf.get(), "log_level", "3"); !st) return st.error();
  auto rk = detail::make_handle(RD_KAFKA_PRODUCER, std::move(conf), "embedded broker handle");
  if (!rk) return rk.error();
  auto impl = std::make_unique<Impl>();
  impl->rk = std::move(*rk);
  impl->brokers = brokers;
  impl->cluster = rd_kafka_mock_cluster_new(impl->rk.get(), brokers);
  if (!impl->cluster) return bot::make_error(bot::Errc::internal, "embedded broker: rd_kafka_mock_cluster_new failed");
  std::unique_ptr<EmbeddedBroker> broker{new EmbeddedBroker(std::move(impl))};
  for (const std::string* t : {&topics.jobs, &topics.events, &topics.cluster_events}) {
    if (auto st = broker->create_topic(*t, partitions); !st) return st.error();
  }
  log().info("embedded kafka broker started bootstrap={} brokers={} partitions={}",
             broker->bootstrap_servers(), brokers, partitions);
  return broker;
}

EmbeddedBroker::EmbeddedBroker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EmbeddedBroker::~EmbeddedBroker() = default;

std::string EmbeddedBroker::bootstrap_servers() const {
  return rd_kafka_mock_cluster_bootstraps(impl_->cluster);
}

bot::Status EmbeddedBroker::create_topic(const std::string& name, int partitions) {
  int rf = std::min(3, impl_->brokers);
  if (auto err = rd_kafka_mock_topic_create(impl_->cluster, name.c_str(), partitions, rf)) {
    return detail::to_error(err, "embedded broker: create topic " + name);
  }
  return bot::ok();
}

void EmbeddedBroker::fail_produce_requests(int count) {
  std::vector<rd_kafka_resp_err_t> errors(static_cast<size_t>(std::max(count, 0)), RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
  rd_kafka_mock_push_request_errors_array(impl_->cluster, kProduceApiKey, errors.size(), errors.data());
}

void EmbeddedBroker::clear_produce_errors() { rd_kafka_mock_clear_request_errors(impl_->cluster, kProduceApiKey); }

}  // namespace runbot::events
