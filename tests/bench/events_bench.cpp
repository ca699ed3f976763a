// events_bench: how fast runbot consumes, classifies and routes cluster events from Kafka.
//
// The parent produces N mixed realistic records (from tests/testdata/events/):
//   5 %  aws-node-termination-handler webhook JSON, SPOT_ITN (cluster-events topic)
//  40 %  kubernetes-event-exporter (resmoio) pod BackOff warnings (cluster-events topic)
//  25 %  kubernetes-event-exporter pod Scheduled events (cluster-events topic)
//  30 %  runbot lifecycle CloudEvents, binary mode, `progress` (events topic)
// each aimed at one of --envs environments (namespace = env id, nodes shared by two envs), each
// with a unique id, to the embedded mock cluster (default) or `--brokers host:port`, and waits
// for every delivery report. Only then does it start the runbot side in a child process (this
// program again, `--child`), pinned to CPU 0 (parent and mock broker on CPU 1):
// KafkaEventSource -> the real bot::Bot (demo apps, --envs environments made `up` and ready
// beforehand, so events reach their threads) -> Outbox (rate limit lifted) -> a ChatAdapter that
// renders each post with slack::render (--no-render: skip) and reports it done at once (chat
// sending excluded, announcement rendering included). The state is crash-safe as in
// `runbot run`: offsets are committed only behind durable snapshots, which hold the outbox journal
// and the input positions, one snapshot per state.save_delay_ms (50 ms by default; --save-delay-ms
// D to change it). --state picks the store: `kafka` (the default with --brokers: a compacted
// topic, as runbot uses with a real broker), `file` (the default on the embedded mock: the state
// file of the embedded default), `discard` (snapshots made and thrown away: their cost without a
// store's) or `none` (no state; --no-state is the same).
//
// Phase 1, throughput: the child consumes the N pre-produced records; events/s and CPU seconds
// are counted from the first to the N-th handled record (the group join is excluded).
// Phase 2, latency: one second later the parent produces --latency-events records at
// --latency-rate/s while the child consumes; each id carries its send time (wall clock, µs), and the latency is taken
// when the Bot returns from on_cluster/on_lifecycle, i.e. when the announcements are in the
// outbox. The child's peak RSS (VmHWM) is printed after each phase.
//
// Usage: events_bench [--events N] [--brokers host:port] [--envs K] [--channels C]
//                     [--latency-events M] [--latency-rate R] [--partitions P] [--save-delay-ms D]
//                     [--property name=value]... [--no-render] [--state kafka|file|discard|none] [--log]
// (--partitions: per topic, default 16; records are lz4-compressed like a production producer's.
//  --queued-kb: the consumer's librdkafka prefetch limit, queued.max.messages.kbytes, with
//  queued.min.messages=10000; default: librdkafka's defaults.)
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "adapters/common/asio_clock.h"
#include "adapters/slack/slack_renderer.h"
#include "bot/app/config.h"
#include "bot/app/file_state_store.h"
#include "bot/bot.h"
#include "events/cloudevents.h"
#include "events/embedded_broker.h"
#include "events/kafka_event_source.h"
#include "events/kafka_producer.h"
#include "events/kafka_state_store.h"
#include "events/topic_admin.h"

extern char** environ;

using namespace runbot;
using namespace std::chrono_literals;

