#include "adapters/slack/slack_log.h"

#include <spdlog/spdlog.h>

namespace runbot::slack {

spdlog::logger& log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    if (auto existing = spdlog::get("slack")) return existing;
    auto l = spdlog::default_logger()->clone("slack");
    spdlog::register_logger(l);
    return l;
  }();
  return *logger;
}

}  // namespace runbot::slack
