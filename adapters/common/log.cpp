#include "adapters/common/log.h"

#include <spdlog/spdlog.h>

namespace runbot::common {

spdlog::logger& log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    if (auto existing = spdlog::get("common")) return existing;
    auto l = spdlog::default_logger()->clone("common");
    spdlog::register_logger(l);
    return l;
  }();
  return *logger;
}

}  // namespace runbot::common
