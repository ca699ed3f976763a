#include "adapters/mattermost/mattermost_log.h"

#include <spdlog/spdlog.h>

namespace runbot::mattermost {

spdlog::logger& log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    if (auto existing = spdlog::get("mattermost")) return existing;
    auto l = spdlog::default_logger()->clone("mattermost");
    spdlog::register_logger(l);
    return l;
  }();
  return *logger;
}

}  // namespace runbot::mattermost
