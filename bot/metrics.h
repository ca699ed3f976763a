#pragma once
// Metrics: counters and gauges with labels, rendered in the Prometheus text format for /metrics.
// Used on the bot's executor only.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace runbot::bot {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  // Declares a metric's help text and type ("counter" or "gauge"); optional but makes /metrics tidy.
  void describe(const std::string& name, const std::string& help, const std::string& type);
  void add(const std::string& name, const Labels& labels = {}, double by = 1);
  void set(const std::string& name, const Labels& labels, double value);
  double value(const std::string& name, const Labels& labels = {}) const;
  std::string prometheus() const;

 private:
  struct Family {
    std::string help;
    std::string type = "counter";
    std::map<Labels, double> series;
  };
  std::map<std::string, Family> families_;
};

}  // namespace runbot::bot
