#include "adapters/common/log.h"

#include <spdlog/spdlog.h>

#include "bot/module_logger.h"

namespace runbot::common {

spdlog::logger& log() {
  static const std::shared_ptr<spdlog::logger> logger = bot::module_logger("common");
  return *logger;
}

}  // namespace runbot::common
