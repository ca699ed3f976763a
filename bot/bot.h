#pragma once
// Bot: the core. It takes commands from chat adapters, publishes jobs, applies lifecycle and
// cluster events to the registry, tracks TTLs and cost, and announces everything through the
// outbox into each environment's thread.
//
// Ownership: built by the composition root (bot/app) with references to its collaborators, which
// must outlive it. Threading: every method runs on the bot's executor (one io_context thread);
// adapters and Kafka consumers call in on that executor.
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "bot/chat_adapter.h"
#include "bot/clock.h"
#include "bot/command.h"
#include "bot/event_sink.h"
#include "bot/job_queue.h"
#include "bot/metrics.h"
#include "bot/outbox.h"
#include "bot/registry.h"
#include "bot/settings.h"
#include "bot/state_store.h"

namespace runbot::bot {

// Extra facts for `status` and hooks that only some deployments have.
struct BotHooks {
  // Demo only: simulate a spot interruption of a node; returns the notice's event id. Unset
  // outside the demo.
  std::function<Result<std::string>(const NodeName&)> simulate_spot;
  // Consumer statistics for `status` (event lag, last event).
  std::function<EventSourceStats()> event_stats;
  // Provisioner counters for `status`, when it runs in-process: "running 2, queued 0".
  std::function<std::string()> provisioner_status;
  // Receives every audit record (the Kafka audit topic in production); the log always gets one.
  std::function<void(const AuditRecord&)> audit;
  // Called as each snapshot is taken; the function it returns runs once that snapshot (and every
  // earlier one) is durable. The Kafka event source uses it to commit offsets behind the state.
  std::function<std::function<void()>()> state_checkpoint;
  // How far the input has been applied, saved in every snapshot (Registry::input_positions):
  // with it a restart skips re-read records the restored state already holds, however many.
  std::function<nlohmann::json()> input_positions;
};

class Bot final : public EventSink {
 public:
  // `clock` is domain time (the demo may run it faster); `store` may be null (nothing persisted).
  Bot(BotSettings settings, Registry registry, Clock& clock, JobQueue& jobs, Outbox& outbox,
      Metrics& metrics, StateStore* store);
  ~Bot() override;
  Bot(const Bot&) = delete;
  Bot& operator=(const Bot&) = delete;

  void set_hooks(BotHooks hooks) { hooks_ = std::move(hooks); }
  // Registers an adapter: its inbound messages become commands, and the outbox delivers to it.
  void attach(ChatAdapter& adapter);
  // Starts TTL tracking. Call once after attaching adapters.
  void start();
  void stop();

  // One inbound message: parse, check, act, and answer it (in-band through `adapter`, or through the
  // outbox's answer lane).
  void handle(const InboundMessage& msg, ChatAdapter& adapter);

  void on_lifecycle(const LifecycleEvent& event) override;
  void on_cluster(const ClusterEvent& event) override;

  // Runs the TTL check now (also runs every settings.ttl_check_interval once started).
  void check_ttls();

  const Registry& registry() const { return registry_; }
  // Adapter records kept with the state (see Registry::adapter_state); setting one saves state.
  std::optional<std::string> adapter_state(const std::string& key) const;
  void set_adapter_state(const std::string& key, std::string value);
  // Whether state could be saved last time (for /readyz).
  bool state_healthy() const { return state_ok_; }
  // Brings gauges (environments by state, queue length) up to date; called when /metrics is read.
  void refresh_metrics();
  // Writes pending state now (shutdown); normally state is written once per loop turn (or
  // settings.state_save_delay).
  void flush_state();
  // Asks for a snapshot even without a change (input was consumed whose offsets wait for one).
  void request_save() { save(); }

 private:
  struct Pending {
    Command command;
    TimePoint expires;
  };
  using ConversationKey = std::tuple<std::string, ChannelId, UserId>;

  Message execute(const Command& cmd, const InboundMessage& msg);
  Message cmd_up(const Command& cmd, const InboundMessage& msg);
  Message cmd_down(const Command& cmd, const InboundMessage& msg, bool confirmed);
  Message cmd_extend(const Command& cmd, const InboundMessage& msg);
  Message cmd_suspend_resume(const Command& cmd, const InboundMessage& msg);
  Message cmd_list(const Command& cmd, const InboundMessage& msg) const;
  Message cmd_describe(const Command& cmd) const;
  Message cmd_status() const;
  Message cmd_nodes() const;
  Message cmd_events(const Command& cmd) const;
  Message cmd_usage(const Command& cmd) const;
  Message cmd_help(const Command& cmd) const;
  Message cmd_confirm(bool yes, const InboundMessage& msg);
  Message cmd_simulate(const Command& cmd);
  Message cmd_cancel(const Command& cmd, const InboundMessage& msg);
  Message cmd_approve(const Command& cmd, const InboundMessage& msg, bool approve);
  Message cmd_audit() const;
  // Creates or updates the environment and publishes its `up` job (checks already passed).
  Message start_up(const Command& cmd, const InboundMessage& as);
  // Starts queued requests that now fit their quota, oldest first.
  void drain_queue();
  void check_budgets();
  void audit(const InboundMessage& msg, const std::string& verb, const std::string& outcome);

  // Publishes a job for `env`; on failure the environment fails with the reason.
  void publish(Job job);
  Job make_job(JobVerb verb, const Environment& env, const UserId& by);
  // Announces a message in every thread of `env`, refreshing its status card first.
  void announce(const Environment& env, Message message);
  void refresh_card(const Environment& env);
  void post_to_channel(const std::string& where, Message message);
  // Applies a state change; an illegal one is logged and refused (returns false).
  bool move(Environment& env, EnvState to, const std::string& why);
  void expire(Environment& env);
  void save();
  void schedule_ttl_check();
  const AppSpec* app_of(const Environment& env) const;
  Result<Environment*> existing(const EnvId& id);

  BotSettings settings_;
  Registry registry_;
  Clock& clock_;
  JobQueue& jobs_;
  Outbox& outbox_;
  Metrics& metrics_;
  StateStore* store_;
  BotHooks hooks_;
  std::vector<ChatAdapter*> adapters_;
  std::map<ConversationKey, Pending> pending_;
  Policy policy_;
  TimePoint next_budget_check_{};
  TimerId ttl_timer_ = 0;
  bool stopped_ = false;
  bool state_ok_ = true;
  bool state_dirty_ = false;
  TimerId save_timer_ = 0;
  // What the last snapshot took (real time, whatever the Clock): the next one waits at least
  // kSaveCostFactor times as long.
  std::chrono::steady_clock::duration last_flush_cost_{};
  static constexpr int kSaveCostFactor = 20;
  static constexpr int kMaxSaveStretch = 4;
  // Guards callbacks the state store runs after the bot is gone.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  std::uint64_t job_seq_ = 0;
  std::uint64_t instance_ = 0;
  AppSpec unknown_app_;
};

}  // namespace runbot::bot
