#include "events/kafka_state_store.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <deque>
#include <functional>
#include <thread>
#include <tuple>

#include "events/kafka_producer.h"
#include "events/rdkafka_util.h"

namespace runbot::events {

using detail::log;
using nlohmann::json;

namespace state_topic {
namespace {

bot::Error record_error(const Record& r, const std::string& why) {
  return bot::make_error(bot::Errc::invalid_argument, "state topic " + r.topic + " partition " +
                                                          std::to_string(r.partition) + " offset " +
                                                          std::to_string(r.offset) + " (key '" +
                                                          r.key.value_or("<null>") + "'): " + why);
}

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

}  // namespace

bot::Result<KeyValues> split_snapshot(const std::string& snapshot) {
  json j = json::parse(snapshot, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object())
    return bot::make_error(bot::Errc::invalid_argument, "state snapshot is not a JSON object");
  auto envs_it = j.find("environments");
  if (envs_it == j.end() || !envs_it->is_array()) {
    return bot::make_error(bot::Errc::invalid_argument,
                           "state snapshot has no \"environments\" array");
  }
  json envs = std::move(*envs_it);
  j.erase("environments");
  KeyValues out;
  for (const auto& e : envs) {
    auto id = e.is_object() ? e.find("id") : e.end();
    if (!e.is_object() || id == e.end() || !id->is_string() ||
        id->get_ref<const std::string&>().empty()) {
      return bot::make_error(bot::Errc::invalid_argument,
                             "state snapshot has an environment without an \"id\"");
    }
    std::string key = kEnvKeyPrefix + id->get<std::string>();
    if (!out.emplace(key, e.dump()).second) {
      return bot::make_error(bot::Errc::invalid_argument,
                             "state snapshot has two environments with id " + key.substr(4));
    }
  }
  if (auto items = j.find("outboxItems"); items != j.end()) {
    if (!items->is_array()) return bot::make_error(bot::Errc::invalid_argument, "state snapshot's \"outboxItems\" is not an array");
    for (const auto& m : *items) {
      auto id = m.is_object() ? m.find("id") : m.end();
      if (!m.is_object() || id == m.end() || !id->is_string() || id->get_ref<const std::string&>().empty()) {
        return bot::make_error(bot::Errc::invalid_argument, "state snapshot has an outbox message without an \"id\"");
      }
      if (!out.emplace(kOutboxKeyPrefix + id->get<std::string>(), m.dump()).second) {
        return bot::make_error(bot::Errc::invalid_argument,
                               "state snapshot has two outbox messages with id " + id->get<std::string>());
      }
    }
    j.erase("outboxItems");
  }
  out.emplace(kRegistryKey, j.dump());
  return out;
}

std::vector<StateRecord> changed_records(const KeyValues& last, const KeyValues& next,
                                         const std::set<std::string>& force) {
  std::vector<StateRecord> out;
  std::set<std::string> keys = force;
  for (const auto& [k, v] : next) {
    auto it = last.find(k);
    if (it == last.end() || it->second != v) keys.insert(k);
  }
  for (const auto& [k, v] : last) {
    if (!next.count(k)) keys.insert(k);
  }
  for (const auto& k : keys) {
    auto it = next.find(k);
    if (it != next.end()) {
      out.push_back({k, it->second});
    } else if (last.count(k) || force.count(k)) {
      out.push_back({k, std::nullopt});
    }
  }
  return out;
}

bot::Status apply_record(KeyValues& state, const Record& record) {
  if (!record.key) return record_error(record, "record has no key");
  const std::string& key = *record.key;
  const char* prefix = starts_with(key, kEnvKeyPrefix) ? kEnvKeyPrefix : starts_with(key, kOutboxKeyPrefix) ? kOutboxKeyPrefix : nullptr;
  const bool is_part = prefix && key.size() > std::char_traits<char>::length(prefix);
  if (!is_part && key != kRegistryKey)
    return record_error(record, "unknown key (not 'registry', 'env/<id>' or 'outbox/<id>')");
  if (const std::string* v = record.header(kVersionHeader); v && *v != kVersion) {
    return record_error(record, std::string(kVersionHeader) + " is " + *v +
                                    ", this runbot reads version " + kVersion);
  }
  if (!record.value) {
    state.erase(key);
    return bot::ok();
  }
  json j = json::parse(*record.value, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return record_error(record, "value is not valid JSON");
  if (!j.is_object()) return record_error(record, "value is not a JSON object");
  if (is_part) {
    auto id = j.find("id");
    std::string want = key.substr(std::char_traits<char>::length(prefix));
    if (id == j.end() || !id->is_string() || id->get_ref<const std::string&>() != want) {
      return record_error(record, std::string(prefix == kEnvKeyPrefix ? "environment" : "outbox message") +
                                      " record's \"id\" does not match its key");
    }
  }
  state[key] = *record.value;
  return bot::ok();
}

bot::Result<std::optional<std::string>> merge_snapshot(const KeyValues& state) {
  if (state.empty()) return std::optional<std::string>{};
  json out;
  if (auto it = state.find(kRegistryKey); it != state.end()) {
    out = json::parse(it->second, nullptr, false);
    if (!out.is_object())
      return bot::make_error(bot::Errc::invalid_argument,
                             "state 'registry' record is not a JSON object");
  } else {
    // Environments were delivered but the registry record never was (crash in the first save).
    out = json{{"version", 1},
               {"nodes", json::array()},
               {"clusterEvents", json::array()},
               {"lifecycleIds", json::array()},
               {"provisioningMs", json::object()}};
  }
  json envs = json::array();
  json outbox = json::array();
  for (const auto& [k, v] : state) {
    const bool is_env = starts_with(k, kEnvKeyPrefix);
    if (!is_env && !starts_with(k, kOutboxKeyPrefix)) continue;
    json e = json::parse(v, nullptr, false);
    if (!e.is_object())
      return bot::make_error(bot::Errc::invalid_argument,
                             "state '" + k + "' record is not a JSON object");
    (is_env ? envs : outbox).push_back(std::move(e));
  }
  out["environments"] = std::move(envs);
  out["outboxItems"] = std::move(outbox);
  return std::optional<std::string>{out.dump()};
}

Headers record_headers() {
  return {{"content-type", "application/json"}, {kVersionHeader, kVersion}};
}

}  // namespace state_topic

namespace {

using Clock = std::chrono::steady_clock;

struct TopicDeleter {
  void operator()(rd_kafka_topic_t* t) const { rd_kafka_topic_destroy(t); }
};
struct MetadataDeleter {
  void operator()(const rd_kafka_metadata_t* m) const { rd_kafka_metadata_destroy(m); }
};

int remaining_ms(Clock::time_point deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<std::int64_t>(left, 0, 60'000));
}

struct LoadResult {
  state_topic::KeyValues state;
  std::uint64_t records = 0;
};

// Partition ids of `topic`, or an empty vector when the topic does not exist. Retries while the
// cluster reports a transient error (a just-created topic has no leader yet).
bot::Result<std::vector<std::int32_t>> topic_partitions(rd_kafka_t* rk, const std::string& topic,
                                                        Clock::time_point deadline) {
  std::unique_ptr<rd_kafka_topic_t, TopicDeleter> rkt{
      rd_kafka_topic_new(rk, topic.c_str(), nullptr)};
  bot::Error last = bot::make_error(bot::Errc::timeout,
                                    "state topic " + topic + ": no metadata before the deadline");
  while (Clock::now() < deadline) {
    const rd_kafka_metadata_t* raw = nullptr;
    rd_kafka_resp_err_t err =
        rd_kafka_metadata(rk, 0, rkt.get(), &raw, std::max(remaining_ms(deadline), 1));
    std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter> md{raw};
    if (err) {
      last = detail::to_error(err, "state topic " + topic + ": metadata");
      if (!last.is_retryable()) return last;
      continue;
    }
    if (md->topic_cnt < 1) continue;
    const rd_kafka_metadata_topic_t& t = md->topics[0];
    if (t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) return std::vector<std::int32_t>{};
    if (t.err) {
      last = detail::to_error(t.err, "state topic " + topic + ": metadata");
      if (!last.is_retryable()) return last;
      continue;
    }
    std::vector<std::int32_t> ids;
    for (int i = 0; i < t.partition_cnt; ++i) ids.push_back(t.partitions[i].id);
    if (!ids.empty()) return ids;
  }
  return last;
}

bot::Result<LoadResult> read_topic(const KafkaSettings& settings, const StateTopicSettings& state) {
  const std::string& topic = state.topic;
  const auto deadline = Clock::now() + state.load_timeout;
  // librdkafka's assign() needs a group.id, but nothing here joins the group or commits: this
  // consumer only reads from explicit offsets.
  auto conf = detail::make_conf(settings, {{"group.id", settings.client_id + ".state-loader"},
                                           {"enable.auto.commit", "false"},
                                           {"enable.auto.offset.store", "false"},
                                           {"enable.partition.eof", "true"},
                                           {"auto.offset.reset", "earliest"},
                                           {"allow.auto.create.topics", "false"}});
  if (!conf) return conf.error();
  auto handle = detail::make_handle(RD_KAFKA_CONSUMER, std::move(*conf), "state loader");
  if (!handle) return handle.error();
  rd_kafka_t* rk = handle->get();
  rd_kafka_poll_set_consumer(rk);

  auto partitions = topic_partitions(rk, topic, deadline);
  if (!partitions) return partitions.error();
  if (partitions->empty()) {
    log().warn("state topic={} does not exist: starting with no saved state", topic);
    return LoadResult{};
  }

  // The snapshot point: each partition's high watermark now. Records produced later are not read.
  std::map<std::int32_t, std::int64_t> end;
  detail::PartitionListPtr assignment{
      rd_kafka_topic_partition_list_new(static_cast<int>(partitions->size()))};
  for (std::int32_t p : *partitions) {
    std::int64_t low = 0;
    std::int64_t high = 0;
    // A just-created topic answers NOT_LEADER/LEADER_NOT_AVAILABLE for a moment: retry those.
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
          rk, topic.c_str(), p, &low, &high, std::max(remaining_ms(deadline), 1));
      if (!err) break;
      bot::Error e = detail::to_error(
          err, "state topic " + topic + " partition " + std::to_string(p) + ": watermarks");
      if (!e.is_retryable() || Clock::now() >= deadline) return e;
      log().debug("state topic={} partition={} watermarks not available yet: {}", topic, p,
                  e.message);
      // Startup code, not the event loop: a short backoff before asking again.
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(remaining_ms(deadline), 100)));
    }
    if (high <= low) continue;
    end[p] = high;
    rd_kafka_topic_partition_list_add(assignment.get(), topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  LoadResult result;
  if (end.empty()) return result;
  if (rd_kafka_resp_err_t err = rd_kafka_assign(rk, assignment.get())) {
    return detail::to_error(err, "state topic " + topic + ": assign");
  }

  bot::Status status = bot::ok();
  while (!end.empty() && status && Clock::now() < deadline) {
    detail::MessagePtr msg{rd_kafka_consumer_poll(rk, std::min(remaining_ms(deadline), 200))};
    if (!msg) continue;
    auto it = end.find(msg->partition);
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (it != end.end() && msg->offset >= it->second) end.erase(it);
      continue;
    }
    if (msg->err) {
      bot::Error e = detail::to_error(msg->err, "state topic " + topic + ": consume");
      if (!e.is_retryable())
        status = e;
      else
        log().warn("state topic={} read error={} (retrying)", topic, e.message);
      continue;
    }
    if (it == end.end()) continue;
    if (msg->offset < it->second) {
      status = state_topic::apply_record(result.state, detail::to_record(*msg));
      ++result.records;
    }
    if (msg->offset + 1 >= it->second) end.erase(it);
  }
  (void)rd_kafka_assign(rk, nullptr);
  rd_kafka_consumer_close(rk);
  if (!status) return status.error();
  if (!end.empty()) {
    std::string left;
    for (const auto& [p, high] : end) left += (left.empty() ? "" : ",") + std::to_string(p);
    return bot::make_error(bot::Errc::timeout, "state topic " + topic + ": partitions " + left +
                                                   " not read to their end within " +
                                                   std::to_string(state.load_timeout.count()) +
                                                   " ms");
  }
  return result;
}

}  // namespace

