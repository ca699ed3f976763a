#include "events/rdkafka_util.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

namespace runbot::events {

const std::string* Record::header(std::string_view name) const {
  auto same = [name](const std::string& h) {
    return h.size() == name.size() &&
           std::equal(h.begin(), h.end(), name.begin(), [](char a, char b) {
             return std::tolower(static_cast<unsigned char>(a)) ==
                    std::tolower(static_cast<unsigned char>(b));
           });
  };
  for (auto it = headers.rbegin(); it != headers.rend(); ++it) {
    if (same(it->first)) return &it->second;
  }
  return nullptr;
}

std::string Record::where() const {
  return topic + "/" + std::to_string(partition) + "@" + std::to_string(offset);
}

bot::Status check_kafka_settings(const KafkaSettings& settings) {
  auto p = detail::make_conf(settings, detail::producer_properties(settings));
  if (!p) return p.error();
  auto c = detail::make_conf(settings, detail::consumer_properties(settings, "runbot-check"));
  if (!c) return c.error();
  return bot::ok();
}

namespace detail {
namespace {

bool looks_secret(const std::string& name) {
  for (const char* word : {"password", "secret", "key", "token", "jaas"}) {
    if (name.find(word) != std::string::npos) return true;
  }
  return false;
}

void log_cb(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  // Called on librdkafka threads; spdlog loggers are thread-safe.
  auto lvl = level <= 3 ? spdlog::level::err
             : level == 4 ? spdlog::level::warn
             : level <= 6 ? spdlog::level::info
                          : spdlog::level::debug;
  log().log(lvl, "librdkafka client={} fac={} {}", rk ? rd_kafka_name(rk) : "?", fac, buf);
}

}  // namespace

spdlog::logger& log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    if (auto existing = spdlog::get("events")) return existing;
    auto l = spdlog::default_logger()->clone("events");
    return l;
  }();
  return *logger;
}

bot::Status set_property(rd_kafka_conf_t* conf, const std::string& name, const std::string& value) {
  char errstr[512];
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
    std::string why = looks_secret(name) ? "invalid value (redacted)" : std::string(errstr);
    return bot::make_error(bot::Errc::invalid_argument,
                           "kafka property '" + name + "' rejected: " + why);
  }
  return bot::ok();
}

bot::Result<ConfPtr> make_conf(const KafkaSettings& settings,
                               const std::map<std::string, std::string>& role_properties,
                               const std::map<std::string, std::string>& defaults) {
  ConfPtr conf{rd_kafka_conf_new()};
  if (settings.brokers.empty()) {
    return bot::make_error(bot::Errc::invalid_argument, "kafka brokers (bootstrap.servers) are empty");
  }
  std::vector<std::pair<std::string, std::string>> all{{"bootstrap.servers", settings.brokers},
                                                       {"client.id", settings.client_id}};
  for (const auto& kv : defaults) all.emplace_back(kv);
  for (const auto& kv : settings.properties) all.emplace_back(kv);
  for (const auto& kv : role_properties) all.emplace_back(kv);
  for (const auto& [name, value] : all) {
    if (auto st = set_property(conf.get(), name, value); !st) return st.error();
  }
  rd_kafka_conf_set_log_cb(conf.get(), &log_cb);
  return conf;
}

std::map<std::string, std::string> producer_properties(const KafkaSettings& settings) {
  return {{"enable.idempotence", "true"},
          {"partitioner", "murmur2_random"},
          {"linger.ms", "5"},
          {"message.timeout.ms", std::to_string(settings.message_timeout.count())}};
}

std::map<std::string, std::string> consumer_defaults() {
  return {{"queued.max.messages.kbytes", "16384"}, {"fetch.wait.max.ms", "100"}};
}

std::map<std::string, std::string> consumer_properties(const KafkaSettings& settings,
                                                       const std::string& group_id) {
  return {{"group.id", group_id},
          {"enable.auto.commit", "true"},
          {"enable.auto.offset.store", "false"},
          {"auto.offset.reset", "earliest"},
          // Eager assignors: cooperative-sticky has known bugs in librdkafka 2.0.2.
          {"partition.assignment.strategy", "range,roundrobin"},
          // End-of-partition events tell where an idle partition's fetch position is (lag 0).
          {"enable.partition.eof", "true"},
          {"session.timeout.ms", std::to_string(settings.session_timeout.count())},
          {"allow.auto.create.topics", "true"}};
}

bot::Result<HandlePtr> make_handle(rd_kafka_type_t type, ConfPtr conf, const char* what) {
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), errstr, sizeof errstr);
  if (!rk) {
    return bot::make_error(bot::Errc::invalid_argument,
                           std::string("kafka ") + what + " could not be created: " + errstr);
  }
  (void)conf.release();  // rd_kafka_new owns it now
  return HandlePtr{rk};
}

bot::Error to_error(rd_kafka_resp_err_t err, const std::string& context) {
  using bot::Errc;
  Errc code = Errc::internal;
  switch (err) {
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
      code = Errc::unavailable;
      break;
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
      code = Errc::timeout;
      break;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
      code = Errc::not_found;
      break;
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
      code = Errc::unauthorized;
      break;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
      code = Errc::invalid_argument;
      break;
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__DESTROY:
      code = Errc::cancelled;
      break;
    default:
      break;
  }
  return bot::make_error(code, context + ": " + rd_kafka_err2str(err) + " (" + rd_kafka_err2name(err) + ")");
}

Record to_record(const rd_kafka_message_t& msg) {
  Record r;
  r.topic = msg.rkt ? rd_kafka_topic_name(msg.rkt) : "";
  r.partition = msg.partition;
  r.offset = msg.offset;
  if (msg.key) r.key.emplace(static_cast<const char*>(msg.key), msg.key_len);
  if (msg.payload) r.value.emplace(static_cast<const char*>(msg.payload), msg.len);
  rd_kafka_headers_t* hdrs = nullptr;  // owned by the message
  if (rd_kafka_message_headers(&msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
      r.headers.emplace_back(name, value ? std::string(static_cast<const char*>(value), size) : std::string{});
    }
  }
  rd_kafka_timestamp_type_t tstype = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
  std::int64_t ts = rd_kafka_message_timestamp(&msg, &tstype);
  if (tstype != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && ts >= 0) r.timestamp = bot::from_millis(ts);
  return r;
}

}  // namespace detail
}  // namespace runbot::events
