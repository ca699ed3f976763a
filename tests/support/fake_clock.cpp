#include "tests/support/fake_clock.h"

namespace runbot::testing {

bot::TimerId FakeClock::call_at(bot::TimePoint when, std::function<void()> fn) {
  bot::TimerId id = next_id_++;
  timers_.emplace(std::pair{std::max(when, now_), id}, std::move(fn));
  return id;
}

void FakeClock::cancel(bot::TimerId id) {
  for (auto it = timers_.begin(); it != timers_.end(); ++it) {
    if (it->first.second == id) {
      timers_.erase(it);
      return;
    }
  }
}

void FakeClock::advance(bot::Duration d) {
  const bot::TimePoint target = now_ + d;
  while (!timers_.empty() && timers_.begin()->first.first <= target) {
    auto node = timers_.extract(timers_.begin());
    now_ = node.key().first;
    node.mapped()();
  }
  now_ = target;
}

}  // namespace runbot::testing
