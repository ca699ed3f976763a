#include "events/queue_waker.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace runbot::events::detail {

bot::Result<std::unique_ptr<QueueWaker>> QueueWaker::create(boost::asio::io_context& io,
                                                            rd_kafka_queue_t* queue,
                                                            std::function<void()> on_ready) {
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    return bot::make_error(bot::Errc::internal, std::string("kafka queue wake-up pipe: ") + std::strerror(errno));
  }
  std::unique_ptr<QueueWaker> w{new QueueWaker(io, queue, fds[0], fds[1], std::move(on_ready))};
  w->arm();
  // The queue may already hold events from before the io event was enabled.
  w->poke();
  return w;
}

QueueWaker::QueueWaker(boost::asio::io_context& io, rd_kafka_queue_t* queue, int read_fd,
                       int write_fd, std::function<void()> on_ready)
    : io_(io), queue_(queue), read_end_(io, read_fd), write_fd_(write_fd), on_ready_(std::move(on_ready)) {
  static const char kPayload[] = "1";
  rd_kafka_queue_io_event_enable(queue_, write_fd_, kPayload, 1);
}

QueueWaker::~QueueWaker() {
  rd_kafka_queue_io_event_enable(queue_, -1, nullptr, 0);
  alive_.reset();
  boost::system::error_code ignored;
  read_end_.close(ignored);
  ::close(write_fd_);
}

void QueueWaker::poke() {
  std::weak_ptr<int> alive = alive_;
  boost::asio::post(io_, [this, alive] {
    if (alive.lock()) on_ready_();
  });
}

void QueueWaker::arm() {
  std::weak_ptr<int> alive = alive_;
  read_end_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                       [this, alive](const boost::system::error_code& ec) {
                         if (ec || !alive.lock()) return;
                         // Empty the pipe before draining so a wake-up written meanwhile is kept.
                         char buf[64];
                         while (::read(read_end_.native_handle(), buf, sizeof buf) > 0) {
                         }
                         on_ready_();
                         if (alive.lock()) arm();
                       });
}

}  // namespace runbot::events::detail
