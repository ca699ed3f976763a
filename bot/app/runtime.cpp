#include "bot/app/runtime.h"

#include <unistd.h>

#include <csignal>
#include <iostream>
#include <memory>
#include <set>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "adapters/common/asio_clock.h"
#include "adapters/common/http_server.h"
#include "adapters/console/console_adapter.h"
#include "adapters/mattermost/mattermost_adapter.h"
#include "adapters/slack/slack_adapter.h"
#include "adapters/teams/teams_adapter.h"
#include "bot/app/config.h"
#include "bot/app/file_state_store.h"
#include "bot/app/json_log.h"
#include "bot/app/nth_ingest.h"
#include "bot/bot.h"
#include "deploy/demo_backend.h"
#include "deploy/exec_backend.h"
#include "deploy/github_dispatch_backend.h"
#include "deploy/provisioner.h"
#include "events/embedded_broker.h"
#include "events/kafka_event_publisher.h"
#include "events/kafka_event_source.h"
#include "events/kafka_job_queue.h"
#include "events/kafka_job_source.h"
#include "events/kafka_producer.h"
#include "events/kafka_state_store.h"
#include "events/topic_admin.h"

namespace runbot::app {
namespace {

namespace asio = boost::asio;

int fail(const std::string& message) {
  std::cerr << "runbot: " << message << "\n";
  return 1;
}

events::KafkaSettings kafka_settings(const Config& c) {
  events::KafkaSettings s;
  s.brokers = c.kafka.brokers;
  s.properties = c.kafka.properties;
  s.topics.jobs = c.kafka.jobs_topic;
  s.topics.events = c.kafka.events_topic;
  s.topics.cluster_events = c.kafka.cluster_events_topic;
  s.session_timeout = c.kafka.session_timeout;
  return s;
}

std::string default_user() {
  const char* u = std::getenv("USER");
  return u && *u ? u : "dev";
}

// The in-process provisioner with the configured backend.
struct ProvisionerParts {
  std::unique_ptr<deploy::DemoCluster> cluster;
  std::unique_ptr<deploy::Backend> backend;
  deploy::GithubDispatchBackend* github = nullptr;  // the backend, when it is github-dispatch
  std::unique_ptr<deploy::Provisioner> provisioner;
  std::unique_ptr<events::KafkaJobSource> jobs;
};

bot::Result<ProvisionerParts> make_provisioner(asio::io_context& io, const Config& config, bot::Clock& clock,
                                               bot::EventPublisher& publisher, const events::KafkaSettings& ks) {
  ProvisionerParts p;
  if (config.provisioner.backend == "exec") {
    deploy::ExecSettings es;
    es.program = config.provisioner.exec.program;
    es.args = config.provisioner.exec.args;
    es.env = config.provisioner.exec.env;
    es.timeout = config.provisioner.exec.timeout;
    es.kill_grace = config.provisioner.exec.kill_grace;
    p.backend = std::make_unique<deploy::ExecBackend>(io, es);
  } else if (config.provisioner.backend == "github-dispatch") {
    auto created = deploy::GithubDispatchBackend::create(io, clock, config.provisioner.github);
    if (!created) return created.error();
    p.github = created->get();
    p.backend = std::move(*created);
  } else {
    deploy::DemoClusterSettings cs;
    if (static_cast<size_t>(config.provisioner.demo_nodes) < cs.nodes.size()) {
      cs.nodes.resize(static_cast<size_t>(config.provisioner.demo_nodes));
    }
    p.cluster = std::make_unique<deploy::DemoCluster>(cs, clock, publisher);
    p.backend = std::make_unique<deploy::DemoBackend>(deploy::DemoSettings{}, *p.cluster, clock);
  }
  deploy::ProvisionerSettings ps;
  ps.max_concurrent = config.provisioner.max_concurrent;
  p.provisioner = std::make_unique<deploy::Provisioner>(ps, config.bot.apps, *p.backend, publisher, clock);
  auto* prov = p.provisioner.get();
  auto src = events::KafkaJobSource::create(io, ks, [prov](const bot::Job& j) { prov->on_job(j); },
                                            config.kafka.provisioner_group_id);
  if (!src) return src.error();
  p.jobs = std::move(*src);
  return p;
}

std::string provisioner_summary(const deploy::Provisioner& p) {
  auto s = p.stats();
  return std::to_string(s.running) + " running, " + std::to_string(s.queued) + " queued, " +
         std::to_string(s.done) + " done, " + std::to_string(s.failed) + " failed";
}

struct Options {
  bool demo = false;
  bool console = false;
  bool provisioner = false;
  bool bot = true;
};

// Builds and runs one process: bot and/or provisioner, console, HTTP. Returns the exit code.
int run(const RunOptions& opts, Options mode) {
  // Configuration first: every problem at once, before anything starts.
  auto env = process_environment();
  bot::Result<Config> loaded = opts.config_path.empty() ? parse_config(demo_config_yaml(), env)
                                                        : load_config(opts.config_path, env);
  if (!loaded) return fail(loaded.error().message);
  Config config = std::move(*loaded);
  if (opts.http_port) config.http_port = *opts.http_port;
  if (opts.state_file) config.state_file = *opts.state_file;
  std::string level = opts.log_level.value_or(mode.demo && config.log_level == "info" ? "warn" : config.log_level);
  setup_logging(config.log_format, level);
  for (const auto& w : config.warnings) spdlog::warn("config: {}", w);
  config.bot.demo = mode.demo;
  if (!mode.demo && config.kafka.brokers.empty()) {
    return fail("kafka.brokers is not set: `runbot run` and `runbot provisioner` need a Kafka cluster "
                "(set kafka.brokers or RUNBOT_KAFKA_BROKERS); `runbot demo` embeds one");
  }

  asio::io_context io;
  common::AsioClock real_clock(io, 1.0);
  common::AsioClock domain_clock(io, mode.demo ? opts.speed : 1.0);
  bot::Metrics metrics;

  std::unique_ptr<events::EmbeddedBroker> broker;
  if (config.kafka.brokers.empty()) {
    events::KafkaSettings::Topics topics;
    topics.jobs = config.kafka.jobs_topic;
    topics.events = config.kafka.events_topic;
    topics.cluster_events = config.kafka.cluster_events_topic;
    auto b = events::EmbeddedBroker::start(topics);
    if (!b) return fail("cannot start the embedded Kafka: " + b.error().message);
    broker = std::move(*b);
    config.kafka.brokers = broker->bootstrap_servers();
  }
  events::KafkaSettings ks = kafka_settings(config);
  if (!broker) {
    // Consumers cannot join a group on topics that do not exist; brokers often do not auto-create.
    auto created = events::ensure_topics(ks);
    if (!created) return fail("kafka topics: " + created.error().message);
  }
  if (mode.demo) ks.session_timeout = std::min<std::chrono::milliseconds>(ks.session_timeout, std::chrono::seconds(6));

  auto producer = events::KafkaProducer::create(io, ks);
  if (!producer) return fail("kafka producer: " + producer.error().message);
  events::KafkaJobQueue job_queue(**producer, ks.topics);
  events::KafkaEventPublisher publisher(**producer, ks.topics);

  // State: a compacted Kafka topic with a real broker, a local file in the embedded default.
  std::unique_ptr<bot::StateStore> store;
  events::KafkaStateStore* kafka_store = nullptr;
  std::string state_where;
  bot::Registry registry;
  if (mode.bot) {
    if (broker) {
      store = std::make_unique<FileStateStore>(config.state_file);
      state_where = "the state file " + config.state_file;
    } else {
      events::StateTopicSettings sts;
      sts.topic = config.kafka.state_topic;
      if (auto c = events::ensure_compacted_topic(ks, sts.topic); !c) return fail("kafka state topic: " + c.error().message);
      auto created = events::KafkaStateStore::create(io, ks, sts);
      if (!created) return fail("kafka state store: " + created.error().message);
      kafka_store = created->get();
      store = std::move(*created);
      state_where = "the state topic " + sts.topic;
    }
    // Always read (the Kafka store learns which keys exist, so it can delete them later); use
    // what was read unless --fresh.
    auto snapshot = store->load();
    if (!snapshot) return fail("cannot read " + state_where + ": " + snapshot.error().message);
    if (*snapshot && !opts.fresh) {
      auto restored = bot::Registry::restore(**snapshot);
      if (!restored) {
        return fail(state_where + " cannot be used: " + restored.error().message +
                    (kafka_store ? ". Start with --fresh to begin with no environments."
                                 : ". Move it away (or start with --fresh) to begin with no environments."));
      }
      registry = std::move(*restored);
    }
  }

  // How far the input was applied to the state we start from (see KafkaConsumer::skip_applied).
  const auto applied_positions = events::positions_from_json(registry.input_positions());
  bot::Outbox outbox(config.outbox, real_clock, metrics);
  std::unique_ptr<bot::Bot> the_bot;
  std::unique_ptr<events::KafkaEventSource> event_source;
  if (mode.bot) {
    the_bot = std::make_unique<bot::Bot>(config.bot, std::move(registry), domain_clock, job_queue, outbox, metrics,
                                         store.get());
    // Offsets are committed only behind durable state: a crash then re-reads what the state
    // does not have yet, and dedupe memory (in the same state) suppresses what it does have.
    auto src = events::KafkaEventSource::create(io, ks, *the_bot, config.kafka.group_id, /*defer_offsets=*/true);
    if (!src) return fail("kafka consumer: " + src.error().message);
    event_source = std::move(*src);
    // Committed offsets lag the state: records read again that the state already holds (their
    // dedupe memory may have rolled over since) are skipped, not applied twice.
    event_source->consumer().skip_applied(applied_positions);
  }

  ProvisionerParts prov;
  if (mode.provisioner) {
    auto p = make_provisioner(io, config, domain_clock, publisher, ks);
    if (!p) return fail("provisioner: " + p.error().message);
    prov = std::move(*p);
    // GitHub reports workflow runs by webhook: without the HTTP server no job could ever finish.
    if (prov.github && config.http_port < 0) {
      return fail("provisioner: github-dispatch needs runbot's HTTP server, but http.port is -1: "
                  "GitHub POSTs workflow_run webhooks to " +
                  config.provisioner.github.webhook_path);
    }
  }

  if (the_bot) {
    bot::BotHooks hooks;
    if (prov.cluster) {
      auto* cluster = prov.cluster.get();
      hooks.simulate_spot = [cluster](const bot::NodeName& n) { return cluster->simulate_spot_interruption(n); };
    }
    auto* source = event_source.get();
    hooks.event_stats = [source] { return source->stats(); };
    hooks.state_checkpoint = [source]() -> std::function<void()> {
      std::uint64_t mark = source->consumer().checkpoint();
      return [source, mark] { source->consumer().commit_through(mark); };
    };
    hooks.input_positions = [source] { return events::positions_to_json(source->consumer().positions()); };
    source->set_after_record([b = the_bot.get()] { b->request_save(); });
    if (prov.provisioner) {
      auto* p = prov.provisioner.get();
      hooks.provisioner_status = [p] { return provisioner_summary(*p); };
    }
    // Every command, allowed or denied, also goes to the audit topic (keyed by user).
    auto* audit_producer = producer->get();
    const std::string audit_topic = config.kafka.audit_topic;
    hooks.audit = [audit_producer, audit_topic](const bot::AuditRecord& r) {
      audit_producer->produce(audit_topic, r.user.str(), bot::audit_record_json(r).dump(), {}, [](bot::Status s) {
        if (!s) spdlog::error("audit record not delivered: {}", s.error().message);
      });
    };
    the_bot->set_hooks(std::move(hooks));
  }

  std::unique_ptr<console::ConsoleAdapter> console_adapter;
  if (the_bot && mode.console) {
    console::ConsoleSettings cs;
    cs.user = !opts.user.empty() ? opts.user : !config.console_user.empty() ? config.console_user : default_user();
    cs.email = config.console_email;
    cs.groups = config.console_groups;
    cs.interactive = ::isatty(STDIN_FILENO) && ::isatty(STDOUT_FILENO);
    console_adapter = std::make_unique<console::ConsoleAdapter>(io, cs, domain_clock, std::cout, &std::cin);
  }

  // Slack, when configured: Socket Mode needs no public endpoint.
  std::unique_ptr<slack::SlackAdapter> slack_adapter;
  if (the_bot && config.slack) {
    auto created = slack::SlackAdapter::create(io, *config.slack);
    if (!created) return fail("slack: " + created.error().message);
    slack_adapter = std::move(*created);
    outbox.set_platform_settings("slack", config.slack_outbox);
  }

  // Mattermost, when configured: the socket dials out; the slash command and buttons need the
  // HTTP server (routed below).
  std::unique_ptr<mattermost::MattermostAdapter> mattermost_adapter;
  if (the_bot && config.mattermost) {
    auto created = mattermost::MattermostAdapter::create(io, *config.mattermost);
    if (!created) return fail("mattermost: " + created.error().message);
    mattermost_adapter = std::move(*created);
    outbox.set_platform_settings("mattermost", config.mattermost_outbox);
    if (config.http_port < 0) spdlog::warn("mattermost: no HTTP server (http.port -1): the slash command and buttons cannot work");
  }

  // Teams, when configured: the Bot Connector POSTs every activity to runbot's HTTP server, so
  // it cannot work without one. Conversation references live with the registry's state.
  std::unique_ptr<teams::TeamsAdapter> teams_adapter;
  if (the_bot && config.teams) {
    if (config.http_port < 0) {
      return fail(
          "teams: needs runbot's HTTP server, but http.port is -1: the Bot Connector POSTs "
          "activities to " +
          config.teams->adapter.messaging_path +
          " (set http.port, and expose that path over HTTPS)");
    }
    auto created = teams::TeamsAdapter::create(io, *config.teams);
    if (!created) return fail("teams: " + created.error().message);
    teams_adapter = std::move(*created);
    bot::Bot* b = the_bot.get();
    teams_adapter->set_reference_store({[b] {
                                          std::vector<std::pair<std::string, std::string>> out;
                                          for (const auto& [key, value] :
                                               b->registry().adapter_states())
                                            out.emplace_back(key, value);
                                          return out;
                                        },
                                        [b](const std::string& key, const std::string& value) {
                                          b->set_adapter_state(key, value);
                                        }});
    outbox.set_platform_settings("teams", config.teams_outbox);
  }

  // HTTP: health, readiness, metrics.
  std::unique_ptr<common::HttpServer> http;
  std::unique_ptr<NthIngest> nth_ingest;
  if (config.http_port >= 0) {
    common::HttpServerSettings hs;
    hs.address = config.http_address;
    hs.port = static_cast<std::uint16_t>(config.http_port);
    hs.tls_cert_file = config.http_tls_cert_file;
    hs.tls_key_file = config.http_tls_key_file;
    http = std::make_unique<common::HttpServer>(io, hs);
    http->route("GET", "/healthz", [](const common::HttpRequest&) { return common::HttpResponse{200, "text/plain; charset=utf-8", "ok\n", {}}; });
    http->route("GET", "/readyz", [&](const common::HttpRequest&) {
      std::string problems;
      if (the_bot && !the_bot->state_healthy()) problems += "state cannot be written\n";
      if (kafka_store && !kafka_store->healthy()) problems += "state topic: " + kafka_store->problem() + "\n";
      if (console_adapter && !console_adapter->healthy()) problems += "console adapter down\n";
      if (slack_adapter && !slack_adapter->healthy()) problems += "slack: " + slack_adapter->problem() + "\n";
      if (mattermost_adapter && !mattermost_adapter->healthy()) problems += mattermost_adapter->problem() + "\n";
      if (teams_adapter && !teams_adapter->healthy()) problems += teams_adapter->problem() + "\n";
      if (problems.empty()) return common::HttpResponse{200, "text/plain; charset=utf-8", "ready\n", {}};
      return common::HttpResponse{503, "text/plain; charset=utf-8", problems, {}};
    });
    http->route("GET", "/metrics", [&](const common::HttpRequest&) {
      if (the_bot) the_bot->refresh_metrics();
      metrics.set("runbot_outbox_pending", {}, static_cast<double>(outbox.pending()));
      metrics.set("runbot_kafka_produce_in_flight", {}, static_cast<double>((*producer)->in_flight()));
      if (event_source) {
        auto s = event_source->stats();
        metrics.set("runbot_events_records_consumed", {}, static_cast<double>(s.consumed));
        metrics.set("runbot_events_records_invalid", {}, static_cast<double>(s.skipped_invalid));
        metrics.set("runbot_events_records_dead_lettered", {}, static_cast<double>(s.dead_lettered));
        metrics.set("runbot_events_consumer_lag", {}, static_cast<double>(s.lag));
      }
      if (prov.provisioner) {
        auto s = prov.provisioner->stats();
        metrics.set("runbot_provisioner_jobs", {{"state", "running"}}, static_cast<double>(s.running));
        metrics.set("runbot_provisioner_jobs", {{"state", "queued"}}, static_cast<double>(s.queued));
        metrics.set("runbot_provisioner_jobs_finished", {{"outcome", "succeeded"}}, static_cast<double>(s.done));
        metrics.set("runbot_provisioner_jobs_finished", {{"outcome", "failed"}}, static_cast<double>(s.failed));
        metrics.set("runbot_provisioner_jobs_finished", {{"outcome", "cancelled"}}, static_cast<double>(s.cancelled));
      }
      return common::HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", metrics.prometheus(), {}};
    });
    if (!config.nth_ingest_secret.empty()) {
      nth_ingest = std::make_unique<NthIngest>(config.nth_ingest_secret, [&](std::string key, std::string value,
                                                                             std::function<void(bot::Status)> done) {
        (*producer)->produce(ks.topics.cluster_events, key, std::move(value), {}, std::move(done));
      });
      http->route("POST", NthIngest::kPath, [&](const common::HttpRequest& r) { return nth_ingest->handle(r); });
    }
    if (mattermost_adapter) mattermost_adapter->route(*http);
    if (teams_adapter) teams_adapter->route(*http);
    if (prov.github) {
      prov.github->route(*http);
      spdlog::info("github-dispatch: repository={} workflow_run webhooks on {} (must be reachable from GitHub)",
                   config.provisioner.github.repository, config.provisioner.github.webhook_path);
    }
    auto port = http->start();
    if (!port) return fail("HTTP server: " + port.error().message);
    const char* scheme = config.http_tls_cert_file.empty() ? "http" : "https";
    spdlog::info("http listening address={} port={} scheme={}", config.http_address, *port, scheme);
    if (mode.demo) std::cerr << "runbot: HTTP on " << scheme << "://" << config.http_address << ":" << *port << " (/healthz /readyz /metrics)\n";
  }

  if (broker) {
    std::cerr << "runbot: embedded Kafka (librdkafka mock cluster) at " << broker->bootstrap_servers()
              << " — e.g. kcat -b " << broker->bootstrap_servers() << " -C -t " << config.kafka.events_topic << "\n";
  }
  if (mode.demo) {
    std::cerr << "runbot: demo mode — the provisioner and its nodes are SIMULATED"
              << (opts.speed != 1.0 ? ", clock ×" + std::to_string(opts.speed).substr(0, std::to_string(opts.speed).find('.') + 2) : "")
              << "\n";
  }

  // Shutdown: stop reading, finish deliveries, commit offsets, close sockets.
  bool shutting_down = false;
  auto shutdown = [&](const char* why) {
    if (shutting_down) return;
    shutting_down = true;
    spdlog::info("shutting down: {}", why);
    if (console_adapter) console_adapter->stop();
    if (slack_adapter) slack_adapter->stop();
    if (mattermost_adapter) mattermost_adapter->stop();
    if (teams_adapter) teams_adapter->stop();
    if (the_bot) the_bot->stop();
    if (http) http->stop();
    if (kafka_store) (void)kafka_store->flush();
    if (event_source) (void)event_source->close();
    if (prov.jobs) (void)prov.jobs->close();
    auto flushed = (*producer)->flush(std::chrono::seconds(10));
    if (!flushed) spdlog::warn("kafka flush incomplete: {}", flushed.error().message);
    io.stop();
  };
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (!ec) shutdown(sig == SIGINT ? "SIGINT" : "SIGTERM");
  });

