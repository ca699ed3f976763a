#include "deploy/exec_backend.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <nlohmann/json.hpp>

#include "deploy/job_support.h"

namespace runbot::deploy {

namespace asio = boost::asio;

namespace {

constexpr size_t kMaxLineBytes = 64 * 1024;
// After the program exits, how long its pipes may stay open (a daemonised grandchild).
constexpr std::chrono::seconds kDrainAfterExit{1};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::string_view next_token(std::string_view& s) {
  s = trim(s);
  size_t end = s.find_first_of(" \t");
  std::string_view tok = s.substr(0, end);
  s = end == std::string_view::npos ? std::string_view{} : s.substr(end);
  return tok;
}

bool parse_fraction(std::string_view tok, int& index, int& count) {
  auto slash = tok.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == tok.size()) return false;
  auto number = [](std::string_view d, int& out) {
    if (d.size() > 6) return false;
    out = 0;
    for (char c : d) {
      if (c < '0' || c > '9') return false;
      out = out * 10 + (c - '0');
    }
    return true;
  };
  return number(tok.substr(0, slash), index) && number(tok.substr(slash + 1), count);
}

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

}  // namespace

ProgressLine parse_progress_line(std::string_view raw) {
  ProgressLine p;
  std::string_view line = raw;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  p.text = std::string(line);
  if (line.rfind("runbot:", 0) != 0) return p;

  std::string_view rest = line;
  std::string_view keyword = next_token(rest);
  if (keyword == "runbot:stage") {
    std::string_view name = next_token(rest);
    if (name.empty()) return p;
    std::string_view after_name = rest;
    int index = 0, count = 0;
    if (parse_fraction(next_token(rest), index, count)) {
      p.index = index;
      p.count = count;
    } else {
      rest = after_name;
    }
    p.type = ProgressLine::Type::stage;
    p.stage = std::string(name);
    p.text = std::string(trim(rest));
  } else if (keyword == "runbot:url") {
    std::string_view url = next_token(rest);
    if (url.empty() || !trim(rest).empty()) return p;
    p.type = ProgressLine::Type::url;
    p.text = std::string(url);
  } else if (keyword == "runbot:node") {
    std::string_view name = next_token(rest);
    if (name.empty()) return p;
    p.node.name = bot::NodeName{std::string(name)};
    for (std::string_view tok = next_token(rest); !tok.empty(); tok = next_token(rest)) {
      auto eq = tok.find('=');
      if (eq == std::string_view::npos) continue;
      auto key = tok.substr(0, eq);
      auto value = tok.substr(eq + 1);
      if (key == "capacity") p.node.capacity = bot::capacity_type_from_string(value);
      if (key == "type") p.node.instance_type = std::string(value);
      if (key == "zone") p.node.zone = std::string(value);
    }
    p.type = ProgressLine::Type::node;
  }
  return p;
}

namespace {

// One child process and everything watching it. Shared by the RunningJob handle and the pending
// asynchronous operations, so it lives until the child is reaped.
class ExecProcess : public std::enable_shared_from_this<ExecProcess> {
 public:
  ExecProcess(asio::io_context& io, const ExecSettings& settings, JobObserver observer)
      : io_(io),
        timeout_(settings.timeout),
        kill_grace_(settings.kill_grace),
        tail_lines_(std::max<size_t>(settings.log_tail_lines, 1)),
        observer_(std::move(observer)),
        out_(io),
        pidfd_(io),
        timeout_timer_(io),
        kill_timer_(io),
        drain_timer_(io) {}

