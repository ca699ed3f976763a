#include "adapters/console/console_renderer.h"

#include <sstream>

#include "bot/command.h"

namespace runbot::console {
namespace {

std::string button_text(const bot::Button& b) {
  if (!b.url.empty()) return "[" + b.label + " ↗ " + b.url + "]";
  // A console user types what the button would have sent.
  if (auto cmd = bot::command_for_button(b.action, b.value)) return "[" + b.label + ": `" + *cmd + "`]";
  return "[" + b.label + "]";
}

}  // namespace

std::vector<std::string> render(const bot::Message& m, const std::string& prefix) {
  std::vector<std::string> lines;
  const std::string indent(prefix.size() > 0 ? 2 : 0, ' ');
  lines.push_back(prefix + m.title);
  if (!m.text.empty()) {
    std::istringstream in(m.text);
    for (std::string l; std::getline(in, l);) lines.push_back(prefix + indent + l);
  }
  for (const auto& f : m.fields) lines.push_back(prefix + indent + f.label + ": " + f.value);
  for (const auto& c : m.code) lines.push_back(prefix + indent + "  " + c);
  if (!m.buttons.empty()) {
    std::string row;
    for (const auto& b : m.buttons) row += (row.empty() ? "" : " ") + button_text(b);
    lines.push_back(prefix + indent + row);
  }
  return lines;
}

}  // namespace runbot::console
