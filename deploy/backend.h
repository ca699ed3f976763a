#pragma once
// Backend: how the Provisioner executes one job (exec a program, simulate a cluster, ...).
//
// Contract shared by every backend:
//  - start() never calls the observer inline; every callback runs later on the executor that
//    drives the backend (the provisioner's io_context or bot::Clock), one at a time.
//  - on_done runs exactly once per started job (success, failure, timeout or cancellation) and
//    is the last callback; it may destroy the RunningJob handle.
//  - RunningJob::cancel() is idempotent; the job still completes through on_done with
//    `cancelled = true` (unless it finished first).
//  - Destroying a RunningJob before on_done stops the job and suppresses all further callbacks.
//  - Expected failures (missing program, bad input, unknown app) are reported through on_done,
//    never thrown.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bot/model.h"

namespace runbot::deploy {

// How a job ended.
struct JobOutcome {
  bool success = false;
  bool cancelled = false;
  bool timed_out = false;
  std::optional<int> exit_status;     // the program's exit status, if it exited
  std::optional<int> signal;          // the signal that killed it, if any
  std::string reason;                 // human readable, empty on success
  std::vector<std::string> log_tail;  // last output lines that were not progress reports
};

// Callbacks a backend reports through; any member may be left empty.
struct JobObserver {
  // A stage started. `index` is 1-based, `index`/`count` are 0 when unknown.
  std::function<void(const std::string& stage, int index, int count, const std::string& message)>
      on_stage;
  std::function<void(const std::string& url)> on_url;
  std::function<void(const bot::NodeInfo& node)> on_node;
  std::function<void(const std::string& line)> on_log;
  std::function<void(const JobOutcome& outcome)> on_done;
};

// Handle to a started job. Owned by whoever called start().
class RunningJob {
 public:
  virtual ~RunningJob() = default;
  // Asks the job to stop; idempotent. Completion is still reported once through on_done.
  virtual void cancel() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Starts `job` for `app`. Never fails synchronously: problems arrive through on_done.
  virtual std::unique_ptr<RunningJob> start(const bot::Job& job, const bot::AppSpec& app,
                                            JobObserver observer) = 0;
  // Short name used in the CloudEvents source ("exec", "demo").
  virtual std::string kind() const = 0;
  // True when nothing real happens (the demo backend): lifecycle events carry `simulated`.
  virtual bool simulated() const { return false; }
};

}  // namespace runbot::deploy