  // With piped input, exit once the input is done and nothing is in flight any more.
  asio::steady_timer idle_timer(io);
  std::function<void()> check_idle = [&] {
    bool busy = outbox.pending() > 0 || (*producer)->in_flight() > 0;
    if (prov.provisioner) {
      auto s = prov.provisioner->stats();
      busy = busy || s.running > 0 || s.queued > 0;
    }
    if (the_bot) {
      for (const auto& [id, e] : the_bot->registry().environments()) {
        if (e.state == bot::EnvState::requested || e.state == bot::EnvState::provisioning ||
            e.state == bot::EnvState::updating || e.state == bot::EnvState::tearing_down ||
            e.state == bot::EnvState::expired) {
          busy = true;
        }
      }
    }
    if (!busy) return shutdown("input ended and nothing is in flight");
    idle_timer.expires_after(std::chrono::milliseconds(200));
    idle_timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) check_idle();
    });
  };

  // Commands are taken once the consumers have joined their groups, so the first job is not
  // left waiting for a rebalance (the first join takes about 3 s, longer on a real broker).
  int exit_code = 0;
  auto start_bot = [&] {
    if (!the_bot) return;
    if (slack_adapter) {
      // A rejected token stops the process with a clear message; an unreachable Slack does not.
      slack_adapter->on_started([&](bot::Status s) {
        if (s) {
          spdlog::info("slack connected bot_user={}", slack_adapter->bot_user_id());
        } else if (!s.error().is_retryable()) {
          std::cerr << "runbot: slack: " << s.error().message << "\n";
          exit_code = 1;
          shutdown("slack rejected the configuration");
        } else {
          spdlog::warn("slack not reachable yet, retrying: {}", s.error().message);
        }
      });
      the_bot->attach(*slack_adapter);
    }
    if (mattermost_adapter) {
      // Same policy as Slack: a rejected token stops the process; an unreachable server does not.
      mattermost_adapter->on_started([&](bot::Status s) {
        if (s) {
          spdlog::info("mattermost connected bot_user={}", mattermost_adapter->bot_user_id());
        } else if (!s.error().is_retryable()) {
          std::cerr << "runbot: mattermost: " << s.error().message << "\n";
          exit_code = 1;
          shutdown("mattermost rejected the configuration");
        } else {
          spdlog::warn("mattermost not reachable yet, retrying: {}", s.error().message);
        }
      });
      the_bot->attach(*mattermost_adapter);
    }
    if (teams_adapter) {
      the_bot->attach(*teams_adapter);
      spdlog::info(
          "teams: listening for the Bot Connector on {} (must be reachable over HTTPS from Azure)",
          config.teams->adapter.messaging_path);
      // Posting needs a conversation reference, captured from an activity there: say which
      // configured destinations cannot be reached yet, rather than failing on the first post.
      std::set<std::string> destinations{config.bot.oncall_channel,
                                         config.bot.policy.approvals_channel};
      for (const auto& [name, app] : config.bot.apps)
        destinations.insert(app.channels.begin(), app.channels.end());
      for (const auto& [name, team] : config.bot.policy.teams) destinations.insert(team.channel);
      for (const auto& where : destinations) {
        if (where.rfind("teams:", 0) != 0 || teams_adapter->has_reference(where.substr(6)))
          continue;
        spdlog::warn(
            "teams: no conversation reference for {} yet: install the runbot app in its team and "
            "mention "
            "the bot there once, or notifications to it fail",
            where);
      }
    }
    if (console_adapter) {
      // A scripted demo ends with its input; a server keeps serving until it is told to stop.
      if (mode.demo) {
        console_adapter->on_input_end([&] {
          if (console_adapter->input_done()) check_idle();
        });
      }
      the_bot->attach(*console_adapter);
    }
    the_bot->start();
  };
  asio::steady_timer join_timer(io);
  const auto join_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::function<void()> wait_for_groups = [&] {
    // Joined, and the fetch positions are known (lag >= 0): records produced now arrive at once.
    bool joined = (!event_source || (event_source->consumer().assigned_partitions() > 0 &&
                                     event_source->consumer().stats().lag >= 0)) &&
                  (!prov.jobs || (prov.jobs->consumer().assigned_partitions() > 0 &&
                                  prov.jobs->consumer().stats().lag >= 0));
    if (joined || std::chrono::steady_clock::now() > join_deadline) {
      if (!joined) spdlog::warn("kafka consumer groups have not formed after 60s; taking commands anyway");
      if (mode.demo) std::cerr << "runbot: ready" << "\n";
      return start_bot();
    }
    join_timer.expires_after(std::chrono::milliseconds(50));
    join_timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) wait_for_groups();
    });
  };
  if (mode.demo) std::cerr << "runbot: waiting for the Kafka consumer groups to form…\n";
  wait_for_groups();
  io.run();
  return exit_code;
}

}  // namespace

