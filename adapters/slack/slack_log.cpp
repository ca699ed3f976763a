#include "adapters/slack/slack_log.h"

#include <spdlog/spdlog.h>

#include "bot/module_logger.h"

namespace runbot::slack {

spdlog::logger& log() {
  static const std::shared_ptr<spdlog::logger> logger = bot::module_logger("slack");
  return *logger;
}

}  // namespace runbot::slack
