#include "events/event_time.h"

#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <optional>
#include <string>

namespace runbot::events {
namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

// A tiny cursor over the text; every read returns false on mismatch.
class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  bool done() const { return s_.empty(); }
  std::string_view rest() const { return s_; }
  void skip_spaces() {
    while (!s_.empty() && s_.front() == ' ') s_.remove_prefix(1);
  }
  bool lit(char c) {
    if (s_.empty() || s_.front() != c) return false;
    s_.remove_prefix(1);
    return true;
  }
  // Between min_digits and max_digits decimal digits.
  bool number(int min_digits, int max_digits, int& out) {
    int n = 0;
    while (n < max_digits && n < static_cast<int>(s_.size()) && std::isdigit(static_cast<unsigned char>(s_[static_cast<size_t>(n)]))) ++n;
    if (n < min_digits) return false;
    auto [p, ec] = std::from_chars(s_.data(), s_.data() + n, out);
    if (ec != std::errc{}) return false;
    s_.remove_prefix(static_cast<size_t>(n));
    return true;
  }
  std::string_view word() {
    size_t n = 0;
    while (n < s_.size() && std::isalpha(static_cast<unsigned char>(s_[n]))) ++n;
    auto w = s_.substr(0, n);
    s_.remove_prefix(n);
    return w;
  }
  // ".123456789" -> milliseconds (truncated); absent -> 0.
  bool fraction(milliseconds& out) {
    out = milliseconds{0};
    if (!lit('.')) return true;
    int digits = 0;
    long long ms = 0;
    while (!s_.empty() && std::isdigit(static_cast<unsigned char>(s_.front()))) {
      if (digits < 3) ms = ms * 10 + (s_.front() - '0');
      ++digits;
      s_.remove_prefix(1);
    }
    if (digits == 0) return false;
    for (int d = digits; d < 3; ++d) ms *= 10;
    out = milliseconds{ms};
    return true;
  }

 private:
  std::string_view s_;
};

std::optional<unsigned> month_number(std::string_view name) {
  static constexpr std::array<std::string_view, 12> kMonths{"jan", "feb", "mar", "apr", "may", "jun",
                                                            "jul", "aug", "sep", "oct", "nov", "dec"};
  if (name.size() < 3) return std::nullopt;
  std::string lower;
  for (char c : name.substr(0, 3)) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (unsigned i = 0; i < kMonths.size(); ++i) {
    if (kMonths[i] == lower) return i + 1;
  }
  return std::nullopt;
}

std::optional<bot::TimePoint> make_time(int y, unsigned mo, int d, int h, int mi, int s, milliseconds frac,
                                        minutes offset) {
  std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{mo}, std::chrono::day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 60) return std::nullopt;
  auto t = std::chrono::sys_days{ymd} + hours{h} + minutes{mi} + seconds{s} + frac - offset;
  return std::chrono::time_point_cast<milliseconds>(t);
}

// "GMT", "UTC", "Z", "+0000", "-07:00", "+0000 UTC", "+0100 CET". Must consume the rest, except
// Go's monotonic-clock suffix " m=+0.000".
std::optional<minutes> zone(Cursor& c) {
  c.skip_spaces();
  if (c.lit('Z')) {
    c.skip_spaces();
    return c.done() ? std::optional<minutes>(minutes{0}) : std::nullopt;
  }
  minutes offset{0};
  bool numeric = false;
  std::string_view rest = c.rest();
  if (!rest.empty() && (rest.front() == '+' || rest.front() == '-')) {
    int sign = rest.front() == '-' ? -1 : 1;
    c.lit(rest.front());
    int hh = 0;
    int mm = 0;
    if (!c.number(2, 2, hh)) return std::nullopt;
    (void)c.lit(':');
    if (!c.number(2, 2, mm)) return std::nullopt;
    offset = minutes{sign * (hh * 60 + mm)};
    numeric = true;
    c.skip_spaces();
  }
  std::string_view name = c.word();
  if (!numeric && name != "GMT" && name != "UTC") return std::nullopt;
  c.skip_spaces();
  if (!c.done() && !c.rest().starts_with("m=")) return std::nullopt;
  return offset;
}

// "Sat, 05 Jun 2016 15:10:09 GMT" and "2 Jan 2006 15:04:05 GMT".
std::optional<bot::TimePoint> parse_day_month_year(std::string_view text) {
  Cursor c(text);
  if (auto comma = text.find(','); comma != std::string_view::npos && comma <= 9) {
    c = Cursor(text.substr(comma + 1));
  }
  c.skip_spaces();
  int d = 0, y = 0, h = 0, mi = 0, s = 0;
  if (!c.number(1, 2, d)) return std::nullopt;
  c.skip_spaces();
  auto mo = month_number(c.word());
  if (!mo) return std::nullopt;
  c.skip_spaces();
  if (!c.number(4, 4, y)) return std::nullopt;
  c.skip_spaces();
  if (!c.number(1, 2, h) || !c.lit(':') || !c.number(2, 2, mi) || !c.lit(':') || !c.number(2, 2, s)) return std::nullopt;
  milliseconds frac{};
  if (!c.fraction(frac)) return std::nullopt;
  auto off = zone(c);
  if (!off) return std::nullopt;
  return make_time(y, *mo, d, h, mi, s, frac, *off);
}

// "2026-11-20 14:20:00 +0000 UTC", "2026-11-20 14:20:00.123456 +0000 UTC m=+0.1".
std::optional<bot::TimePoint> parse_go_default(std::string_view text) {
  Cursor c(text);
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!c.number(4, 4, y) || !c.lit('-') || !c.number(2, 2, mo) || !c.lit('-') || !c.number(2, 2, d)) return std::nullopt;
  if (!c.lit(' ')) return std::nullopt;
  if (!c.number(2, 2, h) || !c.lit(':') || !c.number(2, 2, mi) || !c.lit(':') || !c.number(2, 2, s)) return std::nullopt;
  milliseconds frac{};
  if (!c.fraction(frac)) return std::nullopt;
  auto off = zone(c);
  if (!off || mo < 1 || mo > 12) return std::nullopt;
  return make_time(y, static_cast<unsigned>(mo), d, h, mi, s, frac, *off);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

bool is_go_zero_time(std::string_view text) {
  text = trim(text);
  return text.starts_with("0001-01-01T00:00:00") || text.starts_with("0001-01-01 00:00:00");
}

bot::Result<bot::TimePoint> parse_event_time(std::string_view text) {
  std::string_view t = trim(text);
  if (auto rfc3339 = bot::parse_time(t)) return *rfc3339;
  if (auto dmy = parse_day_month_year(t)) return *dmy;
  if (auto go = parse_go_default(t)) return *go;
  return bot::make_error(bot::Errc::invalid_argument,
                         "'" + std::string(text) +
                             "' is not a time (expected RFC 3339, RFC 1123 like 'Sat, 05 Jun 2016 15:10:09 GMT', "
                             "'2 Jan 2006 15:04:05 GMT' or Go's '2006-01-02 15:04:05 +0000 UTC')");
}

}  // namespace runbot::events
