#include "events/kafka_consumer.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>

#include "events/queue_waker.h"
#include "events/rdkafka_util.h"

namespace runbot::events {

using detail::log;

namespace {
// Records handled per wake-up before yielding to other work on the loop.
constexpr int kMaxBatch = 256;
constexpr std::chrono::seconds kPollTick{1};
}  // namespace

struct KafkaConsumer::Impl {
  boost::asio::io_context& io;
  std::string group_id;
  Handler handler;
  detail::HandlePtr rk;
  detail::QueuePtr queue;
  std::unique_ptr<detail::QueueWaker> waker;
  boost::asio::steady_timer tick;
  ConsumerStats stats;
  bool paused = false;
  bool closed = false;
  std::shared_ptr<int> alive = std::make_shared<int>(0);

  Impl(boost::asio::io_context& ctx, std::string group, Handler h)
      : io(ctx), group_id(std::move(group)), handler(std::move(h)), tick(ctx) {}

  ~Impl() {
    (void)close();
    queue.reset();
    rk.reset();
  }

  bot::Status close() {
    if (closed || !rk) return bot::ok();
    closed = true;
    waker.reset();
    tick.cancel();
    auto err = rd_kafka_consumer_close(rk.get());
    if (err) {
      log().warn("kafka consumer close group={} error={}", group_id, rd_kafka_err2name(err));
      return detail::to_error(err, "kafka consumer close (group " + group_id + ")");
    }
    log().info("kafka consumer closed group={} consumed={} skipped_invalid={}", group_id,
               stats.consumed, stats.skipped_invalid);
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
      if (msg->err) {
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
    ++stats.consumed;
    bot::Status st = handler(record);
    stats.last_record = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    if (!st) {
      ++stats.skipped_invalid;
      log().warn("kafka record skipped group={} topic={} partition={} offset={} reason={}", group_id,
                 record.topic, record.partition, record.offset, st.error().message);
    }
    if (closed) return;
    detail::PartitionListPtr list{rd_kafka_topic_partition_list_new(1)};
    rd_kafka_topic_partition_list_add(list.get(), record.topic.c_str(), record.partition)->offset =
        record.offset + 1;
    if (auto err = rd_kafka_offsets_store(rk.get(), list.get())) {
      // ERR__STATE: the partition was revoked meanwhile; its new owner will see the record again.
      log().debug("kafka offset store group={} where={} error={}", group_id, record.where(),
                  rd_kafka_err2name(err));
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
      rd_kafka_assign(rk, nullptr);
      log().info("kafka partitions revoked group={} count={}", self->group_id, parts->cnt);
    }
  }

  detail::PartitionListPtr assignment() const {
    rd_kafka_topic_partition_list_t* list = nullptr;
    if (rd_kafka_assignment(rk.get(), &list) != RD_KAFKA_RESP_ERR_NO_ERROR) return nullptr;
    return detail::PartitionListPtr{list};
  }

  std::int64_t lag() const {
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
      if (p.offset >= 0) {
        sum += std::max<std::int64_t>(0, high - p.offset);
        known = true;
      } else if (low >= 0 && low == high) {
        known = true;  // empty partition, nothing consumed yet
      }
    }
    return known ? sum : -1;
  }

  void set_paused(bool pause) {
    if (closed || paused == pause) return;
    paused = pause;
    auto list = assignment();
    if (!list) return;
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
                                                                  Handler handler) {
  if (topics.empty()) return bot::make_error(bot::Errc::invalid_argument, "kafka consumer: no topics to subscribe to");
  if (group_id.empty()) return bot::make_error(bot::Errc::invalid_argument, "kafka consumer: empty group id");
  auto conf = detail::make_conf(settings, detail::consumer_properties(settings, group_id));
  if (!conf) return conf.error();
  auto impl = std::make_unique<Impl>(io, group_id, std::move(handler));
  rd_kafka_conf_set_opaque(conf->get(), impl.get());
  rd_kafka_conf_set_rebalance_cb(conf->get(), &Impl::on_rebalance);
  auto rk = detail::make_handle(RD_KAFKA_CONSUMER, std::move(*conf), "consumer");
  if (!rk) return rk.error();
  impl->rk = std::move(*rk);
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
  log().info("kafka consumer started group={} topics={}", group_id, topics.size());
  return std::unique_ptr<KafkaConsumer>(new KafkaConsumer(std::move(impl)));
}

KafkaConsumer::KafkaConsumer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KafkaConsumer::~KafkaConsumer() = default;

bot::Status KafkaConsumer::close() { return impl_->close(); }
void KafkaConsumer::pause() { impl_->set_paused(true); }
void KafkaConsumer::resume() { impl_->set_paused(false); }
bool KafkaConsumer::paused() const { return impl_->paused; }

ConsumerStats KafkaConsumer::stats() const {
  ConsumerStats s = impl_->stats;
  s.lag = impl_->lag();
  return s;
}

std::size_t KafkaConsumer::assigned_partitions() const {
  if (impl_->closed) return 0;
  auto list = impl_->assignment();
  return list ? static_cast<std::size_t>(list->cnt) : 0;
}

}  // namespace runbot::events
