// slack_bench: drives runbot (SlackAdapter + the real bot::Bot with the demo apps and a counting
// in-memory JobQueue) through FakeSlack with N slash commands `up front-end <n>` and prints
// commands/s, ack latency (p50/p99/max), end-to-end latency to the answer, runbot's peak RSS and
// CPU per command.
//
// What is measured: runbot runs in a forked child process pinned to CPU 0; FakeSlack runs in the
// parent pinned to CPU 1. The child's CPU time (getrusage) and peak RSS (VmHWM) are runbot's own,
// FakeSlack excluded. CPU/command counts from the moment the sockets are up to the end of the run.
// Latencies are measured by FakeSlack: from writing the envelope to reading its ack. A slash
// command's answer travels inside the ack, so end-to-end latency to the answer equals ack latency;
// the job is published before the handler returns, i.e. before the ack is written.
//
// Usage: slack_bench [--commands N] [--concurrency C | --rate R] [--connections K] [--log]
//   --concurrency C  closed loop: C commands outstanding at any time (default 64)
//   --rate R         open loop: R commands/s, paced every millisecond
//   --log            keep runbot's info log (one line per command) — default: warnings only
#include <sched.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "adapters/common/asio_clock.h"
#include "adapters/slack/slack_adapter.h"
#include "bot/app/config.h"
#include "bot/bot.h"
#include "tests/support/fake_slack.h"

using namespace runbot;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

struct Options {
  int commands = 20000;
  int concurrency = 64;
  int rate = 0;
  int connections = 2;
  bool log = false;
};

class CountingJobQueue final : public bot::JobQueue {
 public:
  explicit CountingJobQueue(bot::Clock& clock) : clock_(clock) {}
  void publish(const bot::Job&, std::function<void(bot::Status)> done) override {
    ++published;
    clock_.call_after(bot::Duration{0}, [done = std::move(done)] { done(bot::ok()); });
  }
  std::uint64_t published = 0;

 private:
  bot::Clock& clock_;
};

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)sched_setaffinity(0, sizeof set, &set);
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

long vm_hwm_kb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

void write_line(int fd, const std::string& s) {
  std::string line = s + "\n";
  (void)!::write(fd, line.data(), line.size());
}

// The runbot side. Reports "ready <cpu>" when connected, "done <cpu> <hwm_kb> <jobs>" on SIGTERM.
int run_child(const Options& opt, const std::string& api, const std::string& ca_file, int out_fd) {
  pin(0);
  spdlog::set_level(opt.log ? spdlog::level::info : spdlog::level::warn);
  boost::asio::io_context io;
  common::AsioClock clock(io);
  auto cfg = app::parse_config(app::demo_config_yaml(), {});
  if (!cfg) return 2;
  bot::Metrics metrics;
  CountingJobQueue jobs(clock);
  bot::Outbox outbox(cfg->outbox, clock, metrics);
  bot::Bot the_bot(cfg->bot, bot::Registry{}, clock, jobs, outbox, metrics, nullptr);
  slack::SlackSettings s;
  s.app_token = "xapp-1-test";
  s.bot_token = "xoxb-test";
  s.api_base_url = api;
  s.ca_file = ca_file;
  s.connections = opt.connections;
  auto adapter = slack::SlackAdapter::create(io, s);
  if (!adapter) {
    std::fprintf(stderr, "child: %s\n", adapter.error().message.c_str());
    return 2;
  }
  (*adapter)->on_started([&](bot::Status st) {
    if (!st) {
      std::fprintf(stderr, "child: %s\n", st.error().message.c_str());
      io.stop();
      return;
    }
    write_line(out_fd, "ready " + std::to_string(cpu_seconds()));
  });
  the_bot.attach(**adapter);
  the_bot.start();
  boost::asio::signal_set signals(io, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) {
    write_line(out_fd, "done " + std::to_string(cpu_seconds()) + " " + std::to_string(vm_hwm_kb()) + " " +
                           std::to_string(jobs.published));
    io.stop();
  });
  io.run();
  return 0;
}

