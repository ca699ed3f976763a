#pragma once
// Clock: the only source of time for the core. Production uses an Asio-backed clock (optionally
// running N times faster for the demo); tests use tests/support/fake_clock.h and advance it by hand.
#include <cstdint>
#include <functional>

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

}  // namespace runbot::bot
