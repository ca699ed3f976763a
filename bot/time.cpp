#include "bot/time.h"

#include <cctype>
#include <cstdio>
#include <ctime>
#include <limits>

namespace runbot::bot {
namespace {

constexpr const char* kDurationHelp =
    "expected a duration such as 30m, 8h, 2d or 1h30m (units: s, m, h, d, w)";

std::optional<std::int64_t> unit_millis(char unit) {
  switch (unit) {
    case 's': return 1000;
    case 'm': return 60'000;
    case 'h': return 3'600'000;
    case 'd': return 86'400'000;
    case 'w': return 604'800'000;
    default: return std::nullopt;
  }
}

int parse_digits(std::string_view s, size_t pos, size_t count, bool& ok) {
  int v = 0;
  if (pos + count > s.size()) {
    ok = false;
    return 0;
  }
  for (size_t i = pos; i < pos + count; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) {
      ok = false;
      return 0;
    }
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

}  // namespace

Result<Duration> parse_duration(std::string_view text) {
  if (text.empty()) return make_error(Errc::invalid_argument, std::string("empty duration: ") + kDurationHelp);
  std::int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    std::int64_t n = 0;
    size_t start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      if (n > std::numeric_limits<std::int64_t>::max() / 10 - 10) {
        return make_error(Errc::invalid_argument, "duration '" + std::string(text) + "' is too long");
      }
      n = n * 10 + (text[i] - '0');
      ++i;
    }
    if (i == start || i == text.size()) {
      return make_error(Errc::invalid_argument,
                        "bad duration '" + std::string(text) + "': " + kDurationHelp);
    }
    auto unit = unit_millis(static_cast<char>(std::tolower(static_cast<unsigned char>(text[i]))));
    if (!unit) {
      return make_error(Errc::invalid_argument, "bad duration '" + std::string(text) +
                                                    "': unknown unit '" + text[i] + "'; " +
                                                    kDurationHelp);
    }
    ++i;
    if (n > (std::numeric_limits<std::int64_t>::max() - total) / *unit) {
      return make_error(Errc::invalid_argument, "duration '" + std::string(text) + "' is too long");
    }
    total += n * *unit;
  }
  if (total <= 0) {
    return make_error(Errc::invalid_argument,
                      "duration '" + std::string(text) + "' must be longer than zero");
  }
  return Duration{total};
}

std::string format_duration(Duration d) {
  using namespace std::chrono;
  if (d < Duration::zero()) return "-" + format_duration(-d);
  auto s = duration_cast<seconds>(d).count();
  if (s < 60) return std::to_string(s) + "s";
  auto m = s / 60;
  if (m < 60) return std::to_string(m) + "m";
  auto h = m / 60;
  m %= 60;
  if (h < 24) return std::to_string(h) + "h" + (m ? " " + std::to_string(m) + "m" : "");
  auto days = h / 24;
  h %= 24;
  return std::to_string(days) + "d" + (h ? " " + std::to_string(h) + "h" : "");
}

std::string format_time(TimePoint t) {
  using namespace std::chrono;
  auto secs = floor<seconds>(t);
  auto ms = (t - secs).count();
  std::time_t tt = secs.time_since_epoch().count();
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

Result<TimePoint> parse_time(std::string_view s) {
  using namespace std::chrono;
  bool ok = true;
  // YYYY-MM-DDTHH:MM:SS
  int year = parse_digits(s, 0, 4, ok);
  int month = parse_digits(s, 5, 2, ok);
  int day = parse_digits(s, 8, 2, ok);
  int hour = parse_digits(s, 11, 2, ok);
  int minute = parse_digits(s, 14, 2, ok);
  int second = parse_digits(s, 17, 2, ok);
  if (!ok || s.size() < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      s[13] != ':' || s[16] != ':') {
    return make_error(Errc::invalid_argument, "bad RFC 3339 time '" + std::string(s) + "'");
  }
  size_t i = 19;
  std::int64_t millis = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    int digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      if (digits < 3) millis = millis * 10 + (s[i] - '0');
      ++digits;
      ++i;
    }
    if (digits == 0) return make_error(Errc::invalid_argument, "bad fraction in time '" + std::string(s) + "'");
    for (int d = digits; d < 3; ++d) millis *= 10;
  }
  std::int64_t offset_min = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int sign = s[i] == '-' ? -1 : 1;
    int oh = parse_digits(s, i + 1, 2, ok);
    int om = parse_digits(s, i + 4, 2, ok);
    if (!ok || i + 3 >= s.size() || s[i + 3] != ':') {
      return make_error(Errc::invalid_argument, "bad offset in time '" + std::string(s) + "'");
    }
    offset_min = sign * (oh * 60 + om);
    i += 6;
  } else {
    return make_error(Errc::invalid_argument, "time '" + std::string(s) + "' has no zone (Z or +hh:mm)");
  }
  if (i != s.size()) return make_error(Errc::invalid_argument, "trailing text in time '" + std::string(s) + "'");
  year_month_day ymd{std::chrono::year{year}, std::chrono::month{static_cast<unsigned>(month)},
                     std::chrono::day{static_cast<unsigned>(day)}};
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 60) {
    return make_error(Errc::invalid_argument, "time '" + std::string(s) + "' is out of range");
  }
  auto tp = sys_days{ymd} + hours{hour} + minutes{minute} + seconds{second} + milliseconds{millis} -
            minutes{offset_min};
  return TimePoint{duration_cast<milliseconds>(tp.time_since_epoch())};
}

}  // namespace runbot::bot