  ~ExecProcess() {
    // Only reached without a reap when the io_context is torn down with the child still alive.
    if (pid_ > 0 && !reaped_) {
      ::kill(-pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }

  void run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
    if (std::string error = spawn(argv, env); !error.empty()) {
      spawn_error_ = std::move(error);
      asio::post(io_, [self = shared_from_this()] { self->finish(); });
      return;
    }
    open_streams_ = 1;
    read(out_, out_buf_);
    pidfd_.async_wait(asio::posix::stream_descriptor::wait_read,
                      [self = shared_from_this()](boost::system::error_code ec) {
                        // Aborted only on teardown; the destructor then kills and reaps.
                        if (ec != asio::error::operation_aborted) self->on_exit();
                      });
    timeout_timer_.expires_after(timeout_);
    timeout_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->reaped_ || self->kill_requested_) return;
      self->timed_out_ = true;
      log().warn("job timed out pid={} after={}", self->pid_, describe_duration(self->timeout_));
      self->terminate();
    });
  }

  void cancel() {
    if (finished_ || reaped_ || kill_requested_ || pid_ <= 0) return;
    cancelled_ = true;
    terminate();
  }

  // The handle is gone: no more callbacks, and the child must not outlive its job.
  void detach() {
    observer_ = {};
    if (finished_) return;
    finished_ = true;
    if (pid_ > 0 && !reaped_) {
      kill_requested_ = true;
      ::kill(-pid_, SIGKILL);
    }
  }

 private:
  std::string spawn(const std::vector<std::string>& argv,
                    const std::map<std::string, std::string>& env) {
    // One pipe for stdout and stderr: the log tail keeps the order the program wrote in.
    int out_pipe[2] = {-1, -1};
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) return std::string("pipe2: ") + std::strerror(errno);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);  // dup2 clears O_CLOEXEC
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 2);

    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(
        &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attr, 0);  // its own group: signals reach helm & co too
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    // A server usually ignores SIGPIPE; ignored dispositions survive exec, scripts expect default.
    sigset_t defaults;
    sigemptyset(&defaults);
    for (int sig :
         {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM}) {
      sigaddset(&defaults, sig);
    }
    posix_spawnattr_setsigdefault(&attr, &defaults);

    std::vector<char*> cargv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    std::vector<std::string> env_strings;
    for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
    std::vector<char*> cenv;
    for (auto& e : env_strings) cenv.push_back(e.data());
    cenv.push_back(nullptr);

    pid_t pid = -1;
    const bool has_slash = argv[0].find('/') != std::string::npos;
    int rc = has_slash
                 ? posix_spawn(&pid, argv[0].c_str(), &actions, &attr, cargv.data(), cenv.data())
                 : posix_spawnp(&pid, argv[0].c_str(), &actions, &attr, cargv.data(), cenv.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(out_pipe[1]);
    if (rc != 0) {
      ::close(out_pipe[0]);
      return "cannot start '" + argv[0] + "': " + std::strerror(rc);
    }
    pid_ = pid;
    out_.assign(out_pipe[0]);

    long fd = ::syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) {
      int e = errno;
      ::kill(-pid, SIGKILL);
      int status = 0;
      ::waitpid(pid, &status, 0);
      reaped_ = true;
      return std::string("cannot watch the process (pidfd_open): ") + std::strerror(e);
    }
    pidfd_.assign(static_cast<int>(fd));
    log().info("job process started pid={} program={}", pid, argv[0]);
    return {};
  }

  void read(asio::posix::stream_descriptor& stream, std::string& buf) {
    asio::async_read_until(
        stream, asio::dynamic_buffer(buf, kMaxLineBytes), '\n',
        [self = shared_from_this(), &stream, &buf](boost::system::error_code ec, size_t n) {
          if (!ec) {
            std::string line = buf.substr(0, n - 1);
            buf.erase(0, n);
            self->on_line(line);
            return self->read(stream, buf);
          }
          if (ec == asio::error::not_found) {  // an over-long line: take what we have
            std::string line;
            line.swap(buf);
            self->on_line(line);
            return self->read(stream, buf);
          }
          if (!buf.empty()) {
            std::string line;
            line.swap(buf);
            self->on_line(line);
          }
          boost::system::error_code ignored;
          stream.close(ignored);
          --self->open_streams_;
          self->maybe_finish();
        });
  }

  void on_line(const std::string& line) {
    if (finished_) return;
    ProgressLine p = parse_progress_line(line);
    switch (p.type) {
      case ProgressLine::Type::stage:
        if (observer_.on_stage) observer_.on_stage(p.stage, p.index, p.count, p.text);
        break;
      case ProgressLine::Type::url:
        if (observer_.on_url) observer_.on_url(p.text);
        break;
      case ProgressLine::Type::node:
        if (observer_.on_node) observer_.on_node(p.node);
        break;
      case ProgressLine::Type::log:
        tail_.push_back(p.text);
        if (tail_.size() > tail_lines_) tail_.pop_front();
        if (observer_.on_log) observer_.on_log(p.text);
        break;
    }
  }

  void terminate() {
    if (pid_ <= 0) return;  // never spawned: kill(-(-1)) would signal init
    kill_requested_ = true;
    ::kill(-pid_, SIGTERM);
    kill_timer_.expires_after(kill_grace_);
    kill_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->reaped_) return;
      log().warn("job ignored SIGTERM, sending SIGKILL pid={}", self->pid_);
      ::kill(-self->pid_, SIGKILL);
    });
  }

  void on_exit() {
    // The exited leader is a zombie until waitpid, so its group id still names our group:
    // kill stragglers of a job we are stopping before reaping.
    if (kill_requested_) ::kill(-pid_, SIGKILL);
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(pid_, &status, 0);
    } while (r < 0 && errno == EINTR);
    reaped_ = true;
    wait_status_ = status;
    boost::system::error_code ignored;
    pidfd_.close(ignored);
    timeout_timer_.cancel();
    kill_timer_.cancel();
    if (open_streams_ > 0) {
      drain_timer_.expires_after(kDrainAfterExit);
      drain_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (ec) return;
        boost::system::error_code ignored2;
        self->out_.close(ignored2);  // the pending read completes with operation_aborted
      });
    }
    maybe_finish();
  }

  void maybe_finish() {
    if (reaped_ && open_streams_ == 0) finish();
  }

  void finish() {
    drain_timer_.cancel();
    if (finished_) return;
    finished_ = true;
    JobOutcome o;
    o.log_tail.assign(tail_.begin(), tail_.end());
    if (!spawn_error_.empty()) {
      o.reason = spawn_error_;
    } else {
      if (WIFEXITED(wait_status_)) o.exit_status = WEXITSTATUS(wait_status_);
      if (WIFSIGNALED(wait_status_)) o.signal = WTERMSIG(wait_status_);
      std::string how = o.signal
                            ? "killed by signal " + std::to_string(*o.signal) + " (" +
                                  signal_name(*o.signal) + ")"
                            : "exited with status " + std::to_string(o.exit_status.value_or(-1));
      if (cancelled_) {
        o.cancelled = true;
        o.reason = "cancelled; " + how;
      } else if (timed_out_) {
        o.timed_out = true;
        o.reason = "timed out after " + describe_duration(timeout_) + "; " + how;
      } else if (o.exit_status == 0) {
        o.success = true;
      } else {
        o.reason = how;
      }
    }
    log().info("job process finished pid={} success={} reason=\"{}\"", pid_, o.success, o.reason);
    auto done = std::move(observer_.on_done);
    observer_ = {};
    if (done) done(o);
  }

  asio::io_context& io_;
  std::chrono::milliseconds timeout_;
  std::chrono::milliseconds kill_grace_;
  size_t tail_lines_;
  JobObserver observer_;
  asio::posix::stream_descriptor out_;
  asio::posix::stream_descriptor pidfd_;
  asio::steady_timer timeout_timer_;
  asio::steady_timer kill_timer_;
  asio::steady_timer drain_timer_;
  std::string out_buf_;
  std::deque<std::string> tail_;
  std::string spawn_error_;
  pid_t pid_ = -1;
  int open_streams_ = 0;
  int wait_status_ = 0;
  bool reaped_ = false;
  bool finished_ = false;
  bool kill_requested_ = false;
  bool cancelled_ = false;
  bool timed_out_ = false;
};

