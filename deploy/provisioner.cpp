#include "deploy/provisioner.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "deploy/job_support.h"

namespace runbot::deploy {

using bot::JobVerb;
using bot::LifecycleKind;

struct Provisioner::Active {
  bot::Job job;
  bot::AppSpec app;
  std::unique_ptr<RunningJob> running;
  bot::TimePoint started_at{};
  std::string stage;
  int stage_index = 0;
  int stage_count = 0;
  std::string url;
  std::vector<bot::NodeInfo> nodes;
  bool cancel_requested = false;
  bot::JobId cancelled_by;
};

namespace {

bool cancellable_by_down(JobVerb v) {
  return v == JobVerb::up || v == JobVerb::resume;
}

std::string known_apps(const std::map<bot::AppName, bot::AppSpec>& catalog) {
  std::string out;
  for (const auto& [name, spec] : catalog) {
    if (!out.empty()) out += ", ";
    out += name.str();
  }
  return out.empty() ? "none configured" : out;
}

}  // namespace

Provisioner::Provisioner(ProvisionerSettings settings, std::map<bot::AppName, bot::AppSpec> catalog,
                         Backend& backend, bot::EventPublisher& publisher, bot::Clock& clock)
    : settings_(std::move(settings)),
      catalog_(std::move(catalog)),
      backend_(backend),
      publisher_(publisher),
      clock_(clock),
      source_(settings_.source + "/" + backend.kind()) {
  if (settings_.max_concurrent == 0) settings_.max_concurrent = 1;
}

// Out of line because Active is incomplete in the header. Destroying the running handles stops
// their jobs silently (Backend contract).
Provisioner::~Provisioner() = default;

bool Provisioner::remember(const bot::JobId& id) {
  if (!seen_.insert(id).second) return false;
  seen_order_.push_back(id);
  while (seen_order_.size() > settings_.remembered_job_ids) {
    seen_.erase(seen_order_.front());
    seen_order_.pop_front();
  }
  return true;
}

void Provisioner::on_job(const bot::Job& job) {
  if (!remember(job.id)) {
    ++stats_.duplicates;
    log().debug("duplicate job ignored job={} env={}", job.id.str(), job.env.str());
    return;
  }
  if (catalog_.find(job.app) == catalog_.end()) {
    ++stats_.failed;
    bot::LifecycleEvent e;
    e.stage = "validate";
    e.reason = "unknown app '" + job.app.str() + "' (known apps: " + known_apps(catalog_) + ")";
    e.message = e.reason;
    log().warn("job rejected job={} env={} reason=\"{}\"", job.id.str(), job.env.str(), e.reason);
    emit(job, LifecycleKind::failed, std::move(e));
    sequence_.erase(job.id);
    return;
  }

  if (job.verb == JobVerb::down) {
    auto it = active_.find(job.env);
    if (it != active_.end() && cancellable_by_down(it->second->job.verb) &&
        !it->second->cancel_requested) {
      it->second->cancel_requested = true;
      it->second->cancelled_by = job.id;
      log().info("cancelling job={} env={} for down job={}", it->second->job.id.str(),
                 job.env.str(), job.id.str());
      it->second->running->cancel();
    }
  }

  emit(job, LifecycleKind::accepted, [&] {
    bot::LifecycleEvent e;
    const bool env_busy = active_.count(job.env) > 0;
    const bool full = active_.size() >= settings_.max_concurrent;
    if (env_busy) {
      e.message = "queued behind job " + active_.at(job.env)->job.id.str() + " (" +
                  bot::to_string(active_.at(job.env)->job.verb) + ") on this environment";
    } else if (full) {
      e.message = "queued: " + std::to_string(active_.size()) + " jobs running, " +
                  std::to_string(queue_.size()) + " waiting";
    } else {
      e.message = "accepted";
    }
    return e;
  }());

  if (job.verb == JobVerb::down) {
    // Everything still waiting for this environment is superseded by the teardown.
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (it->job.env == job.env && it->job.verb != JobVerb::down) {
        bot::LifecycleEvent e;
        e.reason = "dropped before it started: down job " + job.id.str() + " requested by " +
                   job.requested_by.str();
        e.message = e.reason;
        ++stats_.cancelled;
        emit(it->job, LifecycleKind::cancelled, std::move(e));
        sequence_.erase(it->job.id);
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
  }

  queue_.push_back(Queued{job, clock_.now()});
  pump();
}

void Provisioner::pump() {
  for (auto it = queue_.begin(); it != queue_.end() && active_.size() < settings_.max_concurrent;) {
    if (active_.count(it->job.env)) {
      ++it;
      continue;
    }
    Queued q = std::move(*it);
    it = queue_.erase(it);
    start(std::move(q));
  }
}

void Provisioner::start(Queued queued) {
  auto active = std::make_unique<Active>();
  active->job = std::move(queued.job);
  active->app = catalog_.at(active->job.app);
  active->started_at = clock_.now();
  const bot::EnvId env = active->job.env;
  const bot::JobId id = active->job.id;

  // Callbacks look the job up again: it may have finished (or the provisioner may be gone, in
  // which case the backend contract guarantees silence).
  auto current = [this, env, id]() -> Active* {
    auto it = active_.find(env);
    return it != active_.end() && it->second->job.id == id ? it->second.get() : nullptr;
  };
  JobObserver observer;
  observer.on_stage = [this, current](const std::string& stage, int index, int count,
                                      const std::string& message) {
    Active* a = current();
    if (!a) return;
    a->stage = stage;
    a->stage_index = index;
    a->stage_count = count;
    bot::LifecycleEvent e;
    e.stage = stage;
    e.stage_index = index;
    e.stage_count = count;
    e.message = message;
    emit(a->job, LifecycleKind::progress, std::move(e));
  };
  observer.on_url = [current](const std::string& url) {
    if (Active* a = current()) a->url = url;
  };
  observer.on_node = [current](const bot::NodeInfo& node) {
    Active* a = current();
    if (!a) return;
    auto same = [&](const bot::NodeInfo& n) { return n.name == node.name; };
    auto it = std::find_if(a->nodes.begin(), a->nodes.end(), same);
    if (it == a->nodes.end()) {
      a->nodes.push_back(node);
    } else {
      *it = node;
    }
  };
  observer.on_log = [env, id](const std::string& line) {
    log().debug("job output job={} env={} line=\"{}\"", id.str(), env.str(), line);
  };
  observer.on_done = [this, id](const JobOutcome& outcome) { finish(id, outcome); };

  log().info("job started job={} verb={} env={} app={}", id.str(), bot::to_string(active->job.verb),
             env.str(), active->job.app.str());
  Active& ref = *active;
  active_.emplace(env, std::move(active));
  ref.running = backend_.start(ref.job, ref.app, std::move(observer));
}

void Provisioner::finish(const bot::JobId& id, const JobOutcome& outcome) {
  auto it = std::find_if(active_.begin(), active_.end(),
                         [&](const auto& kv) { return kv.second->job.id == id; });
  if (it == active_.end()) return;
  // Keep the handle alive until we return: the backend may still be on the stack.
  std::unique_ptr<Active> a = std::move(it->second);
  active_.erase(it);
  const bot::Job& job = a->job;

  bot::LifecycleEvent e;
  e.stage = a->stage;
  e.stage_index = a->stage_index;
  e.stage_count = a->stage_count;
  if (outcome.cancelled && !outcome.success) {
    ++stats_.cancelled;
    e.reason =
        a->cancelled_by.empty() ? "cancelled" : "cancelled by down job " + a->cancelled_by.str();
    e.message = e.reason;
    log().info("job cancelled job={} env={}", id.str(), job.env.str());
    emit(job, LifecycleKind::cancelled, std::move(e));
  } else if (!outcome.success) {
    ++stats_.failed;
    e.reason = outcome.reason.empty() ? "failed" : outcome.reason;
    e.message = e.reason;
    e.exit_status = outcome.exit_status;
    const size_t n = std::min(outcome.log_tail.size(), settings_.failed_log_lines);
    e.log_tail.assign(outcome.log_tail.end() - static_cast<std::ptrdiff_t>(n),
                      outcome.log_tail.end());
    log().warn("job failed job={} env={} stage=\"{}\" reason=\"{}\"", id.str(), job.env.str(),
               a->stage, e.reason);
    emit(job, LifecycleKind::failed, std::move(e));
  } else {
    ++stats_.done;
    log().info("job done job={} verb={} env={}", id.str(), bot::to_string(job.verb), job.env.str());
    switch (job.verb) {
      case JobVerb::up:
      case JobVerb::resume: {
        const bool existed = created_.count(job.env) > 0;
        if (!a->url.empty()) urls_[job.env] = a->url;
        if (auto u = urls_.find(job.env); u != urls_.end()) e.url = u->second;
        e.nodes = a->nodes;
        created_.insert(job.env);
        LifecycleKind kind = job.verb == JobVerb::resume ? LifecycleKind::resumed
                             : existed                   ? LifecycleKind::updated
                                                         : LifecycleKind::ready;
        emit(job, kind, std::move(e));
        break;
      }
      case JobVerb::down:
        created_.erase(job.env);
        urls_.erase(job.env);
        e.message = job.reason.empty() ? "deleted" : "deleted (" + job.reason + ")";
        emit(job, LifecycleKind::deleted, std::move(e));
        break;
      case JobVerb::suspend:
        emit(job, LifecycleKind::suspended, std::move(e));
        break;
      case JobVerb::extend:
        e.expires_at = expires_for(job, a->app);
        if (!e.expires_at) e.expires_at = clock_.now() + ttl_for(job, a->app);
        emit(job, LifecycleKind::extended, std::move(e));
        break;
    }
  }
  sequence_.erase(id);
  pump();
}

void Provisioner::emit(const bot::Job& job, LifecycleKind kind, bot::LifecycleEvent event) {
  const int n = ++sequence_[job.id];
  event.id = job.id.str() + "." + std::to_string(n);
  event.source = source_;
  event.kind = kind;
  event.env = job.env;
  event.job = job.id;
  event.verb = job.verb;
  event.time = clock_.now();
  event.simulated = backend_.simulated();
  std::string event_id = event.id;
  publisher_.publish(event, [event_id](bot::Status status) {
    if (!status) {
      log().error("lifecycle event not published id={} error=\"{}\"", event_id,
                  status.error().message);
    }
  });
}

ProvisionerStats Provisioner::stats() const {
  ProvisionerStats s = stats_;
  s.running = active_.size();
  s.queued = queue_.size();
  return s;
}

std::vector<JobSummary> Provisioner::jobs() const {
  std::vector<JobSummary> out;
  for (const auto& [env, a] : active_) {
    out.push_back(JobSummary{a->job.id, a->job.verb, env, true, a->stage, a->started_at});
  }
  for (const auto& q : queue_) {
    out.push_back(JobSummary{q.job.id, q.job.verb, q.job.env, false, {}, q.accepted_at});
  }
  return out;
}

}  // namespace runbot::deploy