namespace {

struct Options {
  long events = 100000;
  std::string brokers;  // empty: embedded mock cluster
  int envs = 50;
  int channels = 10;
  long latency_events = 20000;
  long latency_rate = 5000;
  int partitions = 16;
  long queued_kb = 0;  // > 0: the consumer's queued.max.messages.kbytes (librdkafka prefetch)
  long settle_ms = 1000;  // wait between the burst and the latency phase
  long save_delay_ms = -1;  // >= 0: overrides state.save_delay_ms (the config default)
  std::vector<std::string> properties;  // --property name=value for the consumer (repeatable)
  bool render = true;
  std::string state;  // kafka, file, discard, none; empty: kafka with --brokers, else file
  std::string state_topic;  // child only: the state topic the parent created
  bool log = false;
  // child only
  bool child = false;
  std::string suffix;
  int ready_fd = -1;
  int go_fd = -1;
};

std::int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

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

long status_kb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const size_t n = std::strlen(field);
  while (std::getline(in, line)) {
    if (line.compare(0, n, field) == 0) return std::strtol(line.c_str() + n, nullptr, 10);
  }
  return -1;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (auto p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
}

std::string env_id(int k) { return "front-end-pr-" + std::to_string(k + 1); }
std::string node_of(int k) { return "ip-10-1-" + std::to_string(k / 2) + "-7.ec2.internal"; }

// The send time travels in every id as "_t<µs>".
std::int64_t sent_us_of(const std::string& id) {
  auto p = id.rfind("_t");
  if (p == std::string::npos) return -1;
  return std::strtoll(id.c_str() + p + 2, nullptr, 10);
}

struct Fixtures {
  std::string nth_spot;
  std::string k8s_backoff;
  std::string k8s_scheduled;
};

// The fixtures are indented for reading; the exporters and NTH's toJson template write compact
// JSON (Go's encoding/json), so that is what goes on the topic.
Fixtures load_fixtures() {
  const std::string dir = std::string(RUNBOT_TESTDATA_DIR) + "/events/";
  auto compact = [&](const char* name) { return nlohmann::json::parse(read_file(dir + name)).dump(); };
  return {compact("nth-webhook-tojson-imds-spot-itn.json"), compact("k8s-resmoio-pod-backoff-reconstructed.json"),
          compact("k8s-resmoio-scheduled-new-style-reconstructed.json")};
}

struct Produced {
  std::string topic;
  std::string key;
  std::string value;
  events::Headers headers;
};

// Record `seq` of the mix, aimed at environment seq % envs, stamped with `sent_us`.
Produced make_record(const Fixtures& f, const events::KafkaSettings::Topics& topics, long seq, int envs,
                     std::int64_t sent_us) {
  const int k = static_cast<int>(seq % envs);
  const std::string id = "b" + std::to_string(seq) + "_t" + std::to_string(sent_us);
  const long r = seq % 20;
  Produced p;
  if (r == 0) {
    p.topic = topics.cluster_events;
    p.key = node_of(k);
    p.value = f.nth_spot;
    replace_all(p.value, "spot-itn-c375f2bb4fa7984f3455aef01a1717bf6a7d7689850d31a68f324ba46ba7ae52", id);
    replace_all(p.value, "ip-10-0-3-17.ec2.internal", node_of(k));
  } else if (r <= 8 || r <= 13) {
    p.topic = topics.cluster_events;
    p.key = id;
    p.value = r <= 8 ? f.k8s_backoff : f.k8s_scheduled;
    replace_all(p.value, r <= 8 ? "5b0e8c1e-2f4a-4d7e-9a61-0f3d2c1b9e77" : "a3c1f0e2-6b7d-4c8e-9f01-23456789abcd", id);
    replace_all(p.value, "pr-1234", env_id(k));
    replace_all(p.value, "ip-10-0-3-17.ec2.internal", node_of(k));
  } else {
    bot::LifecycleEvent e;
    e.id = id;
    e.source = "/runbot/provisioner/bench";
    e.kind = bot::LifecycleKind::progress;
    e.env = bot::EnvId{env_id(k)};
    e.verb = bot::JobVerb::up;
    e.time = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    e.stage = "deploy chart";
    e.stage_index = 4;
    e.stage_count = 6;
    e.message = "helm upgrade --install (" + std::to_string(seq) + ")";
    events::EncodedRecord enc = events::encode_lifecycle(e);
    p.topic = topics.events;
    p.key = enc.key;
    p.value = enc.value.value_or("");
    p.headers = std::move(enc.headers);
  }
  return p;
}

// Produces records [from, to), at most `window` in flight; at `rate` per second if > 0.
bool produce_range(boost::asio::io_context& io, events::KafkaProducer& producer, const Fixtures& f,
                   const events::KafkaSettings::Topics& topics, long from, long to, int envs, long rate) {
  long delivered = 0, failed = 0;
  const long total = to - from;
  const long window = 20000;
  const auto start = std::chrono::steady_clock::now();
  for (long seq = from; seq < to; ++seq) {
    if (rate > 0) {
      const auto due = start + std::chrono::microseconds((seq - from) * 1000000 / rate);
      // Sleep, not spin: the broker shares this CPU.
      io.poll();
      std::this_thread::sleep_until(due);
    }
    while ((seq - from) - delivered - failed >= window) io.run_one_for(10ms);
    Produced p = make_record(f, topics, seq, envs, wall_us());
    producer.produce(p.topic, p.key, std::move(p.value), p.headers, [&](bot::Status st) {
      if (st) {
        ++delivered;
      } else if (failed++ == 0) {
        std::fprintf(stderr, "produce failed: %s\n", st.error().message.c_str());
      }
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (delivered + failed < total && std::chrono::steady_clock::now() < deadline) io.run_one_for(10ms);
  if (delivered != total) {
    std::fprintf(stderr, "only %ld of %ld records delivered (%ld failed)\n", delivered, total, failed);
    return false;
  }
  return true;
}

// The chat side: renders (optionally) and reports every post done at once.
class NullChat final : public bot::ChatAdapter {
 public:
  explicit NullChat(bool render) : render_(render) {}
  std::string platform() const override { return "console"; }
  void start(InboundHandler handler) override { handler_ = std::move(handler); }
  void post(bot::PostRequest request, std::function<void(bot::Result<bot::PostResult>)> done) override {
    ++posts;
    if (render_) {
      for (const auto& block : slack::render(request.message)) rendered_bytes += block.dump().size();
    }
    std::string id = request.edit.empty() ? "m" + std::to_string(posts) : request.edit;
    // Chat sending is excluded: the platform takes each message at once.
    done(bot::PostResult{id});
  }
  bool answer_in_band(const bot::InboundMessage&, const bot::Message&) override {
    ++replies;
    return true;
  }
  void stop() override {}
  bool healthy() const override { return true; }
  void say(const std::string& text, const std::string& user, const std::string& channel) {
    bot::InboundMessage m;
    m.platform = "console";
    m.channel = bot::ChannelId{channel};
    m.user = bot::UserId{user};
    m.user_name = user;
    m.text = text;
    handler_(m);
  }

  std::uint64_t posts = 0;
  std::uint64_t replies = 0;
  std::uint64_t rendered_bytes = 0;

 private:
  bool render_;
  InboundHandler handler_;
};

class CountingJobQueue final : public bot::JobQueue {
 public:
  explicit CountingJobQueue(bot::Clock& clock) : clock_(clock) {}
  void publish(const bot::Job& job, std::function<void(bot::Status)> done) override {
    last_job[job.env.str()] = job.id;
    clock_.call_after(bot::Duration{0}, [done = std::move(done)] { done(bot::ok()); });
  }
  std::map<std::string, bot::JobId> last_job;

 private:
  bot::Clock& clock_;
};

// Counts what the Bot saves and the time the store takes, and passes it on to `inner` (none:
// snapshots are made and thrown away).
class MeasuredStore final : public bot::StateStore {
 public:
  explicit MeasuredStore(bot::StateStore* inner) : inner_(inner) {}
  bot::Result<std::optional<std::string>> load() override { return std::optional<std::string>{}; }
  bot::Status save(const std::string& snapshot) override {
    count(snapshot.size());
    dump(snapshot);
    return timed([&] { return inner_ ? inner_->save(snapshot) : bot::ok(); });
  }
  bot::Status save_parts(const bot::StateSnapshot& parts) override {
    std::size_t size = parts.registry.size();
    for (const auto* list : {&parts.environments, &parts.outbox}) {
      for (const auto& [id, json] : *list) size += json.size();
    }
    count(size);
    if (std::getenv("EVENTS_BENCH_DUMP_STATE")) dump(parts.whole());
    return timed([&] { return inner_ ? inner_->save_parts(parts) : bot::ok(); });
  }
  void when_durable(std::function<void()> durable) override {
    if (inner_) {
      inner_->when_durable(std::move(durable));
    } else {
      durable();
    }
  }
  std::uint64_t saves = 0;
  std::uint64_t bytes = 0;
  double store_seconds = 0;  // inside the store's save()

 private:
  void count(std::size_t size) {
    ++saves;
    bytes += size;
  }
  // For a look at what makes snapshots big: the largest one goes to $EVENTS_BENCH_DUMP_STATE.
  void dump(const std::string& snapshot) {
    if (const char* path = std::getenv("EVENTS_BENCH_DUMP_STATE"); path && snapshot.size() > largest_) {
      largest_ = snapshot.size();
      std::ofstream(path) << snapshot;
    }
  }
  template <typename F>
  bot::Status timed(F f) {
    const auto t0 = std::chrono::steady_clock::now();
    bot::Status st = f();
    store_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return st;
  }
  bot::StateStore* inner_;
  std::size_t largest_ = 0;
};

// Sits between the source and the Bot: counts handled records and takes latencies.
class TimingSink final : public bot::EventSink {
 public:
  TimingSink(bot::Bot& b, long phase1) : bot_(b), phase1_(phase1) {}
  void on_lifecycle(const bot::LifecycleEvent& e) override {
    bot_.on_lifecycle(e);
    done(e.id);
  }
  void on_cluster(const bot::ClusterEvent& e) override {
    bot_.on_cluster(e);
    done(e.dedupe_key);
  }
  long handled = 0;
  std::vector<double> latencies_ms;  // phase 2 only
  std::chrono::steady_clock::time_point first, phase1_end;
  double cpu_first = 0, cpu_phase1_end = 0;
  std::function<void()> on_phase1_end;

 private:
  void done(const std::string& id) {
    if (handled == 0) {
      first = std::chrono::steady_clock::now();
      cpu_first = cpu_seconds();
    }
    ++handled;
    if (handled == phase1_) {
      phase1_end = std::chrono::steady_clock::now();
      cpu_phase1_end = cpu_seconds();
      if (on_phase1_end) on_phase1_end();
    } else if (handled > phase1_) {
      const std::int64_t sent = sent_us_of(id);
      if (sent > 0) latencies_ms.push_back(static_cast<double>(wall_us() - sent) / 1000.0);
    }
  }
  bot::Bot& bot_;
  long phase1_;
};

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  const auto idx = static_cast<std::size_t>(
      std::min<double>(static_cast<double>(v.size() - 1), p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(idx), v.end());
  return v[idx];
}

events::KafkaSettings settings_for(const std::string& brokers, const std::string& suffix, long queued_kb = 0) {
  events::KafkaSettings s;
  s.brokers = brokers;
  s.client_id = "runbot-bench";
  s.session_timeout = 6s;
  s.topics.jobs += "-" + suffix;
  s.topics.events += "-" + suffix;
  s.topics.cluster_events += "-" + suffix;
  // As a production producer would (cluster-events.md §6.4); it also keeps 300k records within
  // the mock cluster's ~5 MiB per partition.
  s.properties["compression.type"] = "lz4";
  if (queued_kb > 0) {
    s.properties["queued.max.messages.kbytes"] = std::to_string(queued_kb);
    s.properties["queued.min.messages"] = "10000";
  }
  return s;
}

void write_line(int fd, const std::string& s) {
  std::string line = s + "\n";
  (void)!::write(fd, line.data(), line.size());
}

std::string read_line(int fd) {
  std::string out;
  char c = 0;
  while (::read(fd, &c, 1) == 1 && c != '\n') out += c;
  return out;
}

int run_child(const Options& opt) {
  pin(0);
  spdlog::set_level(opt.log ? spdlog::level::info : spdlog::level::warn);
  boost::asio::io_context io;
  common::AsioClock clock(io);
  auto cfg = app::parse_config(app::demo_config_yaml(), {});
  if (!cfg) return 2;
  bot::OutboxSettings outbox_settings = cfg->outbox;
  outbox_settings.messages_per_second = 1e9;  // chat sending is not what is measured
  outbox_settings.burst = 1e9;
  bot::Metrics metrics;
  CountingJobQueue jobs(clock);
  auto settings = settings_for(opt.brokers, opt.suffix, opt.queued_kb);
  for (const auto& p : opt.properties) {
    auto eq = p.find('=');
    if (eq != std::string::npos) settings.properties[p.substr(0, eq)] = p.substr(eq + 1);
  }
  std::unique_ptr<events::KafkaStateStore> kafka_store;
  std::unique_ptr<app::FileStateStore> file_store;
  bot::StateStore* inner = nullptr;
  const std::string state_file = "/tmp/events-bench-" + opt.suffix + ".state.json";
  if (opt.state == "file") {
    file_store = std::make_unique<app::FileStateStore>(state_file);
    inner = file_store.get();
  } else if (opt.state == "kafka") {
    events::StateTopicSettings sts;
    sts.topic = opt.state_topic;
    auto created = events::KafkaStateStore::create(io, settings, sts);
    if (!created) {
      std::fprintf(stderr, "child: state store: %s\n", created.error().message.c_str());
      return 2;
    }
    kafka_store = std::move(*created);
    if (auto loaded = kafka_store->load(); !loaded) {
      std::fprintf(stderr, "child: state topic: %s\n", loaded.error().message.c_str());
      return 2;
    }
    inner = kafka_store.get();
  }
  MeasuredStore measured(inner);
  bot::StateStore* store = opt.state == "none" ? nullptr : &measured;
  bot::Outbox outbox(outbox_settings, clock, metrics);
  if (opt.save_delay_ms >= 0) cfg->bot.state_save_delay = std::chrono::milliseconds(opt.save_delay_ms);
  bot::Bot the_bot(cfg->bot, bot::Registry{}, clock, jobs, outbox, metrics, store);
  NullChat chat(opt.render);
  the_bot.attach(chat);
  the_bot.start();
  // Environments with threads in --channels channels, ready on nodes shared by two of them.
  for (int k = 0; k < opt.envs; ++k) {
    chat.say("up front-end " + std::to_string(k + 1), "u" + std::to_string(k), "C" + std::to_string(k % opt.channels));
    bot::LifecycleEvent ready;
    ready.id = "setup-ready-" + std::to_string(k);
    ready.kind = bot::LifecycleKind::ready;
    ready.env = bot::EnvId{env_id(k)};
    ready.job = jobs.last_job[env_id(k)];
    ready.url = "https://" + env_id(k) + ".bench.invalid";
    ready.nodes = {{bot::NodeName{node_of(k)}, bot::CapacityType::spot, "m6i.large", "eu-west-1a"}};
    the_bot.on_lifecycle(ready);
  }
  int ready_envs = 0;
  for (const auto& [id, e] : the_bot.registry().environments()) ready_envs += e.state == bot::EnvState::ready;
  if (ready_envs != opt.envs) std::fprintf(stderr, "child: only %d of %d environments are ready\n", ready_envs, opt.envs);

  const long total = opt.events + opt.latency_events;
  TimingSink sink(the_bot, opt.events);
  const long hwm_setup = status_kb("VmHWM:");
  long hwm_phase1 = 0, rss_phase1 = 0;
  sink.on_phase1_end = [&] {
    hwm_phase1 = status_kb("VmHWM:");
    rss_phase1 = status_kb("VmRSS:");
    write_line(opt.ready_fd, "phase1");
  };
  // As `runbot run` wires it: offsets committed only behind durable state.
  auto source = events::KafkaEventSource::create(io, settings, sink, "runbot-bench-" + opt.suffix,
                                                 /*defer_offsets=*/store != nullptr);
  if (!source) {
    std::fprintf(stderr, "child: %s\n", source.error().message.c_str());
    return 2;
  }
  if (store) {
    bot::BotHooks hooks;
    auto* src = source->get();
    hooks.state_checkpoint = [src]() -> std::function<void()> {
      std::uint64_t mark = src->consumer().checkpoint();
      return [src, mark] { src->consumer().commit_through(mark); };
    };
    hooks.input_positions = [src] { return events::positions_to_json(src->consumer().positions()); };
    src->set_after_record([&the_bot] { the_bot.request_save(); });
    the_bot.set_hooks(std::move(hooks));
  }
  // Bounded by progress: 30 s without a handled record is a stall (e.g. records the broker dropped).
  long last_handled = -1;
  auto last_progress = std::chrono::steady_clock::now();
  while (sink.handled < total) {
    io.run_one_for(50ms);
    const auto now = std::chrono::steady_clock::now();
    if (sink.handled != last_handled) {
      last_handled = sink.handled;
      last_progress = now;
    } else if (now - last_progress > 30s) {
      std::fprintf(stderr, "child: stalled at %ld of %ld records handled\n", sink.handled, total);
      break;
    }
  }
  // Let the last posts complete so the outbox figures are final.
  for (int i = 0; i < 1000 && io.poll() > 0; ++i) {
  }
  const auto end = std::chrono::steady_clock::now();
  const auto stats = (*source)->stats();
  const long hwm_end = status_kb("VmHWM:");
  const long rss_end = status_kb("VmRSS:");
  (void)(*source)->close();
  if (sink.handled < opt.events) {
    std::fprintf(stderr, "child: only %ld of %ld records handled\n", sink.handled, total);
    return 1;
  }
  const double secs = std::chrono::duration<double>(sink.phase1_end - sink.first).count();
  const double cpu = sink.cpu_phase1_end - sink.cpu_first;
  std::printf("phase 1 (throughput, %ld pre-produced records, consumer only):\n", opt.events);
  std::printf("  %.0f events/s wall (%.2f s), %.0f events per CPU-second (%.2f CPU s, all threads on CPU 0)\n",
              static_cast<double>(opt.events - 1) / secs, secs, static_cast<double>(opt.events - 1) / cpu, cpu);
  std::printf("  peak RSS %.1f MB (after setup %.1f MB), RSS now %.1f MB\n", static_cast<double>(hwm_phase1) / 1024.0,
              static_cast<double>(hwm_setup) / 1024.0, static_cast<double>(rss_phase1) / 1024.0);
  std::printf("phase 2 (latency, %ld records at %ld/s while consuming): handled %ld\n", opt.latency_events,
              opt.latency_rate, sink.handled - opt.events);
  std::printf("  produce -> outbox latency ms: p50 %.2f  p99 %.2f  max %.2f\n", pct(sink.latencies_ms, 0.50),
              pct(sink.latencies_ms, 0.99), pct(sink.latencies_ms, 1.0));
  std::printf("  peak RSS %.1f MB, RSS at end %.1f MB\n", static_cast<double>(hwm_end) / 1024.0,
              static_cast<double>(rss_end) / 1024.0);
  std::printf("consumer: consumed %llu, invalid %llu, dead-lettered %llu; total %.2f s\n",
              static_cast<unsigned long long>(stats.consumed), static_cast<unsigned long long>(stats.skipped_invalid),
              static_cast<unsigned long long>(stats.dead_lettered),
              std::chrono::duration<double>(end - sink.first).count());
  std::printf("bot: %zu cluster events remembered, outbox %zu waiting; chat: %llu posts, %.1f MB rendered%s; "
              "state: %llu snapshots, %.1f MB\n",
              the_bot.registry().cluster_events().size(), outbox.pending(),
              static_cast<unsigned long long>(chat.posts), static_cast<double>(chat.rendered_bytes) / 1e6,
              opt.render ? "" : " (rendering off)", static_cast<unsigned long long>(measured.saves),
              static_cast<double>(measured.bytes) / 1e6);
  if (store) std::printf("state: %.2f s inside the store's save()\n", measured.store_seconds);
  if (kafka_store) {
    (void)kafka_store->flush();
    const auto ks = kafka_store->stats();
    std::printf("state topic: %llu records produced (%llu tombstones), %llu delivered, %llu failed\n",
                static_cast<unsigned long long>(ks.records_produced), static_cast<unsigned long long>(ks.tombstones_produced),
                static_cast<unsigned long long>(ks.records_delivered), static_cast<unsigned long long>(ks.delivery_failures));
  }
  if (file_store) std::remove(state_file.c_str());
  std::fflush(stdout);
  the_bot.stop();
  return sink.handled == total ? 0 : 1;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--events") o.events = std::stol(next());
    else if (a == "--brokers") o.brokers = next();
    else if (a == "--envs") o.envs = std::stoi(next());
    else if (a == "--channels") o.channels = std::stoi(next());
    else if (a == "--latency-events") o.latency_events = std::stol(next());
    else if (a == "--latency-rate") o.latency_rate = std::stol(next());
    else if (a == "--partitions") o.partitions = std::stoi(next());
    else if (a == "--queued-kb") o.queued_kb = std::stol(next());
    else if (a == "--settle-ms") o.settle_ms = std::stol(next());
    else if (a == "--save-delay-ms") o.save_delay_ms = std::stol(next());
    else if (a == "--property") o.properties.push_back(next());
    else if (a == "--no-render") o.render = false;
    else if (a == "--no-state") o.state = "none";
    else if (a == "--state") o.state = next();
    else if (a == "--state-topic") o.state_topic = next();
    else if (a == "--log") o.log = true;
    else if (a == "--child") o.child = true;
    else if (a == "--suffix") o.suffix = next();
    else if (a == "--ready-fd") o.ready_fd = std::stoi(next());
    else {
      std::fprintf(stderr,
                   "usage: events_bench [--events N] [--brokers host:port] [--envs K] [--channels C] "
                   "[--latency-events M] [--latency-rate R] [--partitions P] [--queued-kb K] [--save-delay-ms D] "
                   "[--property name=value]... [--no-render] "
                   "[--state kafka|file|discard|none] [--log]\n");
      std::exit(2);
    }
  }
  if (o.envs < 2 || o.channels < 1 || o.events < 2 || o.latency_events < 0 || o.latency_rate < 1 ||
      !(o.state.empty() || o.state == "kafka" || o.state == "file" || o.state == "discard" || o.state == "none")) {
    std::fprintf(stderr, "bad option value\n");
    std::exit(2);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = parse(argc, argv);
  if (opt.child) return run_child(opt);
  pin(1);
  spdlog::set_level(opt.log ? spdlog::level::info : spdlog::level::warn);
  const std::string suffix = "bench-" + std::to_string(::getpid()) + "-" + std::to_string(wall_us());
  auto settings = settings_for(opt.brokers, suffix);
  std::unique_ptr<events::EmbeddedBroker> mock;
  if (opt.brokers.empty()) {
    auto b = events::EmbeddedBroker::start(settings.topics, 1, opt.partitions);
    if (!b) {
      std::fprintf(stderr, "embedded broker: %s\n", b.error().message.c_str());
      return 2;
    }
    mock = std::move(*b);
    settings.brokers = mock->bootstrap_servers();
  } else if (auto created = events::ensure_topics(settings, opt.partitions); !created) {
    std::fprintf(stderr, "topics: %s\n", created.error().message.c_str());
    return 2;
  }
  if (opt.state.empty()) opt.state = mock ? "file" : "kafka";
  const std::string state_topic = "events-bench-state-" + suffix;
  if (opt.state == "kafka") {
    auto created = mock ? mock->create_topic(state_topic, 4) : events::ensure_compacted_topic(settings, state_topic);
    if (!created) {
      std::fprintf(stderr, "state topic: %s\n", created.error().message.c_str());
      return 2;
    }
  }
  const std::string state_what = opt.state == "kafka"    ? "on a compacted Kafka topic"
                                 : opt.state == "file"    ? "in a local file"
                                 : opt.state == "discard" ? "made and discarded"
                                                          : "off";
  std::printf("events_bench: %ld events + %ld for latency, %d environments in %d channels, broker %s, rendering %s, "
              "crash-safe state %s\n",
              opt.events, opt.latency_events, opt.envs, opt.channels,
              mock ? ("embedded mock " + settings.brokers).c_str() : settings.brokers.c_str(),
              opt.render ? "slack::render" : "off", state_what.c_str());
  const Fixtures fixtures = load_fixtures();
  boost::asio::io_context io;
  auto producer = events::KafkaProducer::create(io, settings);
  if (!producer) {
    std::fprintf(stderr, "producer: %s\n", producer.error().message.c_str());
    return 2;
  }
  const auto t0 = std::chrono::steady_clock::now();
  if (!produce_range(io, **producer, fixtures, settings.topics, 0, opt.events, opt.envs, 0)) return 1;
  const double produce_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("produced %ld records in %.2f s (%.0f/s), all delivered\n", opt.events, produce_s,
              static_cast<double>(opt.events) / produce_s);
  std::fflush(stdout);

  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return 2;
  std::vector<std::string> args{"/proc/self/exe", "--child", "--brokers", settings.brokers, "--suffix", suffix,
                                "--events", std::to_string(opt.events), "--envs", std::to_string(opt.envs),
                                "--channels", std::to_string(opt.channels), "--latency-events",
                                std::to_string(opt.latency_events), "--latency-rate", std::to_string(opt.latency_rate),
                                "--ready-fd", std::to_string(pipe_fds[1])};
  args.insert(args.end(), {"--partitions", std::to_string(opt.partitions), "--queued-kb", std::to_string(opt.queued_kb),
                           "--save-delay-ms", std::to_string(opt.save_delay_ms)});
  for (const auto& p : opt.properties) args.insert(args.end(), {"--property", p});
  if (!opt.render) args.emplace_back("--no-render");
  args.insert(args.end(), {"--state", opt.state, "--state-topic", state_topic});
  if (opt.log) args.emplace_back("--log");
  std::vector<char*> argv_child;
  for (auto& a : args) argv_child.push_back(a.data());
  argv_child.push_back(nullptr);
  pid_t child = 0;
  if (int err = posix_spawn(&child, "/proc/self/exe", nullptr, nullptr, argv_child.data(), environ); err != 0) {
    std::fprintf(stderr, "spawn: %s\n", std::strerror(err));
    return 2;
  }
  ::close(pipe_fds[1]);
  if (read_line(pipe_fds[0]) == "phase1" && opt.latency_events > 0) {
    // Steady latency, not the tail of the burst: records produced right after phase 1 wait up to
    // ~0.6 s, librdkafka 2.0.2's fixed one-second fetch backoff once a partition's prefetch queue
    // was full (README, Benchmarks).
    std::this_thread::sleep_for(std::chrono::milliseconds(opt.settle_ms));
    if (!produce_range(io, **producer, fixtures, settings.topics, opt.events, opt.events + opt.latency_events,
                       opt.envs, opt.latency_rate)) {
      ::kill(child, SIGTERM);
    }
  }
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  (void)(*producer)->flush(5s);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
