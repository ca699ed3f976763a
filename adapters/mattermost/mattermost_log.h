#pragma once
// The logger of runbot::mattermost ("mattermost"). Lines are lower-case with key=value context;
// tokens, slash command tokens and button signatures never reach it.
namespace spdlog {
class logger;
}  // namespace spdlog

namespace runbot::mattermost {

spdlog::logger& log();

}  // namespace runbot::mattermost
