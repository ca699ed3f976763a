#include "deploy/demo_backend.h"

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <deque>

#include "deploy/job_support.h"

namespace runbot::deploy {
namespace {

constexpr const char* kSim = " (simulated)";

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string hex(std::uint64_t& state, size_t chars) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  while (out.size() < chars) {
    std::uint64_t v = splitmix64(state);
    for (int i = 0; i < 16 && out.size() < chars; ++i, v >>= 4) out += kDigits[v & 0xf];
  }
  return out;
}

std::string pod_suffix(std::uint64_t& state) {
  static constexpr char kChars[] = "bcdfghjklmnpqrstvwxz2456789";  // Kubernetes' alphabet
  std::string out;
  std::uint64_t v = splitmix64(state);
  for (int i = 0; i < 5; ++i, v /= 27) out += kChars[v % 27];
  return out;
}

// "ip-10-0-1-17.eu-west-1.compute.internal" -> "10.0.1.17"
std::string ip_of(const std::string& node) {
  if (node.rfind("ip-", 0) != 0) return "10.0.0.10";
  std::string ip = node.substr(3, node.find('.') - 3);
  std::replace(ip.begin(), ip.end(), '-', '.');
  return ip;
}

std::string normalize_stage(std::string_view s) {
  std::string out;
  for (char c : s) {
    out += (c == '-' || c == '_') ? ' '
                                  : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// DemoCluster

std::vector<bot::NodeInfo> DemoClusterSettings::default_nodes() {
  using bot::CapacityType;
  using bot::NodeInfo;
  using bot::NodeName;
  return {
      NodeInfo{NodeName{"ip-10-0-1-17.eu-west-1.compute.internal"}, CapacityType::spot, "m5.large",
               "eu-west-1a"},
      NodeInfo{NodeName{"ip-10-0-2-41.eu-west-1.compute.internal"}, CapacityType::spot, "m5.xlarge",
               "eu-west-1b"},
      NodeInfo{NodeName{"ip-10-0-1-88.eu-west-1.compute.internal"}, CapacityType::on_demand,
               "m5.large", "eu-west-1a"},
      NodeInfo{NodeName{"ip-10-0-2-63.eu-west-1.compute.internal"}, CapacityType::on_demand,
               "m5.large", "eu-west-1b"},
  };
}

DemoCluster::DemoCluster(DemoClusterSettings settings, bot::Clock& clock,
                         bot::EventPublisher& publisher)
    : settings_(std::move(settings)), clock_(clock), publisher_(publisher) {
  for (const auto& info : settings_.nodes) nodes_.push_back(make_node(info));
}

DemoCluster::~DemoCluster() {
  for (bot::TimerId id : timers_) clock_.cancel(id);
}

DemoNode DemoCluster::make_node(bot::NodeInfo info) {
  DemoNode n;
  std::uint64_t seed = std::hash<std::string>{}(info.name.str()) + counter_++;
  n.instance_id = "i-0" + hex(seed, 16);
  n.info = std::move(info);
  return n;
}

DemoNode* DemoCluster::find(const bot::NodeName& node) {
  for (auto& n : nodes_) {
    if (n.info.name == node) return &n;
  }
  return nullptr;
}

std::vector<bot::NodeInfo> DemoCluster::nodes_of(const bot::EnvId& env) const {
  std::vector<bot::NodeInfo> out;
  for (const auto& n : nodes_) {
    if (std::find(n.envs.begin(), n.envs.end(), env) != n.envs.end()) out.push_back(n.info);
  }
  return out;
}

std::vector<bot::NodeInfo> DemoCluster::place(const bot::EnvId& env) {
  if (auto existing = nodes_of(env); !existing.empty()) return existing;
  auto least_loaded = [&](bot::CapacityType capacity, const DemoNode* other) -> DemoNode* {
    DemoNode* best = nullptr;
    for (auto& n : nodes_) {
      if (n.interrupted || &n == other) continue;
      if (capacity != bot::CapacityType::unknown && n.info.capacity != capacity) continue;
      if (!best || n.envs.size() < best->envs.size()) best = &n;
    }
    return best;
  };
  DemoNode* web = least_loaded(bot::CapacityType::spot, nullptr);
  if (!web) web = least_loaded(bot::CapacityType::unknown, nullptr);
  DemoNode* db = least_loaded(bot::CapacityType::on_demand, web);
  for (DemoNode* n : {web, db}) {
    if (n) n->envs.push_back(env);
  }
  return nodes_of(env);
}

void DemoCluster::remove(const bot::EnvId& env) {
  for (auto& n : nodes_) n.envs.erase(std::remove(n.envs.begin(), n.envs.end(), env), n.envs.end());
}

bot::Result<std::string> DemoCluster::simulate_spot_interruption(const bot::NodeName& node) {
  DemoNode* n = find(node);
  if (!n) {
    std::string known;
    for (const auto& k : nodes_) known += (known.empty() ? "" : ", ") + k.info.name.str();
    return bot::make_error(bot::Errc::not_found,
                           "unknown node '" + node.str() + "'; known nodes: " + known);
  }
  if (n->info.capacity != bot::CapacityType::spot) {
    return bot::make_error(bot::Errc::invalid_argument,
                           "node '" + node.str() + "' is " + bot::to_string(n->info.capacity) +
                               "; only spot nodes receive interruption notices");
  }
  if (n->interrupted) {
    return bot::make_error(bot::Errc::conflict,
                           "node '" + node.str() + "' already has a pending interruption notice");
  }
  n->interrupted = true;

  std::uint64_t seed = static_cast<std::uint64_t>(bot::to_millis(clock_.now())) ^
                       std::hash<std::string>{}(node.str()) ^ (counter_++ << 32);
  const std::string event_id = "spot-itn-" + hex(seed, 64);
  const std::string start_time = rfc3339_seconds(clock_.now() + settings_.interruption_notice);

  nlohmann::json pods = nlohmann::json::array();
  for (const auto& env : n->envs) {
    pods.push_back(env.str() + "-web-" + hex(seed, 10) + "-" + pod_suffix(seed));
  }
  pods.push_back("aws-node-" + pod_suffix(seed));
  pods.push_back("kube-proxy-" + pod_suffix(seed));

  // The shape of NTH's webhook with WEBHOOK_TEMPLATE='{{ toJson . }}' in IMDS mode: lower-case
  // metadata keys (filled in IMDS mode), Go field names for the event.
  nlohmann::json body = {
      {"accountId", "000000000000"},
      {"instanceId", n->instance_id},
      {"instanceLifeCycle", "spot"},
      {"instanceType", n->info.instance_type},
      {"publicHostname", ""},
      {"publicIp", ""},
      {"localHostname", n->info.name.str()},
      {"privateIp", ip_of(n->info.name.str())},
      {"availabilityZone", n->info.zone},
      {"region", settings_.region},
      {"EventID", event_id},
      {"Kind", "SPOT_ITN"},
      {"Monitor", "SPOT_ITN_MONITOR"},
      {"Description",
       "Spot ITN received. Instance will be interrupted at " + start_time + " (simulated) \n"},
      {"State", ""},
      {"AutoScalingGroupName", ""},
      {"NodeName", n->info.name.str()},
      {"NodeLabels",
       {{"node.kubernetes.io/instance-type", n->info.instance_type},
        {"topology.kubernetes.io/zone", n->info.zone},
        {"karpenter.sh/capacity-type", "spot"},
        {"runbot.io/simulated", "true"}}},
      {"Pods", pods},
      {"ProviderID", "aws:///" + n->info.zone + "/" + n->instance_id},
      {"IsManaged", true},
      {"StartTime", start_time},
      {"EndTime", "0001-01-01T00:00:00Z"},
      {"NodeProcessed", false},
      {"InProgress", true},
      {"InstanceID", n->instance_id},
      {"InstanceType", n->info.instance_type},
  };
  log().info("simulated spot interruption node={} event={} envs={}", node.str(), event_id,
             n->envs.size());
  publisher_.publish_cluster_record(node.str(), body.dump(), [event_id](bot::Status s) {
    if (!s) {
      log().error("simulated NTH record not published event={} error=\"{}\"", event_id,
                  s.error().message);
    }
  });

  auto holder = std::make_shared<bot::TimerId>(0);
  *holder = clock_.call_after(settings_.reschedule_after, [this, node, event_id, holder] {
    timers_.erase(std::remove(timers_.begin(), timers_.end(), *holder), timers_.end());
    replace_node(node, event_id);
  });
  timers_.push_back(*holder);
  return event_id;
}

void DemoCluster::replace_node(const bot::NodeName& node, const std::string& event_id) {
  auto it = std::find_if(nodes_.begin(), nodes_.end(),
                         [&](const DemoNode& n) { return n.info.name == node; });
  if (it == nodes_.end()) return;
  DemoNode old = *it;

  // A fresh spot node of the same type in the same zone, as Karpenter or the ASG would launch.
  bot::NodeInfo info = old.info;
  const char zone_letter = info.zone.empty() ? 'a' : info.zone.back();
  const int subnet = zone_letter >= 'a' && zone_letter <= 'z' ? zone_letter - 'a' + 1 : 1;
  for (std::uint64_t seed = counter_ + 7;; ++seed) {
    const auto host = 20 + static_cast<int>(splitmix64(seed) % 230);
    info.name = bot::NodeName{"ip-10-0-" + std::to_string(subnet) + "-" + std::to_string(host) +
                              "." + settings_.region + ".compute.internal"};
    if (!find(info.name)) break;
  }
  DemoNode fresh = make_node(info);
  fresh.envs = old.envs;
  *it = std::move(fresh);

  for (const auto& env : old.envs) {
    bot::LifecycleEvent e;
    e.id = event_id + "." + env.str();
    e.source = settings_.source;
    e.kind = bot::LifecycleKind::rescheduled;
    e.env = env;
    e.time = clock_.now();
    e.reason = "spot interruption of " + old.info.name.str();
    e.message = "pods moved from " + old.info.name.str() + " to " + info.name.str() +
                " after the spot interruption" + kSim;
    e.nodes = nodes_of(env);
    e.simulated = true;
    log().info("simulated reschedule env={} from={} to={}", env.str(), old.info.name.str(),
               info.name.str());
    publisher_.publish(e, [id = e.id](bot::Status s) {
      if (!s)
        log().error("rescheduled event not published id={} error=\"{}\"", id, s.error().message);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// DemoBackend

std::vector<DemoBackend::Stage> DemoBackend::stages(bot::JobVerb verb) {
  using std::chrono::seconds;
  switch (verb) {
    case bot::JobVerb::up:
      return {{"render manifests", seconds(5)},  {"create namespace", seconds(3)},
              {"pull images", seconds(40)},      {"deploy services", seconds(60)},
              {"migrate database", seconds(30)}, {"smoke test", seconds(15)}};
    case bot::JobVerb::down:
      return {{"delete namespace", seconds(10)}, {"wait for finalizers", seconds(5)}};
    case bot::JobVerb::suspend:
      return {{"scale to zero", seconds(8)}};
    case bot::JobVerb::resume:
      return {{"scale up", seconds(20)}, {"wait for readiness", seconds(10)}};
    case bot::JobVerb::extend:
      return {{"annotate namespace", seconds(2)}};
  }
  return {};
}

namespace {

struct DemoState : std::enable_shared_from_this<DemoState> {
  DemoState(bot::Clock& c, DemoCluster& cl) : clock(c), cluster(cl) {}

  bot::Clock& clock;
  DemoCluster& cluster;
  bot::Job job;
  bot::AppSpec app;
  JobObserver observer;
  std::vector<DemoBackend::Stage> stages;
  std::optional<size_t> fail_at;
  std::string url;
  std::string ns;
  std::string image;
  bool existed = false;
  bool finished = false;
  bool cancelling = false;
  bot::TimerId timer = 0;
  std::deque<std::string> log_tail;

  void schedule(bot::Duration d, void (DemoState::*fn)(size_t), size_t arg) {
    auto self = shared_from_this();
    timer = clock.call_after(d, [self, fn, arg] { ((*self).*fn)(arg); });
  }

  void log_line(std::string line) {
    line += kSim;
    log_tail.push_back(line);
    if (log_tail.size() > 20) log_tail.pop_front();
    if (observer.on_log) observer.on_log(line);
  }

  std::string annotations() const {
    auto expires = expires_for(job, app).value_or(clock.now() + ttl_for(job, app));
    return "janitor/ttl=" + janitor_ttl(ttl_for(job, app)) +
           " and janitor/expires=" + janitor_expires(expires);
  }

  std::string stage_message(const std::string& name) const {
    if (name == "render manifests")
      return "rendering the Helm chart of " + (app.repo.empty() ? app.name.str() : app.repo) +
             " with image " + image;
    if (name == "create namespace")
      return existed ? "namespace " + ns + " exists; updating annotations " + annotations()
                     : "creating namespace " + ns + " with annotations " + annotations();
    if (name == "pull images") return "pulling " + image + ", postgres:16 and redis:7 on the nodes";
    if (name == "deploy services")
      return "rolling out " + app.name.str() + ", its services and database";
    if (name == "migrate database") return "running database migrations";
    if (name == "smoke test") return "checking " + url + "/healthz";
    if (name == "delete namespace") return "deleting namespace " + ns;
    if (name == "wait for finalizers")
      return "waiting for volumes and load balancers to be released";
    if (name == "scale to zero")
      return "scaling deployments in " + ns + " to zero; data volumes are kept";
    if (name == "scale up") return "scaling deployments in " + ns + " back up";
    if (name == "wait for readiness") return "waiting for pods to become ready";
    if (name == "annotate namespace") {
      auto expires = expires_for(job, app).value_or(clock.now() + ttl_for(job, app));
      return "setting janitor/expires=" + janitor_expires(expires) + " on namespace " + ns;
    }
    return name;
  }

  std::string failure(const std::string& name) {
    if (name == "render manifests") {
      log_line("Error: values.yaml: json: unknown field \"replicaCount\" in chart " +
               app.name.str());
      return "helm template failed: unknown field \"replicaCount\" in values";
    }
    if (name == "create namespace") {
      log_line("Error from server (Forbidden): namespaces \"" + ns +
               "\" is forbidden: exceeded quota");
      return "namespace " + ns + " could not be created: exceeded quota namespace-count";
    }
    if (name == "pull images") {
      log_line("Failed to pull image \"" + image + "\": not found");
      log_line("Back-off pulling image \"" + image + "\"");
      return "ImagePullBackOff: image " + image + " not found";
    }
    if (name == "deploy services") {
      log_line("deployment \"" + app.name.str() + "\": 0 of 2 updated replicas are available");
      log_line("pod " + job.env.str() + "-web-7c9d8f6b5-x2xkq: CrashLoopBackOff (exit code 1)");
      return "deployment " + app.name.str() +
             " exceeded its progress deadline: pods in CrashLoopBackOff";
    }
    if (name == "migrate database") {
      log_line("migrating 0042_add_orders_index ...");
      log_line("ERROR: relation \"orders\" does not exist");
      return "database migration 0042_add_orders_index failed: relation \"orders\" does not exist";
    }
    if (name == "smoke test") {
      log_line("GET " + url + "/healthz -> 503 Service Unavailable");
      return "smoke test failed: GET " + url + "/healthz returned 503";
    }
    log_line(name + ": error");
    return name + " failed";
  }

  void begin_stage(size_t i) {
    if (finished) return;
    if (i == stages.size()) return complete();
    const auto& s = stages[i];
    if (observer.on_stage) {
      observer.on_stage(s.name, static_cast<int>(i + 1), static_cast<int>(stages.size()),
                        stage_message(s.name) + kSim);
    }
    log_line("stage " + s.name + " started");
    if (fail_at == i) {
      schedule(s.duration / 2, &DemoState::fail_stage, i);
    } else {
      schedule(s.duration, &DemoState::begin_stage, i + 1);
    }
  }

  void fail_stage(size_t i) {
    if (finished) return;
    JobOutcome o;
    o.exit_status = 1;
    o.reason = failure(stages[i].name) + kSim;
    finish(std::move(o));
  }

  void complete() {
    switch (job.verb) {
      case bot::JobVerb::up:
      case bot::JobVerb::resume: {
        auto nodes = cluster.place(job.env);
        log_line("environment " + job.env.str() + " is serving at " + url);
        if (observer.on_url) observer.on_url(url);
        for (const auto& n : nodes) {
          if (observer.on_node) observer.on_node(n);
        }
        break;
      }
      case bot::JobVerb::down:
      case bot::JobVerb::suspend:
        cluster.remove(job.env);
        break;
      case bot::JobVerb::extend:
        break;
    }
    JobOutcome o;
    o.success = true;
    o.exit_status = 0;
    finish(std::move(o));
  }

  void cancelled(size_t) {
    JobOutcome o;
    o.cancelled = true;
    o.reason = "cancelled";
    finish(std::move(o));
  }

  void finish(JobOutcome o) {
    if (finished) return;
    finished = true;
    o.log_tail.assign(log_tail.begin(), log_tail.end());
    auto done = std::move(observer.on_done);
    observer = {};
    if (done) done(o);  // may destroy the DemoJob handle; `self` in the timer keeps us alive
  }
};

class DemoJob final : public RunningJob {
 public:
  explicit DemoJob(std::shared_ptr<DemoState> state) : state_(std::move(state)) {}
  ~DemoJob() override {
    if (!state_->finished) {
      state_->finished = true;
      state_->observer = {};
      state_->clock.cancel(state_->timer);
    }
  }
  void cancel() override {
    if (state_->finished || state_->cancelling) return;
    state_->cancelling = true;
    state_->clock.cancel(state_->timer);
    state_->schedule(bot::Duration::zero(), &DemoState::cancelled, 0);
  }

 private:
  std::shared_ptr<DemoState> state_;
};

}  // namespace

DemoBackend::DemoBackend(DemoSettings settings, DemoCluster& cluster, bot::Clock& clock)
    : settings_(std::move(settings)), cluster_(cluster), clock_(clock) {}

std::unique_ptr<RunningJob> DemoBackend::start(const bot::Job& job, const bot::AppSpec& app,
                                               JobObserver observer) {
  auto s = std::make_shared<DemoState>(clock_, cluster_);
  s->job = job;
  s->app = app;
  s->observer = std::move(observer);
  s->stages = stages(job.verb);
  s->ns = namespace_for(job, app);
  s->image = "ghcr.io/" + (app.repo.empty() ? "acme/" + app.name.str() : app.repo) + ":" +
             (job.image.empty() ? "pr-" + std::to_string(job.pr) : job.image);
  s->url = expand_template(
      app.url_template.empty() ? settings_.default_url_template : app.url_template, job);
  s->existed = !cluster_.nodes_of(job.env).empty();
  if (auto it = job.values.find("demo.fail"); it != job.values.end()) {
    const std::string wanted = normalize_stage(it->second);
    for (size_t i = 0; i < s->stages.size(); ++i) {
      if (normalize_stage(s->stages[i].name) == wanted || std::to_string(i + 1) == wanted) {
        s->fail_at = i;
      }
    }
  }
  s->schedule(bot::Duration::zero(), &DemoState::begin_stage, 0);
  return std::make_unique<DemoJob>(std::move(s));
}

}  // namespace runbot::deploy
