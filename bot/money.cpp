#include "bot/money.h"

#include <cstdio>

namespace runbot::bot {

std::string format_money(Money m) {
  std::int64_t cents = (m.micros + (m.micros >= 0 ? 5'000 : -5'000)) / 10'000;
  bool negative = cents < 0;
  if (negative) cents = -cents;
  const std::string digits = std::to_string(cents / 100);
  std::string whole;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) whole += ',';
    whole += digits[i];
  }
  char frac[4];
  std::snprintf(frac, sizeof frac, "%02d", static_cast<int>(cents % 100));
  return std::string(negative ? "-$" : "$") + whole + "." + frac;
}

Money cost_for(Money rate_per_hour, Duration elapsed) {
  if (elapsed <= Duration::zero()) return Money{};
  std::int64_t ms = elapsed.count();
  std::int64_t minutes = (ms + 59'999) / 60'000;  // every started minute is billed
  return Money{rate_per_hour.micros * minutes / 60};
}

}  // namespace runbot::bot
