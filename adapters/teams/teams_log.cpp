#include "adapters/teams/teams_log.h"

#include <spdlog/spdlog.h>

namespace runbot::teams {

spdlog::logger& log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    if (auto existing = spdlog::get("teams")) return existing;
    auto l = spdlog::default_logger()->clone("teams");
    spdlog::register_logger(l);
    return l;
  }();
  return *logger;
}

}  // namespace runbot::teams
