#include "adapters/common/asio_clock.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cmath>
#include <map>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace runbot::common {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

namespace {

// Shared between the clock and the timer's completion handler: the handler may still be queued
// when the clock is gone or the timer was cancelled after it had already expired, so the flag,
// not the error code, decides whether `fn` runs.
struct Entry {
  explicit Entry(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;
  std::function<void()> fn;
  bool cancelled = false;
};

}  // namespace

struct AsioClock::Impl {
  Impl(asio::io_context& io_, double speed_)
      : io(io_),
        speed(speed_),
        wall_start(std::chrono::floor<bot::Duration>(std::chrono::system_clock::now())),
        steady_start(SteadyClock::now()) {}

  asio::io_context& io;
  double speed;
  bot::TimePoint wall_start;
  SteadyClock::time_point steady_start;
  bot::TimerId next_id = 1;
  std::map<bot::TimerId, std::shared_ptr<Entry>> timers;
};

AsioClock::AsioClock(asio::io_context& io, double speed) : impl_(std::make_unique<Impl>(io, speed)) {
  assert(speed > 0 && std::isfinite(speed));
}

AsioClock::~AsioClock() {
  for (auto& [id, entry] : impl_->timers) {
    entry->cancelled = true;
    entry->fn = nullptr;
    entry->timer.cancel();
  }
}

bot::TimePoint AsioClock::now() const {
  const std::chrono::duration<double, std::milli> real = SteadyClock::now() - impl_->steady_start;
  const auto scaled = std::chrono::floor<bot::Duration>(real * impl_->speed);
  return impl_->wall_start + scaled;
}

bot::TimerId AsioClock::call_at(bot::TimePoint when, std::function<void()> fn) {
  const bot::TimerId id = impl_->next_id++;
  auto entry = std::make_shared<Entry>(impl_->io);
  entry->fn = std::move(fn);

  // Round the real delay up so that now() has reached `when` by the time the callback runs.
  const std::chrono::duration<double, std::milli> clock_delay = when - now();
  constexpr double kMaxDelayNs = 1e17;  // ~3 years: keeps the conversion in range for TimePoint::max()
  const double real_ns = std::clamp(clock_delay.count() * 1e6 / impl_->speed, 0.0, kMaxDelayNs);
  entry->timer.expires_after(std::chrono::nanoseconds(static_cast<std::int64_t>(std::ceil(real_ns))));

  Impl* impl = impl_.get();
  entry->timer.async_wait([impl, id, entry](const boost::system::error_code&) {
    if (entry->cancelled) return;  // `impl` may be gone: do not touch it
    impl->timers.erase(id);
    auto callback = std::move(entry->fn);
    entry->fn = nullptr;
    if (callback) callback();
  });
  impl_->timers.emplace(id, std::move(entry));
  return id;
}

void AsioClock::cancel(bot::TimerId id) {
  auto it = impl_->timers.find(id);
  if (it == impl_->timers.end()) return;
  it->second->cancelled = true;
  it->second->fn = nullptr;
  it->second->timer.cancel();
  impl_->timers.erase(it);
}

double AsioClock::speed() const { return impl_->speed; }

std::size_t AsioClock::pending() const { return impl_->timers.size(); }

}  // namespace runbot::common
