#pragma once
// FakeGitHub: a loopback GitHub REST API for the github-dispatch provisioner backend (one
// FakeHttpsServer, 127.0.0.1, port 0, TestCa certificate), plus the other direction: GitHub's
// signed `workflow_run` webhooks sent to runbot's own (plain-HTTP) endpoint.
//
//   POST /repos/{owner}/{repo}/dispatches                  → 204 (no body)
//   POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel → 202 {}
// A repository other than repository() answers 404 {"message":"Not Found"} (what GitHub says when
// the token cannot see it). fail_next() makes the next dispatches answer chosen statuses first.
//
// Protocol checks append to `problems` (tests assert it stays empty): Authorization other than
// "Bearer <token()>", Accept other than application/vnd.github+json, X-GitHub-Api-Version other
// than 2022-11-28, User-Agent missing, a dispatch without Content-Type application/json, a body
// that is not a JSON object, event_type missing or over 100 characters, client_payload not an
// object or with more than 10 top-level properties, an unknown route or method.
//
// Webhooks: send_workflow_run() POSTs {"action", "workflow_run": {id, name, display_title, event,
// status, conclusion, html_url, run_number}, "repository": {"full_name"}, "sender"} with
// X-GitHub-Event: workflow_run, X-GitHub-Delivery and X-Hub-Signature-256 = sha256=<hex
// HMAC-SHA256(secret, body)>; send() posts any body with chosen headers.
//
// Ownership and executor: borrows an io_context; every method must be called on its thread.
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/fake_https_server.h"
#include "tests/support/tls_test_ca.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace runbot::testing {

struct GithubDispatch {
  std::string repository;  // "owner/name" from the path
  std::string event_type;
  nlohmann::json client_payload;
  int status = 0;  // what the fake answered
};

struct GithubCancel {
  std::string repository;
  std::int64_t run_id = 0;
};

// One workflow run as GitHub's workflow_run webhook describes it.
struct WorkflowRun {
  std::int64_t id = 0;
  std::string name = "Preview environment";
  std::string display_title;
  std::string event = "repository_dispatch";
  std::string status;      // empty: derived from the action (queued, in_progress, completed)
  std::string conclusion;  // "" while running (sent as null)
  std::string html_url;    // default: https://github.com/<repo>/actions/runs/<id>
};

class FakeGitHub {
 public:
  FakeGitHub(boost::asio::io_context& io, const TestCa& ca, std::string repository,
             std::string token);
  ~FakeGitHub();
  FakeGitHub(const FakeGitHub&) = delete;
  FakeGitHub& operator=(const FakeGitHub&) = delete;

  std::string url() const;  // https://127.0.0.1:<port>: the backend's api_url
  const std::string& repository() const { return repository_; }
  const std::string& token() const { return token_; }

  // The next dispatches answer these statuses (with a GitHub error body) before answering 204.
  void fail_next(std::vector<int> statuses) { failures_.insert(failures_.end(), statuses.begin(), statuses.end()); }

  std::vector<GithubDispatch> dispatches;
  std::vector<GithubCancel> cancels;
  std::vector<std::string> problems;

  // POSTs a signed workflow_run webhook for `run` with `action` to `url` (runbot's endpoint);
  // `done(status, body)` gets runbot's answer.
  void send_workflow_run(const std::string& url, const std::string& secret,
                         const std::string& action, WorkflowRun run,
                         std::function<void(int, std::string)> done);
  // POSTs `body` with `headers` as given (for bad signatures, other events, broken JSON).
  void send(const std::string& url, std::vector<std::pair<std::string, std::string>> headers,
            std::string body, std::function<void(int, std::string)> done);
  // The JSON body send_workflow_run() would POST.
  nlohmann::json workflow_run_body(const std::string& action, const WorkflowRun& run) const;

 private:
  FakeHttpResponse handle(const FakeHttpRequest& r);
  void check_headers(const FakeHttpRequest& r);

  boost::asio::io_context& io_;
  std::string repository_;
  std::string token_;
  std::deque<int> failures_;
  int deliveries_ = 0;
  std::unique_ptr<FakeHttpsServer> server_;
};

}  // namespace runbot::testing
