#pragma once
// DemoCluster and DemoBackend: the embedded default's stand-in for a Kubernetes cluster on AWS.
// Nothing real happens: every stage message, log line and URL says "(simulated)", and the
// Provisioner marks the lifecycle events `simulated`.
//
// DemoCluster holds a few simulated nodes (spot and on-demand) and which environments run on
// them. simulate_spot_interruption() behaves like aws-node-termination-handler with
// WEBHOOK_TEMPLATE='{{ toJson . }}' (cluster-events.md §4.3): it publishes that webhook body as a
// cluster record, and `reschedule_after` later replaces the spot node with a fresh one, moves its
// environments there and emits one `rescheduled` lifecycle event per moved environment.
//
// DemoBackend runs jobs as timed stages on the DemoCluster. `--set demo.fail=<stage>` (a stage
// name such as "pull-images" or a 1-based index) makes that stage fail with a realistic reason.
//
// Ownership and threading: built by main; both keep references to the Clock (and the cluster to
// the EventPublisher) which must outlive them; the backend references the cluster. All timing is
// clock.call_after on the Clock's executor, so a sped-up clock or a FakeClock drives them; no
// Asio timers. Methods must be called on that executor. Errors are bot::Error values.
#include <memory>
#include <string>
#include <vector>

#include "bot/clock.h"
#include "bot/event_sink.h"
#include "bot/model.h"
#include "bot/result.h"
#include "deploy/backend.h"

namespace runbot::deploy {

struct DemoNode {
  bot::NodeInfo info;
  std::string instance_id;       // "i-0…"
  std::vector<bot::EnvId> envs;  // environments with pods on this node
  bool interrupted = false;      // a spot interruption notice is pending
};

struct DemoClusterSettings {
  std::vector<bot::NodeInfo> nodes = default_nodes();
  std::string region = "eu-west-1";
  std::string source = "/runbot/provisioner/demo";              // source of `rescheduled` events
  bot::Duration interruption_notice = std::chrono::minutes(2);  // NTH StartTime = now + this
  bot::Duration reschedule_after = std::chrono::seconds(90);

  // Two spot nodes (m5.large, m5.xlarge) and two on-demand m5.large, in eu-west-1a and b.
  static std::vector<bot::NodeInfo> default_nodes();
};

class DemoCluster {
 public:
  DemoCluster(DemoClusterSettings settings, bot::Clock& clock, bot::EventPublisher& publisher);
  ~DemoCluster();
  DemoCluster(const DemoCluster&) = delete;
  DemoCluster& operator=(const DemoCluster&) = delete;

  // Nodes with the environments on each, in a stable order.
  const std::vector<DemoNode>& nodes() const { return nodes_; }
  // Nodes hosting `env` (empty if it runs nowhere).
  std::vector<bot::NodeInfo> nodes_of(const bot::EnvId& env) const;

  // Puts `env` on up to two nodes (the least loaded spot node for its web pods and the least
  // loaded on-demand node for its database), avoiding interrupted nodes. Keeps an existing
  // placement. Returns the nodes.
  std::vector<bot::NodeInfo> place(const bot::EnvId& env);
  // Takes `env` off every node.
  void remove(const bot::EnvId& env);

  // Behaves like NTH receiving a spot interruption notice for `node`. Returns the EventID.
  // Errors: not_found (unknown node; the message lists the known ones), invalid_argument (not a
  // spot node), conflict (already interrupted).
  bot::Result<std::string> simulate_spot_interruption(const bot::NodeName& node);

 private:
  void replace_node(const bot::NodeName& node, const std::string& event_id);
  DemoNode* find(const bot::NodeName& node);
  DemoNode make_node(bot::NodeInfo info);

  DemoClusterSettings settings_;
  bot::Clock& clock_;
  bot::EventPublisher& publisher_;
  std::vector<DemoNode> nodes_;
  std::vector<bot::TimerId> timers_;
  std::uint64_t counter_ = 0;
};

struct DemoSettings {
  std::string default_url_template = "https://{env}.demo.runbot.invalid";
};

class DemoBackend final : public Backend {
 public:
  DemoBackend(DemoSettings settings, DemoCluster& cluster, bot::Clock& clock);

  std::unique_ptr<RunningJob> start(const bot::Job& job, const bot::AppSpec& app,
                                    JobObserver observer) override;
  std::string kind() const override { return "demo"; }
  bool simulated() const override { return true; }

  // The stages a verb goes through, with their simulated durations (for docs, ETAs and tests).
  struct Stage {
    std::string name;
    bot::Duration duration;
  };
  static std::vector<Stage> stages(bot::JobVerb verb);

 private:
  DemoSettings settings_;
  DemoCluster& cluster_;
  bot::Clock& clock_;
};

}  // namespace runbot::deploy
