#include "bot/outbox.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace runbot::bot {

Outbox::Outbox(OutboxSettings settings, Clock& clock, Metrics& metrics)
    : settings_(settings), clock_(clock), metrics_(metrics) {
  metrics_.describe("runbot_notifications_sent_total", "Chat messages delivered, by platform and kind", "counter");
  metrics_.describe("runbot_notifications_failed_total", "Chat messages given up on (permanent errors)", "counter");
  metrics_.describe("runbot_notifications_retried_total", "Chat deliveries retried (rate limits, outages)", "counter");
  metrics_.describe("runbot_notifications_coalesced_total", "Queued card updates replaced by newer ones", "counter");
}

void Outbox::set_platform_settings(const std::string& platform, OutboxSettings settings) {
  platform_settings_[platform] = settings;
}

const OutboxSettings& Outbox::settings_for(const std::string& platform) const {
  auto it = platform_settings_.find(platform);
  return it == platform_settings_.end() ? settings_ : it->second;
}

void Outbox::add_adapter(ChatAdapter& adapter) { adapters_[adapter.platform()] = &adapter; }

void Outbox::known_card(const std::string& platform, const ChannelId& channel, const EnvId& env,
                        std::string card_id) {
  if (!card_id.empty()) cards_[{platform, channel, env, ""}] = std::move(card_id);
}

Outbox::Item* Outbox::waiting_last_of(Channel& ch, const EnvId& env) {
  auto it = ch.last_of_env.find(env);
  if (it == ch.last_of_env.end()) return nullptr;
  if (ch.in_flight && !ch.queue.empty() && it->second == &ch.queue.front()) return nullptr;
  return it->second;
}

void Outbox::pop_front(Channel& ch) {
  Item* front = &ch.queue.front();
  auto last = ch.last_of_env.find(front->env);
  if (last != ch.last_of_env.end() && last->second == front) ch.last_of_env.erase(last);
  if (front->kind == Kind::keyed) ch.keyed.erase({front->env, front->key});
  ch.queue.pop_front();
}

void Outbox::card(const std::string& platform, const ChannelId& channel, const EnvId& env) {
  auto& ch = channels_[{platform, channel}];
  if (Item* last = waiting_last_of(ch, env); last && last->kind == Kind::card) {
    last->message = Message{};
    last->lazy = true;
    metrics_.add("runbot_notifications_coalesced_total", {{"platform", platform}});
    return;
  }
  Item item = make_item(Kind::card, env, Message{});
  item.lazy = true;
  enqueue(platform, channel, std::move(item));
}

void Outbox::card(const std::string& platform, const ChannelId& channel, const EnvId& env, Message card) {
  auto& ch = channels_[{platform, channel}];
  // Replace a queued (not in-flight) update of the same card when nothing of the environment
  // follows it: only the newest state matters, and the card must not jump ahead of its thread.
  if (Item* last = waiting_last_of(ch, env); last && last->kind == Kind::card) {
    last->message = std::move(card);
    last->lazy = false;
    metrics_.add("runbot_notifications_coalesced_total", {{"platform", platform}});
    return;
  }
  enqueue(platform, channel, make_item(Kind::card, env, std::move(card)));
}

void Outbox::reply(const std::string& platform, const ChannelId& channel, const EnvId& env, Message message) {
  auto& ch = channels_[{platform, channel}];
  if (ch.queue.size() >= settings_for(platform).coalesce_after) {
    // Merge into this environment's last queued reply, if nothing of the env follows it.
    if (Item* last = waiting_last_of(ch, env); last && last->kind == Kind::reply) {
      if (last->merged.empty()) last->merged.push_back(last->message);
      last->merged.push_back(message);
      last->message = std::move(message);
      metrics_.add("runbot_notifications_coalesced_total", {{"platform", platform}});
      return;
    }
  }
  enqueue(platform, channel, make_item(Kind::reply, env, std::move(message)));
}

void Outbox::keyed_reply(const std::string& platform, const ChannelId& channel, const EnvId& env,
                         const std::string& key, Message message) {
  auto& ch = channels_[{platform, channel}];
  auto it = ch.keyed.find({env, key});
  if (it != ch.keyed.end() && !(ch.in_flight && it->second == &ch.queue.front())) {
    it->second->message = std::move(message);
    metrics_.add("runbot_notifications_coalesced_total", {{"platform", platform}});
    return;
  }
  Item item = make_item(Kind::keyed, env, std::move(message));
  item.key = key;
  enqueue(platform, channel, std::move(item));
}

Message Outbox::digest(const Item& item) {
  if (item.merged.size() < 2) return item.message;
  Message m;
  m.kind = item.message.kind;
  m.severity = item.message.severity;
  m.title = std::to_string(item.merged.size()) + " updates for " + item.env.str();
  for (const auto& part : item.merged) {
    std::string line = "• " + part.title;
    if (!part.text.empty()) line += " — " + part.text.substr(0, part.text.find('\n'));
    m.text += (m.text.empty() ? "" : "\n") + line;
    for (const auto& u : part.mentions) {
      if (std::find(m.mentions.begin(), m.mentions.end(), u) == m.mentions.end()) m.mentions.push_back(u);
    }
    if (!part.buttons.empty()) m.buttons = part.buttons;  // the newest actions still apply
    if (!part.code.empty()) m.code = part.code;
  }
  return m;
}

