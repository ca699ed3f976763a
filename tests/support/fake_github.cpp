#include "tests/support/fake_github.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <cstdio>

namespace runbot::testing {

using nlohmann::json;

namespace {

// Computed here rather than with runbot's own helper, so a mistake there cannot hide.
std::string hmac_sha256_hex(const std::string& key, const std::string& data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac.data(), &len);
  std::string out;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", mac[i]);
    out += buf;
  }
  return out;
}

std::string header(const FakeHttpRequest& r, const std::string& name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? std::string{} : it->second;
}

std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

FakeHttpResponse error(int status, const std::string& message) {
  return FakeHttpResponse{
      status, "application/json; charset=utf-8",
      json{{"message", message}, {"documentation_url", "https://docs.github.com/rest"}}.dump(), {}};
}

}  // namespace

FakeGitHub::FakeGitHub(boost::asio::io_context& io, const TestCa& ca, std::string repository,
                       std::string token)
    : io_(io), repository_(std::move(repository)), token_(std::move(token)) {
  server_ = std::make_unique<FakeHttpsServer>(
      io, ca, [this](const FakeHttpRequest& r) { return handle(r); });
  server_->start();
}

FakeGitHub::~FakeGitHub() = default;

std::string FakeGitHub::url() const {
  return server_->url();
}

void FakeGitHub::check_headers(const FakeHttpRequest& r) {
  const std::string what = r.method + " " + r.path + ": ";
  if (header(r, "authorization") != "Bearer " + token_) {
    problems.push_back(what + "Authorization is not \"Bearer <token>\"");
  }
  if (header(r, "accept") != "application/vnd.github+json") {
    problems.push_back(what + "Accept is '" + header(r, "accept") + "'");
  }
  if (header(r, "x-github-api-version") != "2022-11-28") {
    problems.push_back(what + "X-GitHub-Api-Version is '" + header(r, "x-github-api-version") + "'");
  }
  if (header(r, "user-agent").empty()) problems.push_back(what + "no User-Agent (GitHub requires one)");
}

FakeHttpResponse FakeGitHub::handle(const FakeHttpRequest& r) {
  // "", "repos", owner, repo, ...
  const auto parts = split(r.path);
  if (parts.size() < 5 || parts[0] != "" || parts[1] != "repos" || r.method != "POST") {
    problems.push_back("unknown route " + r.method + " " + r.path);
    return error(404, "Not Found");
  }
  check_headers(r);
  const std::string repo = parts[2] + "/" + parts[3];
  const bool known = repo == repository_;
  if (parts.size() == 5 && parts[4] == "dispatches") {
    GithubDispatch d;
    d.repository = repo;
    if (header(r, "content-type").rfind("application/json", 0) != 0) {
      problems.push_back("dispatch without Content-Type application/json");
    }
    json body = json::parse(r.body, nullptr, false);
    if (!body.is_object()) {
      problems.push_back("dispatch body is not a JSON object");
    } else {
      if (!body.contains("event_type") || !body["event_type"].is_string()) {
        problems.push_back("dispatch without a string event_type");
      } else {
        d.event_type = body["event_type"].get<std::string>();
        if (d.event_type.empty() || d.event_type.size() > 100) {
          problems.push_back("event_type must be 1 to 100 characters");
        }
      }
      if (body.contains("client_payload")) {
        d.client_payload = body["client_payload"];
        if (!d.client_payload.is_object()) {
          problems.push_back("client_payload is not an object");
        } else if (d.client_payload.size() > 10) {
          problems.push_back("client_payload has " + std::to_string(d.client_payload.size()) +
                             " top-level properties; GitHub allows 10");
        }
      }
    }
    FakeHttpResponse answer{204, "", "", {}};
    if (!known) {
      answer = error(404, "Not Found");
    } else if (!failures_.empty()) {
      const int status = failures_.front();
      failures_.pop_front();
      answer = error(status, status == 422 ? "Invalid request." : "Server Error");
      if (status == 429) answer.headers.emplace_back("Retry-After", "1");
    }
    d.status = answer.status;
    dispatches.push_back(std::move(d));
    return answer;
  }
  if (parts.size() == 8 && parts[4] == "actions" && parts[5] == "runs" && parts[7] == "cancel") {
    if (!known) return error(404, "Not Found");
    GithubCancel c;
    c.repository = repo;
    try {
      c.run_id = std::stoll(parts[6]);
    } catch (const std::exception&) {
      problems.push_back("cancel of a run id that is not a number: " + parts[6]);
      return error(404, "Not Found");
    }
    cancels.push_back(c);
    return FakeHttpResponse{202, "application/json; charset=utf-8", "{}", {}};
  }
  problems.push_back("unknown route " + r.method + " " + r.path);
  return error(404, "Not Found");
}

json FakeGitHub::workflow_run_body(const std::string& action, const WorkflowRun& run) const {
  std::string status = run.status;
  if (status.empty()) {
    status = action == "requested" ? "queued" : action == "in_progress" ? "in_progress" : "completed";
  }
  const std::string html_url =
      !run.html_url.empty()
          ? run.html_url
          : "https://github.com/" + repository_ + "/actions/runs/" + std::to_string(run.id);
  return json{{"action", action},
              {"workflow_run",
               {{"id", run.id},
                {"name", run.name},
                {"display_title", run.display_title},
                {"event", run.event},
                {"status", status},
                {"conclusion", run.conclusion.empty() ? json(nullptr) : json(run.conclusion)},
                {"html_url", html_url},
                {"run_number", 7},
                {"run_attempt", 1},
                {"path", ".github/workflows/preview.yml"}}},
              {"workflow", {{"name", run.name}, {"path", ".github/workflows/preview.yml"}}},
              {"repository", {{"full_name", repository_}, {"private", true}}},
              {"sender", {{"login", "runbot-bot"}, {"type", "User"}}}};
}

void FakeGitHub::send_workflow_run(const std::string& url, const std::string& secret,
                                   const std::string& action, WorkflowRun run,
                                   std::function<void(int, std::string)> done) {
  const std::string body = workflow_run_body(action, run).dump();
  send(url,
       {{"Content-Type", "application/json"},
        {"X-GitHub-Event", "workflow_run"},
        {"X-GitHub-Delivery", "delivery-" + std::to_string(++deliveries_)},
        {"X-Hub-Signature-256", "sha256=" + hmac_sha256_hex(secret, body)},
        {"User-Agent", "GitHub-Hookshot/fake"}},
       body, std::move(done));
}

void FakeGitHub::send(const std::string& url,
                      std::vector<std::pair<std::string, std::string>> headers, std::string body,
                      std::function<void(int, std::string)> done) {
  plain_http_request(io_, "POST", url, std::move(headers), std::move(body), std::move(done));
}

}  // namespace runbot::testing
