// The command handlers of Bot: each returns the immediate answer; progress goes to the thread.
#include <algorithm>
#include <sstream>

#include <spdlog/spdlog.h>

#include "bot/announcer.h"
#include "bot/bot.h"

namespace runbot::bot {
namespace {

Message answer(std::string title, std::string text = {}) {
  Message m;
  m.kind = NoticeKind::reply;
  m.title = std::move(title);
  m.text = std::move(text);
  return m;
}

Message refuse(std::string title, std::string text = {}) {
  Message m = answer(std::move(title), std::move(text));
  m.severity = Severity::warning;
  return m;
}

Message refuse_with_usage(const std::string& why, Verb v) {
  return refuse(why, std::string("Usage: ") + usage_of(v));
}

std::string pad(std::string s, size_t width) {
  // Pads by characters as a terminal shows them (UTF-8 continuation bytes take no column).
  size_t cols = 0;
  for (unsigned char c : s) cols += (c & 0xC0) != 0x80;
  if (cols < width) s.append(width - cols, ' ');
  return s;
}

std::string render_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) {
      size_t cols = 0;
      for (unsigned char c : r[i]) cols += (c & 0xC0) != 0x80;
      if (widths.size() <= i) widths.push_back(0);
      widths[i] = std::max(widths[i], cols);
    }
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) line += (i + 1 < r.size() ? pad(r[i], widths[i] + 2) : r[i]);
    out += line + "\n";
  }
  if (!out.empty()) out.pop_back();
  return out;
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> lines;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

}  // namespace

Message Bot::execute(const Command& cmd, const InboundMessage& msg) {
  // A pending confirmation is answered by yes/no; any other command leaves it pending.
  switch (cmd.verb) {
    case Verb::up: return cmd_up(cmd, msg);
    case Verb::down: return cmd_down(cmd, msg, false);
    case Verb::extend: return cmd_extend(cmd, msg);
    case Verb::suspend:
    case Verb::resume: return cmd_suspend_resume(cmd, msg);
    case Verb::list: return cmd_list(cmd, msg);
    case Verb::describe: return cmd_describe(cmd);
    case Verb::status: return cmd_status();
    case Verb::nodes: return cmd_nodes();
    case Verb::events: return cmd.audit ? cmd_audit() : cmd_events(cmd);
    case Verb::usage: return cmd_usage(cmd);
    case Verb::help: return cmd_help(cmd);
    case Verb::yes: return cmd_confirm(true, msg);
    case Verb::no: return cmd_confirm(false, msg);
    case Verb::simulate: return cmd_simulate(cmd);
    case Verb::cancel: return cmd_cancel(cmd, msg);
    case Verb::approve: return cmd_approve(cmd, msg, true);
    case Verb::deny: return cmd_approve(cmd, msg, false);
    case Verb::let_expire: {
      auto env = existing(cmd.env);
      if (!env) return refuse_with_usage(env.error().message, Verb::let_expire);
      Environment& e = **env;
      remember(e, clock_.now(), msg.user.str() + " lets it expire");
      save();
      return answer("OK, " + e.id.str() + " will expire" +
                    (e.expires_at ? " at " + format_time(*e.expires_at) : std::string()) + ".");
    }
  }
  return refuse("unhandled command");
}