int run_demo(const RunOptions& opts) { return run(opts, {true, true, true, true}); }

int run_bot(const RunOptions& opts) { return run(opts, {false, opts.console, opts.with_provisioner, true}); }

int run_provisioner(const RunOptions& opts) { return run(opts, {false, false, true, false}); }

int check_config(const std::string& path) {
  ConfigErrors errors;
  auto c = load_config(path, process_environment(), &errors);
  if (!c) {
    std::cerr << path << ": " << c.error().message << "\n";
    return 1;
  }
  std::string chat;
  if (c->slack) chat += " slack";
  if (c->mattermost) chat += " mattermost";
  if (c->teams) chat += " teams";
  std::cout << path << ": OK — " << c->bot.apps.size() << " app(s), provisioner backend "
            << c->provisioner.backend << ", kafka "
            << (c->kafka.brokers.empty() ? "embedded (demo only)" : c->kafka.brokers) << ", chat"
            << (chat.empty() ? " console only" : chat) << "\n";
  // Valid but risky: shown, never a failure (the exit code stays 0).
  for (const auto& w : c->warnings) std::cout << "  warning: " << w << "\n";
  // Which lookups role bindings need, so an admin knows which scopes/permissions to grant.
  auto lookups = [](bool email, bool groups, const std::string& email_how, const std::string& groups_how) {
    std::string out;
    if (email) out += "e-mail (" + email_how + ")";
    if (groups) out += std::string(out.empty() ? "" : ", ") + "groups (" + groups_how + ")";
    return out.empty() ? std::string("none") : out;
  };
  if (c->slack) {
    std::cout << "  slack identity lookups: "
              << lookups(c->slack->lookup_email, c->slack->lookup_groups, "users.info, scopes users:read users:read.email",
                         "usergroups.list, scope usergroups:read")
              << ", cached " << bot::format_duration(c->slack->identity_cache_ttl) << "\n";
  }
  if (c->mattermost) {
    std::cout << "  mattermost identity lookups: "
              << lookups(c->mattermost->lookup_email, c->mattermost->lookup_groups, "GET /users/{id}",
                         "team membership, and groups where the server allows it")
              << ", cached " << bot::format_duration(c->mattermost->identity_cache_ttl) << "\n";
  }
  if (c->provisioner.backend == "github-dispatch") {
    const auto& g = c->provisioner.github;
    std::cout << "  github-dispatch: " << g.event_type_prefix << "<verb> to " << g.repository << " via "
              << g.api_url << "; GitHub must POST \"Workflow runs\" webhooks to http(s)://<this host>:"
              << c->http_port << g.webhook_path << "; jobs fail after " << bot::format_duration(g.timeout)
              << " without a result\n";
  }
  if (c->teams) {
    std::cout << "  teams identity lookups: "
              << lookups(c->teams->adapter.lookup_email, c->teams->adapter.lookup_groups,
                         "the Bot Connector's conversation member, no extra permission",
                         "Microsoft Graph " + c->teams->graph.url +
                             ", application permission GroupMember.Read.All")
              << ", cached " << bot::format_duration(c->teams->adapter.identity_cache_ttl) << "\n";
  }
  return 0;
}

}  // namespace runbot::app
