#pragma once
// One named spdlog logger per module ("slack", "teams", "deploy", ...), cloned from the default
// logger (its sinks and format) and registered, so spdlog::set_level and the JSON log reach it.
// Each module wraps it in its own log() function.
#include <memory>

namespace spdlog {
class logger;
}  // namespace spdlog

namespace runbot::bot {

std::shared_ptr<spdlog::logger> module_logger(const char* name);

}  // namespace runbot::bot
