#include "events/kafka_consumer.h"

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <deque>
#include <map>
#include <set>

#include "events/kafka_producer.h"
#include "events/queue_waker.h"
#include "events/rdkafka_util.h"

namespace runbot::events {

using detail::log;

namespace {
// Records handled per wake-up before yielding to other work on the loop.
constexpr int kMaxBatch = 256;
constexpr std::chrono::seconds kPollTick{1};
constexpr std::chrono::seconds kDlqCloseWait{5};
constexpr size_t kMaxDlqErrorMessage = 1000;

using PartitionKey = std::pair<std::string, std::int32_t>;

bool copied_to_dlq(const std::string& header) {
  if (header.size() >= 3 && std::tolower(static_cast<unsigned char>(header[0])) == 'c' &&
      std::tolower(static_cast<unsigned char>(header[1])) == 'e' && header[2] == '_') {
    return true;
  }
  std::string lower(header);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower == "content-type";
}

// What goes to "<topic>.dlq" for a rejected record (§6.5).
Headers dlq_headers(const Record& r, const bot::Error& error, bot::TimePoint first_failure) {
  Headers h;
  for (const auto& [name, value] : r.headers) {
    if (copied_to_dlq(name)) h.emplace_back(name, value);
  }
  std::string message = error.message.substr(0, kMaxDlqErrorMessage);
  h.emplace_back("dlq.original.topic", r.topic);
  h.emplace_back("dlq.original.partition", std::to_string(r.partition));
  h.emplace_back("dlq.original.offset", std::to_string(r.offset));
  h.emplace_back("dlq.error.class", bot::to_string(error.code));
  h.emplace_back("dlq.error.message", std::move(message));
  h.emplace_back("dlq.attempts", "1");
  h.emplace_back("dlq.first_failure_ts", bot::format_time(first_failure));
  return h;
}

bot::TimePoint wall_now() {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
}
}  // namespace

struct KafkaConsumer::Impl {
  // A partition whose rejected record is on its way to the DLQ: later records wait here.
  struct Held {
    bool waiting = true;           // the DLQ delivery is not confirmed yet
    std::deque<Record> backlog;    // fetched meanwhile, handled in order once confirmed
  };

  boost::asio::io_context& io;
  std::string group_id;
  Handler handler;
  ConsumerOptions options;
  std::unique_ptr<KafkaProducer> dlq;    // only with options.dead_letter.enabled
  std::map<PartitionKey, Held> held;
  std::uint64_t generation = 0;          // bumped when partitions are revoked
  bool closing = false;
  detail::HandlePtr rk;
  detail::QueuePtr queue;
  std::unique_ptr<detail::QueueWaker> waker;
  boost::asio::steady_timer tick;
  ConsumerStats stats;
  std::pair<const std::string, TopicStats>* last_topic = nullptr;  // into stats.topics (node-stable)
  bool paused = false;
  bool closed = false;
  // defer_offset_store: next offsets handled since the last checkpoint, and the marks waiting
  // for commit_through().
  std::map<PartitionKey, std::int64_t> handled;
  std::deque<std::pair<std::uint64_t, std::map<PartitionKey, std::int64_t>>> marks;
  std::uint64_t mark_seq = 0;
  // positions(): next offset after each partition's last completely handled record.
  Positions done;
  // skip_applied(): records below these were applied to the state this run started from.
  Positions applied;
  std::set<PartitionKey> applied_unchecked;  // not yet compared with the partition's end
  // Where each partition's fetch last reached its end (end-of-partition events).
  Positions at_end;
  std::shared_ptr<int> alive = std::make_shared<int>(0);

  Impl(boost::asio::io_context& ctx, std::string group, Handler h, ConsumerOptions opts)
      : io(ctx), group_id(std::move(group)), handler(std::move(h)), options(std::move(opts)), tick(ctx) {}

  ~Impl() {
    (void)close();
    queue.reset();
    rk.reset();
  }

