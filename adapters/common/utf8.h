#pragma once
// UTF-8 length limits for the renderers: platforms count characters (code points), and a cut
// must never split one.
#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

namespace runbot::common {

inline bool is_continuation_byte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Code points in `s`.
inline std::size_t char_count(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) { return !is_continuation_byte(c); }));
}

// Byte length of the longest prefix of `s` holding at most `max_chars` code points.
inline std::size_t prefix_bytes(std::string_view s, std::size_t max_chars) {
  std::size_t chars = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (is_continuation_byte(s[i])) continue;
    if (chars == max_chars) return i;
    ++chars;
  }
  return s.size();
}

// At most `max_chars` code points; a shortened string ends in a visible "…".
inline std::string shorten(std::string_view s, std::size_t max_chars) {
  if (char_count(s) <= max_chars) return std::string(s);
  if (max_chars == 0) return "";
  return std::string(s.substr(0, prefix_bytes(s, max_chars - 1))) + "…";
}

}  // namespace runbot::common