Message Bot::cmd_up(const Command& cmd, const InboundMessage& msg) {
  auto app_it = settings_.apps.find(cmd.app);
  if (app_it == settings_.apps.end()) {
    std::string apps;
    for (const auto& [name, a] : settings_.apps) apps += (apps.empty() ? "" : ", ") + name.str();
    return refuse_with_usage("unknown app '" + cmd.app.str() + "' (known apps: " + apps + ")", Verb::up);
  }
  const AppSpec& app = app_it->second;
  Duration ttl = cmd.ttl.value_or(app.default_ttl);
  if (ttl > app.max_ttl) {
    return refuse_with_usage("TTL " + format_duration(ttl) + " is over " + app.name.str() + "'s maximum of " +
                                 format_duration(app.max_ttl),
                             Verb::up);
  }
  auto id = make_env_id(app.name, cmd.pr);
  if (!id) return refuse_with_usage(id.error().message, Verb::up);
  if (auto allowed = policy_.allow_app(actor_of(msg), app); !allowed) return refuse(allowed.error().message);
  const Environment* env = registry_.find(*id);
  const bool exists = env && env->state != EnvState::deleted && env->state != EnvState::failed;
  if (exists && env->state != EnvState::ready) {
    if (env->state == EnvState::suspended) return refuse(env->id.str() + " is suspended; `resume " + env->id.str() + "` first");
    return refuse(env->id.str() + " is " + to_string(env->state) + "; wait until it settles, or `down " + env->id.str() + "`");
  }
  for (const auto& p : registry_.pending()) {
    if (p.env == *id) return refuse(id->str() + " is already requested and waiting (" + p.id + "); `cancel " + p.id + "` withdraws it");
  }
  if (!exists) {
    auto wait = [&](PendingRequest::Why why, std::string reason) {
      PendingRequest p;
      p.id = registry_.next_request_id();
      p.why = why;
      p.reason = std::move(reason);
      p.app = app.name;
      p.pr = cmd.pr;
      p.env = *id;
      p.ttl = cmd.ttl;
      p.image = cmd.image;
      p.values = cmd.values;
      p.user = msg.user;
      p.platform = msg.platform;
      p.channel = msg.channel;
      p.at = clock_.now();
      registry_.pending().push_back(p);
      save();
      return p;
    };
    // Budget first: an over-budget request needs a person, a quota only needs time.
    if (auto budget = policy_.budget_of(app.team)) {
      Money spend = policy_.month_spend(registry_, settings_.apps, app.team, clock_.now());
      Money projected = cost_for(app.rate_per_hour, ttl);
      if (spend + projected > *budget) {
        PendingRequest p = wait(PendingRequest::Why::approval,
                                "team " + app.team.str() + " has spent " + format_money(spend) + " of " +
                                    format_money(*budget) + " this month and this environment may cost up to " +
                                    format_money(projected));
        Message ask;
        ask.kind = NoticeKind::budget_alert;
        ask.severity = Severity::warning;
        ask.title = "Approval needed: " + p.env.str() + " for @" + msg.user.str() + " (" + p.id + ")";
        ask.text = "Over budget: " + p.reason + ". Admins: approve or deny.";
        ask.buttons = {{"Approve", "approve", p.id, ""}, {"Deny", "deny", p.id, ""}};
        const auto& teams = settings_.policy.teams;
        auto t = teams.find(app.team);
        std::string where = !settings_.policy.approvals_channel.empty() ? settings_.policy.approvals_channel
                            : (t != teams.end() && !t->second.channel.empty()) ? t->second.channel
                                                                               : settings_.oncall_channel;
        if (!where.empty()) post_to_channel(where, std::move(ask));
        Message waiting = refuse(p.env.str() + " waits for an admin's approval (" + p.id + ")",
                                 "Over budget: " + p.reason + ". `cancel " + p.id + "` withdraws it.");
        waiting.kind = NoticeKind::queued;
        return waiting;
      }
    }
    if (auto why = policy_.over_quota(registry_, msg.user, app.team)) {
      PendingRequest p = wait(PendingRequest::Why::quota, *why);
      size_t position = 0;
      for (const auto& q : registry_.pending()) position += q.why == PendingRequest::Why::quota;
      Message m = answer(p.env.str() + " is queued at position " + std::to_string(position) + " (" + p.id + ")",
                         "Over quota: " + *why + ". It starts when capacity frees up; `cancel " + p.id +
                             "` withdraws it.");
      m.kind = NoticeKind::queued;
      return m;
    }
  }
  return start_up(cmd, msg);
}