  bot::Status close() {
    if (closed || !rk) return bot::ok();
    if (dlq && !held.empty()) {
      // Let in-flight DLQ deliveries finish so their offsets are stored before the final commit.
      closing = true;
      if (auto st = dlq->flush(kDlqCloseWait); !st) {
        log().warn("kafka dlq flush on close group={} error={}", group_id, st.error().message);
      }
    }
    closed = true;
    waker.reset();
    tick.cancel();
    auto err = rd_kafka_consumer_close(rk.get());
    if (err) {
      log().warn("kafka consumer close group={} error={}", group_id, rd_kafka_err2name(err));
      return detail::to_error(err, "kafka consumer close (group " + group_id + ")");
    }
    log().info("kafka consumer closed group={} consumed={} skipped_invalid={} dead_lettered={} skipped_applied={}",
               group_id, stats.consumed, stats.skipped_invalid, stats.dead_lettered, stats.skipped_applied);
    return bot::ok();
  }

  void start_tick() {
    std::weak_ptr<int> token = alive;
    tick.expires_after(kPollTick);
    tick.async_wait([this, token](const boost::system::error_code& ec) {
      if (ec || !token.lock() || closed) return;
      drain();
      if (token.lock() && !closed) start_tick();
    });
  }

  void drain() {
    for (int i = 0; i < kMaxBatch; ++i) {
      if (closed) return;
      detail::MessagePtr msg{rd_kafka_consumer_poll(rk.get(), 0)};
      if (!msg) return;
      if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        // Nothing to consume there: the position is known even though no record came (a
        // restart with everything committed), so lag() can say 0 instead of unknown.
        if (msg->rkt) at_end[PartitionKey{rd_kafka_topic_name(msg->rkt), msg->partition}] = msg->offset;
      } else if (msg->err) {
        on_consumer_error(*msg);
      } else {
        handle(*msg);
      }
    }
    // Hit the batch limit: more may be waiting and no new wake-up is guaranteed.
    if (waker) waker->poke();
  }

  void on_consumer_error(const rd_kafka_message_t& msg) {
    std::string topic = msg.rkt ? rd_kafka_topic_name(msg.rkt) : "";
    if (msg.err == RD_KAFKA_RESP_ERR__FATAL) {
      char buf[512];
      auto fatal = rd_kafka_fatal_error(rk.get(), buf, sizeof buf);
      log().error("kafka consumer fatal group={} error={} reason={}", group_id,
                  rd_kafka_err2name(fatal), buf);
      return;
    }
    log().warn("kafka consumer error group={} topic={} error={} reason={}", group_id, topic,
               rd_kafka_err2name(msg.err), rd_kafka_message_errstr(&msg));
  }

  void handle(const rd_kafka_message_t& msg) {
    Record record = detail::to_record(msg);
    auto h = held.find(PartitionKey{record.topic, record.partition});
    if (h != held.end()) {
      h->second.backlog.push_back(std::move(record));  // keep the partition's order
      return;
    }
    process(std::move(record));
  }

  // Records arrive in runs of one topic: remember the last entry rather than search the map.
  TopicStats& topic_stats(const std::string& topic) {
    if (last_topic == nullptr || last_topic->first != topic) {
      last_topic = &*stats.topics.try_emplace(topic).first;
    }
    return last_topic->second;
  }

