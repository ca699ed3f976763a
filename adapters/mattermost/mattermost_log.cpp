#include "adapters/mattermost/mattermost_log.h"

#include <spdlog/spdlog.h>

#include "bot/module_logger.h"

namespace runbot::mattermost {

spdlog::logger& log() {
  static const std::shared_ptr<spdlog::logger> logger = bot::module_logger("mattermost");
  return *logger;
}

}  // namespace runbot::mattermost