Message Bot::start_up(const Command& cmd, const InboundMessage& msg) {
  const AppSpec& app = settings_.apps.at(cmd.app);
  Duration ttl = cmd.ttl.value_or(app.default_ttl);
  EnvId id = *make_env_id(app.name, cmd.pr);
  const TimePoint now = clock_.now();
  Environment* env = registry_.find(id);
  bool update = false;
  if (env && env->state == EnvState::ready) {
    if (!move(*env, EnvState::updating, "up")) return refuse("cannot update " + env->id.str());
    update = true;
    env->requester = msg.user;
    if (!cmd.image.empty()) env->image = cmd.image;
    for (const auto& [k, v] : cmd.values) env->values[k] = v;
    if (cmd.ttl) {
      env->ttl = ttl;
      env->expires_at = now + ttl;
      env->warnings_sent.clear();
    }
  } else {
    Environment fresh;
    fresh.id = id;
    fresh.app = app.name;
    fresh.pr = cmd.pr;
    std::string ns = app.namespace_template;
    auto replace = [&ns](const std::string& key, const std::string& value) {
      for (auto p = ns.find(key); p != std::string::npos; p = ns.find(key, p + value.size())) ns.replace(p, key.size(), value);
    };
    replace("{env}", id.str());
    replace("{app}", app.name.str());
    replace("{pr}", std::to_string(cmd.pr));
    fresh.namespace_name = ns;
    fresh.owner = msg.user;
    fresh.requester = msg.user;
    fresh.team = app.team;
    fresh.created_at = now;
    fresh.metered_until = now;
    fresh.last_activity = now;
    fresh.ttl = ttl;
    fresh.image = cmd.image;
    fresh.values = cmd.values;
    // The requesting channel first, then the app's announce channels.
    fresh.threads.push_back({msg.platform, msg.channel, ""});
    for (const auto& where : app.channels) {
      auto colon = where.find(':');
      ThreadRef t{where.substr(0, colon), ChannelId{where.substr(colon + 1)}, ""};
      if (std::find(fresh.threads.begin(), fresh.threads.end(), t) == fresh.threads.end()) fresh.threads.push_back(t);
    }
    env = &registry_.put(std::move(fresh));
  }
  Job job = make_job(JobVerb::up, *env, msg.user);
  job.ttl = env->ttl;
  job.expires_at = env->expires_at.value_or(now + env->ttl);
  job.image = env->image;
  job.values = env->values;
  env->current_job = job.id;
  remember(*env, now, std::string(update ? "update" : "up") + " requested by " + msg.user.str());
  announce(*env, announce::requested(*env, app, update));
  publish(std::move(job));
  save();
  return answer((update ? "Updating " : "Creating ") + env->id.str() + " (TTL " + format_duration(env->ttl) + ")",
                "Progress is posted in its thread.");
}

Message Bot::cmd_cancel(const Command& cmd, const InboundMessage& msg) {
  auto& queue = registry_.pending();
  auto it = std::find_if(queue.begin(), queue.end(), [&](const PendingRequest& p) { return p.id == cmd.request; });
  if (it == queue.end()) return refuse_with_usage("no waiting request '" + cmd.request + "'", Verb::cancel);
  if (it->user != msg.user && policy_.role_of(actor_of(msg)) < Role::operator_) {
    return refuse(cmd.request + " is @" + it->user.str() + "'s request; cancelling it needs the operator role");
  }
  std::string env = it->env.str();
  queue.erase(it);
  save();
  return answer("Cancelled " + cmd.request + " (" + env + ")");
}

Message Bot::cmd_approve(const Command& cmd, const InboundMessage& msg, bool approve) {
  auto& queue = registry_.pending();
  auto it = std::find_if(queue.begin(), queue.end(), [&](const PendingRequest& p) {
    return p.id == cmd.request && p.why == PendingRequest::Why::approval;
  });
  if (it == queue.end()) return refuse_with_usage("no request '" + cmd.request + "' waits for approval", cmd.verb);
  PendingRequest p = *it;
  queue.erase(it);
  Message note;
  note.kind = NoticeKind::budget_alert;
  note.mentions = {p.user};
  if (!approve) {
    note.title = p.id + " (" + p.env.str() + ") was denied by @" + msg.user.str();
    post_to_channel(p.platform + ":" + p.channel.str(), std::move(note));
    save();
    return answer("Denied " + p.id + " (" + p.env.str() + ")");
  }
  auto app = settings_.apps.find(p.app);
  InboundMessage as;
  as.platform = p.platform;
  as.channel = p.channel;
  as.user = p.user;
  Command up;
  up.verb = Verb::up;
  up.app = p.app;
  up.pr = p.pr;
  up.ttl = p.ttl;
  up.image = p.image;
  up.values = p.values;
  std::string outcome;
  if (auto why = policy_.over_quota(registry_, p.user, app == settings_.apps.end() ? TeamName{} : app->second.team)) {
    p.why = PendingRequest::Why::quota;
    p.approved = true;
    p.reason = *why;
    queue.push_back(p);
    outcome = "approved, and queued for quota: " + *why;
  } else {
    outcome = start_up(up, as).title;
  }
  note.title = p.id + " (" + p.env.str() + ") was approved by @" + msg.user.str();
  note.text = "@" + p.user.str() + ": " + outcome;
  post_to_channel(p.platform + ":" + p.channel.str(), std::move(note));
  save();
  return answer("Approved " + p.id + " (" + p.env.str() + "): " + outcome);
}

