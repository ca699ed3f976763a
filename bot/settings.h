#pragma once
// BotSettings: what the core needs from the configuration file (bot/app/config.* loads and
// validates it). Plain values with defaults that match product.md.
#include <map>
#include <string>
#include <vector>

#include "bot/model.h"
#include "bot/policy.h"

namespace runbot::bot {

struct BotSettings {
  std::map<AppName, AppSpec> apps;
  // TTL warnings, given this long before expiry.
  std::vector<Duration> ttl_warnings{std::chrono::minutes(30), std::chrono::minutes(5)};
  // When kube-janitor enforces TTLs, runbot only warns and announces; otherwise it publishes the
  // `down` job itself when the TTL passes.
  bool janitor_enforces_ttl = false;
  // "<platform>:<channel>" for interruption summaries; empty = none.
  std::string oncall_channel;
  Duration confirmation_timeout = std::chrono::minutes(2);
  Duration extend_button = std::chrono::hours(4);
  Duration ttl_check_interval = std::chrono::seconds(1);
  // After an interruption, say so in the thread if the environment has not recovered by then.
  Duration recovery_timeout = std::chrono::minutes(10);
  // Warning groups kept per environment (oldest dropped first).
  size_t max_warning_groups = 10;
  std::string source = "/runbot/bot";
  // Demo mode enables `simulate`.
  bool demo = false;
  // Roles, quotas, budgets (disabled by default: everyone may do everything).
  PolicySettings policy;
  // How often budgets are checked for the 80 % and 100 % alerts.
  Duration budget_check_interval = std::chrono::minutes(1);
  // State is written at most this often: changes within the delay share one snapshot (zero = once
  // per loop turn). Under load the delay stretches to 20 times what the last snapshot took (so
  // saving takes about 5 % of the time), up to 4 times this. Input offsets are committed only behind written
  // state, so this also bounds how far commits trail handling.
  Duration state_save_delay = Duration::zero();
  // Deleted environments are kept this long for `usage`.
  Duration history = std::chrono::hours(24 * 90);
};

}  // namespace runbot::bot
