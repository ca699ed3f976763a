#pragma once
// Renders the neutral message model as console text. Pure: no I/O, no clock.
#include <string>
#include <vector>

#include "bot/message.h"

namespace runbot::console {

// Lines for one message. `prefix` starts every line ("12:03:11 [front-end-pr-123] ").
// Buttons become the command a console user would type; link buttons show their URL.
std::vector<std::string> render(const bot::Message& message, const std::string& prefix);

}  // namespace runbot::console
