#include "tests/support/announcer_cases.h"

namespace runbot::testing {

// The neutral messages of every notification kind, built by the real announcer.
std::map<std::string, bot::Message> announcer_cases() {
  AnnouncerFixture f;
  std::map<std::string, bot::Message> cases;

  bot::Environment provisioning = f.env;
  provisioning.state = bot::EnvState::provisioning;
  provisioning.url.clear();
  provisioning.ready_at.reset();
  provisioning.expires_at.reset();
  provisioning.stage = "deploy";
  provisioning.nodes.clear();
  cases["status_card_provisioning"] = bot::announce::status_card(provisioning, f.app, f.now);
  cases["status_card_ready"] = bot::announce::status_card(f.env, f.app, f.now);
  bot::Environment demo = f.env;
  demo.simulated = true;
  cases["status_card_simulated"] = bot::announce::status_card(demo, f.app, f.now);

  cases["requested"] = bot::announce::requested(provisioning, f.app, false);

  bot::LifecycleEvent stage;
  stage.kind = bot::LifecycleKind::progress;
  stage.env = f.env.id;
  stage.stage = "deploy";
  stage.stage_index = 2;
  stage.stage_count = 3;
  stage.message = "helm upgrade --install front-end";
  cases["progress"] = bot::announce::progress(provisioning, stage, f.now, 8min);

  cases["ready"] = bot::announce::ready(f.env, f.app, 5min, 4h);
  cases["updated"] = bot::announce::updated(f.env, f.app);

  bot::LifecycleEvent failure;
  failure.kind = bot::LifecycleKind::failed;
  failure.env = f.env.id;
  failure.stage = "deploy";
  failure.reason = "helm upgrade failed";
  failure.exit_status = 1;
  failure.log_tail = {"Release \"front-end-pr-123\" does not exist. Installing it now.",
                      "Error: timed out waiting for the condition",
                      "pod/front-end-7d9f4b-x2x8l  0/1  CrashLoopBackOff  4  2m"};
  cases["failed"] = bot::announce::failed(provisioning, f.app, failure);

  bot::LifecycleEvent cancel;
  cancel.kind = bot::LifecycleKind::cancelled;
  cancel.verb = bot::JobVerb::up;
  cases["cancelled"] = bot::announce::cancelled(provisioning, cancel);

  bot::Environment expiring = f.env;
  expiring.expires_at = f.now + 30min;
  cases["ttl_warning"] = bot::announce::ttl_warning(expiring, 30min - 5s, 4h);
  cases["extended"] = bot::announce::extended(f.env, f.bob, 4h);
  cases["expired"] = bot::announce::expired(f.env, f.app, f.now, false);
  cases["deleted"] = bot::announce::deleted(f.env, f.app, f.now, "pr-closed");
  cases["tearing_down"] = bot::announce::tearing_down(f.env, f.bob);
  cases["suspended"] = bot::announce::suspended(f.env, f.app);
  cases["resumed"] = bot::announce::resumed(f.env, f.app);
  cases["interruption"] = bot::announce::interruption(f.env, f.spot(), f.now);

  bot::Environment other = f.env;
  other.id = bot::EnvId{"api-pr-7"};
  other.owner = f.bob;
  const std::vector<const bot::Environment*> affected = {&f.env, &other};
  cases["interruption_summary"] = bot::announce::interruption_summary(f.spot(), affected, f.now);

  bot::Environment back = f.env;
  back.interrupted_at = f.now - 3min;
  back.nodes = {bot::NodeName{"ip-10-0-2-40"}};
  cases["recovered"] = bot::announce::recovered(back, f.now);

  // The `down` confirmation comes from Bot::cmd_down, which needs a whole bot; this is its message.
  bot::Message confirm;
  confirm.kind = bot::NoticeKind::confirmation;
  confirm.title = "Tear down front-end-pr-123? Reply `yes` or `no` (within 2m).";
  confirm.text = "It is ready at https://front-end-pr-123.preview.example.com, owned by @U024BE7LH.";
  confirm.buttons = {{"Yes, tear down", "confirm", "yes", ""}, {"No", "confirm", "no", ""}};
  cases["confirmation"] = confirm;
  return cases;
}

}  // namespace runbot::testing
