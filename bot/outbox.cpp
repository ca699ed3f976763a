#include "bot/outbox.h"

#include <algorithm>
#include <cstdio>
#include <random>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bot/model_json.h"

namespace runbot::bot {

Outbox::Outbox(OutboxSettings settings, Clock& clock, Metrics& metrics)
    : settings_(settings), clock_(clock), metrics_(metrics) {
  metrics_.describe("runbot_notifications_sent_total", "Chat messages delivered, by platform and kind", "counter");
  metrics_.describe("runbot_notifications_failed_total", "Chat messages given up on (permanent errors)", "counter");
  metrics_.describe("runbot_notifications_retried_total", "Chat deliveries retried (rate limits, outages)", "counter");
  metrics_.describe("runbot_notifications_coalesced_total", "Queued card updates replaced by newer ones", "counter");
  metrics_.describe("runbot_messages_failed_total",
                    "Chat messages (announcements and answers) given up on, by platform and reason", "counter");
  // Delivery ids must not repeat across runs: a per-run random prefix and a counter.
  std::random_device rd;
  char prefix[20];
  std::snprintf(prefix, sizeof prefix, "%08x%08x-", rd(), rd());
  id_prefix_ = prefix;
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

Outbox::Item* Outbox::waiting_last_of(Channel& ch, const EnvId& env) { return waiting_in(ch, ch.last_of_env, env); }

Outbox::Item* Outbox::waiting_in(Channel& ch, std::unordered_map<EnvId, Item*>& index, const EnvId& env) {
  auto it = index.find(env);
  if (it == index.end()) return nullptr;
  return open_for_change(ch, it->second);
}

Outbox::Item* Outbox::open_for_change(Channel& ch, Item* item) {
  // In flight: what is being sent is fixed. Maybe delivered (restored after a crash, or a post
  // that timed out): the platform may hold it as it is, and a lookup that finds it there ends it,
  // so anything added to it would be lost. Newer content then goes into a new message.
  if (ch.in_flight && !ch.answer_in_flight && !ch.queue.empty() && item == &ch.queue.front()) return nullptr;
  if (item->maybe_delivered) return nullptr;
  return item;
}

void Outbox::pop_front(Channel& ch) {
  Item* front = &ch.queue.front();
  for (auto* index : {&ch.last_of_env, &ch.lazy_card_of, &ch.last_reply_of}) {
    auto it = index->find(front->env);
    if (it != index->end() && it->second == front) index->erase(it);
  }
  if (front->kind == Kind::keyed) {
    auto it = ch.keyed.find({front->env, front->key});
    if (it != ch.keyed.end() && it->second == front) ch.keyed.erase(it);
  }
  ch.queue.pop_front();
}

namespace {
bool storm(NoticeKind k) { return k == NoticeKind::interruption || k == NoticeKind::recovered; }

// Notices that may be summed up in a digest when a channel is backed up: routine steps, and the
// notices of an interruption storm (they carry no buttons; the digest keeps every line, mention
// and affected environment). Ready, failed, expiry and the others stand alone with their buttons.
bool mergeable(NoticeKind k) {
  return k == NoticeKind::progress || k == NoticeKind::updated || k == NoticeKind::requested ||
         k == NoticeKind::queued || k == NoticeKind::warning_events || storm(k);
}

const char* kind_name(int k) {
  static const char* names[] = {"card", "reply", "keyed", "plain", "answer"};
  return names[k];
}
}  // namespace

nlohmann::json Outbox::item_json(const Key& where, const Item& item, bool with_merged) {
  using nlohmann::json;
  json j{{"id", item.id},
         {"kind", kind_name(static_cast<int>(item.kind))},
         {"env", item.env.str()},
         {"platform", std::get<0>(where)},
         {"channel", std::get<1>(where).str()},
         {"order", item.order}};
  if (!item.key.empty()) j["key"] = item.key;
  if (!item.reply_to.empty()) j["reply_to"] = item.reply_to;
  if (item.lazy) {
    j["lazy"] = true;
  } else {
    j["message"] = to_json(item.message);
  }
  if (with_merged && !item.merged.empty()) {
    json merged = json::array();
    for (const auto& m : item.merged) merged.push_back(to_json(m));
    j["merged"] = merged;
  }
  return j;
}

std::string Outbox::item_text(const Key& where, const Item& item) {
  if (item.merged.empty()) return item_json(where, item).dump();
  // A digest changes by growing: each part's JSON is made once, not again with every merge.
  std::string out = item_json(where, item, /*with_merged=*/false).dump();
  out.pop_back();
  out += ",\"merged\":[";
  item.merged_json.resize(item.merged.size());
  for (size_t i = 0; i < item.merged.size(); ++i) {
    if (item.merged_json[i].empty()) item.merged_json[i] = to_json(item.merged[i]).dump();
    if (i > 0) out += ',';
    out += item.merged_json[i];
  }
  out += "]}";
  return out;
}

nlohmann::json Outbox::journal_keyed() const {
  // Ids of keyed replies (grouped warnings), so they are edited rather than posted again.
  nlohmann::json keyed = nlohmann::json::array();
  for (const auto& [k, id] : cards_) {
    const auto& [platform, channel, env, name] = k;
    if (!name.empty()) keyed.push_back({platform, channel.str(), env.str(), name, id});
  }
  return keyed;
}

nlohmann::json Outbox::journal() const {
  using nlohmann::json;
  json items = json::array();
  for (const auto& [key, ch] : channels_) {
    for (const auto& item : ch.answers) items.push_back(item_json(key, item));
    for (const auto& item : ch.queue) items.push_back(item_json(key, item));
  }
  return json{{"items", items}, {"keyed", journal_keyed()}};
}

std::vector<std::pair<std::string, std::string>> Outbox::journal_items() const {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(pending());
  for (const auto& [key, ch] : channels_) {
    for (const auto* lane : {&ch.answers, &ch.queue}) {
      for (const auto& item : *lane) {
        if (item.json.empty()) item.json = item_text(key, item);
        out.emplace_back(item.id, item.json);
      }
    }
  }
  return out;
}

Status Outbox::restore_journal(const nlohmann::json& journal) {
  if (journal.is_null()) return ok();
  std::map<Key, std::map<std::uint64_t, Item>> restored;  // by queue order
  std::map<std::tuple<std::string, ChannelId, EnvId, std::string>, std::string> keyed;
  try {
    // "items": one object per message with its channel and queue order; "channels": the older
    // form, a list of messages per channel.
    std::vector<std::tuple<Key, std::uint64_t, const nlohmann::json*>> found;
    if (journal.contains("items")) {
      for (const auto& j : journal.at("items")) {
        found.emplace_back(Key{j.at("platform").get<std::string>(), ChannelId{j.at("channel").get<std::string>()}},
                           j.at("order").get<std::uint64_t>(), &j);
      }
    }
    if (journal.contains("channels")) {
      std::uint64_t n = 0;
      for (const auto& c : journal.at("channels")) {
        Key key{c.at("platform").get<std::string>(), ChannelId{c.at("channel").get<std::string>()}};
        for (const auto& j : c.at("items")) found.emplace_back(key, ++n, &j);
      }
    }
    for (const auto& [key, order, jp] : found) {
      {
        const nlohmann::json& j = *jp;
        Item item;
        item.order = order;
        const std::string kind = j.at("kind").get<std::string>();
        int k = 0;
        while (k < 5 && kind != kind_name(k)) ++k;
        if (k == 5) return make_error(Errc::invalid_argument, "outbox journal: unknown item kind '" + kind + "'");
        item.kind = static_cast<Kind>(k);
        item.id = j.at("id").get<std::string>();
        item.env = EnvId{j.at("env").get<std::string>()};
        item.key = j.value("key", "");
        item.reply_to = j.value("reply_to", "");
        item.lazy = j.value("lazy", false);
        if (!item.lazy) {
          auto m = message_from_json(j.at("message"));
          if (!m) return make_error(Errc::invalid_argument, "outbox journal: " + m.error().message);
          item.message = std::move(*m);
        }
        if (j.contains("merged")) {
          for (const auto& mj : j.at("merged")) {
            auto m = message_from_json(mj);
            if (!m) return make_error(Errc::invalid_argument, "outbox journal: " + m.error().message);
            item.merged.push_back(std::move(*m));
          }
        }
        // Messages after the last snapshot may have been sent before the crash, in queue order:
        // every restored message is checked until one turns out not to be there yet.
        item.maybe_delivered = true;
        if (!restored[key].emplace(order, std::move(item)).second) {
          return make_error(Errc::invalid_argument, "outbox journal: two messages at position " +
                                                        std::to_string(order) + " of channel " + std::get<1>(key).str());
        }
      }
    }
    for (const auto& k : journal.at("keyed")) {
      keyed[{k.at(0).get<std::string>(), ChannelId{k.at(1).get<std::string>()}, EnvId{k.at(2).get<std::string>()},
             k.at(3).get<std::string>()}] = k.at(4).get<std::string>();
    }
  } catch (const nlohmann::json::exception& e) {
    return make_error(Errc::invalid_argument, std::string("outbox journal: ") + e.what());
  }
  for (auto& [k, id] : keyed) cards_[k] = std::move(id);
  size_t count = 0;
  started_ = false;
  for (auto& [key, items] : restored) {
    for (auto& [order, item] : items) {
      ++count;
      order_seq_ = std::max(order_seq_, order);
      enqueue(std::get<0>(key), std::get<1>(key), std::move(item));
    }
  }
  if (count > 0) spdlog::info("outbox: {} message(s) restored from state", count);
  return ok();
}

void Outbox::release_through(std::uint64_t mark) {
  std::vector<Key> ready;
  for (auto& [key, ch] : channels_) {
    bool front_waited = !ch.queue.empty() && !ch.queue.front().released;
    for (auto& item : ch.queue) {
      if (item.seq <= mark) item.released = true;
    }
    if (front_waited && ch.queue.front().released) ready.push_back(key);
  }
  for (const auto& key : ready) pump(key);
}

void Outbox::start() {
  if (started_) return;
  started_ = true;
  std::vector<Key> keys;
  for (const auto& [key, ch] : channels_) keys.push_back(key);
  for (const auto& key : keys) pump(key);
}

void Outbox::card(const std::string& platform, const ChannelId& channel, const EnvId& env) {
  auto& ch = channels_[{platform, channel}];
  // A lazy card still queued anywhere renders the newest state when it is sent: this refresh is
  // already covered (cards and replies alternate, so "the last item" alone rarely matches).
  if (waiting_in(ch, ch.lazy_card_of, env)) {
    metrics_.add("runbot_notifications_coalesced_total", {{"platform", platform}});
    return;
  }
  if (Item* last = waiting_last_of(ch, env); last && last->kind == Kind::card) {
    last->message = Message{};
    last->lazy = true;
    last->json.clear();
    ch.lazy_card_of[env] = last;
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
    if (last->lazy) ch.lazy_card_of.erase(env);
    last->lazy = false;
    last->json.clear();
    metrics_.add("runbot_notifications_coalesced_total", {{"platform", platform}});
    changed();
    return;
  }
  enqueue(platform, channel, make_item(Kind::card, env, std::move(card)));
}

void Outbox::reply(const std::string& platform, const ChannelId& channel, const EnvId& env, Message message) {
  auto& ch = channels_[{platform, channel}];
  if (ch.queue.size() >= settings_for(platform).coalesce_after && mergeable(message.kind)) {
    // Into this environment's newest queued reply, even if a card update follows it (the card
    // shows the newest state anyway), when that reply is routine progress too: a ready, failed,
    // interruption or expiry notice stands on its own with its buttons, never inside a digest.
    if (Item* last = waiting_in(ch, ch.last_reply_of, env);
        last && mergeable(last->message.kind) && last->merged.size() < settings_for(platform).digest_max) {
      return merge_into(platform, *last, std::move(message));
    }
  }
  enqueue(platform, channel, make_item(Kind::reply, env, std::move(message)));
}

void Outbox::merge_into(const std::string& platform, Item& last, Message message) {
  if (last.merged.empty()) last.merged.push_back(last.message);
  last.merged.push_back(message);
  last.message = std::move(message);
  last.json.clear();
  if (hold_) {
    // Its content changed: it waits again for a durable snapshot holding the new content.
    // Sent as it is, a crash would repeat the merged part when its input is read again.
    last.released = false;
    last.seq = ++id_seq_;
  }
  metrics_.add("runbot_notifications_coalesced_total", {{"platform", platform}});
  changed();
}

void Outbox::keyed_reply(const std::string& platform, const ChannelId& channel, const EnvId& env,
                         const std::string& key, Message message) {
  auto& ch = channels_[{platform, channel}];
  auto it = ch.keyed.find({env, key});
  if (it != ch.keyed.end() && open_for_change(ch, it->second)) {
    it->second->message = std::move(message);
    it->second->json.clear();
    metrics_.add("runbot_notifications_coalesced_total", {{"platform", platform}});
    changed();
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
  size_t storm_parts = 0;
  bool recoveries = false;
  std::vector<std::string> newest_code;
  for (const auto& part : item.merged) {
    std::string line = "• " + part.title;
    if (!part.text.empty()) line += " — " + part.text.substr(0, part.text.find('\n'));
    m.text += (m.text.empty() ? "" : "\n") + line;
    for (const auto& u : part.mentions) {
      if (std::find(m.mentions.begin(), m.mentions.end(), u) == m.mentions.end()) m.mentions.push_back(u);
    }
    if (!part.buttons.empty()) m.buttons = part.buttons;  // the newest actions still apply
    if (storm(part.kind)) {
      ++storm_parts;
      recoveries = recoveries || part.kind == NoticeKind::recovered;
      m.code.insert(m.code.end(), part.code.begin(), part.code.end());  // each node's environments
    } else if (!part.code.empty()) {
      newest_code = part.code;  // e.g. the grouped warnings: the newest list is the whole list
    }
    m.severity = std::max(m.severity, part.severity);
  }
  m.code.insert(m.code.end(), newest_code.begin(), newest_code.end());
  const std::string n = std::to_string(item.merged.size());
  if (item.env.empty()) {
    m.title = "⚠ " + n + (recoveries ? " interruption and recovery notices" : " interruption notices");
  } else if (storm_parts > 0) {
    m.title = "⚠ " + n + " updates for " + item.env.str() + ", " + std::to_string(storm_parts) +
              (recoveries ? " of them about interruptions and recoveries" : " of them about interruptions");
  } else {
    m.title = n + " updates for " + item.env.str();
  }
  return m;
}

void Outbox::post(const std::string& platform, const ChannelId& channel, Message message) {
  auto& ch = channels_[{platform, channel}];
  // An interruption storm in a backed-up on-call channel: one digest listing every node.
  if (ch.queue.size() >= settings_for(platform).coalesce_after && storm(message.kind)) {
    if (Item* last = open_for_change(ch, &ch.queue.back());
        last && last->kind == Kind::plain && storm(last->message.kind) &&
        last->merged.size() < settings_for(platform).digest_max) {
      return merge_into(platform, *last, std::move(message));
    }
  }
  enqueue(platform, channel, make_item(Kind::plain, EnvId{}, std::move(message)));
}

void Outbox::answer(ChatAdapter& via, const InboundMessage& to, Message message) {
  if (via.answer_in_band(to, message)) return;
  Item item = make_item(Kind::answer, EnvId{}, std::move(message));
  item.reply_to = to.reply_to;
  enqueue(to.platform, to.channel, std::move(item));
}

size_t Outbox::pending() const {
  size_t n = 0;
  for (const auto& [key, ch] : channels_) n += ch.queue.size() + ch.answers.size();
  return n;
}

size_t Outbox::pending(const std::string& platform, const ChannelId& channel) const {
  auto it = channels_.find({platform, channel});
  return it == channels_.end() ? 0 : it->second.queue.size() + it->second.answers.size();
}

void Outbox::enqueue(const std::string& platform, const ChannelId& channel, Item item) {
  Key key{platform, channel};
  auto [it, inserted] = channels_.try_emplace(key);
  if (inserted) {
    it->second.tokens = settings_for(platform).burst;
    it->second.refilled = clock_.now();
    it->second.answer_tokens = settings_for(platform).answer_burst;
    it->second.answer_refilled = it->second.refilled;
  }
  Channel& ch = it->second;
  item.seq = ++id_seq_;
  if (item.order == 0) item.order = ++order_seq_;
  if (item.id.empty()) {
    item.id = id_prefix_ + std::to_string(item.seq);
    // An answer is not held: the command it answers is not read again after a crash.
    item.released = !hold_ || item.kind == Kind::answer;
  }  // else: restored from a durable journal, released
  if (item.kind == Kind::answer) {
    ch.answers.push_back(std::move(item));
    // The channel may be waiting for its announcement bucket: the answer has a bucket of its own,
    // so look again now (pump_once sets the wake-up again for whatever still has to wait).
    if (ch.wake && !ch.in_flight) {
      clock_.cancel(ch.wake);
      ch.wake = 0;
    }
    changed();
    return pump(key);
  }
  ch.queue.push_back(std::move(item));
  Item* added = &ch.queue.back();
  if (!added->env.empty()) {
    ch.last_of_env[added->env] = added;
    if (added->kind == Kind::card && added->lazy) ch.lazy_card_of[added->env] = added;
    if (added->kind == Kind::reply) ch.last_reply_of[added->env] = added;
  }
  if (added->kind == Kind::keyed) ch.keyed[{added->env, added->key}] = added;
  changed();
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
  // An adapter may report a post done before post() returns: the next message then goes out
  // from this loop, not from a call nested one level deeper per message.
  auto& ch = channels_[key];
  if (ch.pumping) {
    ch.pump_again = true;
    return;
  }
  ch.pumping = true;
  do {
    ch.pump_again = false;
    pump_once(key);
  } while (ch.pump_again);
  ch.pumping = false;
}

namespace {
// Refills a token bucket; returns when it next holds a whole token (now if it does).
TimePoint refill(double& tokens, TimePoint& refilled, double per_second, double burst, TimePoint now) {
  tokens = std::min(burst, tokens + std::chrono::duration<double>(now - refilled).count() * per_second);
  refilled = now;
  if (tokens >= 1.0) return now;
  return now + std::chrono::ceil<Duration>(std::chrono::duration<double>((1.0 - tokens) / per_second));
}
}  // namespace

void Outbox::pump_once(const Key& key) {
  auto& ch = channels_[key];
  if (!started_ || ch.in_flight || ch.wake) return;
  const bool answer_waits = !ch.answers.empty() && ch.answers.front().released;
  const bool post_waits = !ch.queue.empty() && ch.queue.front().released;
  if (!answer_waits && !post_waits) return;
  const auto& [platform, channel] = key;
  const OutboxSettings& s = settings_for(platform);
  TimePoint now = clock_.now();
  if (now < ch.blocked_until) return schedule(key, ch.blocked_until);
  if (s.window_max > 0) {
    while (!ch.sent.empty() && ch.sent.front() + s.window <= now) ch.sent.pop_front();
    if (ch.sent.size() >= s.window_max) return schedule(key, ch.sent.front() + s.window);
  }
  // Each lane has its own bucket; an answer goes first when both may go.
  TimePoint answer_at = TimePoint::max();
  TimePoint post_at = TimePoint::max();
  if (answer_waits) {
    answer_at = refill(ch.answer_tokens, ch.answer_refilled, s.answers_per_second, s.answer_burst, now);
  }
  if (post_waits) post_at = refill(ch.tokens, ch.refilled, s.messages_per_second, s.burst, now);
  const bool send_answer = answer_at <= now;
  if (!send_answer && post_at > now) return schedule(key, std::min(answer_at, post_at));
  auto adapter = adapters_.find(platform);
  if (adapter == adapters_.end()) {
    const size_t dropped = ch.queue.size() + ch.answers.size();
    spdlog::error("outbox: no adapter for platform={} channel={}; dropping {} message(s)", platform, channel.str(),
                  dropped);
    metrics_.add("runbot_notifications_failed_total", {{"platform", platform}}, static_cast<double>(dropped));
    metrics_.add("runbot_messages_failed_total", {{"platform", platform}, {"reason", "no_adapter"}},
                 static_cast<double>(dropped));
    ch.queue.clear();
    ch.answers.clear();
    ch.last_of_env.clear();
    ch.lazy_card_of.clear();
    ch.last_reply_of.clear();
    ch.keyed.clear();
    changed();
    return;
  }
  (send_answer ? ch.answer_tokens : ch.tokens) -= 1.0;
  if (s.window_max > 0) ch.sent.push_back(now);
  Item& item = send_answer ? ch.answers.front() : ch.queue.front();
  PostRequest req;
  req.channel = channel;
  req.env = item.env;
  req.message = item.lazy && card_renderer_ ? card_renderer_(item.env) : digest(item);
  req.delivery_id = item.id;
  req.maybe_delivered = item.maybe_delivered;
  req.reply_to = item.reply_to;
  if (item.kind != Kind::plain && item.kind != Kind::answer) {
    auto card = cards_.find({platform, channel, item.env, ""});
    if (item.kind == Kind::card && card != cards_.end()) req.edit = card->second;
    if (item.kind != Kind::card && card != cards_.end()) req.thread = card->second;
    if (item.kind == Kind::keyed) {
      auto mine = cards_.find({platform, channel, item.env, item.key});
      if (mine != cards_.end()) req.edit = mine->second;
    }
  }
  item.sent_as_edit = !req.edit.empty();
  ch.in_flight = true;
  ch.answer_in_flight = send_answer;
  adapter->second->post(std::move(req), [this, key](Result<PostResult> r) { finished(key, std::move(r)); });
}

void Outbox::failed(const std::string& platform, const ChannelId& channel, const Item& item, const Error& err) {
  spdlog::error("outbox: giving up on {} platform={} channel={} env={} attempts={} code={} error={}",
                item.kind == Kind::answer ? "an answer" : "a message", platform, channel.str(), item.env.str(),
                item.attempts, to_string(err.code), err.message);
  metrics_.add("runbot_notifications_failed_total", {{"platform", platform}});
  metrics_.add("runbot_messages_failed_total", {{"platform", platform}, {"reason", to_string(err.code)}});
}

void Outbox::finished(const Key& key, Result<PostResult> result) {
  auto& ch = channels_[key];
  const bool answer = ch.answer_in_flight;
  ch.in_flight = false;
  ch.answer_in_flight = false;
  const auto& [platform, channel] = key;
  auto& lane = answer ? ch.answers : ch.queue;
  if (lane.empty()) return;  // cannot happen: the item stays queued while in flight
  Item& item = lane.front();
  auto pop = [&] {
    if (answer) {
      ch.answers.pop_front();
    } else {
      pop_front(ch);
    }
  };
  if (result) {
    if (item.kind == Kind::card || item.kind == Kind::keyed) {
      auto& id = cards_[{platform, channel, item.env, item.kind == Kind::card ? "" : item.key}];
      if (id.empty() && !result->message_id.empty()) {
        id = result->message_id;
        if (item.kind == Kind::card && card_posted_) card_posted_(item.env, platform, channel, id);
      }
    }
    if (item.maybe_delivered && !item.sent_as_edit && !result->already_there) {
      // It was not there yet, so nothing after it in this lane was sent either (FIFO).
      for (auto& later : lane) later.maybe_delivered = false;
    }
    if (!result->already_there) {
      metrics_.add("runbot_notifications_sent_total", {{"platform", platform}, {"kind", to_string(item.message.kind)}});
    }
    pop();
    changed();
    return pump(key);
  }
  const Error& err = result.error();
  const int max_attempts = answer ? settings_for(platform).answer_max_attempts : 0;
  if (err.is_retryable() && (max_attempts == 0 || item.attempts + 1 < max_attempts)) {
    ++item.attempts;
    // A timeout or a lost connection may come after the platform took the message: look before
    // posting it again. A rate limit means it was refused.
    if (err.code != Errc::rate_limited) item.maybe_delivered = true;
    Duration backoff = settings_for(platform).retry_base * (1 << std::min(item.attempts - 1, 16));
    backoff = std::min(backoff, settings_for(platform).retry_max);
    if (err.retry_after > Duration::zero()) backoff = std::max(backoff, Duration{err.retry_after});
    ch.blocked_until = clock_.now() + backoff;
    metrics_.add("runbot_notifications_retried_total", {{"platform", platform}});
    spdlog::warn("outbox: retrying platform={} channel={} in {}ms attempt={} error={}", platform, channel.str(),
                 backoff.count(), item.attempts, err.message);
    return schedule(key, ch.blocked_until);
  }
  ++item.attempts;
  failed(platform, channel, item, err);
  pop();
  changed();
  pump(key);
}

}  // namespace runbot::bot