struct KafkaStateStore::Impl {
  struct SaveProgress {
    std::size_t remaining = 0;
    bool failed = false;
  };

  KafkaSettings settings;
  StateTopicSettings state;
  // What the topic holds once the produced records are delivered (primed by load()).
  state_topic::KeyValues last;
  // Keys whose last delivery failed: produced again by the next save, changed or not.
  std::set<std::string> retry;
  std::uint64_t save_seq = 0;
  std::map<std::uint64_t, SaveProgress> in_flight;
  std::uint64_t last_failed_save = 0;
  std::uint64_t max_done = 0;         // highest save whose reports all arrived
  std::uint64_t durable_through = 0;  // every save up to this one is on the broker
  std::deque<std::pair<std::uint64_t, std::function<void()>>> waiting;  // when_durable, by save
  bool healthy = true;
  std::string problem;
  Stats stats;
  // Declared last, destroyed first: its dropped callbacks never see a half-destroyed Impl.
  std::unique_ptr<KafkaProducer> producer;

  // Produces what changed between `last` and `next` (and what failed before) and keeps `next`.
  bot::Status save(state_topic::KeyValues next);

  void delivered(std::uint64_t seq, const std::string& key, const bot::Status& st) {
    auto it = in_flight.find(seq);
    if (st) ++stats.records_delivered;
    if (!st) {
      ++stats.delivery_failures;
      retry.insert(key);
      last_failed_save = std::max(last_failed_save, seq);
      if (healthy) {
        log().error("state record not delivered topic={} key={} error={}", state.topic, key,
                    st.error().message);
      } else {
        log().warn("state record not delivered topic={} key={} error={}", state.topic, key,
                   st.error().message);
      }
      healthy = false;
      problem = "state topic " + state.topic + ": " + st.error().message;
      if (it != in_flight.end()) it->second.failed = true;
    }
    if (it == in_flight.end() || --it->second.remaining > 0) return;
    bool clean = !it->second.failed;
    in_flight.erase(it);
    max_done = std::max(max_done, seq);
    if (clean && seq > last_failed_save && !healthy) {
      log().info("state topic={} delivering again", state.topic);
      healthy = true;
      problem.clear();
    }
    // Saves complete out of order (keys live on different partitions): durable up to just below
    // the oldest save still in flight, unless a failed save in that range awaits its re-produce.
    std::uint64_t candidate = in_flight.empty() ? max_done : in_flight.begin()->first - 1;
    if (candidate > last_failed_save) durable_through = std::max(durable_through, candidate);
    run_durable();
  }

