#pragma once
// IdentityCache: what a chat platform says about a user that role bindings need (e-mail address,
// groups), looked up once and remembered, so that commands are not slowed down by a lookup each.
//
// - Per user, with a TTL: a successful lookup is kept for `ttl`; a failed one (an error, or the
//   deadline passed) for at most `failure_ttl`, so a transient failure does not cost the user
//   their rights for long and a broken configuration does not cost a lookup per command.
// - Single flight: get() for a user whose lookup is in flight waits for that lookup; every
//   waiter gets the same answer, in the order they asked.
// - Deadline: waiters get an answer within `deadline` even when the lookup hangs (what it had not
//   found yet is empty, `error` says it timed out); a late result still fills the cache.
// - Bounded: at most `capacity` users are remembered; the oldest entry goes first.
// - A failure is logged (warn, once per user per `ttl`) with the platform and user id, never
//   with tokens or bodies.
//
// Ownership and executor: the adapter owns it; it borrows the clock (which must outlive it). Not
// thread-safe: everything runs on the clock's executor. `done` callbacks never run inside get();
// destroying the cache drops pending callbacks uncalled (the lookup's completion must not outlive
// the cache: adapters destroy their HTTP client, and with it pending lookups, first).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bot/chat_adapter.h"
#include "bot/clock.h"

namespace runbot::common {

struct Identity {
  std::string email;                // empty when unknown
  std::vector<std::string> groups;  // group names/ids as bindings may name them
  std::string error;                // non-empty: the lookup failed (what is known is still set)
};

// Copies what the platform said about the sender into the message the bot will see.
inline void apply_identity(bot::InboundMessage& m, const Identity& id) {
  m.user_email = id.email;
  m.user_groups = id.groups;
  m.identity_error = id.error;
}

// Gathers one Identity from lookups that run in parallel (an e-mail call, a groups call…): each
// part fills `found` or calls failed(), then one_done(); the last part hands `found` to `done`.
// Adapters hold it in a shared_ptr captured by every part.
struct IdentityGathering {
  int remaining = 0;  // parts still running
  Identity found;
  std::function<void(const Identity&)> done;
  void failed(const std::string& why) { found.error += (found.error.empty() ? "" : "; ") + why; }
  void one_done() {
    if (--remaining == 0) done(found);
  }
};

struct IdentityCacheSettings {
  std::chrono::milliseconds ttl{std::chrono::minutes(10)};
  std::chrono::milliseconds failure_ttl{std::chrono::minutes(1)};  // capped at ttl
  std::chrono::milliseconds deadline{std::chrono::seconds(2)};
  std::size_t capacity = 10000;
};

class IdentityCache {
 public:
  using Done = std::function<void(const Identity&)>;
  // Looks `user` up and calls `done` once (it may be late; it must not run inside the call).
  using Lookup = std::function<void(const std::string& user, Done done)>;

  // `platform` names the platform in log lines ("slack").
  IdentityCache(IdentityCacheSettings settings, bot::Clock& clock, Lookup lookup,
                std::string platform);
  IdentityCache(const IdentityCache&) = delete;
  IdentityCache& operator=(const IdentityCache&) = delete;

  // The remembered identity of `user` when it is still fresh (no lookup, no waiting).
  std::optional<Identity> cached(const std::string& user) const;
  // The identity of `user`: from the cache, else from the lookup in flight or a new one. `done`
  // runs once, from the clock's executor, within `deadline`.
  void get(const std::string& user, Done done);

  std::size_t size() const { return entries_.size(); }
  std::uint64_t lookups() const { return lookups_; }

 private:
  struct Entry {
    Identity identity;
    bot::TimePoint expires{};
    std::list<std::string>::iterator order;
  };
  struct Flight {
    std::uint64_t id = 0;
    std::vector<Done> waiting;
    bot::TimerId timer = 0;
  };

  void finish(const std::string& user, std::uint64_t flight, Identity identity, bool late);
  void store(const std::string& user, const Identity& identity);
  void warn(const std::string& user, const Identity& identity);

  IdentityCacheSettings settings_;
  bot::Clock& clock_;
  Lookup lookup_;
  std::string platform_;
  std::map<std::string, Entry> entries_;
  std::list<std::string> order_;  // oldest first
  std::map<std::string, Flight> flights_;
  std::map<std::string, bot::TimePoint> warned_until_;  // bounded like entries_
  std::uint64_t next_flight_ = 1;
  std::uint64_t lookups_ = 0;
};

}  // namespace runbot::common