void Outbox::post(const std::string& platform, const ChannelId& channel, Message message) {
  enqueue(platform, channel, make_item(Kind::plain, EnvId{}, std::move(message)));
}

size_t Outbox::pending() const {
  size_t n = 0;
  for (const auto& [key, ch] : channels_) n += ch.queue.size();
  return n;
}

size_t Outbox::pending(const std::string& platform, const ChannelId& channel) const {
  auto it = channels_.find({platform, channel});
  return it == channels_.end() ? 0 : it->second.queue.size();
}

void Outbox::enqueue(const std::string& platform, const ChannelId& channel, Item item) {
  Key key{platform, channel};
  auto [it, inserted] = channels_.try_emplace(key);
  if (inserted) {
    it->second.tokens = settings_for(platform).burst;
    it->second.refilled = clock_.now();
  }
  Channel& ch = it->second;
  ch.queue.push_back(std::move(item));
  Item* added = &ch.queue.back();
  if (!added->env.empty()) ch.last_of_env[added->env] = added;
  if (added->kind == Kind::keyed) ch.keyed[{added->env, added->key}] = added;
  pump(key);
}

void Outbox::schedule(const Key& key, TimePoint when) {
  auto& ch = channels_[key];
  if (ch.wake) clock_.cancel(ch.wake);
  ch.wake = clock_.call_at(when, [this, key] {
    channels_[key].wake = 0;
    pump(key);
  });
}

void Outbox::pump(const Key& key) {
  auto& ch = channels_[key];
  if (ch.in_flight || ch.queue.empty() || ch.wake) return;
  const auto& [platform, channel] = key;
  const OutboxSettings& s = settings_for(platform);
  TimePoint now = clock_.now();
  if (now < ch.blocked_until) return schedule(key, ch.blocked_until);
  // Token bucket.
  double refill = std::chrono::duration<double>(now - ch.refilled).count() * s.messages_per_second;
  ch.tokens = std::min(s.burst, ch.tokens + refill);
  ch.refilled = now;
  if (ch.tokens < 1.0) {
    auto wait = std::chrono::duration<double>((1.0 - ch.tokens) / s.messages_per_second);
    return schedule(key, now + std::chrono::ceil<Duration>(wait));
  }
  auto adapter = adapters_.find(platform);
  if (adapter == adapters_.end()) {
    spdlog::error("outbox: no adapter for platform={} channel={}; dropping {} message(s)", platform, channel.str(),
                  ch.queue.size());
    metrics_.add("runbot_notifications_failed_total", {{"platform", platform}}, static_cast<double>(ch.queue.size()));
    ch.queue.clear();
    ch.last_of_env.clear();
    ch.keyed.clear();
    return;
  }
  ch.tokens -= 1.0;
  Item& item = ch.queue.front();
  PostRequest req;
  req.channel = channel;
  req.env = item.env;
  req.message = item.lazy && card_renderer_ ? card_renderer_(item.env) : digest(item);
  if (item.kind != Kind::plain) {
    auto card = cards_.find({platform, channel, item.env, ""});
    if (item.kind == Kind::card && card != cards_.end()) req.edit = card->second;
    if (item.kind != Kind::card && card != cards_.end()) req.thread = card->second;
    if (item.kind == Kind::keyed) {
      auto mine = cards_.find({platform, channel, item.env, item.key});
      if (mine != cards_.end()) req.edit = mine->second;
    }
  }
  ch.in_flight = true;
  adapter->second->post(std::move(req), [this, key](Result<PostResult> r) { finished(key, std::move(r)); });
}

void Outbox::finished(const Key& key, Result<PostResult> result) {
  auto& ch = channels_[key];
  ch.in_flight = false;
  const auto& [platform, channel] = key;
  if (ch.queue.empty()) return;  // cannot happen: the item stays queued while in flight
  Item& item = ch.queue.front();
  if (result) {
    if (item.kind == Kind::card || item.kind == Kind::keyed) {
      auto& id = cards_[{platform, channel, item.env, item.kind == Kind::card ? "" : item.key}];
      if (id.empty() && !result->message_id.empty()) {
        id = result->message_id;
        if (item.kind == Kind::card && card_posted_) card_posted_(item.env, platform, channel, id);
      }
    }
    metrics_.add("runbot_notifications_sent_total", {{"platform", platform}, {"kind", to_string(item.message.kind)}});
    pop_front(ch);
    return pump(key);
  }
  const Error& err = result.error();
  if (err.is_retryable()) {
    ++item.attempts;
    Duration backoff = settings_for(platform).retry_base * (1 << std::min(item.attempts - 1, 16));
    backoff = std::min(backoff, settings_for(platform).retry_max);
    if (err.retry_after > Duration::zero()) backoff = std::max(backoff, Duration{err.retry_after});
    ch.blocked_until = clock_.now() + backoff;
    metrics_.add("runbot_notifications_retried_total", {{"platform", platform}});
    spdlog::warn("outbox: retrying platform={} channel={} in {}ms attempt={} error={}", platform, channel.str(),
                 backoff.count(), item.attempts, err.message);
    return schedule(key, ch.blocked_until);
  }
  spdlog::error("outbox: giving up on a message platform={} channel={} env={} code={} error={}", platform,
                channel.str(), item.env.str(), to_string(err.code), err.message);
  metrics_.add("runbot_notifications_failed_total", {{"platform", platform}});
  pop_front(ch);
  pump(key);
}

}  // namespace runbot::bot
