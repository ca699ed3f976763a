// Minimal renderer (plain text only) until the Block Kit renderer lands; see slack_renderer.h.
#include "adapters/slack/slack_renderer.h"

namespace runbot::slack {

std::vector<nlohmann::json> render(const bot::Message& message) {
  return {nlohmann::json{{"text", bot::to_plain_text(message)}, {"blocks", nlohmann::json::array()}}};
}

}  // namespace runbot::slack
