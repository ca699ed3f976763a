#pragma once
// Internal to events/: wakes the Asio loop when a librdkafka queue becomes non-empty, so the
// loop can drain it with zero-timeout polls and never block.
//
// librdkafka writes one byte to a pipe when the queue goes from empty to non-empty (and again
// only after the queue was served), so `on_ready` must drain the queue completely, or call
// poke() to be called again. Runs on the io_context's thread; not thread-safe.
#include <librdkafka/rdkafka.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>

#include <functional>
#include <memory>

#include "bot/result.h"

namespace runbot::events::detail {

class QueueWaker {
 public:
  // `queue` is borrowed and must outlive the waker.
  static bot::Result<std::unique_ptr<QueueWaker>> create(boost::asio::io_context& io,
                                                         rd_kafka_queue_t* queue,
                                                         std::function<void()> on_ready);
  ~QueueWaker();
  QueueWaker(const QueueWaker&) = delete;
  QueueWaker& operator=(const QueueWaker&) = delete;

  // Calls on_ready from the loop soon (never inline). Safe to call after destruction started.
  void poke();

 private:
  QueueWaker(boost::asio::io_context& io, rd_kafka_queue_t* queue, int read_fd, int write_fd,
             std::function<void()> on_ready);
  void arm();

  boost::asio::io_context& io_;
  rd_kafka_queue_t* queue_;
  boost::asio::posix::stream_descriptor read_end_;
  int write_fd_;
  std::function<void()> on_ready_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace runbot::events::detail
