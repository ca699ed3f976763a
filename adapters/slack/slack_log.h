#pragma once
// The logger of runbot::slack ("slack"). Lines are lower-case with key=value context; tokens,
// ticket URLs and response_urls never reach it.
namespace spdlog {
class logger;
}  // namespace spdlog

namespace runbot::slack {

spdlog::logger& log();

}  // namespace runbot::slack
