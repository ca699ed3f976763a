#pragma once
// AsioClock: the production bot::Clock, backed by steady timers on one io_context.
//
// Time: now() is the wall-clock time taken at construction plus the steady (monotonic) time
// elapsed since then, multiplied by `speed`, truncated to milliseconds. It never goes backwards,
// even when the system clock is stepped. With speed 60 a clock minute passes per real second
// (the demo's `--speed 60`).
//
// Timers: call_at(when, fn) arms a steady_timer for the real delay (when - now()) / speed,
// clamped at zero, and runs `fn` from the io_context (never inline, even when `when` is in the
// past). Callbacks due at different instants run in time order.
//
// Ownership and executor: the clock borrows the io_context, which must outlive it. It is not
// thread-safe: construct it, call it and destroy it on the thread that runs the io_context.
// Destroying the clock cancels every pending timer without calling it.
//
// Errors: none; cancel() of an unknown or already-run id is a no-op.
#include <cstddef>
#include <functional>
#include <memory>

#include "bot/clock.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace runbot::common {

class AsioClock final : public bot::Clock {
 public:
  // `speed` > 0: clock time advanced per unit of real time.
  explicit AsioClock(boost::asio::io_context& io, double speed = 1.0);
  ~AsioClock() override;
  AsioClock(const AsioClock&) = delete;
  AsioClock& operator=(const AsioClock&) = delete;

  bot::TimePoint now() const override;
  bot::TimerId call_at(bot::TimePoint when, std::function<void()> fn) override;
  void cancel(bot::TimerId id) override;

  double speed() const;
  // Timers armed and neither run nor cancelled.
  std::size_t pending() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace runbot::common
