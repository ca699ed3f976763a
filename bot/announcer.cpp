#include "bot/announcer.h"

namespace runbot::bot::announce {
namespace {

std::string mention(const UserId& u) { return "@" + u.str(); }

std::string nodes_text(const Environment& env) {
  std::string out;
  for (const auto& n : env.nodes) out += (out.empty() ? "" : ", ") + n.str();
  return out.empty() ? "—" : out;
}

std::string node_text(const NodeInfo& n) {
  std::string out = n.name.str();
  std::string details;
  auto add = [&details](const std::string& s) {
    if (!s.empty()) details += (details.empty() ? "" : ", ") + s;
  };
  if (n.capacity != CapacityType::unknown) add(to_string(n.capacity));
  add(n.instance_type);
  add(n.zone);
  return details.empty() ? out : out + " (" + details + ")";
}

Button extend_button(const Environment& env, Duration by) {
  return {"Extend " + format_duration(by), "extend", env.id.str() + " " + format_duration(by), ""};
}
Button down_button(const Environment& env) { return {"Tear down", "down", env.id.str(), ""}; }

std::string ttl_left(const Environment& env, TimePoint now) {
  if (!env.expires_at) return "starts when ready (" + format_duration(env.ttl) + ")";
  if (*env.expires_at <= now) return "expired";
  return format_duration(*env.expires_at - now) + " (expires " + format_time(*env.expires_at) + ")";
}

}  // namespace

const char* state_glyph(EnvState s) {
  switch (s) {
    case EnvState::ready: return "✔";
    case EnvState::failed: return "✖";
    case EnvState::suspended: return "⏸";
    case EnvState::expired:
    case EnvState::deleted: return "∅";
    case EnvState::tearing_down: return "⌫";
    default: return "⏳";
  }
}

std::string describe_kind(ClusterEventKind k) {
  switch (k) {
    case ClusterEventKind::spot_interruption: return "spot interruption";
    case ClusterEventKind::rebalance_recommendation: return "rebalance recommendation";
    case ClusterEventKind::scheduled_maintenance: return "scheduled maintenance";
    case ClusterEventKind::node_termination: return "node termination";
    case ClusterEventKind::pod_warning: return "warning";
    case ClusterEventKind::pod_scheduled: return "pod scheduled";
    case ClusterEventKind::namespace_expired: return "namespace expired";
    case ClusterEventKind::other: break;
  }
  return "cluster event";
}

Message status_card(const Environment& env, const AppSpec& app, TimePoint now) {
  Message m;
  m.kind = NoticeKind::status_card;
  m.severity = env.state == EnvState::ready ? Severity::success
               : env.state == EnvState::failed ? Severity::danger
                                                : Severity::info;
  m.title = std::string(state_glyph(env.state)) + " " + env.id.str() + " · " + to_string(env.state);
  m.fields = {{"App", env.app.str() + " (PR #" + std::to_string(env.pr) + ")"},
              {"Owner", mention(env.owner)},
              {"Namespace", env.namespace_name}};
  if (!env.url.empty()) m.fields.push_back({"URL", env.url});
  if (env.state == EnvState::provisioning || env.state == EnvState::updating) {
    m.fields.push_back({"Stage", env.stage.empty() ? "starting" : env.stage});
  }
  if (env.state != EnvState::deleted) m.fields.push_back({"TTL left", ttl_left(env, now)});
  m.fields.push_back({"Cost", format_money(cost_of(env, app, now)) + " at " + format_money(app.rate_per_hour) + "/h"});
  m.fields.push_back({"Nodes", nodes_text(env)});
  if (env.simulated) m.text = "Simulated by the demo provisioner.";
  if (env.state == EnvState::ready) {
    if (!env.url.empty()) m.buttons.push_back({"Open", "open", env.id.str(), env.url});
    m.buttons.push_back(extend_button(env, std::chrono::hours(4)));
    m.buttons.push_back(down_button(env));
  }
  return m;
}

Message requested(const Environment& env, const AppSpec& app, bool update) {
  Message m;
  m.kind = NoticeKind::requested;
  m.title = update ? "Update of " + env.id.str() + " requested by " + mention(env.requester)
                   : "Environment " + env.id.str() + " requested by " + mention(env.requester);
  m.text = "App " + app.name.str() + " (" + app.repo + "), PR #" + std::to_string(env.pr) + ", TTL " +
           format_duration(env.ttl) + ", " + format_money(app.rate_per_hour) + "/h.";
  if (!env.image.empty()) m.text += " Image " + env.image + ".";
  return m;
}

Message progress(const Environment& env, const LifecycleEvent& e, TimePoint now, std::optional<Duration> eta) {
  Message m;
  m.kind = NoticeKind::progress;
  std::string step = e.stage.empty() ? "working" : e.stage;
  if (e.stage_index > 0 && e.stage_count > 0) {
    step += " (" + std::to_string(e.stage_index) + "/" + std::to_string(e.stage_count) + ")";
  }
  m.title = "Stage " + step;
  Duration elapsed = now - env.created_at;
  if (env.state == EnvState::updating && env.ready_at) elapsed = now - std::max(env.created_at, env.last_activity);
  m.text = "elapsed " + format_duration(elapsed);
  if (eta && *eta > elapsed) m.text += " · ETA ~" + format_duration(*eta - elapsed);
  if (!e.message.empty()) m.text += " · " + e.message;
  return m;
}

Message ready(const Environment& env, const AppSpec& app, Duration took, Duration extend_by) {
  Message m;
  m.kind = NoticeKind::ready;
  m.severity = Severity::success;
  m.title = env.id.str() + " is ready: " + env.url;
  m.text = "Took " + format_duration(took) + " · TTL " + format_duration(env.ttl) + " · " +
           format_money(app.rate_per_hour) + "/h · owner " + mention(env.owner);
  m.mentions = {env.owner};
  if (!env.url.empty()) m.buttons.push_back({"Open", "open", env.id.str(), env.url});
  m.buttons.push_back(extend_button(env, extend_by));
  m.buttons.push_back(down_button(env));
  return m;
}

Message updated(const Environment& env, const AppSpec&) {
  Message m;
  m.kind = NoticeKind::updated;
  m.severity = Severity::success;
  m.title = env.id.str() + " updated" + (env.image.empty() ? "" : " to image " + env.image);
  m.text = env.url.empty() ? "" : "Live at " + env.url;
  return m;
}

Message failed(const Environment& env, const AppSpec& app, const LifecycleEvent& e) {
  Message m;
  m.kind = NoticeKind::failed;
  m.severity = Severity::danger;
  m.title = env.id.str() + " failed" + (e.stage.empty() ? "" : " at stage " + e.stage);
  m.text = e.reason.empty() ? "no reason given" : e.reason;
  if (e.exit_status) m.text += " (exit status " + std::to_string(*e.exit_status) + ")";
  m.code = e.log_tail;
  m.mentions = {env.owner};
  m.buttons.push_back({"Retry", "retry", app.name.str() + " " + std::to_string(env.pr), ""});
  m.buttons.push_back(down_button(env));
  return m;
}

Message cancelled(const Environment& env, const LifecycleEvent& e) {
  Message m;
  m.kind = NoticeKind::progress;
  m.severity = Severity::warning;
  m.title = std::string(to_string(e.verb)) + " of " + env.id.str() + " cancelled";
  m.text = e.reason.empty() ? "a later job replaced it" : e.reason;
  return m;
}

Message ttl_warning(const Environment& env, Duration left, Duration extend_by) {
  Message m;
  m.kind = NoticeKind::ttl_warning;
  m.severity = Severity::warning;
  // Checks run every few seconds: 29m55s left reads as the 30 minutes the warning is about.
  Duration shown = left > std::chrono::minutes(1) ? Duration{std::chrono::ceil<std::chrono::minutes>(left)} : left;
  m.title = env.id.str() + " expires in " + format_duration(shown);
  m.text = mention(env.owner) + ", it will be torn down at " + format_time(*env.expires_at) +
           ". Extend it to keep it, or let it expire.";
  m.mentions = {env.owner};
  m.buttons.push_back(extend_button(env, extend_by));
  m.buttons.push_back({"Let it expire", "let_expire", env.id.str(), ""});
  return m;
}

Message extended(const Environment& env, const UserId& by, Duration by_how_much) {
  Message m;
  m.kind = NoticeKind::extended;
  m.title = env.id.str() + " extended by " + format_duration(by_how_much) + " by " + mention(by);
  m.text = "Now expires at " + format_time(*env.expires_at) + ".";
  return m;
}

Message expired(const Environment& env, const AppSpec& app, TimePoint now, bool janitor) {
  Message m;
  m.kind = NoticeKind::expired;
  m.severity = Severity::warning;
  m.title = env.id.str() + " expired after " + format_duration(env.ttl);
  m.text = (janitor ? "kube-janitor will delete it." : "Tearing it down.") + std::string(" Cost so far ") +
           format_money(cost_of(env, app, now)) + ".";
  m.mentions = {env.owner};
  return m;
}

Message deleted(const Environment& env, const AppSpec& app, TimePoint now, const std::string& reason) {
  Message m;
  m.kind = NoticeKind::deleted;
  m.title = env.id.str() + " deleted" + (reason.empty() ? "" : " (" + reason + ")");
  m.text = "Lifetime " + format_duration(now - env.created_at) + " · total cost " + format_money(cost_of(env, app, now)) + ".";
  return m;
}

Message tearing_down(const Environment& env, const UserId& by) {
  Message m;
  m.kind = NoticeKind::progress;
  m.severity = Severity::warning;
  m.title = "Tearing down " + env.id.str() + " (requested by " + mention(by) + ")";
  return m;
}

Message suspended(const Environment& env, const AppSpec& app) {
  Message m;
  m.kind = NoticeKind::suspended;
  m.title = env.id.str() + " suspended: compute scaled to zero, data kept";
  m.text = "Billed at " + format_money(app.suspended_rate_per_hour) + "/h while suspended.";
  return m;
}

Message resumed(const Environment& env, const AppSpec&) {
  Message m;
  m.kind = NoticeKind::resumed;
  m.severity = Severity::success;
  m.title = env.id.str() + " resumed" + (env.url.empty() ? "" : ": " + env.url);
  return m;
}

Message interruption(const Environment& env, const ClusterEvent& e, TimePoint now) {
  Message m;
  m.kind = NoticeKind::interruption;
  m.severity = Severity::danger;
  m.title = "⚠ " + describe_kind(e.kind) + " on node " + node_text(e.node);
  m.text = mention(env.owner) + ", " + env.id.str() + " runs on this node.";
  if (e.deadline) {
    m.text += " The node goes away at " + format_time(*e.deadline);
    m.text += *e.deadline > now ? " (in " + format_duration(*e.deadline - now) + ")." : " (now).";
  }
  m.text += " Its pods will be rescheduled; this thread will say when it has recovered.";
  m.mentions = {env.owner};
  return m;
}

Message interruption_summary(const ClusterEvent& e, const std::vector<const Environment*>& affected, TimePoint now) {
  Message m;
  m.kind = NoticeKind::interruption;
  m.severity = Severity::warning;
  m.title = "⚠ " + describe_kind(e.kind) + " on node " + node_text(e.node) + ": " +
            std::to_string(affected.size()) + " environment" + (affected.size() == 1 ? "" : "s") + " affected";
  if (e.deadline) {
    m.text = "Deadline " + format_time(*e.deadline) +
             (*e.deadline > now ? " (in " + format_duration(*e.deadline - now) + ")" : "") + ".";
  }
  for (const auto* env : affected) {
    m.code.push_back(env->id.str() + "  owner " + mention(env->owner));
    m.mentions.push_back(env->owner);
  }
  return m;
}

Message recovered(const Environment& env, TimePoint now) {
  Message m;
  m.kind = NoticeKind::recovered;
  m.severity = Severity::success;
  m.title = env.id.str() + " recovered: running on " + nodes_text(env);
  if (env.interrupted_at) m.text = "Back " + format_duration(now - *env.interrupted_at) + " after the interruption.";
  return m;
}

Message not_recovered(const Environment& env, TimePoint now) {
  Message m;
  m.kind = NoticeKind::interruption;
  m.severity = Severity::danger;
  m.title = env.id.str() + " has not recovered " +
            (env.interrupted_at ? format_duration(now - *env.interrupted_at) + " after the interruption" : "yet");
  m.text = "@" + env.owner.str() + ", its pods are not reported running on other nodes. Check `describe " +
           env.id.str() + "`, or recreate it with `up " + env.app.str() + " " + std::to_string(env.pr) + "`.";
  m.mentions = {env.owner};
  return m;
}

Message warnings(const Environment& env, TimePoint now) {
  Message m;
  m.kind = NoticeKind::warning_events;
  m.severity = Severity::warning;
  int total = 0;
  for (const auto& g : env.warnings) total += g.count;
  m.title = "⚠ " + std::to_string(total) + " warning event" + (total == 1 ? "" : "s") + " in " + env.id.str();
  for (const auto& g : env.warnings) {
    m.code.push_back(g.reason + " ×" + std::to_string(g.count) + "  " + g.object + "  last " +
                     format_duration(now - g.last) + " ago: " + g.message);
  }
  return m;
}

}  // namespace runbot::bot::announce