Message Bot::cmd_audit() const {
  const auto& log = registry_.audit_log();
  if (log.empty()) return answer("No audit records yet.");
  Message m = answer("Last " + std::to_string(std::min<size_t>(log.size(), 30)) + " audit records");
  size_t from = log.size() > 30 ? log.size() - 30 : 0;
  for (size_t i = from; i < log.size(); ++i) {
    const auto& a = log[i];
    m.code.push_back(format_time(a.time) + "  " + a.platform + "/" + a.channel.str() + "  @" + a.user.str() + "  " +
                     a.verb + (a.button ? " (button)" : "") + "  " + a.outcome + "  " + a.args);
  }
  return m;
}

Message Bot::cmd_down(const Command& cmd, const InboundMessage& msg, bool confirmed) {
  for (const auto& p : registry_.pending()) {
    if (p.env == cmd.env) {
      Command cancel;
      cancel.verb = Verb::cancel;
      cancel.request = p.id;
      return cmd_cancel(cancel, msg);
    }
  }
  auto env = existing(cmd.env);
  if (!env) return refuse_with_usage(env.error().message, Verb::down);
  Environment& e = **env;
  if (e.state == EnvState::tearing_down) return refuse(e.id.str() + " is already being torn down");
  if (!confirmed) {
    pending_[{msg.platform, msg.channel, msg.user}] = Pending{cmd, clock_.now() + settings_.confirmation_timeout};
    Message m = answer("Tear down " + e.id.str() + "? Reply `yes` or `no` (within " +
                           format_duration(settings_.confirmation_timeout) + ").",
                       "It is " + std::string(to_string(e.state)) + (e.url.empty() ? "" : " at " + e.url) +
                           ", owned by @" + e.owner.str() + ".");
    m.kind = NoticeKind::confirmation;
    m.buttons = {{"Yes, tear down", "confirm", "yes", ""}, {"No", "confirm", "no", ""}};
    return m;
  }
  if (!move(e, EnvState::tearing_down, "down")) return refuse("cannot tear down " + e.id.str());
  Job job = make_job(JobVerb::down, e, msg.user);
  job.reason = "user";
  e.current_job = job.id;
  remember(e, clock_.now(), "teardown requested by " + msg.user.str());
  announce(e, announce::tearing_down(e, msg.user));
  publish(std::move(job));
  save();
  return answer("Tearing down " + e.id.str(), "Progress is posted in its thread.");
}

Message Bot::cmd_confirm(bool yes, const InboundMessage& msg) {
  auto it = pending_.find({msg.platform, msg.channel, msg.user});
  if (it == pending_.end()) return refuse("nothing to confirm", "`yes` and `no` answer a question runbot asked you.");
  Pending p = it->second;
  pending_.erase(it);
  if (clock_.now() > p.expires) return refuse("that confirmation expired; ask again with `down " + p.command.env.str() + "`");
  if (!yes) return answer("Cancelled: " + p.command.env.str() + " stays.");
  return cmd_down(p.command, msg, true);
}

Message Bot::cmd_extend(const Command& cmd, const InboundMessage& msg) {
  auto env = existing(cmd.env);
  if (!env) return refuse_with_usage(env.error().message, Verb::extend);
  Environment& e = **env;
  if (e.state != EnvState::ready && e.state != EnvState::suspended && e.state != EnvState::updating) {
    return refuse(e.id.str() + " is " + to_string(e.state) + "; only a running or suspended environment can be extended");
  }
  const AppSpec* app = app_of(e);
  const TimePoint now = clock_.now();
  TimePoint base = e.expires_at.value_or(now + e.ttl);
  TimePoint wanted = base + cmd.duration;
  Duration max = app ? app->max_ttl : e.ttl;
  if (wanted - now > max) {
    return refuse_with_usage("extending by " + format_duration(cmd.duration) + " would leave " +
                                 format_duration(wanted - now) + ", over " + e.app.str() + "'s maximum TTL of " +
                                 format_duration(max) + " (at most " +
                                 format_duration(std::max(Duration::zero(), now + max - base)) + " more)",
                             Verb::extend);
  }
  e.expires_at = wanted;
  e.ttl = wanted - (e.ready_at ? *e.ready_at : now);
  e.warnings_sent.clear();
  e.last_activity = now;
  Job job = make_job(JobVerb::extend, e, msg.user);
  job.ttl = cmd.duration;
  job.expires_at = wanted;
  remember(e, now, "extended by " + format_duration(cmd.duration) + " by " + msg.user.str());
  announce(e, announce::extended(e, msg.user, cmd.duration));
  // An extend does not replace the environment's current job: its events only confirm.
  publish(std::move(job));
  save();
  return answer("Extended " + e.id.str() + ": expires " + format_time(wanted) + " (in " + format_duration(wanted - now) + ")");
}