  // Runs the handler; returns false if the record went to the DLQ path (partition now held).
  bool process(Record record) {
    if (!applied.empty()) {
      auto a = applied.find(PartitionKey{record.topic, record.partition});
      if (a != applied.end() && applied_unchecked.erase(a->first) > 0) {
        // A partition that ends before the saved position is not the one the state saw (the
        // topic was deleted and created again): skipping would drop its records.
        std::int64_t low = -1, high = -1;
        if (rd_kafka_get_watermark_offsets(rk.get(), record.topic.c_str(), record.partition, &low, &high) == 0 &&
            high >= 0 && high < a->second) {
          log().warn("kafka partition ends before the position the state holds, not skipping group={} topic={} "
                     "partition={} end={} state_position={}", group_id, record.topic, record.partition, high,
                     a->second);
          done.erase(a->first);  // the stale position must not go into the next snapshot either
          applied.erase(a);
          a = applied.end();
        }
      }
      if (a != applied.end() && record.offset < a->second) {
        ++stats.skipped_applied;
        store(record);
        return true;
      }
    }
    ++stats.consumed;
    bot::Status st = handler(record);
    stats.last_record = wall_now();
    TopicStats& per_topic = topic_stats(record.topic);
    ++per_topic.consumed;
    per_topic.last_record = stats.last_record;
    if (st) {
      store(record);
      return true;
    }
    ++stats.skipped_invalid;
    if (!dlq) {
      log().warn("kafka record skipped group={} topic={} partition={} offset={} reason={}", group_id,
                 record.topic, record.partition, record.offset, st.error().message);
      store(record);
      return true;
    }
    log().warn("kafka record rejected, sending to dead-letter topic group={} topic={} partition={} offset={} "
               "reason={}", group_id, record.topic, record.partition, record.offset, st.error().message);
    PartitionKey key{record.topic, record.partition};
    held[key].waiting = true;
    pause_one(key, true);
    auto shared = std::make_shared<const Record>(std::move(record));
    send_to_dlq(shared, std::make_shared<const Headers>(dlq_headers(*shared, st.error(), wall_now())), generation,
                options.dead_letter.retry_backoff);
    return false;
  }

  void store(const Record& record) {
    if (closed) return;
    auto& position = done[PartitionKey{record.topic, record.partition}];
    position = std::max(position, record.offset + 1);
    if (options.defer_offset_store) {
      auto& next = handled[PartitionKey{record.topic, record.partition}];
      next = std::max(next, record.offset + 1);
      return;
    }
    store_offsets({{PartitionKey{record.topic, record.partition}, record.offset + 1}});
  }