  void run_durable() {
    while (!waiting.empty() && waiting.front().first <= durable_through) {
      auto cb = std::move(waiting.front().second);
      waiting.pop_front();
      cb();
    }
  }
};

bot::Result<std::unique_ptr<KafkaStateStore>> KafkaStateStore::create(boost::asio::io_context& io,
                                                                      const KafkaSettings& settings,
                                                                      StateTopicSettings state) {
  if (state.topic.empty())
    return bot::make_error(bot::Errc::invalid_argument, "state topic name is empty");
  KafkaSettings producer_settings = settings;
  // The registry record carries the dedupe memory and audit tail: compress it and allow it to
  // be larger than librdkafka's 1 MB default.
  producer_settings.properties["compression.type"] = "zstd";
  producer_settings.properties["message.max.bytes"] = std::to_string(state.max_record_bytes);
  auto producer = KafkaProducer::create(io, producer_settings);
  if (!producer) return producer.error();
  auto impl = std::make_unique<Impl>();
  impl->settings = settings;
  impl->state = std::move(state);
  impl->producer = std::move(*producer);
  return std::unique_ptr<KafkaStateStore>(new KafkaStateStore(std::move(impl)));
}

KafkaStateStore::KafkaStateStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KafkaStateStore::~KafkaStateStore() = default;

