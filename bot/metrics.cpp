#include "bot/metrics.h"

#include <cmath>
#include <sstream>

namespace runbot::bot {
namespace {

std::string escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

void Metrics::describe(const std::string& name, const std::string& help, const std::string& type) {
  auto& f = families_[name];
  f.help = help;
  f.type = type;
}

void Metrics::add(const std::string& name, const Labels& labels, double by) { families_[name].series[labels] += by; }

void Metrics::set(const std::string& name, const Labels& labels, double value) {
  auto& f = families_[name];
  f.type = "gauge";
  f.series[labels] = value;
}

double Metrics::value(const std::string& name, const Labels& labels) const {
  auto f = families_.find(name);
  if (f == families_.end()) return 0;
  auto s = f->second.series.find(labels);
  return s == f->second.series.end() ? 0 : s->second;
}

std::string Metrics::prometheus() const {
  std::ostringstream out;
  for (const auto& [name, f] : families_) {
    if (!f.help.empty()) out << "# HELP " << name << ' ' << f.help << '\n';
    out << "# TYPE " << name << ' ' << f.type << '\n';
    if (f.series.empty() && f.type == "counter") out << name << " 0\n";
    for (const auto& [labels, v] : f.series) {
      out << name;
      if (!labels.empty()) {
        out << '{';
        for (size_t i = 0; i < labels.size(); ++i) {
          if (i) out << ',';
          out << labels[i].first << "=\"" << escape(labels[i].second) << '"';
        }
        out << '}';
      }
      if (v == std::floor(v) && std::fabs(v) < 1e15) {
        out << ' ' << static_cast<long long>(v) << '\n';
      } else {
        out << ' ' << v << '\n';
      }
    }
  }
  return out.str();
}

}  // namespace runbot::bot
