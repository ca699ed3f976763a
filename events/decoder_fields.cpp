#include <cctype>
#include <charconv>

#include "events/decoder_detail.h"
#include "events/event_time.h"

namespace runbot::events::detail {

std::string path_name(std::initializer_list<std::string_view> path) {
  std::string out;
  for (auto p : path) {
    if (!out.empty()) out += '.';
    out += p;
  }
  return out;
}

std::string key_list(const json& j) {
  std::string out;
  int n = 0;
  for (const auto& [k, v] : j.items()) {
    if (n++ == 6) return out + ", ...";
    out += (out.empty() ? "" : ", ") + k;
  }
  return out;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

const json* Fields::find(std::initializer_list<std::string_view> path) {
  const json* cur = &root_;
  size_t depth = 0;
  for (auto key : path) {
    if (!cur->is_object()) {
      std::string parent;
      size_t i = 0;
      for (auto p : path) {
        if (i++ == depth) break;
        parent += (parent.empty() ? "" : ".") + std::string(p);
      }
      fail("field '" + parent + "' must be an object");
      return nullptr;
    }
    auto it = cur->find(key);
    if (it == cur->end() || it->is_null()) return nullptr;
    cur = &*it;
    ++depth;
  }
  return cur;
}

std::string Fields::str(std::initializer_list<std::string_view> path) {
  const json* v = find(path);
  if (!v) return {};
  if (v->is_string()) return v->get<std::string>();
  if (v->is_number()) return v->dump();
  fail("field '" + path_name(path) + "' must be a string");
  return {};
}

std::optional<std::int64_t> Fields::integer(std::initializer_list<std::string_view> path) {
  const json* v = find(path);
  if (!v) return std::nullopt;
  if (v->is_number_integer()) return v->get<std::int64_t>();
  if (v->is_string()) {
    const auto& s = v->get_ref<const std::string&>();
    if (s.empty()) return std::nullopt;
    std::int64_t out = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec == std::errc{} && p == s.data() + s.size()) return out;
  }
  fail("field '" + path_name(path) + "' must be an integer");
  return std::nullopt;
}

std::optional<bot::TimePoint> Fields::time(std::initializer_list<std::string_view> path) {
  const json* v = find(path);
  if (!v) return std::nullopt;
  if (!v->is_string()) {
    fail("field '" + path_name(path) + "' must be a time string");
    return std::nullopt;
  }
  const auto& s = v->get_ref<const std::string&>();
  if (trim(s).empty() || is_go_zero_time(s)) return std::nullopt;
  auto t = parse_event_time(s);
  if (!t) {
    fail("field '" + path_name(path) + "': " + t.error().message);
    return std::nullopt;
  }
  return *t;
}

const json* Fields::object(std::initializer_list<std::string_view> path) {
  const json* v = find(path);
  if (!v) return nullptr;
  if (!v->is_object()) {
    fail("field '" + path_name(path) + "' must be an object");
    return nullptr;
  }
  return v;
}

std::string Fields::map_value(std::initializer_list<std::string_view> path, std::string_view name) {
  const json* m = object(path);
  if (!m) return {};
  auto it = m->find(name);
  return it != m->end() && it->is_string() ? it->get<std::string>() : std::string{};
}

}  // namespace runbot::events::detail
