#include "bot/model.h"

#include <array>
#include <cctype>
#include <utility>

namespace runbot::bot {
namespace {

template <class E, size_t N>
std::optional<E> lookup(const std::array<std::pair<E, const char*>, N>& table, std::string_view s) {
  for (const auto& [value, name] : table) {
    if (s == name) return value;
  }
  return std::nullopt;
}

template <class E, size_t N>
const char* name_of(const std::array<std::pair<E, const char*>, N>& table, E v) {
  for (const auto& [value, name] : table) {
    if (value == v) return name;
  }
  return "unknown";
}

constexpr std::array<std::pair<JobVerb, const char*>, 5> kVerbs{{
    {JobVerb::up, "up"},
    {JobVerb::down, "down"},
    {JobVerb::extend, "extend"},
    {JobVerb::suspend, "suspend"},
    {JobVerb::resume, "resume"},
}};

constexpr std::array<std::pair<LifecycleKind, const char*>, 11> kKinds{{
    {LifecycleKind::accepted, "accepted"},
    {LifecycleKind::progress, "progress"},
    {LifecycleKind::ready, "ready"},
    {LifecycleKind::updated, "updated"},
    {LifecycleKind::failed, "failed"},
    {LifecycleKind::suspended, "suspended"},
    {LifecycleKind::resumed, "resumed"},
    {LifecycleKind::extended, "extended"},
    {LifecycleKind::deleted, "deleted"},
    {LifecycleKind::cancelled, "cancelled"},
    {LifecycleKind::rescheduled, "rescheduled"},
}};

constexpr std::array<std::pair<ClusterEventKind, const char*>, 8> kClusterKinds{{
    {ClusterEventKind::spot_interruption, "spot_interruption"},
    {ClusterEventKind::rebalance_recommendation, "rebalance_recommendation"},
    {ClusterEventKind::scheduled_maintenance, "scheduled_maintenance"},
    {ClusterEventKind::node_termination, "node_termination"},
    {ClusterEventKind::pod_warning, "pod_warning"},
    {ClusterEventKind::pod_scheduled, "pod_scheduled"},
    {ClusterEventKind::namespace_expired, "namespace_expired"},
    {ClusterEventKind::other, "other"},
}};

}  // namespace

const char* to_string(JobVerb v) { return name_of(kVerbs, v); }
std::optional<JobVerb> job_verb_from_string(std::string_view s) { return lookup(kVerbs, s); }
const char* to_string(LifecycleKind k) { return name_of(kKinds, k); }
std::optional<LifecycleKind> lifecycle_kind_from_string(std::string_view s) { return lookup(kKinds, s); }
const char* to_string(ClusterEventKind k) { return name_of(kClusterKinds, k); }

const char* to_string(CapacityType c) {
  switch (c) {
    case CapacityType::spot: return "spot";
    case CapacityType::on_demand: return "on-demand";
    case CapacityType::unknown: break;
  }
  return "unknown";
}

CapacityType capacity_type_from_string(std::string_view s) {
  if (s == "spot" || s == "SPOT") return CapacityType::spot;
  if (s == "on-demand" || s == "on_demand" || s == "ON_DEMAND" || s == "ondemand") {
    return CapacityType::on_demand;
  }
  return CapacityType::unknown;
}

bool is_dns1123_label(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  for (char c : s) {
    if (!alnum(c) && c != '-') return false;
  }
  return true;
}

Result<EnvId> make_env_id(const AppName& app, int pr) {
  if (pr <= 0) return make_error(Errc::invalid_argument, "pull request number must be positive");
  std::string id = app.str() + "-pr-" + std::to_string(pr);
  if (!is_dns1123_label(id)) {
    return make_error(Errc::invalid_argument,
                      "environment id '" + id +
                          "' is not a DNS-1123 label (lower-case letters, digits and '-', at most 63)");
  }
  return EnvId{std::move(id)};
}

}  // namespace runbot::bot
