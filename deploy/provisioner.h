#pragma once
// Provisioner: executes the jobs consumed from Kafka through a Backend and reports every step
// as lifecycle events through a bot::EventPublisher.
//
// Rules: a job id seen before is ignored (at-least-once delivery); at most one job runs per
// environment, in arrival order; at most `max_concurrent` run overall, the rest wait FIFO; a
// `down` cancels a running `up`/`resume` of its environment (which reports `cancelled`) and
// drops its queued, not yet started jobs (each reports `cancelled`), then runs.
//
// Events per job: `accepted` when queued, `progress` per stage, then one of `ready` (first
// successful up of an environment this provisioner has not created yet) / `updated`, `suspended`,
// `resumed`, `extended`, `deleted`, `failed`, `cancelled`. Ids are "<job id>.<n>", times come
// from the Clock, source is "<settings.source>/<backend.kind()>", `simulated` mirrors the
// backend.
//
// Ownership and threading: built by main; holds references to the backend, publisher and clock,
// which must outlive it. Every method and every backend callback runs on one executor (the
// io_context thread that also drives the backend and the Kafka consumer). Destroying it stops
// running jobs without emitting further events. Errors (unknown app, backend failures) become
// `failed` events; nothing throws.
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "bot/clock.h"
#include "bot/event_sink.h"
#include "bot/model.h"
#include "deploy/backend.h"

namespace runbot::deploy {

struct ProvisionerSettings {
  size_t max_concurrent = 4;
  std::string source = "/runbot/provisioner";
  size_t failed_log_lines = 10;       // lines of log tail in a `failed` event
  size_t remembered_job_ids = 10000;  // duplicate detection window
};

// Counters for /metrics and `status`.
struct ProvisionerStats {
  size_t running = 0;
  size_t queued = 0;
  std::uint64_t done = 0;        // finished successfully
  std::uint64_t failed = 0;      // failed, timed out or rejected (unknown app)
  std::uint64_t cancelled = 0;   // cancelled by a down (running or queued)
  std::uint64_t duplicates = 0;  // ignored redeliveries
};

// One job in flight, for `status`.
struct JobSummary {
  bot::JobId id;
  bot::JobVerb verb = bot::JobVerb::up;
  bot::EnvId env;
  bool running = false;    // false: queued
  std::string stage;       // current stage of a running job, may be empty
  bot::TimePoint since{};  // when it was accepted (queued) or started (running)
};

class Provisioner {
 public:
  Provisioner(ProvisionerSettings settings, std::map<bot::AppName, bot::AppSpec> catalog,
              Backend& backend, bot::EventPublisher& publisher, bot::Clock& clock);
  ~Provisioner();
  Provisioner(const Provisioner&) = delete;
  Provisioner& operator=(const Provisioner&) = delete;

  // Takes one job consumed from Kafka. Returns once it is queued (or rejected/ignored).
  void on_job(const bot::Job& job);

  ProvisionerStats stats() const;
  // Running jobs first, then queued ones in the order they will start.
  std::vector<JobSummary> jobs() const;
  // Whether this provisioner brought `env` up (and has not torn it down since).
  bool created(const bot::EnvId& env) const { return created_.count(env) > 0; }

 private:
  struct Active;
  struct Queued {
    bot::Job job;
    bot::TimePoint accepted_at{};
  };

  void pump();
  void start(Queued queued);
  void finish(const bot::JobId& id, const JobOutcome& outcome);
  void emit(const bot::Job& job, bot::LifecycleKind kind, bot::LifecycleEvent event);
  bool remember(const bot::JobId& id);

  ProvisionerSettings settings_;
  std::map<bot::AppName, bot::AppSpec> catalog_;
  Backend& backend_;
  bot::EventPublisher& publisher_;
  bot::Clock& clock_;
  std::string source_;

  std::list<Queued> queue_;                               // arrival order
  std::map<bot::EnvId, std::unique_ptr<Active>> active_;  // at most one per environment
  std::set<bot::EnvId> created_;
  std::map<bot::EnvId, std::string> urls_;  // last URL per created environment
  std::map<bot::JobId, int> sequence_;      // event counter per live job
  std::unordered_set<bot::JobId> seen_;
  std::deque<bot::JobId> seen_order_;
  ProvisionerStats stats_;
};

}  // namespace runbot::deploy