Message Bot::cmd_suspend_resume(const Command& cmd, const InboundMessage& msg) {
  bool suspend = cmd.verb == Verb::suspend;
  auto env = existing(cmd.env);
  if (!env) return refuse_with_usage(env.error().message, cmd.verb);
  Environment& e = **env;
  EnvState need = suspend ? EnvState::ready : EnvState::suspended;
  if (e.state != need) {
    return refuse(e.id.str() + " is " + to_string(e.state) + "; only a " + to_string(need) + " environment can be " +
                  (suspend ? "suspended" : "resumed"));
  }
  Job job = make_job(suspend ? JobVerb::suspend : JobVerb::resume, e, msg.user);
  e.current_job = job.id;
  e.last_activity = clock_.now();
  remember(e, clock_.now(), std::string(suspend ? "suspend" : "resume") + " requested by " + msg.user.str());
  publish(std::move(job));
  save();
  return answer(std::string(suspend ? "Suspending " : "Resuming ") + e.id.str(), "Progress is posted in its thread.");
}

Message Bot::cmd_list(const Command& cmd, const InboundMessage& msg) const {
  const TimePoint now = clock_.now();
  std::vector<std::vector<std::string>> rows{{"ENV", "STATE", "OWNER", "AGE", "TTL LEFT", "COST", "URL"}};
  for (const auto& [id, e] : registry_.environments()) {
    if (cmd.filter_state ? e.state != *cmd.filter_state : e.state == EnvState::deleted) continue;
    if (cmd.mine && e.owner != msg.user) continue;
    if (cmd.filter_app && e.app != *cmd.filter_app) continue;
    const AppSpec* app = app_of(e);
    std::string left = "—";
    if (e.expires_at && e.state != EnvState::deleted) {
      left = *e.expires_at > now ? format_duration(*e.expires_at - now) : "expired";
    }
    rows.push_back({id.str(), to_string(e.state), "@" + e.owner.str(), format_duration(now - e.created_at), left,
                    app ? format_money(cost_of(e, *app, now)) : "?", e.url.empty() ? "—" : e.url});
  }
  std::vector<std::string> waiting;
  size_t position = 0;
  for (const auto& p : registry_.pending()) {
    bool quota = p.why == PendingRequest::Why::quota;
    if (quota) ++position;
    if (cmd.mine && p.user != msg.user) continue;
    if (cmd.filter_app && p.app != *cmd.filter_app) continue;
    waiting.push_back(p.id + "  " + p.env.str() + "  @" + p.user.str() + "  " +
                      (quota ? "queued #" + std::to_string(position) : std::string("awaiting approval")) + " — " + p.reason);
  }
  if (rows.size() == 1 && !waiting.empty() && !cmd.filter_state) {
    Message m = answer("No environments match; " + std::to_string(waiting.size()) + " waiting");
    m.code = waiting;
    return m;
  }
  if (rows.size() == 1) {
    return answer("No environments match.", "Create one with `up <app> <pr>`, e.g. `up " +
                                                (settings_.apps.empty() ? std::string("front-end") : settings_.apps.begin()->first.str()) +
                                                " pr-123`.");
  }
  Message m = answer(std::to_string(rows.size() - 1) + " environment" + (rows.size() == 2 ? "" : "s"));
  m.code = split_lines(render_table(rows));
  if (!waiting.empty() && !cmd.filter_state) {
    m.code.push_back("");
    m.code.push_back("WAITING");
    for (auto& w : waiting) m.code.push_back(std::move(w));
  }
  return m;
}

