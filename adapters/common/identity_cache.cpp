#include "adapters/common/identity_cache.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "adapters/common/log.h"

namespace runbot::common {

IdentityCache::IdentityCache(IdentityCacheSettings settings, bot::Clock& clock, Lookup lookup,
                             std::string platform)
    : settings_(settings),
      clock_(clock),
      lookup_(std::move(lookup)),
      platform_(std::move(platform)) {
  if (settings_.capacity == 0) settings_.capacity = 1;
  settings_.failure_ttl = std::min(settings_.failure_ttl, settings_.ttl);
}

std::optional<Identity> IdentityCache::cached(const std::string& user) const {
  auto it = entries_.find(user);
  if (it == entries_.end() || clock_.now() >= it->second.expires) return std::nullopt;
  return it->second.identity;
}

void IdentityCache::get(const std::string& user, Done done) {
  if (auto hit = cached(user)) {
    clock_.call_after(bot::Duration::zero(),
                      [done = std::move(done), id = std::move(*hit)] { done(id); });
    return;
  }
  if (auto f = flights_.find(user); f != flights_.end()) {
    f->second.waiting.push_back(std::move(done));
    return;
  }
  const std::uint64_t id = next_flight_++;
  Flight& flight = flights_[user];
  flight.id = id;
  flight.waiting.push_back(std::move(done));
  // The deadline keeps a hanging platform from holding the user's command for long: they get an
  // answer from the other bindings, and the lookup may still fill the cache for next time.
  flight.timer = clock_.call_after(settings_.deadline, [this, user, id] {
    Identity late;
    late.error = "no answer within " + std::to_string(settings_.deadline.count()) + " ms";
    finish(user, id, std::move(late), true);
  });
  ++lookups_;
  lookup_(user, [this, user, id](const Identity& found) { finish(user, id, found, false); });
}

void IdentityCache::finish(const std::string& user, std::uint64_t flight, Identity identity,
                           bool from_timer) {
  auto it = flights_.find(user);
  if (it == flights_.end() || it->second.id != flight) {
    // The deadline already answered the waiters; a real result is still worth remembering.
    if (!from_timer) store(user, identity);
    return;
  }
  if (!from_timer) clock_.cancel(it->second.timer);
  std::vector<Done> waiting = std::move(it->second.waiting);
  flights_.erase(it);
  store(user, identity);
  if (!identity.error.empty()) warn(user, identity);
  for (auto& w : waiting) w(identity);
}

void IdentityCache::store(const std::string& user, const Identity& identity) {
  const bot::TimePoint expires =
      clock_.now() + (identity.error.empty() ? settings_.ttl : settings_.failure_ttl);
  if (auto it = entries_.find(user); it != entries_.end()) {
    it->second.identity = identity;
    it->second.expires = expires;
    order_.splice(order_.end(), order_, it->second.order);
    return;
  }
  while (entries_.size() >= settings_.capacity && !order_.empty()) {
    entries_.erase(order_.front());
    order_.pop_front();
  }
  order_.push_back(user);
  entries_[user] = Entry{identity, expires, std::prev(order_.end())};
}

void IdentityCache::warn(const std::string& user, const Identity& identity) {
  const bot::TimePoint now = clock_.now();
  if (auto it = warned_until_.find(user); it != warned_until_.end() && now < it->second) {
    log().debug("{}: identity lookup failed again user={} error={}", platform_, user,
                identity.error);
    return;
  }
  if (warned_until_.size() >= settings_.capacity) {
    std::erase_if(warned_until_, [now](const auto& kv) { return kv.second <= now; });
    if (warned_until_.size() >= settings_.capacity) warned_until_.clear();
  }
  warned_until_[user] = now + settings_.ttl;
  log().warn(
      "{}: identity lookup failed, bindings by e-mail or group are not applied for this user "
      "(logged once per {} s) user={} error={}",
      platform_, std::chrono::duration_cast<std::chrono::seconds>(settings_.ttl).count(), user,
      identity.error);
}

}  // namespace runbot::common
