#pragma once
// For the backend tests: JobRecorder, a JobObserver that keeps every callback's arguments in order,
// and up_job(), one job to start.
#include <chrono>
#include <string>
#include <vector>

#include "bot/time.h"
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

// `up` of front-end PR 12 by alice for 8 h, with an image and two values (one with quotes, which
// every backend must pass on intact).
inline bot::Job up_job(const std::string& id = "job-42") {
  using namespace std::chrono_literals;
  bot::Job j;
  j.id = bot::JobId{id};
  j.verb = bot::JobVerb::up;
  j.env = bot::EnvId{"front-end-pr-12"};
  j.app = bot::AppName{"front-end"};
  j.pr = 12;
  j.requested_by = bot::UserId{"alice"};
  j.ttl = 8h;
  j.expires_at = *bot::parse_time("2026-11-26T20:00:00Z");
  j.image = "pr-12-abc123";
  j.values = {{"replicas", "2"}, {"feature.flag", "on \"quoted\""}};
  return j;
}

}  // namespace runbot::testing
