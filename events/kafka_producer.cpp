#include "events/kafka_producer.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "events/queue_waker.h"
#include "events/rdkafka_util.h"

namespace runbot::events {

using detail::log;

struct KafkaProducer::Impl {
  boost::asio::io_context& io;
  detail::HandlePtr rk;
  detail::QueuePtr main_queue;
  std::unique_ptr<detail::QueueWaker> waker;  // destroyed before main_queue and rk
  std::uint64_t in_flight = 0;
  bool dropping = false;  // set while destroying: delivery reports free their opaque only
  std::shared_ptr<int> alive = std::make_shared<int>(0);

  explicit Impl(boost::asio::io_context& ctx) : io(ctx) {}

  ~Impl() {
    waker.reset();
    if (rk) {
      dropping = true;
      rd_kafka_purge(rk.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      // Purged records get a delivery report; serve them so their opaques are freed.
      rd_kafka_flush(rk.get(), 1000);
      if (in_flight != 0) log().warn("kafka producer destroyed with records_in_flight={}", in_flight);
    }
    main_queue.reset();
    rk.reset();
  }

  void drain() {
    // Delivery reports run inside rd_kafka_poll; 0 = nothing was served, the queue is empty.
    while (rd_kafka_poll(rk.get(), 0) > 0) {
    }
  }

  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* conf_opaque) {
    auto* self = static_cast<Impl*>(conf_opaque);
    std::unique_ptr<std::function<void(bot::Status)>> done{
        static_cast<std::function<void(bot::Status)>*>(msg->_private)};
    --self->in_flight;
    if (self->dropping || !done || !*done) return;
    if (msg->err) {
      std::string topic = msg->rkt ? rd_kafka_topic_name(msg->rkt) : "?";
      (*done)(detail::to_error(msg->err, "kafka delivery to " + topic + " failed"));
    } else {
      (*done)(bot::ok());
    }
  }

  static void on_error(rd_kafka_t* rk, int err, const char* reason, void*) {
    auto code = static_cast<rd_kafka_resp_err_t>(err);
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
      char buf[512];
      auto fatal = rd_kafka_fatal_error(rk, buf, sizeof buf);
      log().error("kafka producer fatal error={} reason={}", rd_kafka_err2name(fatal), buf);
    } else {
      log().warn("kafka producer error={} reason={}", rd_kafka_err2name(code), reason);
    }
  }
};

bot::Result<std::unique_ptr<KafkaProducer>> KafkaProducer::create(boost::asio::io_context& io,
                                                                  const KafkaSettings& settings) {
  auto conf = detail::make_conf(settings, detail::producer_properties(settings));
  if (!conf) return conf.error();
  auto impl = std::make_unique<Impl>(io);
  rd_kafka_conf_set_opaque(conf->get(), impl.get());
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &Impl::on_delivery);
  rd_kafka_conf_set_error_cb(conf->get(), &Impl::on_error);
  auto rk = detail::make_handle(RD_KAFKA_PRODUCER, std::move(*conf), "producer");
  if (!rk) return rk.error();
  impl->rk = std::move(*rk);
  impl->main_queue.reset(rd_kafka_queue_get_main(impl->rk.get()));
  Impl* raw = impl.get();
  auto waker = detail::QueueWaker::create(io, raw->main_queue.get(), [raw] { raw->drain(); });
  if (!waker) return waker.error();
  impl->waker = std::move(*waker);
  return std::unique_ptr<KafkaProducer>(new KafkaProducer(std::move(impl)));
}

KafkaProducer::KafkaProducer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KafkaProducer::~KafkaProducer() = default;

void KafkaProducer::produce(const std::string& topic, const std::string& key,
                            std::optional<std::string> value, const Headers& headers,
                            std::function<void(bot::Status)> done) {
  detail::HeadersPtr hdrs{rd_kafka_headers_new(headers.size())};
  for (const auto& [name, v] : headers) {
    rd_kafka_header_add(hdrs.get(), name.data(), static_cast<ssize_t>(name.size()), v.data(),
                        static_cast<ssize_t>(v.size()));
  }
  auto* opaque = new std::function<void(bot::Status)>(std::move(done));
  void* payload = value ? value->data() : nullptr;
  size_t len = value ? value->size() : 0;
  rd_kafka_resp_err_t err = rd_kafka_producev(
      impl_->rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_KEY(key.empty() ? nullptr : key.data(), key.size()), RD_KAFKA_V_VALUE(payload, len),
      RD_KAFKA_V_HEADERS(hdrs.get()), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
  if (err) {
    // On failure librdkafka does not take the headers or report delivery: complete it ourselves.
    std::unique_ptr<std::function<void(bot::Status)>> cb{opaque};
    auto error = detail::to_error(err, "kafka produce to " + topic + " failed");
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) error.code = bot::Errc::unavailable;
    log().warn("kafka produce failed topic={} error={}", topic, rd_kafka_err2name(err));
    std::weak_ptr<int> alive = impl_->alive;
    boost::asio::post(impl_->io, [alive, cb = std::shared_ptr<std::function<void(bot::Status)>>(std::move(cb)),
                                  error = std::move(error)] {
      if (alive.lock() && *cb) (*cb)(error);
    });
    return;
  }
  (void)hdrs.release();  // owned by the message now
  ++impl_->in_flight;
  // A report may already be waiting; the io event fires only on empty -> non-empty.
  impl_->waker->poke();
}

bot::Status KafkaProducer::flush(std::chrono::milliseconds timeout) {
  auto err = rd_kafka_flush(impl_->rk.get(), static_cast<int>(timeout.count()));
  if (err == RD_KAFKA_RESP_ERR__TIMED_OUT) {
    return bot::make_error(bot::Errc::timeout,
                           "kafka flush timed out with records_in_flight=" + std::to_string(impl_->in_flight));
  }
  if (err) return detail::to_error(err, "kafka flush failed");
  return bot::ok();
}

std::uint64_t KafkaProducer::in_flight() const { return impl_->in_flight; }

}  // namespace runbot::events
