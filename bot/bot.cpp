#include "bot/bot.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>

#include <spdlog/spdlog.h>

#include "bot/announcer.h"

namespace runbot::bot {

Bot::Bot(BotSettings settings, Registry registry, Clock& clock, JobQueue& jobs, Outbox& outbox,
         Metrics& metrics, StateStore* store)
    : settings_(std::move(settings)),
      registry_(std::move(registry)),
      clock_(clock),
      jobs_(jobs),
      outbox_(outbox),
      metrics_(metrics),
      store_(store),
      policy_(settings_.policy) {
  std::random_device rd;
  instance_ = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  std::sort(settings_.ttl_warnings.begin(), settings_.ttl_warnings.end(), std::greater<>());
  metrics_.describe("runbot_commands_total", "Commands handled, by verb and outcome", "counter");
  metrics_.describe("runbot_jobs_published_total", "Jobs published to the provisioner, by verb and outcome", "counter");
  metrics_.describe("runbot_events_consumed_total", "Events applied, by kind", "counter");
  metrics_.describe("runbot_events_ignored_total", "Events not applied (duplicate, unknown environment, illegal transition)", "counter");
  metrics_.describe("runbot_environments", "Environments by state", "gauge");
  // Threads whose cards were posted before a restart keep being edited, not re-posted.
  for (const auto& [id, env] : registry_.environments()) {
    for (const auto& t : env.threads) outbox_.known_card(t.platform, t.channel, id, t.card_id);
  }
  outbox_.set_card_renderer([this](const EnvId& id) {
    const Environment* env = registry_.find(id);
    if (!env) return Message{};
    const AppSpec* app = app_of(*env);
    return announce::status_card(*env, app ? *app : unknown_app_, clock_.now());
  });
  outbox_.on_card_posted([this](const EnvId& env, const std::string& platform, const ChannelId& channel,
                                const std::string& card) {
    if (auto* e = registry_.find(env)) {
      for (auto& t : e->threads) {
        if (t.platform == platform && t.channel == channel) t.card_id = card;
      }
      save();
    }
  });
  unknown_app_.name = AppName{"unknown"};
  // Announcements queued (or in flight) at the last snapshot are sent after a restart; a journal
  // that cannot be read is logged and skipped rather than stopping runbot.
  if (auto st = outbox_.restore_journal(registry_.outbox_journal()); !st) {
    spdlog::error("state: {}; queued announcements from before the restart are lost", st.error().message);
  }
  outbox_.on_change([this] { save(); });
  // With a store, announcements wait for the snapshot that holds them (see Outbox).
  outbox_.hold_until_durable(store_ != nullptr);
}

Bot::~Bot() {
  stop();
  // The outbox may outlive the bot: it must not call back into it.
  outbox_.set_card_renderer(nullptr);
  outbox_.on_card_posted(nullptr);
  outbox_.on_change(nullptr);
  outbox_.hold_until_durable(false);
}

void Bot::attach(ChatAdapter& adapter) {
  adapters_.push_back(&adapter);
  outbox_.add_adapter(adapter);
  adapter.start([this, &adapter](const InboundMessage& msg) { handle(msg, adapter); });
}

void Bot::start() {
  stopped_ = false;
  outbox_.start();
  schedule_ttl_check();
}

void Bot::stop() {
  stopped_ = true;
  if (save_timer_) clock_.cancel(save_timer_);
  save_timer_ = 0;
  flush_state();
  if (ttl_timer_) clock_.cancel(ttl_timer_);
  ttl_timer_ = 0;
}

void Bot::schedule_ttl_check() {
  if (stopped_) return;
  ttl_timer_ = clock_.call_after(settings_.ttl_check_interval, [this] {
    ttl_timer_ = 0;
    check_ttls();
    schedule_ttl_check();
  });
}

const AppSpec* Bot::app_of(const Environment& env) const {
  auto it = settings_.apps.find(env.app);
  return it == settings_.apps.end() ? nullptr : &it->second;
}

Result<Environment*> Bot::existing(const EnvId& id) {
  Environment* env = registry_.find(id);
  if (!env || env->state == EnvState::deleted) {
    std::string known;
    for (const auto& [eid, e] : registry_.environments()) {
      if (e.state != EnvState::deleted) known += (known.empty() ? "" : ", ") + eid.str();
    }
    return make_error(Errc::not_found, "no environment '" + id.str() + "'" +
                                           (known.empty() ? " (there are none; create one with `up`)"
                                                          : " (active: " + known + ")"));
  }
  return env;
}

void Bot::handle(const InboundMessage& msg, ChatAdapter& adapter) {
  Message reply;
  std::string outcome = "ok";
  std::string verb = "invalid";
  auto parsed = parse_command(msg.text);
  if (!parsed) {
    outcome = "invalid";
    reply.kind = NoticeKind::reply;
    reply.severity = Severity::warning;
    reply.title = parsed.error().message;
    // Show the usage of the verb the user meant, or the command list when the verb is unknown.
    auto verb_of = [&]() -> std::optional<Verb> {
      // The word after an optional "/ephemeral" or mention.
      std::string text = msg.text;
      for (const char* prefix : {"/ephemeral", "ephemeral", "@runbot"}) {
        auto p = text.find(prefix);
        if (p != std::string::npos && text.find_first_not_of(' ') == p) text = text.substr(p + std::strlen(prefix));
      }
      auto b = text.find_first_not_of(" \t");
      if (b == std::string::npos) return std::nullopt;
      auto e = text.find_first_of(" \t", b);
      std::string word = text.substr(b, e == std::string::npos ? std::string::npos : e - b);
      for (auto& c : word) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return verb_from_string(word);
    }();
    if (verb_of) {
      verb = to_string(*verb_of);
      reply.text = std::string("Usage: ") + usage_of(*verb_of);
    } else {
      std::string verbs;
      for (Verb v : listed_verbs()) verbs += (verbs.empty() ? "" : ", ") + std::string(to_string(v));
      reply.text = "Commands: " + verbs + ". Try `help` or `help <command>`.";
    }
  } else {
    verb = to_string(parsed->verb);
    const Environment* target = parsed->env.empty() ? nullptr : registry_.find(parsed->env);
    auto allowed = policy_.allow(actor_of(msg), *parsed, target);
    if (!allowed) {
      outcome = "denied";
      reply.kind = NoticeKind::reply;
      reply.severity = Severity::warning;
      reply.title = allowed.error().message;
    } else {
      reply = execute(*parsed, msg);
      if (reply.kind == NoticeKind::queued) {
        outcome = "queued";
      } else if (reply.severity == Severity::warning || reply.severity == Severity::danger) {
        outcome = "rejected";
      }
    }
  }
  metrics_.add("runbot_commands_total", {{"verb", verb}, {"outcome", outcome}});
  spdlog::info("command platform={} channel={} user={} verb={} outcome={}", msg.platform, msg.channel.str(),
               msg.user.str(), verb, outcome);
  audit(msg, verb, outcome);
  outbox_.answer(adapter, msg, std::move(reply));
}

void Bot::audit(const InboundMessage& msg, const std::string& verb, const std::string& outcome) {
  AuditRecord record{clock_.now(), msg.platform, msg.channel, msg.user, verb, msg.text, outcome, msg.is_button};
  spdlog::info("audit platform={} channel={} user={} verb={} button={} outcome={}", msg.platform, msg.channel.str(),
               msg.user.str(), verb, msg.is_button, outcome);
  if (hooks_.audit) hooks_.audit(record);
  registry_.audit(std::move(record));
  save();
}

Job Bot::make_job(JobVerb verb, const Environment& env, const UserId& by) {
  Job job;
  job.id = JobId{"job-" + std::to_string(to_millis(clock_.now())) + "-" + std::to_string(instance_ % 100000) + "-" +
                 std::to_string(++job_seq_)};
  job.verb = verb;
  job.env = env.id;
  job.app = env.app;
  job.pr = env.pr;
  job.namespace_name = env.namespace_name;
  job.requested_by = by;
  job.requested_at = clock_.now();
  return job;
}

void Bot::publish(Job job) {
  const EnvId env = job.env;
  const std::string verb = to_string(job.verb);
  jobs_.publish(job, [this, env, verb, id = job.id](Status s) {
    metrics_.add("runbot_jobs_published_total", {{"verb", verb}, {"outcome", s ? "ok" : "error"}});
    if (s) return;
    spdlog::error("job publish failed env={} job={} verb={} error={}", env.str(), id.str(), verb, s.error().message);
    Environment* e = registry_.find(env);
    if (!e || e->current_job != id) return;
    e->failure_reason = "could not hand the job to the provisioner: " + s.error().message;
    if (move(*e, EnvState::failed, "job publish failed")) {
      LifecycleEvent ev;
      ev.kind = LifecycleKind::failed;
      ev.reason = e->failure_reason;
      ev.stage = "publish";
      const AppSpec* app = app_of(*e);
      announce(*e, announce::failed(*e, app ? *app : unknown_app_, ev));
      save();
    }
  });
}

bool Bot::move(Environment& env, EnvState to, const std::string& why) {
  auto s = transition(env, to, clock_.now());
  if (!s) {
    spdlog::warn("refused transition env={} from={} to={} cause={}", env.id.str(), to_string(env.state),
                 to_string(to), why);
    metrics_.add("runbot_events_ignored_total", {{"reason", "illegal_transition"}});
    return false;
  }
  env.last_activity = clock_.now();
  return true;
}

void Bot::refresh_card(const Environment& env) {
  // Rendered when sent: the card shows the state at delivery, and a backlog stays small.
  for (const auto& t : env.threads) outbox_.card(t.platform, t.channel, env.id);
}

void Bot::announce(const Environment& env, Message message) {
  refresh_card(env);
  for (const auto& t : env.threads) outbox_.reply(t.platform, t.channel, env.id, message);
}

void Bot::post_to_channel(const std::string& where, Message message) {
  auto colon = where.find(':');
  if (colon == std::string::npos) return;
  outbox_.post(where.substr(0, colon), ChannelId{where.substr(colon + 1)}, std::move(message));
}

std::optional<std::string> Bot::adapter_state(const std::string& key) const {
  const std::string* v = registry_.adapter_state(key);
  if (!v) return std::nullopt;
  return *v;
}

void Bot::set_adapter_state(const std::string& key, std::string value) {
  const std::string* old = registry_.adapter_state(key);
  if (old ? *old == value : value.empty()) return;
  registry_.set_adapter_state(key, std::move(value));
  save();
}

void Bot::save() {
  // Many events arrive in one loop turn (a Kafka drain): write the snapshot once after them, not
  // once per event. Offsets of those records are committed later still (every few seconds).
  state_dirty_ = true;
  if (!store_ || save_timer_) return;
  // Under load a snapshot costs milliseconds: wait up to kSaveCostFactor times that, so saving
  // takes about a twentieth of the bot's time, but never more than kMaxSaveStretch times the
  // configured delay (held announcements and offset commits wait as long, and what a snapshot
  // holds grows with the wait).
  const Duration delay = std::clamp(std::chrono::ceil<Duration>(last_flush_cost_ * kSaveCostFactor),
                                    settings_.state_save_delay, settings_.state_save_delay * kMaxSaveStretch);
  save_timer_ = clock_.call_after(delay, [this] {
    save_timer_ = 0;
    flush_state();
  });
}

void Bot::flush_state() {
  if (!store_ || !state_dirty_) return;
  state_dirty_ = false;
  const auto started = std::chrono::steady_clock::now();
  std::function<void()> durable = hooks_.state_checkpoint ? hooks_.state_checkpoint() : nullptr;
  const std::uint64_t mark = outbox_.journal_mark();
  registry_.set_outbox_journal(outbox_.journal_keyed(), outbox_.journal_items());
  if (hooks_.input_positions) registry_.set_input_positions(hooks_.input_positions());
  auto s = store_->save_parts(registry_.snapshot_parts());
  // The snapshot's own cost (the durable callback below may send a batch of announcements).
  last_flush_cost_ = std::chrono::steady_clock::now() - started;
  if (s) {
    // Announcements in this snapshot may go out now; input offsets behind it may be committed.
    store_->when_durable([this, token = std::weak_ptr<int>(alive_), mark, durable = std::move(durable)] {
      if (!token.lock()) return;
      outbox_.release_through(mark);
      if (durable) durable();
    });
  }
  if (!s) {
    if (state_ok_) spdlog::error("state save failed: {}", s.error().message);
    state_ok_ = false;
  } else {
    state_ok_ = true;
  }
}

void Bot::refresh_metrics() {
  std::map<std::string, double> by_state;
  for (const auto& [id, e] : registry_.environments()) by_state[to_string(e.state)] += 1;
  for (const char* st : {"requested", "provisioning", "ready", "updating", "suspended", "failed", "expired",
                         "tearing_down", "deleted"}) {
    metrics_.set("runbot_environments", {{"state", st}}, by_state[st]);
  }
  metrics_.set("runbot_requests_waiting", {}, static_cast<double>(registry_.pending().size()));
}

void Bot::on_lifecycle(const LifecycleEvent& e) {
  if (registry_.seen_lifecycle(e.id)) {
    metrics_.add("runbot_events_ignored_total", {{"reason", "duplicate"}});
    return;
  }
  registry_.mark_lifecycle(e.id);
  Environment* env = registry_.find(e.env);
  if (!env) {
    spdlog::warn("lifecycle event for unknown environment env={} kind={} id={}", e.env.str(), to_string(e.kind), e.id);
    metrics_.add("runbot_events_ignored_total", {{"reason", "unknown_environment"}});
    return;
  }
  // Events of an older job (e.g. an `up` that a `down` replaced) must not move the state back.
  bool current = e.job.empty() || e.job == env->current_job || e.kind == LifecycleKind::rescheduled;
  metrics_.add("runbot_events_consumed_total", {{"kind", to_string(e.kind)}});
  const AppSpec* app_ptr = app_of(*env);
  const AppSpec& app = app_ptr ? *app_ptr : unknown_app_;
  const TimePoint now = clock_.now();
  if (e.simulated) env->simulated = true;
  if (!current && e.kind != LifecycleKind::cancelled) {
    spdlog::info("ignoring event of a replaced job env={} job={} current={} kind={}", e.env.str(), e.job.str(),
                 env->current_job.str(), to_string(e.kind));
    metrics_.add("runbot_events_ignored_total", {{"reason", "stale_job"}});
    save();
    return;
  }
  switch (e.kind) {
    case LifecycleKind::accepted:
      remember(*env, now, std::string("provisioner accepted ") + to_string(e.verb));
      break;
    case LifecycleKind::progress: {
      if (env->state == EnvState::requested) move(*env, EnvState::provisioning, "progress");
      env->stage = e.stage;
      env->stage_index = e.stage_index;
      env->stage_count = e.stage_count;
      remember(*env, now, "stage " + e.stage + (e.message.empty() ? "" : ": " + e.message));
      std::optional<Duration> eta;
      if (e.verb == JobVerb::up) eta = registry_.expected_provisioning_time(env->app);
      announce(*env, announce::progress(*env, e, now, eta));
      break;
    }
    case LifecycleKind::ready:
    case LifecycleKind::updated: {
      bool was_update = env->state == EnvState::updating;
      if (env->state == EnvState::requested) move(*env, EnvState::provisioning, "ready");
      if (!move(*env, EnvState::ready, to_string(e.kind))) break;
      if (!e.url.empty()) env->url = e.url;
      if (!e.nodes.empty()) registry_.set_env_nodes(env->id, e.nodes, now);
      env->stage.clear();
      env->failure_reason.clear();
      if (was_update) {
        remember(*env, now, "updated");
        announce(*env, announce::updated(*env, app));
      } else {
        Duration took = now - env->created_at;
        env->ready_at = now;
        env->expires_at = now + env->ttl;
        env->warnings_sent.clear();
        registry_.learn_provisioning_time(env->app, took);
        remember(*env, now, "ready at " + env->url);
        announce(*env, announce::ready(*env, app, took, settings_.extend_button));
      }
      break;
    }
    case LifecycleKind::failed:
      if (!move(*env, EnvState::failed, "failed")) break;
      env->failure_reason = e.reason;
      env->log_tail = e.log_tail;
      env->stage = e.stage;
      remember(*env, now, "failed at " + e.stage + ": " + e.reason, true);
      announce(*env, announce::failed(*env, app, e));
      drain_queue();
      break;
    case LifecycleKind::suspended:
      if (!move(*env, EnvState::suspended, "suspended")) break;
      remember(*env, now, "suspended");
      announce(*env, announce::suspended(*env, app));
      break;
    case LifecycleKind::resumed:
      if (!move(*env, EnvState::ready, "resumed")) break;
      if (!e.url.empty()) env->url = e.url;
      if (!e.nodes.empty()) registry_.set_env_nodes(env->id, e.nodes, now);
      remember(*env, now, "resumed");
      announce(*env, announce::resumed(*env, app));
      break;
    case LifecycleKind::extended:
      remember(*env, now, "provisioner rewrote TTL annotations" +
                              (e.expires_at ? " (expires " + format_time(*e.expires_at) + ")" : std::string()));
      break;
    case LifecycleKind::deleted: {
      std::string reason = env->state == EnvState::expired ? "TTL expired" : "torn down";
      if (!move(*env, EnvState::deleted, "deleted")) break;
      env->deleted_at = now;
      registry_.set_env_nodes(env->id, {}, now);
      remember(*env, now, "deleted (" + reason + ")");
      announce(*env, announce::deleted(*env, app, now, reason));
      drain_queue();
      break;
    }
    case LifecycleKind::cancelled:
      remember(*env, now, std::string(to_string(e.verb)) + " cancelled");
      announce(*env, announce::cancelled(*env, e));
      break;
    case LifecycleKind::rescheduled:
      registry_.set_env_nodes(env->id, e.nodes, now);
      remember(*env, now, "pods now on " + (env->nodes.empty() ? std::string("no nodes") : env->nodes.front().str()));
      if (env->interrupted_at) {
        announce(*env, announce::recovered(*env, now));
        env->interrupted_at.reset();
        env->recovery_overdue_reported = false;
      } else {
        refresh_card(*env);
      }
      break;
  }
  save();
}

void Bot::on_cluster(const ClusterEvent& e) {
  const TimePoint now = clock_.now();
  ClusterEventRecord record{now, e, {}};
  std::vector<Environment*> affected;
  if (!e.node.name.empty()) {
    if (auto* node = registry_.find_node(e.node.name)) {
      for (const auto& id : node->envs) {
        if (auto* env = registry_.find(id); env && env->state != EnvState::deleted) affected.push_back(env);
      }
    }
  }
  if (!e.namespace_name.empty()) {
    for (auto& [id, env] : registry_.environments()) {
      if (env.namespace_name == e.namespace_name && env.state != EnvState::deleted &&
          std::find(affected.begin(), affected.end(), &env) == affected.end()) {
        affected.push_back(&env);
      }
    }
  }
  for (auto* env : affected) record.affected.push_back(env->id);
  if (!registry_.remember_cluster_event(record)) {
    metrics_.add("runbot_events_ignored_total", {{"reason", "duplicate"}});
    return;
  }
  metrics_.add("runbot_events_consumed_total", {{"kind", to_string(e.kind)}});
  switch (e.kind) {
    case ClusterEventKind::spot_interruption:
    case ClusterEventKind::rebalance_recommendation:
    case ClusterEventKind::scheduled_maintenance:
    case ClusterEventKind::node_termination: {
      // AWS records may name an instance rather than a Kubernetes node: no node to mark then.
      if (!e.node.name.empty()) registry_.node(e.node, now).interruption_deadline = e.deadline;
      std::vector<const Environment*> view;
      for (auto* env : affected) {
        env->interrupted_at = now;
        env->recovery_overdue_reported = false;
        remember(*env, now, announce::describe_kind(e.kind) + " on node " + e.node.name.str(), true);
        announce(*env, announce::interruption(*env, e, now));
        view.push_back(env);
      }
      spdlog::info("{} node={} affected={}", announce::describe_kind(e.kind), e.node.name.str(), affected.size());
      if (!settings_.oncall_channel.empty()) {
        post_to_channel(settings_.oncall_channel, announce::interruption_summary(e, view, now));
      }
      break;
    }
    case ClusterEventKind::pod_scheduled:
      if (e.node.name.empty()) break;
      for (auto* env : affected) {
        NodeRecord& node = registry_.node(e.node, now);
        if (std::find(env->nodes.begin(), env->nodes.end(), e.node.name) == env->nodes.end()) {
          node.envs.insert(env->id);
          env->nodes.push_back(e.node.name);
        }
        remember(*env, now, "pod " + e.object + " scheduled on " + e.node.name.str());
        // A pod placed on a node that is not going away means the environment is running again.
        if (env->interrupted_at && !node.interruption_deadline) {
          announce(*env, announce::recovered(*env, now));
          env->interrupted_at.reset();
          env->recovery_overdue_reported = false;
        }
      }
      break;
    case ClusterEventKind::pod_warning:
      for (auto* env : affected) {
        remember(*env, now, e.reason + " " + e.object + ": " + e.message, true);
        auto group = std::find_if(env->warnings.begin(), env->warnings.end(), [&e](const WarningGroup& g) {
          return g.reason == e.reason && g.object == e.object;
        });
        if (group == env->warnings.end()) {
          env->warnings.push_back({e.reason, e.object, e.message, 0, now, now});
          if (env->warnings.size() > settings_.max_warning_groups) env->warnings.erase(env->warnings.begin());
          group = env->warnings.end() - 1;
        }
        group->count++;
        group->last = now;
        group->message = e.message;
        // One message per environment, edited as warnings repeat: a crash loop is not a flood.
        for (const auto& t : env->threads) {
          outbox_.keyed_reply(t.platform, t.channel, env->id, "warnings", announce::warnings(*env, now));
        }
      }
      break;
    case ClusterEventKind::namespace_expired:
    case ClusterEventKind::other:
      for (auto* env : affected) remember(*env, now, e.reason + ": " + e.message);
      break;
  }
  save();
}

void Bot::check_ttls() {
  const TimePoint now = clock_.now();
  bool changed = false;
  for (auto& [id, env] : registry_.environments()) {
    if (env.interrupted_at && !env.recovery_overdue_reported && env.state != EnvState::deleted &&
        now - *env.interrupted_at >= settings_.recovery_timeout) {
      env.recovery_overdue_reported = true;
      remember(env, now, "not recovered after " + format_duration(now - *env.interrupted_at), true);
      announce(env, announce::not_recovered(env, now));
      changed = true;
    }
    if ((env.state != EnvState::ready && env.state != EnvState::suspended) || !env.expires_at) continue;
    if (now >= *env.expires_at) {
      expire(env);
      changed = true;
      continue;
    }
    Duration left = *env.expires_at - now;
    for (Duration w : settings_.ttl_warnings) {
      if (left > w) continue;
      if (std::find(env.warnings_sent.begin(), env.warnings_sent.end(), w) != env.warnings_sent.end()) continue;
      // Give only the most urgent warning that is due (after a restart several may be).
      for (Duration other : settings_.ttl_warnings) {
        if (other >= w && std::find(env.warnings_sent.begin(), env.warnings_sent.end(), other) == env.warnings_sent.end()) {
          env.warnings_sent.push_back(other);
        }
      }
      remember(env, now, "TTL warning: " + format_duration(left) + " left");
      announce(env, announce::ttl_warning(env, left, settings_.extend_button));
      changed = true;
      break;
    }
  }
  if (now >= next_budget_check_) {
    next_budget_check_ = now + settings_.budget_check_interval;
    check_budgets();
  }
  if (changed) save();
}

void Bot::check_budgets() {
  const TimePoint now = clock_.now();
  auto ym = std::chrono::year_month_day{std::chrono::floor<std::chrono::days>(now)};
  const std::string month = std::to_string(static_cast<int>(ym.year())) + "-" +
                            (static_cast<unsigned>(ym.month()) < 10 ? "0" : "") +
                            std::to_string(static_cast<unsigned>(ym.month()));
  for (const auto& [team, t] : settings_.policy.teams) {
    if (!t.monthly_budget || t.monthly_budget->micros <= 0) continue;
    Money spend = policy_.month_spend(registry_, settings_.apps, team, now);
    for (int percent : {100, 80}) {
      if (spend.micros * 100 < t.monthly_budget->micros * percent) continue;
      std::string key = team.str() + "/" + month + "/" + std::to_string(percent);
      if (registry_.alerted(key)) break;
      // Mark the lower threshold too: at 100 % the 80 % alert would only be noise.
      for (int lower : {80, 100}) {
        if (lower <= percent) registry_.mark_alerted(team.str() + "/" + month + "/" + std::to_string(lower));
      }
      Message m;
      m.kind = NoticeKind::budget_alert;
      m.severity = percent >= 100 ? Severity::danger : Severity::warning;
      m.title = "Team " + team.str() + " has used " + std::to_string(spend.micros * 100 / t.monthly_budget->micros) +
                "% of its monthly budget (" + format_money(spend) + " of " + format_money(*t.monthly_budget) + ")";
      m.text = percent >= 100 ? "New environments for the team now need an admin's approval."
                              : "At 100 % new environments will need an admin's approval.";
      std::string where = !t.channel.empty() ? t.channel : settings_.oncall_channel;
      if (!where.empty()) post_to_channel(where, std::move(m));
      spdlog::info("budget alert team={} percent={} spend={}", team.str(), percent, format_money(spend));
      save();
      break;
    }
  }
}

void Bot::drain_queue() {
  auto& queue = registry_.pending();
  for (size_t i = 0; i < queue.size();) {
    PendingRequest p = queue[i];
    if (p.why != PendingRequest::Why::quota) {
      ++i;
      continue;
    }
    auto app = settings_.apps.find(p.app);
    TeamName team = app == settings_.apps.end() ? TeamName{} : app->second.team;
    if (policy_.over_quota(registry_, p.user, team)) {
      ++i;
      continue;
    }
    queue.erase(queue.begin() + static_cast<long>(i));
    Command cmd;
    cmd.verb = Verb::up;
    cmd.app = p.app;
    cmd.pr = p.pr;
    cmd.ttl = p.ttl;
    cmd.image = p.image;
    cmd.values = p.values;
    InboundMessage as;
    as.platform = p.platform;
    as.channel = p.channel;
    as.user = p.user;
    Message started = start_up(cmd, as);
    Message note;
    note.kind = NoticeKind::queued;
    note.title = p.id + " (" + p.env.str() + ") is starting now: quota is available again";
    note.mentions = {p.user};
    note.text = "@" + p.user.str() + ": " + started.title;
    post_to_channel(p.platform + ":" + p.channel.str(), std::move(note));
  }
  save();
}

void Bot::expire(Environment& env) {
  if (!move(env, EnvState::expired, "ttl")) return;
  const AppSpec* app = app_of(env);
  remember(env, clock_.now(), "expired");
  announce(env, announce::expired(env, app ? *app : unknown_app_, clock_.now(), settings_.janitor_enforces_ttl));
  if (settings_.janitor_enforces_ttl) return;
  Job job = make_job(JobVerb::down, env, UserId{"runbot"});
  job.reason = "ttl";
  env.current_job = job.id;
  publish(std::move(job));
}

}  // namespace runbot::bot
