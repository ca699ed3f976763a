#pragma once
// The logger of runbot::teams ("teams"). Lines are lower-case with key=value context; tokens,
// secrets and activity bodies never reach it.
namespace spdlog {
class logger;
}  // namespace spdlog

namespace runbot::teams {

spdlog::logger& log();

}  // namespace runbot::teams