Message Bot::cmd_describe(const Command& cmd) const {
  const Environment* e = registry_.find(cmd.env);
  if (!e) return refuse_with_usage("no environment '" + cmd.env.str() + "'", Verb::describe);
  const TimePoint now = clock_.now();
  const AppSpec* app = app_of(*e);
  Message m = answer(std::string(announce::state_glyph(e->state)) + " " + e->id.str() + " · " + to_string(e->state));
  m.fields = {{"App", e->app.str() + (app ? " (" + app->repo + ")" : "") + ", PR #" + std::to_string(e->pr)},
              {"Owner", "@" + e->owner.str() + (e->team.empty() ? "" : " (team " + e->team.str() + ")")},
              {"Requested by", "@" + e->requester.str()},
              {"Namespace", e->namespace_name},
              {"Created", format_time(e->created_at) + " (" + format_duration(now - e->created_at) + " ago)"}};
  if (e->ready_at) m.fields.push_back({"Ready", format_time(*e->ready_at)});
  if (e->deleted_at) m.fields.push_back({"Deleted", format_time(*e->deleted_at)});
  m.fields.push_back({"TTL", format_duration(e->ttl)});
  if (e->expires_at && e->state != EnvState::deleted) {
    m.fields.push_back({"Expires", format_time(*e->expires_at) +
                                       (*e->expires_at > now ? " (in " + format_duration(*e->expires_at - now) + ")" : " (passed)")});
  }
  if (!e->url.empty()) m.fields.push_back({"URL", e->url});
  if (!e->image.empty()) m.fields.push_back({"Image", e->image});
  for (const auto& [k, v] : e->values) m.fields.push_back({"Set " + k, v});
  if (!e->stage.empty()) {
    m.fields.push_back({"Stage", e->stage + (e->stage_count ? " (" + std::to_string(e->stage_index) + "/" + std::to_string(e->stage_count) + ")" : "")});
  }
  if (!e->failure_reason.empty()) m.fields.push_back({"Failure", e->failure_reason});
  std::string nodes;
  for (const auto& n : e->nodes) {
    std::string detail;
    auto it = registry_.nodes().find(n);
    if (it != registry_.nodes().end()) {
      detail = std::string(" (") + to_string(it->second.info.capacity) +
               (it->second.info.instance_type.empty() ? "" : ", " + it->second.info.instance_type) +
               (it->second.info.zone.empty() ? "" : ", " + it->second.info.zone) + ")";
    }
    nodes += (nodes.empty() ? "" : "; ") + n.str() + detail;
  }
  m.fields.push_back({"Nodes", nodes.empty() ? "—" : nodes});
  if (app) {
    m.fields.push_back({"Cost", format_money(cost_of(*e, *app, now)) + " so far at " + format_money(app->rate_per_hour) + "/h"});
  }
  if (e->simulated) m.fields.push_back({"Note", "simulated by the demo provisioner"});
  for (const auto& line : e->log_tail) m.code.push_back(line);
  size_t from = e->recent.size() > 10 ? e->recent.size() - 10 : 0;
  if (from < e->recent.size()) m.text = "Recent events:";
  for (size_t i = from; i < e->recent.size(); ++i) {
    m.text += "\n  " + format_time(e->recent[i].time) + (e->recent[i].warning ? " ⚠ " : "   ") + e->recent[i].text;
  }
  return m;
}