  void store_offsets(const std::map<PartitionKey, std::int64_t>& offsets) {
    if (closed || offsets.empty()) return;
    detail::PartitionListPtr list{rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size()))};
    for (const auto& [key, offset] : offsets) {
      rd_kafka_topic_partition_list_add(list.get(), key.first.c_str(), key.second)->offset = offset;
    }
    if (auto err = rd_kafka_offsets_store(rk.get(), list.get())) {
      // ERR__STATE: a partition was revoked meanwhile; its new owner will see the records again.
      log().debug("kafka offset store group={} partitions={} error={}", group_id, offsets.size(),
                  rd_kafka_err2name(err));
    }
  }

  std::uint64_t checkpoint() {
    if (!options.defer_offset_store) return 0;
    ++mark_seq;
    if (!handled.empty()) marks.emplace_back(mark_seq, std::move(handled));
    handled.clear();
    return mark_seq;
  }

  void commit_through(std::uint64_t mark) {
    std::map<PartitionKey, std::int64_t> merged;
    while (!marks.empty() && marks.front().first <= mark) {
      for (const auto& [key, offset] : marks.front().second) {
        auto& m = merged[key];
        m = std::max(m, offset);
      }
      marks.pop_front();
    }
    store_offsets(merged);
  }

  void send_to_dlq(std::shared_ptr<const Record> record, std::shared_ptr<const Headers> headers, std::uint64_t gen,
                   std::chrono::milliseconds backoff) {
    const std::string topic = record->topic + options.dead_letter.suffix;
    std::weak_ptr<int> token = alive;
    dlq->produce(topic, record->key.value_or(""), record->value, *headers,
                 [this, token, record, headers, gen, backoff, topic](bot::Status st) {
                   if (!token.lock() || closed || gen != generation) return;  // revoked: the next owner redoes it
                   if (!st) {
                     ++stats.dead_letter_retries;
                     log().warn("kafka dlq delivery failed group={} dlq={} where={} retry_in_ms={} error={}", group_id,
                                topic, record->where(), backoff.count(), st.error().message);
                     retry_dlq(record, headers, gen, backoff);
                     return;
                   }
                   ++stats.dead_lettered;
                   store(*record);
                   log().info("kafka record dead-lettered group={} where={} dlq={}", group_id, record->where(), topic);
                   release(PartitionKey{record->topic, record->partition});
                 });
  }

  void retry_dlq(std::shared_ptr<const Record> record, std::shared_ptr<const Headers> headers, std::uint64_t gen,
                 std::chrono::milliseconds backoff) {
    auto timer = std::make_shared<boost::asio::steady_timer>(io, backoff);
    std::weak_ptr<int> token = alive;
    auto next = std::min(backoff * 2, options.dead_letter.max_backoff);
    timer->async_wait([this, token, timer, record, headers, gen, next](const boost::system::error_code& ec) {
      if (ec || !token.lock() || closed || closing || gen != generation) return;
      send_to_dlq(record, headers, gen, next);
    });
  }

  // The DLQ has the record: handle what was held back, in order, then let the partition fetch.
  void release(const PartitionKey& key) {
    auto it = held.find(key);
    if (it == held.end()) return;
    it->second.waiting = false;
    if (closing) return;  // close() is flushing: handle nothing more
    while (!it->second.backlog.empty()) {
      Record next = std::move(it->second.backlog.front());
      it->second.backlog.pop_front();
      if (!process(std::move(next))) return;  // another rejected record: held again, backlog kept
      if (closed) return;
      it = held.find(key);  // the handler may have run anything; re-find
      if (it == held.end()) return;
    }
    held.erase(it);
    if (!paused) pause_one(key, false);
  }

  void pause_one(const PartitionKey& key, bool pause) {
    if (closed) return;
    detail::PartitionListPtr list{rd_kafka_topic_partition_list_new(1)};
    rd_kafka_topic_partition_list_add(list.get(), key.first.c_str(), key.second);
    auto err = pause ? rd_kafka_pause_partitions(rk.get(), list.get()) : rd_kafka_resume_partitions(rk.get(), list.get());
    if (err) {
      log().warn("kafka {} partition group={} topic={} partition={} error={}", pause ? "pause" : "resume", group_id,
                 key.first, key.second, rd_kafka_err2name(err));
    }
  }

  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* parts, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      rd_kafka_assign(rk, parts);
      if (self->paused) rd_kafka_pause_partitions(rk, parts);
      log().info("kafka partitions assigned group={} count={}", self->group_id, parts->cnt);
    } else {
      // Eager protocol: everything is revoked; stored offsets are committed by auto-commit.
      // Records held behind a DLQ delivery are dropped: the next owner fetches them again.
      ++self->generation;
      self->at_end.clear();
      if (!self->held.empty()) {
        log().info("kafka partitions revoked while waiting for dead-letter deliveries group={} partitions={}",
                   self->group_id, self->held.size());
      }
      self->held.clear();
      rd_kafka_assign(rk, nullptr);
      log().info("kafka partitions revoked group={} count={}", self->group_id, parts->cnt);
    }
  }

  detail::PartitionListPtr assignment() const {
    rd_kafka_topic_partition_list_t* list = nullptr;
    if (rd_kafka_assignment(rk.get(), &list) != RD_KAFKA_RESP_ERR_NO_ERROR) return nullptr;
    return detail::PartitionListPtr{list};
  }

  // Total lag (-1 = unknown) and each topic's in `per_topic` (entries reset to -1 first).
  std::int64_t lag(std::map<std::string, TopicStats>& per_topic) const {
    for (auto& [name, t] : per_topic) t.lag = -1;
    if (closed) return -1;
    auto list = assignment();
    if (!list || list->cnt == 0) return -1;
    rd_kafka_position(rk.get(), list.get());
    std::int64_t sum = 0;
    bool known = false;
    for (int i = 0; i < list->cnt; ++i) {
      const auto& p = list->elems[i];
      std::int64_t low = -1, high = -1;
      // Cached from fetch responses: never blocks.
      if (rd_kafka_get_watermark_offsets(rk.get(), p.topic, p.partition, &low, &high) != 0 || high < 0) continue;
      std::int64_t behind = -1;
      std::int64_t position = p.offset;
      if (position < 0) {
        // Nothing consumed from it yet in this run: its end, if the fetch reached it.
        auto end = at_end.find(PartitionKey{p.topic, p.partition});
        if (end != at_end.end()) position = end->second;
      }
      if (position >= 0) {
        behind = std::max<std::int64_t>(0, high - position);
      } else if (low >= 0 && low == high) {
        behind = 0;  // empty partition, nothing consumed yet
      }
      if (behind < 0) continue;
      sum += behind;
      known = true;
      TopicStats& t = per_topic[p.topic];
      t.lag = std::max<std::int64_t>(t.lag, 0) + behind;
    }
    return known ? sum : -1;
  }

  void set_paused(bool pause) {
    if (closed || paused == pause) return;
    paused = pause;
    auto list = assignment();
    if (!list) return;
    if (!pause && !held.empty()) {
      // Partitions waiting for a DLQ delivery stay paused.
      detail::PartitionListPtr rest{rd_kafka_topic_partition_list_new(list->cnt)};
      for (int i = 0; i < list->cnt; ++i) {
        const auto& p = list->elems[i];
        if (!held.contains(PartitionKey{p.topic, p.partition})) {
          rd_kafka_topic_partition_list_add(rest.get(), p.topic, p.partition);
        }
      }
      list = std::move(rest);
    }
    auto err = pause ? rd_kafka_pause_partitions(rk.get(), list.get())
                     : rd_kafka_resume_partitions(rk.get(), list.get());
    if (err) log().warn("kafka {} group={} error={}", pause ? "pause" : "resume", group_id, rd_kafka_err2name(err));
    log().info("kafka consumer {} group={} partitions={}", pause ? "paused" : "resumed", group_id, list->cnt);
  }
};

