#include "bot/module_logger.h"

#include <spdlog/spdlog.h>

namespace runbot::bot {

std::shared_ptr<spdlog::logger> module_logger(const char* name) {
  if (auto existing = spdlog::get(name)) return existing;
  auto l = spdlog::default_logger()->clone(name);
  spdlog::register_logger(l);
  return l;
}

}  // namespace runbot::bot
