#include "deploy/github_dispatch_backend.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "adapters/common/https_client.h"
#include "adapters/common/secrets.h"
#include "adapters/common/tls_context.h"
#include "adapters/common/url.h"
#include "deploy/job_support.h"

namespace runbot::deploy {

using nlohmann::json;

std::string github_signature(const std::string& secret, const std::string& body) {
  return "sha256=" + common::hmac_sha256_hex(secret, body);
}

namespace {

bool same_signature(const std::string& got, const std::string& want) {
  return common::constant_time_equal(got, want);
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool valid_repository(const std::string& r) {
  auto slash = r.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == r.size()) return false;
  if (r.find('/', slash + 1) != std::string::npos) return false;
  return std::all_of(r.begin(), r.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '/';
  });
}

// GitHub's error bodies are {"message": "...", "documentation_url": "..."}.
std::string github_message(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("message") || !j["message"].is_string()) return {};
  std::string m = j["message"].get<std::string>();
  if (m.size() > 200) m = m.substr(0, 200) + "…";
  return m;
}

std::string str_field(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

// The words of a run's display title, without surrounding punctuation: "runbot job-1 (front-end)"
// → runbot, job-1, front-end.
std::vector<std::string> title_words(const std::string& title) {
  std::vector<std::string> out;
  std::string word;
  auto flush = [&] {
    const std::string_view trim = "()[]{}<>,;:.'\"`";
    size_t b = word.find_first_not_of(trim);
    size_t e = word.find_last_not_of(trim);
    if (b != std::string::npos) out.push_back(word.substr(b, e - b + 1));
    word.clear();
  };
  for (char c : title) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      flush();
    } else {
      word += c;
    }
  }
  flush();
  return out;
}

common::HttpResponse text(int status, std::string body) {
  return common::HttpResponse{status, "text/plain; charset=utf-8", std::move(body) + "\n", {}};
}

}  // namespace

// One job handed to GitHub. Shared by the RunningJob handle, the pending HTTP callbacks and the
// Impl's table of live jobs.
struct GhJob {
  bot::Job job;
  bot::AppSpec app;
  JobObserver observer;
  std::string event_type;
  bot::TimePoint deadline{};
  int attempts = 0;
  bool in_flight = false;     // a dispatch request is on its way
  bool dispatched = false;    // GitHub accepted the dispatch
  bool cancelling = false;    // cancel() was called
  bool finished = false;      // on_done ran (or the handle is gone)
  std::string last_error;     // why the last dispatch attempt failed
  std::optional<std::int64_t> run_id;
  std::string run_url;
  std::string workflow;
  std::string last_action;
  bot::TimerId timeout_timer = 0;
  bot::TimerId retry_timer = 0;
  bot::TimerId deferred_timer = 0;
};

