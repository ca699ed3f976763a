#pragma once
// Clock: the only source of time for the core. Production uses an Asio-backed clock (optionally
// running N times faster for the demo); tests use tests/support/fake_clock.h and advance it by hand.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "bot/time.h"

namespace runbot::bot {

using TimerId = std::uint64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  // The current instant in this clock's time.
  virtual TimePoint now() const = 0;
  // Calls `fn` once on the owning executor at or after `when`. Never calls it inline.
  virtual TimerId call_at(TimePoint when, std::function<void()> fn) = 0;
  // Cancels a pending call; a call that already ran or an unknown id is ignored.
  virtual void cancel(TimerId id) = 0;

  TimerId call_after(Duration d, std::function<void()> fn) { return call_at(now() + d, std::move(fn)); }
};

// DeferredCalls: runs functions on the clock's next turn, so that a callback is never called inside
// the call that was given it, and drops the ones still pending when it is cancelled or destroyed.
// Borrows the clock (which must outlive it); not thread-safe.
class DeferredCalls {
 public:
  explicit DeferredCalls(Clock& clock) : clock_(clock) {}
  ~DeferredCalls() { cancel_all(); }
  DeferredCalls(const DeferredCalls&) = delete;
  DeferredCalls& operator=(const DeferredCalls&) = delete;

  void later(std::function<void()> fn) {
    auto id = std::make_shared<TimerId>(0);
    std::weak_ptr<std::vector<TimerId>> pending = pending_;
    *id = clock_.call_at(clock_.now(), [pending, id, fn = std::move(fn)] {
      auto alive = pending.lock();
      if (!alive) return;
      std::erase(*alive, *id);
      fn();
    });
    pending_->push_back(*id);
  }
  void cancel_all() {
    for (auto id : *pending_) clock_.cancel(id);
    pending_->clear();
  }

 private:
  Clock& clock_;
  std::shared_ptr<std::vector<TimerId>> pending_ = std::make_shared<std::vector<TimerId>>();
};

}  // namespace runbot::bot