Message Bot::cmd_status() const {
  const TimePoint now = clock_.now();
  Message m = answer("Cluster status");
  std::map<std::string, int> by_capacity;
  for (const auto& [name, n] : registry_.nodes()) by_capacity[to_string(n.info.capacity)]++;
  std::string nodes;
  for (const auto& [cap, count] : by_capacity) nodes += (nodes.empty() ? "" : ", ") + std::to_string(count) + " " + cap;
  m.fields.push_back({"Nodes", nodes.empty() ? "none known yet" : nodes});
  std::map<std::string, int> by_state;
  int in_flight = 0;
  for (const auto& [id, e] : registry_.environments()) {
    if (e.state == EnvState::deleted) continue;
    by_state[to_string(e.state)]++;
    if (e.state == EnvState::requested || e.state == EnvState::provisioning || e.state == EnvState::updating ||
        e.state == EnvState::tearing_down) {
      ++in_flight;
    }
  }
  std::string states;
  for (const auto& [s, count] : by_state) states += (states.empty() ? "" : ", ") + std::to_string(count) + " " + s;
  m.fields.push_back({"Environments", states.empty() ? "none" : states});
  m.fields.push_back({"Jobs in flight", std::to_string(in_flight) +
                                            (hooks_.provisioner_status ? " (provisioner: " + hooks_.provisioner_status() + ")" : "")});
  int interruptions = 0;
  std::string last;
  for (const auto& r : registry_.cluster_events()) {
    if (now - r.received > std::chrono::hours(24)) continue;
    switch (r.event.kind) {
      case ClusterEventKind::spot_interruption:
      case ClusterEventKind::rebalance_recommendation:
      case ClusterEventKind::scheduled_maintenance:
      case ClusterEventKind::node_termination:
        ++interruptions;
        last = announce::describe_kind(r.event.kind) + " on " + r.event.node.name.str() + " " +
               format_duration(now - r.received) + " ago, " + std::to_string(r.affected.size()) + " env(s)";
        break;
      default: break;
    }
  }
  m.fields.push_back({"Interruptions (24h)", std::to_string(interruptions) + (last.empty() ? "" : "; last: " + last)});
  if (hooks_.event_stats) {
    EventSourceStats s = hooks_.event_stats();
    std::string lag;
    if (s.lag_by_topic.empty()) {
      lag = s.lag < 0 ? "unknown" : std::to_string(s.lag) + " records";
    } else {
      // "runbot.events 0, runbot.cluster-events 3"
      for (const auto& [topic, behind] : s.lag_by_topic) {
        lag += (lag.empty() ? "" : ", ") + topic + " " + (behind < 0 ? std::string("unknown") : std::to_string(behind));
      }
    }
    m.fields.push_back({"Event lag", lag + ", " + std::to_string(s.consumed) + " consumed, " +
                                         std::to_string(s.skipped_invalid) + " invalid skipped (" +
                                         std::to_string(s.dead_lettered) + " in the dead-letter topic)" +
                                         (s.last_event ? ", last " + format_time(*s.last_event) : "")});
  }
  std::string adapters;
  for (const auto* a : adapters_) adapters += (adapters.empty() ? "" : ", ") + a->platform() + (a->healthy() ? " ok" : " DOWN");
  m.fields.push_back({"Adapters", adapters.empty() ? "none" : adapters});
  m.fields.push_back({"Outbox", std::to_string(outbox_.pending()) + " message(s) waiting"});
  if (!state_ok_) m.fields.push_back({"State", "NOT SAVED (see log)"});
  return m;
}

Message Bot::cmd_nodes() const {
  if (registry_.nodes().empty()) return answer("No nodes known yet.", "Nodes appear as environments report where they run.");
  std::vector<std::vector<std::string>> rows{{"NODE", "CAPACITY", "TYPE", "ZONE", "ENVIRONMENTS"}};
  for (const auto& [name, n] : registry_.nodes()) {
    std::string envs;
    for (const auto& e : n.envs) envs += (envs.empty() ? "" : ", ") + e.str();
    std::string cap = to_string(n.info.capacity);
    if (n.interruption_deadline) cap += " ⚠";
    rows.push_back({name.str(), cap, n.info.instance_type.empty() ? "?" : n.info.instance_type,
                    n.info.zone.empty() ? "?" : n.info.zone, envs.empty() ? "—" : envs});
  }
  Message m = answer(std::to_string(rows.size() - 1) + " node" + (rows.size() == 2 ? "" : "s"));
  m.code = split_lines(render_table(rows));
  return m;
}

Message Bot::cmd_events(const Command& cmd) const {
  const TimePoint now = clock_.now();
  const TimePoint since = now - cmd.since.value_or(std::chrono::hours(1));
  struct Line {
    TimePoint t;
    std::string text;
  };
  std::vector<Line> lines;
  if (!cmd.env.empty()) {
    const Environment* e = registry_.find(cmd.env);
    if (!e) return refuse_with_usage("no environment '" + cmd.env.str() + "'", Verb::events);
    for (const auto& r : e->recent) {
      if (r.time < since || (cmd.warnings && !r.warning)) continue;
      lines.push_back({r.time, format_time(r.time) + (r.warning ? " ⚠ " : "   ") + r.text});
    }
  }
  for (const auto& r : registry_.cluster_events()) {
    if (r.received < since) continue;
    if (cmd.node && r.event.node.name != *cmd.node) continue;
    if (!cmd.env.empty() && std::find(r.affected.begin(), r.affected.end(), cmd.env) == r.affected.end()) continue;
    bool warning = r.event.kind != ClusterEventKind::pod_scheduled && r.event.kind != ClusterEventKind::other;
    if (cmd.warnings && !warning) continue;
    if (!cmd.env.empty()) continue;  // already listed from the environment's own record
    std::string text = format_time(r.received) + (warning ? " ⚠ " : "   ") + announce::describe_kind(r.event.kind);
    if (!r.event.node.name.empty()) text += " node " + r.event.node.name.str();
    if (!r.event.reason.empty()) text += " " + r.event.reason;
    if (!r.affected.empty()) {
      text += " →";
      for (const auto& a : r.affected) text += " " + a.str();
    }
    lines.push_back({r.received, text});
  }
  std::stable_sort(lines.begin(), lines.end(), [](const Line& a, const Line& b) { return a.t < b.t; });
  if (lines.size() > 30) lines.erase(lines.begin(), lines.end() - 30);
  if (lines.empty()) return answer("No events in the last " + format_duration(now - since) + ".");
  Message m = answer(std::to_string(lines.size()) + " event" + (lines.size() == 1 ? "" : "s") + " since " + format_time(since));
  for (auto& l : lines) m.code.push_back(std::move(l.text));
  return m;
}