struct GithubDispatchBackend::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::io_context& io, bot::Clock& c, GithubDispatchSettings s,
       std::shared_ptr<common::TlsContext> tls)
      : clock(c), settings(std::move(s)), http(io, std::move(tls)) {}

  ~Impl() {
    for (auto& [id, job] : jobs) cancel_timers(*job);
    for (auto& [id, timer] : orphans) clock.cancel(timer);
  }

  bot::Clock& clock;
  GithubDispatchSettings settings;
  common::HttpsClient http;
  std::map<std::string, std::shared_ptr<GhJob>> jobs;  // live jobs by job id
  // Jobs that ended before their run was known: cancel the run when GitHub reports it. The value
  // is the timer that forgets the entry after `timeout`.
  std::map<std::string, bot::TimerId> orphans;
  GithubDispatchStats stats;

  std::vector<std::pair<std::string, std::string>> headers() const {
    return {{"Authorization", "Bearer " + settings.token},
            {"Accept", "application/vnd.github+json"},
            {"X-GitHub-Api-Version", "2022-11-28"}};
  }

  std::string repo_url() const { return settings.api_url + "/repos/" + settings.repository; }

  void cancel_timers(GhJob& j) {
    for (bot::TimerId* t : {&j.timeout_timer, &j.retry_timer, &j.deferred_timer}) {
      if (*t) clock.cancel(*t);
      *t = 0;
    }
  }

  json payload(const GhJob& j) const {
    const bot::Job& job = j.job;
    json values = json::object();
    for (const auto& [k, v] : job.values) values[k] = v;
    const bot::Duration ttl = ttl_for(job, j.app);
    json ttl_info = {
        {"seconds", std::chrono::duration_cast<std::chrono::seconds>(ttl).count()},
        {"janitor_ttl", janitor_ttl(ttl)}};
    if (auto expires = expires_for(job, j.app)) {
      ttl_info["expires_at"] = rfc3339_seconds(*expires);
      ttl_info["janitor_expires"] = janitor_expires(*expires);
    }
    // At most 10 top-level properties (GitHub's limit): the rest is nested.
    return {{"job_id", job.id.str()},
            {"verb", bot::to_string(job.verb)},
            {"env", job.env.str()},
            {"app", job.app.str()},
            {"pr", job.pr},
            {"namespace", namespace_for(job, j.app)},
            {"image", job.image},
            {"requested_by", job.requested_by.str()},
            {"values", std::move(values)},
            {"ttl", std::move(ttl_info)}};
  }

  std::shared_ptr<GhJob> start(const bot::Job& job, const bot::AppSpec& app, JobObserver observer) {
    auto j = std::make_shared<GhJob>();
    j->job = job;
    j->app = app;
    j->observer = std::move(observer);
    j->event_type = settings.event_type_prefix + bot::to_string(job.verb);
    j->deadline = clock.now() + settings.timeout;
    std::weak_ptr<Impl> weak = weak_from_this();
    std::weak_ptr<GhJob> weak_job = j;
    if (jobs.count(job.id.str())) {
      // The provisioner never runs one job id twice; refuse rather than mix two jobs' webhooks.
      j->deferred_timer = clock.call_at(clock.now(), [weak, weak_job] {
        auto self = weak.lock();
        auto jj = weak_job.lock();
        if (!self || !jj) return;
        jj->deferred_timer = 0;
        JobOutcome o;
        o.reason = "job " + jj->job.id.str() + " is already running on this provisioner";
        self->finish(jj, std::move(o), /*forget=*/false);
      });
      return j;
    }
    jobs[job.id.str()] = j;
    orphans.erase(job.id.str());
    j->timeout_timer = clock.call_at(j->deadline, [weak, weak_job] {
      auto self = weak.lock();
      auto jj = weak_job.lock();
      if (self && jj) self->on_timeout(jj);
    });
    // Sent from the clock's next turn: no callback may run inside start().
    j->deferred_timer = clock.call_at(clock.now(), [weak, weak_job] {
      auto self = weak.lock();
      auto jj = weak_job.lock();
      if (!self || !jj) return;
      jj->deferred_timer = 0;
      self->dispatch(jj);
    });
    return j;
  }

  void dispatch(const std::shared_ptr<GhJob>& j) {
    if (j->finished) return;
    ++j->attempts;
    ++stats.dispatches_sent;
    j->in_flight = true;
    common::HttpClientRequest r;
    r.method = "POST";
    r.url = repo_url() + "/dispatches";
    r.headers = headers();
    r.headers.emplace_back("Content-Type", "application/json");
    r.body = json{{"event_type", j->event_type}, {"client_payload", payload(*j)}}.dump(
        -1, ' ', false, json::error_handler_t::replace);
    r.timeout = settings.request_timeout;
    log().info("github dispatch job={} repository={} event_type={} attempt={}", j->job.id.str(),
               settings.repository, j->event_type, j->attempts);
    std::weak_ptr<Impl> weak = weak_from_this();
    http.request(std::move(r), [weak, j](bot::Result<common::HttpClientResponse> res) {
      if (auto self = weak.lock()) self->on_dispatched(j, std::move(res));
    });
  }

  void on_dispatched(const std::shared_ptr<GhJob>& j, bot::Result<common::HttpClientResponse> res) {
    j->in_flight = false;
    if (j->finished) return;
    const std::string& repo = settings.repository;
    bool retry = false;
    std::chrono::milliseconds delay = settings.retry_backoff * (1 << std::min(j->attempts - 1, 10));
    std::string why;
    if (!res) {
      why = res.error().message;
      retry = res.error().is_retryable();
    } else {
      const int status = res->status;
      if (status >= 200 && status < 300) {
        j->dispatched = true;
        log().info("github dispatch accepted job={} repository={} status={}", j->job.id.str(), repo,
                   status);
        // A webhook may have overtaken this answer: then the run's stage is already newer.
        if (j->observer.on_stage && !j->run_id) {
          j->observer.on_stage("dispatch", 0, 0,
                               "sent " + j->event_type + " to " + repo +
                                   ", waiting for its workflow to start");
        }
        return;
      }
      const std::string message = github_message(res->body);
      const std::string detail = message.empty() ? "" : ": " + message;
      const std::string retry_after = res->header("retry-after");
      const bool rate_limited =
          status == 429 ||
          (status == 403 && (res->header("x-ratelimit-remaining") == "0" || !retry_after.empty()));
      if (rate_limited || status >= 500) {
        retry = true;
        why = "GitHub answered " + std::to_string(status) + detail;
        if (!retry_after.empty()) {
          try {
            delay = std::max(delay, std::chrono::milliseconds(std::stoll(retry_after) * 1000));
          } catch (const std::exception&) {
          }
        }
      } else if (status == 401) {
        why = "GitHub rejected the token dispatching to " + repo + " (401 Unauthorized" + detail +
              ")";
      } else if (status == 403) {
        why = "the token may not dispatch to " + repo +
              " (403 Forbidden: it needs write access to the repository's contents" + detail + ")";
      } else if (status == 404) {
        why = "repository " + repo + " not found or the token cannot see it (404 Not Found)";
      } else if (status == 422) {
        why = "GitHub refused the dispatch to " + repo + " (422 Unprocessable Entity" + detail + ")";
      } else {
        why = "GitHub answered " + std::to_string(status) + " to the dispatch to " + repo + detail;
      }
    }
    j->last_error = why;
    if (retry && j->attempts < settings.dispatch_attempts && clock.now() + delay < j->deadline) {
      log().warn("github dispatch failed, retrying job={} repository={} attempt={} in={} error=\"{}\"",
                 j->job.id.str(), repo, j->attempts, describe_duration(delay), why);
      if (j->observer.on_log) {
        j->observer.on_log("dispatch to " + repo + " failed (" + why + "); retrying in " +
                           describe_duration(delay));
      }
      std::weak_ptr<Impl> weak = weak_from_this();
      std::weak_ptr<GhJob> weak_job = j;
      j->retry_timer = clock.call_after(delay, [weak, weak_job] {
        auto self = weak.lock();
        auto jj = weak_job.lock();
        if (!self || !jj) return;
        jj->retry_timer = 0;
        self->dispatch(jj);
      });
      return;
    }
    JobOutcome o;
    o.reason = retry ? "could not send repository_dispatch to " + repo + " after " +
                           std::to_string(j->attempts) + " attempt" +
                           (j->attempts == 1 ? "" : "s") + ": " + why
                     : why;
    finish(j, std::move(o));
  }

  void on_timeout(const std::shared_ptr<GhJob>& j) {
    j->timeout_timer = 0;
    if (j->finished) return;
    JobOutcome o;
    o.timed_out = true;
    o.reason = "no result from GitHub within " + describe_duration(settings.timeout);
    if (!j->dispatched && !j->last_error.empty()) {
      o.reason += " (the dispatch was not accepted: " + j->last_error + ")";
    }
    if (!j->run_url.empty()) o.log_tail.push_back(j->run_url);
    stop_run(*j);
    finish(j, std::move(o));
  }

  // The job ends before its run completed: cancel the run now if it is known, or when it is.
  void stop_run(const GhJob& j) {
    if (j.run_id) {
      send_cancel(j.job.id.str(), *j.run_id, nullptr);
    } else if (j.dispatched || j.in_flight) {
      remember_orphan(j.job.id.str());
    }
  }

  void remember_orphan(const std::string& job_id) {
    if (auto it = orphans.find(job_id); it != orphans.end()) clock.cancel(it->second);
    std::weak_ptr<Impl> weak = weak_from_this();
    orphans[job_id] = clock.call_after(settings.timeout, [weak, job_id] {
      if (auto self = weak.lock()) self->orphans.erase(job_id);
    });
  }

  void send_cancel(const std::string& job_id, std::int64_t run_id,
                   std::function<void(std::string)> done) {
    ++stats.runs_cancelled;
    common::HttpClientRequest r;
    r.method = "POST";
    r.url = repo_url() + "/actions/runs/" + std::to_string(run_id) + "/cancel";
    r.headers = headers();
    r.timeout = settings.request_timeout;
    log().info("github cancel run job={} repository={} run={}", job_id, settings.repository,
               run_id);
    const std::string repo = settings.repository;
    http.request(std::move(r), [job_id, run_id, repo, done = std::move(done)](
                                   bot::Result<common::HttpClientResponse> res) {
      std::string result;
      if (!res) {
        result = "cancel request failed: " + res.error().message;
      } else if (res->status == 202) {
        result = "GitHub run " + std::to_string(run_id) + " cancelled";
      } else {
        const std::string m = github_message(res->body);
        result = "cancelling GitHub run " + std::to_string(run_id) + " answered " +
                 std::to_string(res->status) + (m.empty() ? "" : ": " + m);
      }
      if (!res || res->status != 202) {
        log().warn("github cancel run failed job={} repository={} run={} result=\"{}\"", job_id,
                   repo, run_id, result);
      }
      if (done) done(result);
    });
  }

  void cancel(const std::shared_ptr<GhJob>& j) {
    if (j->finished || j->cancelling) return;
    j->cancelling = true;
    log().info("github job cancel job={} run={}", j->job.id.str(),
               j->run_id ? std::to_string(*j->run_id) : "unknown");
    std::weak_ptr<Impl> weak = weak_from_this();
    if (j->run_id) {
      send_cancel(j->job.id.str(), *j->run_id, [weak, j](std::string result) {
        auto self = weak.lock();
        if (!self || j->finished) return;
        JobOutcome o;
        o.cancelled = true;
        o.reason = "cancelled; " + result;
        if (!j->run_url.empty()) o.log_tail.push_back(j->run_url);
        self->finish(j, std::move(o));
      });
      return;
    }
    std::string how;
    if (j->retry_timer) {
      clock.cancel(j->retry_timer);
      j->retry_timer = 0;
      how = "cancelled before the dispatch was sent";
    } else if (!j->dispatched && !j->in_flight) {
      how = "cancelled before the dispatch was sent";
    } else {
      remember_orphan(j->job.id.str());
      how = "cancelled; its GitHub run will be cancelled when GitHub reports it";
    }
    std::weak_ptr<GhJob> weak_job = j;
    if (j->deferred_timer) clock.cancel(j->deferred_timer);
    j->deferred_timer = clock.call_at(clock.now(), [weak, weak_job, how] {
      auto self = weak.lock();
      auto jj = weak_job.lock();
      if (!self || !jj) return;
      jj->deferred_timer = 0;
      JobOutcome o;
      o.cancelled = true;
      o.reason = how;
      self->finish(jj, std::move(o));
    });
  }

  // The handle is gone: no more callbacks.
  void detach(const std::shared_ptr<GhJob>& j) {
    if (j->finished) return;
    j->finished = true;
    j->observer = {};
    cancel_timers(*j);
    if (auto it = jobs.find(j->job.id.str()); it != jobs.end() && it->second == j) jobs.erase(it);
  }

  void finish(const std::shared_ptr<GhJob>& j, JobOutcome o, bool forget = true) {
    if (j->finished) return;
    j->finished = true;
    cancel_timers(*j);
    if (forget) {
      if (auto it = jobs.find(j->job.id.str()); it != jobs.end() && it->second == j) jobs.erase(it);
    }
    log().info("github job finished job={} success={} reason=\"{}\"", j->job.id.str(), o.success,
               o.reason);
    auto done = std::move(j->observer.on_done);
    j->observer = {};
    if (done) done(o);
  }

  common::HttpResponse on_webhook(const common::HttpRequest& r) {
    auto header = [&r](const char* name) -> std::string {
      auto it = r.headers.find(name);
      return it == r.headers.end() ? std::string{} : it->second;
    };
    const std::string delivery = header("x-github-delivery");
    if (settings.webhook_secret.empty() ||
        !same_signature(header("x-hub-signature-256"),
                        github_signature(settings.webhook_secret, r.body))) {
      ++stats.webhooks_rejected;
      log().warn("github webhook rejected remote={} delivery={} reason=\"bad or missing "
                 "X-Hub-Signature-256\"",
                 r.remote, delivery);
      return text(401, "missing or wrong X-Hub-Signature-256");
    }
    const std::string event = header("x-github-event");
    if (event != "workflow_run") {
      ++stats.webhooks_ignored;
      log().debug("github webhook ignored delivery={} event={}", delivery, event);
      return common::HttpResponse{204, "text/plain; charset=utf-8", "", {}};
    }
    json body = json::parse(r.body, nullptr, false);
    if (!body.is_object() || !body.contains("workflow_run") || !body["workflow_run"].is_object() ||
        !body["workflow_run"].contains("id") || !body["workflow_run"]["id"].is_number_integer()) {
      ++stats.webhooks_rejected;
      log().warn("github webhook malformed remote={} delivery={}", r.remote, delivery);
      return text(400, "not a workflow_run event (a JSON object with workflow_run.id)");
    }
    const json& run = body["workflow_run"];
    const std::string action = str_field(body, "action");
    const std::int64_t run_id = run["id"].get<std::int64_t>();
    std::string repo;
    if (body.contains("repository") && body["repository"].is_object()) {
      repo = str_field(body["repository"], "full_name");
    }
    if (str_field(run, "event") != "repository_dispatch" || !iequals(repo, settings.repository)) {
      ++stats.webhooks_ignored;
      log().debug("github webhook ignored delivery={} run={} repository={} event={}", delivery,
                  run_id, repo, str_field(run, "event"));
      return common::HttpResponse{204, "text/plain; charset=utf-8", "", {}};
    }
    std::shared_ptr<GhJob> j;
    std::string orphan;
    for (const auto& word : title_words(str_field(run, "display_title"))) {
      if (auto it = jobs.find(word); it != jobs.end()) {
        j = it->second;
        break;
      }
      if (orphans.count(word)) orphan = word;
    }
    if (!j && !orphan.empty()) {
      clock.cancel(orphans[orphan]);
      orphans.erase(orphan);
      ++stats.webhooks_applied;
      if (action != "completed") {
        send_cancel(orphan, run_id, nullptr);
        return text(200, "cancelling run " + std::to_string(run_id) + " of ended job " + orphan);
      }
      return text(200, "run " + std::to_string(run_id) + " of ended job " + orphan + " is over");
    }
    if (!j) {
      ++stats.webhooks_unknown;
      log().debug("github webhook for no job here delivery={} run={} title=\"{}\"", delivery,
                  run_id, str_field(run, "display_title"));
      return text(202, "no job of this provisioner in the run's title");
    }
    ++stats.webhooks_applied;
    apply(j, action, run, run_id);
    return text(200, "job " + j->job.id.str());
  }

  void apply(const std::shared_ptr<GhJob>& j, const std::string& action, const json& run,
             std::int64_t run_id) {
    const bool new_run = !j->run_id || *j->run_id != run_id;
    j->run_id = run_id;
    j->dispatched = true;  // the webhook may overtake the dispatch's answer
    if (auto url = str_field(run, "html_url"); !url.empty()) j->run_url = url;
    if (auto name = str_field(run, "name"); !name.empty()) j->workflow = name;
    const std::string workflow = j->workflow.empty() ? "workflow" : j->workflow;
    log().info("github workflow run job={} run={} action={} conclusion={}", j->job.id.str(), run_id,
               action, str_field(run, "conclusion"));
    if (new_run && j->observer.on_log && !j->run_url.empty()) {
      j->observer.on_log("GitHub run: " + j->run_url);
    }
    if (j->cancelling) {
      // cancel() is waiting for its cancel request; a run that ends meanwhile settles the job.
      if (action != "completed") return;
      JobOutcome o;
      if (str_field(run, "conclusion") == "success") {
        o.success = true;
        report_url(*j);
      } else {
        o.cancelled = true;
        o.reason = "cancelled; GitHub workflow " + workflow + " concluded " +
                   str_field(run, "conclusion");
      }
      return finish(j, std::move(o));
    }
    if (action == "requested" || action == "in_progress") {
      if (action == j->last_action) return;
      j->last_action = action;
      if (j->observer.on_stage) {
        j->observer.on_stage("workflow", 0, 0,
                             "GitHub workflow " + workflow +
                                 (action == "requested" ? " queued: " : " running: ") + j->run_url);
      }
      return;
    }
    if (action != "completed") return;
    const std::string conclusion = str_field(run, "conclusion");
    JobOutcome o;
    if (conclusion == "success") {
      o.success = true;
      report_url(*j);
    } else {
      o.reason = "GitHub workflow " + workflow + " concluded " +
                 (conclusion.empty() ? "without a conclusion" : conclusion) + ": " + j->run_url;
      o.log_tail.push_back(j->run_url);
    }
    finish(j, std::move(o));
  }

  void report_url(GhJob& j) {
    if (j.app.url_template.empty() || !j.observer.on_url) return;
    j.observer.on_url(expand_template(j.app.url_template, j.job));
  }
};

