#pragma once
// Expected failures as values. Every module returns Result<T>; exceptions never cross a module
// boundary. Broken invariants assert instead.
#include <cassert>
#include <chrono>
#include <string>
#include <utility>
#include <variant>

namespace runbot::bot {

enum class Errc {
  invalid_argument,  // bad input from a user, a record or a file: never retried
  not_found,
  conflict,          // the request clashes with the current state
  unavailable,       // a peer or broker is down: retry later
  timeout,
  rate_limited,
  unauthorized,
  cancelled,
  internal,
};

const char* to_string(Errc code);

struct Error {
  Errc code = Errc::internal;
  std::string message;
  std::chrono::milliseconds retry_after{0};  // a peer's Retry-After, when it gave one

  // Whether doing the same thing again later can succeed.
  bool is_retryable() const {
    return code == Errc::unavailable || code == Errc::timeout || code == Errc::rate_limited;
  }
};

inline Error make_error(Errc code, std::string message) { return Error{code, std::move(message)}; }

// A value or an Error. Small on purpose: has_value(), value(), error(), and operator bool.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() & { assert(has_value()); return std::get<0>(v_); }
  const T& value() const& { assert(has_value()); return std::get<0>(v_); }
  T&& value() && { assert(has_value()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const Error& error() const { assert(!has_value()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct Ok {};
using Status = Result<Ok>;
inline Status ok() { return Ok{}; }

}  // namespace runbot::bot
