#pragma once
// Test helper for the config tests: whether parse_config named a problem starting with `prefix`
// ("<path>: <reason>").
#include <string>

#include "bot/app/config.h"

namespace runbot::app::testing {

inline bool has_problem(const ConfigErrors& errors, const std::string& prefix) {
  for (const auto& p : errors.problems) {
    if (p.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

}  // namespace runbot::app::testing
