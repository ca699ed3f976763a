#pragma once
// Logging setup: spdlog to stderr (stdout belongs to the console chat), text or JSON lines.
#include <string>

namespace runbot::app {

// `format` is "text" or "json"; `level` one of spdlog's level names.
void setup_logging(const std::string& format, const std::string& level);

}  // namespace runbot::app