class ExecJob final : public RunningJob {
 public:
  explicit ExecJob(std::shared_ptr<ExecProcess> process) : process_(std::move(process)) {}
  ~ExecJob() override { process_->detach(); }
  void cancel() override { process_->cancel(); }

 private:
  std::shared_ptr<ExecProcess> process_;
};

}  // namespace

ExecBackend::ExecBackend(asio::io_context& io, ExecSettings settings)
    : io_(io), settings_(std::move(settings)) {}

ExecBackend::~ExecBackend() = default;

std::vector<std::string> ExecBackend::argv_for(const bot::Job& job, const bot::AppSpec& app) const {
  std::vector<std::string> argv{settings_.program};
  argv.insert(argv.end(), settings_.args.begin(), settings_.args.end());
  argv.push_back(bot::to_string(job.verb));
  argv.push_back(job.env.str());
  argv.insert(argv.end(), app.provisioner_args.begin(), app.provisioner_args.end());
  return argv;
}

std::map<std::string, std::string> ExecBackend::env_for(const bot::Job& job,
                                                        const bot::AppSpec& app) const {
  std::map<std::string, std::string> env;
  for (const char* name : {"PATH", "HOME"}) {
    if (const char* v = std::getenv(name)) env[name] = v;
  }
  for (const auto& [k, v] : settings_.env) env[k] = v;
  for (const auto& [k, v] : app.provisioner_env) env[k] = v;

  nlohmann::json values = nlohmann::json::object();
  for (const auto& [k, v] : job.values) values[k] = v;
  const bot::Duration ttl = ttl_for(job, app);
  env["RUNBOT_VERB"] = bot::to_string(job.verb);
  env["RUNBOT_ENV"] = job.env.str();
  env["RUNBOT_APP"] = job.app.str();
  env["RUNBOT_PR"] = std::to_string(job.pr);
  env["RUNBOT_NAMESPACE"] = namespace_for(job, app);
  env["RUNBOT_IMAGE"] = job.image;
  // Chat input may not be valid UTF-8: replace bad bytes rather than throw.
  env["RUNBOT_VALUES"] = values.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  env["RUNBOT_TTL_SECONDS"] =
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(ttl).count());
  env["RUNBOT_JANITOR_TTL"] = janitor_ttl(ttl);
  if (auto expires = expires_for(job, app)) {
    env["RUNBOT_EXPIRES_AT"] = rfc3339_seconds(*expires);
    env["RUNBOT_JANITOR_EXPIRES"] = janitor_expires(*expires);
  } else {
    env["RUNBOT_EXPIRES_AT"] = "";
    env["RUNBOT_JANITOR_EXPIRES"] = "";
  }
  env["RUNBOT_REQUESTED_BY"] = job.requested_by.str();
  env["RUNBOT_JOB_ID"] = job.id.str();
  return env;
}

std::unique_ptr<RunningJob> ExecBackend::start(const bot::Job& job, const bot::AppSpec& app,
                                               JobObserver observer) {
  auto process = std::make_shared<ExecProcess>(io_, settings_, std::move(observer));
  process->run(argv_for(job, app), env_for(job, app));
  return std::make_unique<ExecJob>(std::move(process));
}

}  // namespace runbot::deploy