namespace {

class GhRunning final : public RunningJob {
 public:
  GhRunning(std::weak_ptr<GithubDispatchBackend::Impl> impl, std::shared_ptr<GhJob> job)
      : impl_(std::move(impl)), job_(std::move(job)) {}
  ~GhRunning() override {
    if (auto impl = impl_.lock()) impl->detach(job_);
  }
  void cancel() override {
    if (auto impl = impl_.lock()) impl->cancel(job_);
  }

 private:
  std::weak_ptr<GithubDispatchBackend::Impl> impl_;
  std::shared_ptr<GhJob> job_;
};

}  // namespace

bot::Result<std::unique_ptr<GithubDispatchBackend>> GithubDispatchBackend::create(
    boost::asio::io_context& io, bot::Clock& clock, GithubDispatchSettings settings) {
  std::vector<std::string> problems;
  while (!settings.api_url.empty() && settings.api_url.back() == '/') settings.api_url.pop_back();
  auto url = common::parse_url(settings.api_url);
  if (!url || url->scheme != "https") problems.push_back("api_url must be an https:// URL");
  if (!valid_repository(settings.repository)) {
    problems.push_back("repository must be owner/name, got '" + settings.repository + "'");
  }
  if (settings.token.empty()) problems.push_back("token is required");
  if (settings.webhook_secret.empty()) problems.push_back("webhook_secret is required");
  if (settings.webhook_path.empty() || settings.webhook_path.front() != '/') {
    problems.push_back("webhook_path must start with /");
  }
  if (settings.timeout <= std::chrono::milliseconds::zero()) {
    problems.push_back("timeout must be positive");
  }
  if (settings.dispatch_attempts < 1) settings.dispatch_attempts = 1;
  auto tls = common::TlsContext::create(settings.ca_file);
  if (!tls) problems.push_back("ca_file: " + tls.error().message);
  if (!problems.empty()) {
    std::string all;
    for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
    return bot::make_error(bot::Errc::invalid_argument, "github-dispatch: " + all);
  }
  auto impl = std::make_shared<Impl>(io, clock, std::move(settings), std::move(*tls));
  return std::unique_ptr<GithubDispatchBackend>(new GithubDispatchBackend(std::move(impl)));
}

GithubDispatchBackend::GithubDispatchBackend(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

GithubDispatchBackend::~GithubDispatchBackend() = default;

std::unique_ptr<RunningJob> GithubDispatchBackend::start(const bot::Job& job,
                                                         const bot::AppSpec& app,
                                                         JobObserver observer) {
  auto j = impl_->start(job, app, std::move(observer));
  return std::make_unique<GhRunning>(impl_, std::move(j));
}

void GithubDispatchBackend::route(common::HttpServer& server) {
  server.route("POST", impl_->settings.webhook_path,
               [weak = std::weak_ptr<Impl>(impl_)](const common::HttpRequest& r) {
                 if (auto impl = weak.lock()) return impl->on_webhook(r);
                 return text(503, "runbot's github-dispatch backend is gone");
               });
}

common::HttpResponse GithubDispatchBackend::handle_webhook(const common::HttpRequest& request) {
  return impl_->on_webhook(request);
}

GithubDispatchStats GithubDispatchBackend::stats() const {
  return impl_->stats;
}

}  // namespace runbot::deploy