Message Bot::cmd_usage(const Command& cmd) const {
  const TimePoint now = clock_.now();
  const Duration window = cmd.since.value_or(std::chrono::hours(24 * 30));
  const TimePoint since = now - window;
  struct Sum {
    double hours = 0;
    Money cost;
    int envs = 0;
  };
  std::map<std::string, Sum> teams;
  std::map<std::string, Sum> users;
  for (const auto& [id, e] : registry_.environments()) {
    if (cmd.team && e.team != *cmd.team) continue;
    TimePoint end = e.deleted_at.value_or(now);
    if (end < since) continue;
    const AppSpec* app = app_of(e);
    // Only the part inside the window, not the environment's lifetime.
    const BilledTime billed = billed_between(e, since, now);
    double hours = std::chrono::duration<double, std::ratio<3600>>(billed.active).count();
    Money cost = app ? cost_between(e, *app, since, now) : Money{};
    for (auto* sum : {&teams[e.team.empty() ? "(none)" : e.team.str()], &users["@" + e.owner.str()]}) {
      sum->hours += hours;
      sum->cost += cost;
      sum->envs++;
    }
  }
  if (teams.empty()) return answer("No usage in the last " + format_duration(window) + (cmd.team ? " for team " + cmd.team->str() : "") + ".");
  auto fmt_hours = [](double h) {
    std::ostringstream o;
    o.precision(1);
    o << std::fixed << h;
    return o.str();
  };
  std::vector<std::vector<std::string>> rows{{"TEAM / USER", "ENVS", "ENV-HOURS", "COST"}};
  for (const auto& [t, s] : teams) rows.push_back({"team " + t, std::to_string(s.envs), fmt_hours(s.hours), format_money(s.cost)});
  for (const auto& [u, s] : users) rows.push_back({u, std::to_string(s.envs), fmt_hours(s.hours), format_money(s.cost)});
  Message m = answer("Usage over the last " + format_duration(window));
  m.code = split_lines(render_table(rows));
  return m;
}

Message Bot::cmd_help(const Command& cmd) const {
  if (cmd.topic) {
    Message m = answer(std::string(usage_of(*cmd.topic)), summary_of(*cmd.topic));
    for (const auto& ex : examples_of(*cmd.topic)) m.code.push_back(ex);
    return m;
  }
  Message m = answer("runbot: per-PR environments on Kubernetes",
                     "Type a command (in chat: `/ephemeral <command>` or `@runbot <command>`). `help <command>` shows examples.");
  std::vector<std::vector<std::string>> rows;
  for (Verb v : listed_verbs()) rows.push_back({usage_of(v), summary_of(v)});
  if (settings_.demo) rows.push_back({usage_of(Verb::simulate), summary_of(Verb::simulate)});
  m.code = split_lines(render_table(rows));
  std::string apps;
  for (const auto& [name, a] : settings_.apps) apps += (apps.empty() ? "" : ", ") + name.str();
  m.fields.push_back({"Apps", apps.empty() ? "none configured" : apps});
  return m;
}

Message Bot::cmd_simulate(const Command& cmd) {
  if (!settings_.demo || !hooks_.simulate_spot) {
    return refuse("`simulate` works only in the demo (`runbot demo`)");
  }
  auto id = hooks_.simulate_spot(*cmd.node);
  if (!id) return refuse_with_usage(id.error().message, Verb::simulate);
  return answer("Simulating a spot interruption of " + cmd.node->str(),
                "An aws-node-termination-handler notice (" + *id +
                    ") goes to the cluster-events topic; affected threads will hear of it.");
}

}  // namespace runbot::bot