bot::Result<std::optional<std::string>> KafkaStateStore::load() {
  auto read = read_topic(impl_->settings, impl_->state);
  if (!read) return read.error();
  impl_->stats.records_loaded = read->records;
  auto snapshot = state_topic::merge_snapshot(read->state);
  if (!snapshot) return snapshot.error();
  if (*snapshot && !read->state.count(state_topic::kRegistryKey)) {
    log().warn(
        "state topic={} has environments but no registry record; nodes and dedupe memory start "
        "empty",
        impl_->state.topic);
  }
  log().info("state loaded topic={} records={} keys={}", impl_->state.topic, read->records,
             read->state.size());
  impl_->last = std::move(read->state);
  return snapshot;
}

bot::Status KafkaStateStore::save(const std::string& snapshot) {
  auto next = state_topic::split_snapshot(snapshot);
  if (!next) return next.error();
  return impl_->save(std::move(*next));
}

bot::Status KafkaStateStore::save_parts(const bot::StateSnapshot& parts) {
  // The parts are the Registry's own compact JSON: no parsing, the same bytes split_snapshot()
  // would make.
  state_topic::KeyValues next;
  for (const auto& [list, prefix, what] : {std::tuple{&parts.environments, state_topic::kEnvKeyPrefix, "an environment"},
                                           std::tuple{&parts.outbox, state_topic::kOutboxKeyPrefix, "an outbox message"}}) {
    for (const auto& [id, value] : *list) {
      if (id.empty() || !next.emplace(prefix + id, value).second) {
        return bot::make_error(bot::Errc::invalid_argument,
                               std::string("state snapshot has ") + what + " with an empty or repeated id '" + id + "'");
      }
    }
  }
  next.emplace(state_topic::kRegistryKey, parts.registry);
  return impl_->save(std::move(next));
}