double pct(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const auto idx = static_cast<std::size_t>(std::min<double>(static_cast<double>(v.size() - 1), p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(idx), v.end());
  return v[idx];
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (a == "--commands") opt.commands = next();
    else if (a == "--concurrency") opt.concurrency = next();
    else if (a == "--rate") opt.rate = next();
    else if (a == "--connections") opt.connections = next();
    else if (a == "--log") opt.log = true;
    else {
      std::fprintf(stderr, "usage: %s [--commands N] [--concurrency C | --rate R] [--connections K] [--log]\n", argv[0]);
      return 2;
    }
  }
  spdlog::set_level(spdlog::level::warn);
  auto ca = testing::TestCa::make();
  boost::asio::io_context io;
  testing::FakeSlack fake(io, ca);
  fake.start();
  int fds[2];
  if (pipe(fds) != 0) return 2;
  const pid_t child = fork();
  if (child == 0) {
    ::close(fds[0]);
    _exit(run_child(opt, fake.api_base_url(), ca.ca_file, fds[1]));
  }
  ::close(fds[1]);
  pin(1);
  fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
  // Reads one line from the child while the fake keeps serving (the child needs it to get ready).
  std::string pending;
  auto line_from_child = [&](std::chrono::seconds limit) -> std::string {
    const auto deadline = SteadyClock::now() + limit;
    while (SteadyClock::now() < deadline) {
      if (auto nl = pending.find('\n'); nl != std::string::npos) {
        std::string out = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        return out;
      }
      char buf[256];
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n > 0) {
        pending.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) return {};
      io.run_one_for(5ms);
    }
    return {};
  };
  // The fake serves the child's startup while we wait for its "ready" line (read on the loop).
  std::vector<double> lat_us;
  lat_us.reserve(static_cast<std::size_t>(opt.commands));
  int sent = 0;
  int acked = 0;
  int answered = 0;
  SteadyClock::time_point first{}, last{};
  fake.on_ack = [&](const testing::FakeSlack::Ack& a) {
    ++acked;
    if (a.has_payload && a.payload.value("text", "").find("Creating") != std::string::npos) ++answered;
    lat_us.push_back(std::chrono::duration<double, std::micro>(a.latency).count());
    last = SteadyClock::now();
  };
  std::vector<int> sockets;
  auto send_one = [&] {
    const int sock = sockets[static_cast<std::size_t>(sent) % sockets.size()];
    fake.send_slash(sock, "up front-end " + std::to_string(sent + 1));
    ++sent;
  };
  double cpu_ready = 0;
  if (std::sscanf(line_from_child(30s).c_str(), "ready %lf", &cpu_ready) != 1) {
    std::fprintf(stderr, "slack_bench: runbot did not get ready\n");
    kill(child, SIGTERM);
    return 2;
  }
  sockets = fake.open_sockets();
  // Clear the acks queue used at startup, then drive.
  fake.acks.clear();
  fake.acks.reserve(static_cast<std::size_t>(opt.commands));
  first = SteadyClock::now();
  if (opt.rate > 0) {
    boost::asio::steady_timer tick(io);
    const auto start = SteadyClock::now();
    std::function<void()> pace = [&] {
      const auto due = static_cast<int>(std::min<double>(
          opt.commands, std::chrono::duration<double>(SteadyClock::now() - start).count() * opt.rate));
      while (sent < due) send_one();
      if (sent < opt.commands) {
        tick.expires_after(1ms);
        tick.async_wait([&](const boost::system::error_code&) { pace(); });
      }
    };
    pace();
    while (acked < opt.commands) io.run_one_for(100ms);
  } else {
    auto refill = fake.on_ack;
    fake.on_ack = [&](const testing::FakeSlack::Ack& a) {
      refill(a);
      if (sent < opt.commands) send_one();
    };
    for (int i = 0; i < opt.concurrency && sent < opt.commands; ++i) send_one();
    while (acked < opt.commands) io.run_one_for(100ms);
  }
  kill(child, SIGTERM);
  double cpu_done = 0;
  long hwm = 0;
  unsigned long long jobs = 0;
  for (int tries = 0; tries < 3; ++tries) {
    if (std::sscanf(line_from_child(10s).c_str(), "done %lf %ld %llu", &cpu_done, &hwm, &jobs) == 3) break;
  }
  int status = 0;
  waitpid(child, &status, 0);
  const double secs = std::chrono::duration<double>(last - first).count();
  const double cpu = cpu_done - cpu_ready;
  std::vector<double> l = lat_us;
  std::printf("slack_bench: %d slash commands, %s %d, %d socket(s)\n", opt.commands,
              opt.rate > 0 ? "rate/s" : "concurrency", opt.rate > 0 ? opt.rate : opt.concurrency, opt.connections);
  std::printf("  acked %d, answered in the ack %d, jobs published %llu\n", acked, answered, jobs);
  std::printf("  throughput      %.0f commands/s (%.3f s)\n", opt.commands / secs, secs);
  std::printf("  ack latency     p50 %.0f us  p99 %.0f us  max %.0f us\n", pct(l, 0.5), pct(l, 0.99),
              *std::max_element(l.begin(), l.end()));
  std::printf("  answer latency  = ack latency (the answer is the ack payload)\n");
  std::printf("  runbot CPU      %.3f s total, %.1f us/command (child process, pinned to CPU 0)\n", cpu,
              cpu * 1e6 / opt.commands);
  std::printf("  runbot peak RSS %.1f MB (VmHWM of the child)\n", static_cast<double>(hwm) / 1024.0);
  std::printf("  fake problems   %zu\n", fake.problems.size());
  return 0;
}
