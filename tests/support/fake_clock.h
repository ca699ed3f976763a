#pragma once
// FakeClock: a bot::Clock whose time moves only when a test calls advance(). Due callbacks run
// in time order during advance(), each with now() equal to its due time.
#include <map>
#include <utility>

#include "bot/clock.h"

namespace runbot::testing {

class FakeClock final : public bot::Clock {
 public:
  explicit FakeClock(bot::TimePoint start = bot::TimePoint{std::chrono::hours(24 * 20000)})
      : now_(start) {}

  bot::TimePoint now() const override { return now_; }
  bot::TimerId call_at(bot::TimePoint when, std::function<void()> fn) override;
  void cancel(bot::TimerId id) override;

  // Moves time forward by `d`, running every callback that falls due, in order.
  void advance(bot::Duration d);
  // Runs callbacks already due without moving time.
  void run_due() { advance(bot::Duration::zero()); }
  size_t pending() const { return timers_.size(); }

 private:
  bot::TimePoint now_;
  bot::TimerId next_id_ = 1;
  // (due, id) keeps insertion order among equal due times.
  std::map<std::pair<bot::TimePoint, bot::TimerId>, std::function<void()>> timers_;
};

}  // namespace runbot::testing
