#pragma once
// JobRecorder: a JobObserver for backend tests that keeps every callback's arguments in order.
#include <string>
#include <vector>

#include "deploy/backend.h"

namespace runbot::testing {

struct JobRecorder {
  struct Stage {
    std::string name;
    int index = 0;
    int count = 0;
    std::string message;
  };
  std::vector<Stage> stages;
  std::vector<std::string> urls;
  std::vector<bot::NodeInfo> nodes;
  std::vector<std::string> logs;
  std::vector<deploy::JobOutcome> outcomes;

  deploy::JobObserver observer() {
    deploy::JobObserver o;
    o.on_stage = [this](const std::string& s, int i, int n, const std::string& m) {
      stages.push_back({s, i, n, m});
    };
    o.on_url = [this](const std::string& u) { urls.push_back(u); };
    o.on_node = [this](const bot::NodeInfo& n) { nodes.push_back(n); };
    o.on_log = [this](const std::string& l) { logs.push_back(l); };
    o.on_done = [this](const deploy::JobOutcome& out) { outcomes.push_back(out); };
    return o;
  }
};

}  // namespace runbot::testing