bot::Status KafkaStateStore::Impl::save(state_topic::KeyValues next) {
  Impl& s = *this;
  auto records = state_topic::changed_records(s.last, next, s.retry);
  s.retry.clear();
  s.last = std::move(next);
  if (records.empty()) return bot::ok();
  const std::uint64_t seq = ++s.save_seq;
  s.in_flight[seq] = {records.size(), false};
  ++s.stats.saves;
  const Headers headers = state_topic::record_headers();
  Impl* raw = this;
  for (auto& r : records) {
    ++s.stats.records_produced;
    if (!r.value) ++s.stats.tombstones_produced;
    s.producer->produce(s.state.topic, r.key, std::move(r.value), headers,
                        [raw, seq, key = r.key](bot::Status st) { raw->delivered(seq, key, st); });
  }
  return bot::ok();
}

void KafkaStateStore::when_durable(std::function<void()> durable) {
  Impl& s = *impl_;
  if (s.save_seq <= s.durable_through) {
    durable();
    return;
  }
  s.waiting.emplace_back(s.save_seq, std::move(durable));
}

bool KafkaStateStore::healthy() const {
  return impl_->healthy;
}
const std::string& KafkaStateStore::problem() const {
  return impl_->problem;
}

bot::Status KafkaStateStore::flush(std::optional<std::chrono::milliseconds> timeout) {
  return impl_->producer->flush(timeout.value_or(impl_->state.flush_timeout));
}

KafkaStateStore::Stats KafkaStateStore::stats() const {
  return impl_->stats;
}
const std::string& KafkaStateStore::topic() const {
  return impl_->state.topic;
}

}  // namespace runbot::events
