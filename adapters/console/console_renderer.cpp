#include "adapters/console/console_renderer.h"

#include <sstream>

namespace runbot::console {
namespace {

std::string button_text(const bot::Button& b) {
  if (!b.url.empty()) return "[" + b.label + " ↗ " + b.url + "]";
  if (b.action == "confirm") return "[" + b.label + ": type `" + b.value + "`]";
  if (b.action == "extend") return "[" + b.label + ": `extend " + b.value + "`]";
  if (b.action == "down") return "[" + b.label + ": `down " + b.value + "`]";
  if (b.action == "retry") return "[" + b.label + ": `up " + b.value + "`]";
  if (b.action == "let_expire") return "[" + b.label + ": do nothing]";
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