bot::Result<std::unique_ptr<KafkaConsumer>> KafkaConsumer::create(boost::asio::io_context& io,
                                                                  const KafkaSettings& settings,
                                                                  std::string group_id,
                                                                  std::vector<std::string> topics,
                                                                  Handler handler,
                                                                  ConsumerOptions options) {
  if (topics.empty()) return bot::make_error(bot::Errc::invalid_argument, "kafka consumer: no topics to subscribe to");
  if (group_id.empty()) return bot::make_error(bot::Errc::invalid_argument, "kafka consumer: empty group id");
  auto conf = detail::make_conf(settings, detail::consumer_properties(settings, group_id), detail::consumer_defaults());
  if (!conf) return conf.error();
  const bool dead_letter = options.dead_letter.enabled;
  auto impl = std::make_unique<Impl>(io, group_id, std::move(handler), std::move(options));
  if (dead_letter) {
    auto producer = KafkaProducer::create(io, settings);
    if (!producer) return producer.error();
    impl->dlq = std::move(*producer);
  }
  rd_kafka_conf_set_opaque(conf->get(), impl.get());
  rd_kafka_conf_set_rebalance_cb(conf->get(), &Impl::on_rebalance);
  auto rk = detail::make_handle(RD_KAFKA_CONSUMER, std::move(*conf), "consumer");
  if (!rk) return rk.error();
  impl->rk = std::move(*rk);
  for (const auto& t : topics) impl->stats.topics.try_emplace(t);
  // Route the main queue (errors, logs, rebalances) into the consumer queue: one queue to drain.
  rd_kafka_poll_set_consumer(impl->rk.get());

  detail::PartitionListPtr subscription{rd_kafka_topic_partition_list_new(static_cast<int>(topics.size()))};
  for (const auto& t : topics) {
    rd_kafka_topic_partition_list_add(subscription.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  }
  if (auto err = rd_kafka_subscribe(impl->rk.get(), subscription.get())) {
    impl->closed = true;  // nothing to commit
    return detail::to_error(err, "kafka subscribe (group " + group_id + ")");
  }
  impl->queue.reset(rd_kafka_queue_get_consumer(impl->rk.get()));
  Impl* raw = impl.get();
  auto waker = detail::QueueWaker::create(io, raw->queue.get(), [raw] { raw->drain(); });
  if (!waker) return waker.error();
  impl->waker = std::move(*waker);
  impl->start_tick();
  log().info("kafka consumer started group={} topics={} dead_letter={}", group_id, topics.size(), dead_letter);
  return std::unique_ptr<KafkaConsumer>(new KafkaConsumer(std::move(impl)));
}

KafkaConsumer::KafkaConsumer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KafkaConsumer::~KafkaConsumer() = default;

bot::Status KafkaConsumer::close() { return impl_->close(); }
std::uint64_t KafkaConsumer::checkpoint() { return impl_->checkpoint(); }
void KafkaConsumer::commit_through(std::uint64_t mark) { impl_->commit_through(mark); }
std::size_t KafkaConsumer::deferred_partitions() const {
  std::set<PartitionKey> parts;
  for (const auto& [key, offset] : impl_->handled) parts.insert(key);
  for (const auto& m : impl_->marks) {
    for (const auto& [key, offset] : m.second) parts.insert(key);
  }
  return parts.size();
}
KafkaConsumer::Positions KafkaConsumer::positions() const { return impl_->done; }
void KafkaConsumer::skip_applied(Positions applied) {
  if (!applied.empty()) log().info("kafka consumer group={} skips records its state already holds partitions={}",
                                   impl_->group_id, applied.size());
  // Until this run handles them, those partitions stay applied as far as the state says.
  for (const auto& [key, offset] : applied) {
    auto& position = impl_->done[key];
    position = std::max(position, offset);
  }
  impl_->applied_unchecked.clear();
  for (const auto& [key, offset] : applied) impl_->applied_unchecked.insert(key);
  impl_->applied = std::move(applied);
}
void KafkaConsumer::pause() { impl_->set_paused(true); }
void KafkaConsumer::resume() { impl_->set_paused(false); }
bool KafkaConsumer::paused() const { return impl_->paused; }

ConsumerStats KafkaConsumer::stats() const {
  ConsumerStats s = impl_->stats;
  s.lag = impl_->lag(s.topics);
  s.held_partitions = impl_->held.size();
  return s;
}

std::size_t KafkaConsumer::assigned_partitions() const {
  if (impl_->closed) return 0;
  auto list = impl_->assignment();
  return list ? static_cast<std::size_t>(list->cnt) : 0;
}

nlohmann::json positions_to_json(const KafkaConsumer::Positions& positions) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, offset] : positions) out[key.first][std::to_string(key.second)] = offset;
  return out;
}

KafkaConsumer::Positions positions_from_json(const nlohmann::json& j) {
  KafkaConsumer::Positions out;
  if (!j.is_object()) return out;
  for (const auto& [topic, parts] : j.items()) {
    if (!parts.is_object()) continue;
    for (const auto& [partition, offset] : parts.items()) {
      if (!offset.is_number_integer()) continue;
      try {
        out[{topic, static_cast<std::int32_t>(std::stol(partition))}] = offset.get<std::int64_t>();
      } catch (const std::exception&) {
        log().warn("state: ignoring an unreadable input position topic={} partition={}", topic, partition);
      }
    }
  }
  return out;
}

}  // namespace runbot::events
