#pragma once
// Money in micro-dollars so that per-minute cost adds up without floating-point drift.
#include <cstdint>
#include <string>

#include "bot/time.h"

namespace runbot::bot {

struct Money {
  std::int64_t micros = 0;
  auto operator<=>(const Money&) const = default;
  Money& operator+=(Money o) { micros += o.micros; return *this; }
  friend Money operator+(Money a, Money b) { return Money{a.micros + b.micros}; }
  friend Money operator-(Money a, Money b) { return Money{a.micros - b.micros}; }
  static Money dollars(double d) { return Money{static_cast<std::int64_t>(d * 1e6 + (d >= 0 ? 0.5 : -0.5))}; }
};

// "$0.62", "$15.00", "$1,234.50".
std::string format_money(Money m);

// Cost of running `elapsed` at `rate_per_hour`, billed by the started minute.
Money cost_for(Money rate_per_hour, Duration elapsed);

}  // namespace runbot::bot
