#pragma once
// Shared by the KafkaStateStore tests: a realistic Registry, and scenarios run both against the
// mock cluster (component) and a real broker (integration). Scenarios drive one io_context until
// a condition holds (bounded), never sleep.
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <string>

#include "bot/registry.h"
#include "events/kafka_settings.h"
#include "events/kafka_state_store.h"

namespace runbot::events::testing {

// A registry with `envs` environments app-<i>-pr-<100+i> (threads, nodes, warnings, values),
// nodes hosting them, a cluster event, lifecycle ids, a learned provisioning time, a pending
// request and an audit record: what a running bot would snapshot.
inline bot::Registry sample_registry(int envs) {
  using namespace std::chrono_literals;
  bot::Registry r;
  const bot::TimePoint t0 = bot::TimePoint{} + 480000h;
  for (int i = 0; i < envs; ++i) {
    bot::Environment e;
    e.app = bot::AppName{"app-" + std::to_string(i)};
    e.pr = 100 + i;
    e.id = bot::EnvId{e.app.str() + "-pr-" + std::to_string(e.pr)};
    e.namespace_name = e.id.str();
    e.state = bot::EnvState::ready;
    e.owner = e.requester = bot::UserId{"U0" + std::to_string(i)};
    e.team = bot::TeamName{"web"};
    e.created_at = t0 + std::chrono::minutes(i);
    e.ready_at = e.created_at + 3min;
    e.ttl = 8h;
    e.expires_at = *e.ready_at + 8h;
    e.url = "https://" + e.id.str() + ".preview.example.com";
    e.image = "registry.example.com/app:" + std::to_string(i);
    e.values = {{"replicas", "2"}, {"feature", "on"}};
    e.threads = {{"slack", bot::ChannelId{"C0123"}, "1732111391.00020" + std::to_string(i)}};
    e.warnings_sent = {30min};
    e.warnings = {
        {"BackOff", "Pod/" + e.id.str() + "-7d9f", "back-off restarting", 3, t0, t0 + 1min}};
    bot::remember(e, e.created_at, "requested by <@" + e.owner.str() + ">");
    r.put(e);
    r.set_env_nodes(e.id,
                    {{bot::NodeName{"ip-10-0-3-" + std::to_string(i % 2)}, bot::CapacityType::spot,
                      "m5.large", "eu-west-1a"}},
                    t0 + 5min);
    r.mark_lifecycle("evt-" + e.id.str() + "-ready");
  }
  bot::ClusterEvent ev;
  ev.dedupe_key = "spot-itn-event-1";
  ev.source = "aws-node-termination-handler";
  ev.kind = bot::ClusterEventKind::spot_interruption;
  ev.node.name = bot::NodeName{"ip-10-0-3-0"};
  ev.time = t0 + 2h;
  ev.deadline = t0 + 2h + 2min;
  std::vector<bot::EnvId> affected;
  for (const auto& [id, e] : r.environments()) affected.push_back(id);
  r.remember_cluster_event({t0 + 2h, ev, affected});
  r.learn_provisioning_time(bot::AppName{"app-0"}, 150s);
  bot::PendingRequest p;
  p.id = r.next_request_id();
  p.app = bot::AppName{"app-9"};
  p.pr = 9;
  p.env = bot::EnvId{"app-9-pr-9"};
  p.user = bot::UserId{"U09"};
  p.platform = "slack";
  p.channel = bot::ChannelId{"C0123"};
  p.reason = "quota";
  r.pending().push_back(p);
  r.audit(
      {t0, "slack", bot::ChannelId{"C0123"}, bot::UserId{"U00"}, "up", "app-0 100", "ok", false});
  r.mark_alerted("web/2026-11/80");
  return r;
}

// Runs `io` until every record the store produced has its delivery report, or fails the test.
void wait_delivered(boost::asio::io_context& io, const KafkaStateStore& store);

// Saves `versions` successive snapshots of a registry whose environments come and go (adds,
// changes, teardowns, lifecycle ids), waits for delivery, then checks that a fresh store's
// load() restores exactly the last registry. The writer load()s first, so state left on the
// topic by an earlier run is replaced (its environments tombstoned); `expect_empty_topic` also
// checks that there was none. Returns the number of records the writer produced.
std::uint64_t many_saves_then_fresh_load_restores_the_last(const KafkaSettings& settings,
                                                           const StateTopicSettings& state,
                                                           int versions,
                                                           bool expect_empty_topic = true);

}  // namespace runbot::events::testing
