#include "adapters/teams/teams_log.h"

#include <spdlog/spdlog.h>

#include "bot/module_logger.h"

namespace runbot::teams {

spdlog::logger& log() {
  static const std::shared_ptr<spdlog::logger> logger = bot::module_logger("teams");
  return *logger;
}

}  // namespace runbot::teams
