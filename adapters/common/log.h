#pragma once
// The logger of runbot::common ("common"), shared by the module's .cpp files. Lines are
// lower-case with key=value context; bodies, tokens and Authorization values never reach it.
namespace spdlog {
class logger;
}  // namespace spdlog

namespace runbot::common {

spdlog::logger& log();

}  // namespace runbot::common
