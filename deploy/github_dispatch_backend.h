#pragma once
// GithubDispatchBackend: executes a job by asking a GitHub repository's workflow to do it, the way
// the original per-PR preview setup worked, and learns the outcome from GitHub's webhooks.
//
//   start():  POST {api_url}/repos/{owner}/{repo}/dispatches
//             {"event_type": "<prefix><verb>", "client_payload": {job_id, verb, env, app, pr,
//              namespace, image, requested_by, values{--set}, ttl{seconds, expires_at,
//              janitor_ttl, janitor_expires}}}                       (10 top-level keys: GitHub's
//             limit) → 204. 401/403/404/422 fail the job at once with a reason naming the
//             repository and status; 429, 5xx, a rate-limit 403 and network errors are retried
//             with exponential backoff (Retry-After honoured) while the job's timeout allows.
//   webhook:  POST {webhook_path} from GitHub, `workflow_run` events only, signed with
//             X-Hub-Signature-256 (HMAC-SHA256 of the raw body with webhook_secret, checked in
//             constant time before anything is parsed). The run belongs to a job when
//             workflow_run.event is "repository_dispatch", the repository is ours and one
//             whitespace-separated word of workflow_run.display_title is the job id (the workflow
//             sets `run-name: runbot ${{ github.event.client_payload.job_id }}`).
//             requested / in_progress → a "workflow" stage with the run's URL; completed → success
//             (with the app's url_template expanded as the environment's URL) or a failure
//             "GitHub workflow <name> concluded <conclusion>: <html_url>".
//   cancel(): with the run known, POST .../actions/runs/{id}/cancel (202 expected), then the job
//             completes as cancelled; with the run not known yet, the job completes as cancelled at
//             once and the run is cancelled when its first webhook arrives (remembered for
//             `timeout`). A dispatch still waiting for a retry is simply not sent.
//   timeout:  no `completed` webhook within `timeout` of start() → failure "no result from GitHub
//             within <timeout>" (the run is cancelled as above).
//
// Webhook answers: 401 bad or missing signature (logged without the body), 400 a body that is not
// a workflow_run JSON object, 204 other events (ping, …), 202 a run of no job here (another
// provisioner replica may own it), 200 a run applied to a job.
//
// Threading and ownership: every method, HTTP callback, webhook and clock callback runs on the
// io_context thread that drives the HttpsClient, the HttpServer and the clock (the provisioner's).
// The io_context and the clock must outlive the backend; the HttpServer route holds only a weak
// reference, so a request after the backend is gone gets 503. Destroying a RunningJob before it
// finished stops its timers and suppresses its callbacks (the workflow itself is not cancelled).
// The token and the webhook secret never reach a log; errors are reported through on_done.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "adapters/common/http_server.h"
#include "bot/clock.h"
#include "bot/result.h"
#include "deploy/backend.h"

namespace boost::asio {
class io_context;
}

namespace runbot::deploy {

struct GithubDispatchSettings {
  std::string api_url = "https://api.github.com";
  std::string repository;                 // "owner/name"
  std::string token;                      // sent as "Authorization: Bearer <token>"
  std::string event_type_prefix = "runbot-";
  std::string webhook_secret;             // the repository webhook's secret
  std::string webhook_path = "/hooks/github";
  std::string ca_file;                    // trust anchors for api_url; empty = the system's
  std::chrono::milliseconds timeout{std::chrono::minutes(30)};  // dispatch → completed
  std::chrono::milliseconds request_timeout{std::chrono::seconds(15)};  // one HTTP request
  int dispatch_attempts = 5;  // tries of the dispatch request on retryable failures
  std::chrono::milliseconds retry_backoff{std::chrono::seconds(2)};  // doubled per retry
};

// Counters for tests and logs.
struct GithubDispatchStats {
  std::uint64_t dispatches_sent = 0;     // dispatch requests, retries included
  std::uint64_t webhooks_applied = 0;    // workflow_run events that reached a job
  std::uint64_t webhooks_unknown = 0;    // workflow_run events of no job here
  std::uint64_t webhooks_ignored = 0;    // other events, other repositories, non-dispatch runs
  std::uint64_t webhooks_rejected = 0;   // bad signature or malformed body
  std::uint64_t runs_cancelled = 0;      // cancel requests sent
};

class GithubDispatchBackend final : public Backend {
 public:
  // Checks the settings (https api_url, owner/name repository, token, secret, a readable ca_file)
  // and builds the HTTPS client; errors are invalid_argument naming every problem.
  static bot::Result<std::unique_ptr<GithubDispatchBackend>> create(
      boost::asio::io_context& io, bot::Clock& clock, GithubDispatchSettings settings);
  ~GithubDispatchBackend() override;
  GithubDispatchBackend(const GithubDispatchBackend&) = delete;
  GithubDispatchBackend& operator=(const GithubDispatchBackend&) = delete;

  std::unique_ptr<RunningJob> start(const bot::Job& job, const bot::AppSpec& app,
                                    JobObserver observer) override;
  std::string kind() const override { return "github-dispatch"; }

  // Registers POST settings.webhook_path on `server`.
  void route(common::HttpServer& server);
  // The webhook endpoint itself (what route() registers).
  common::HttpResponse handle_webhook(const common::HttpRequest& request);

  GithubDispatchStats stats() const;

  struct Impl;

 private:
  explicit GithubDispatchBackend(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

// "sha256=" + lower-case hex HMAC-SHA256 of `body` with `secret`: GitHub's X-Hub-Signature-256.
std::string github_signature(const std::string& secret, const std::string& body);

}  // namespace runbot::deploy
