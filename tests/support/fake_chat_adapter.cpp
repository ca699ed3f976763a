#include "tests/support/fake_chat_adapter.h"

namespace runbot::testing {

void FakeChatAdapter::post(bot::PostRequest request, std::function<void(bot::Result<bot::PostResult>)> done) {
  ++attempts;
  if (!failures_.empty()) {
    bot::Error e = failures_.front();
    failures_.pop_front();
    clock_.call_after(bot::Duration::zero(), [done, e] { done(e); });
    return;
  }
  if (request.maybe_delivered && request.edit.empty() && finds_deliveries) {
    ++lookups;
    for (const auto& p : posts) {
      if (!request.delivery_id.empty() && p.request.delivery_id == request.delivery_id) {
        clock_.call_after(bot::Duration::zero(), [done, id = p.id] { done(bot::PostResult{id, true}); });
        return;
      }
    }
  }
  std::string id = request.edit.empty() ? "m" + std::to_string(next_id_++) : request.edit;
  posts.push_back({std::move(request), id, clock_.now()});
  if (completes_inline) return done(bot::PostResult{id});
  clock_.call_after(bot::Duration::zero(), [done, id] { done(bot::PostResult{id}); });
}

void FakeChatAdapter::say(const std::string& text, const std::string& user, const std::string& channel) {
  bot::InboundMessage m;
  m.platform = platform_;
  m.channel = bot::ChannelId{channel};
  m.user = bot::UserId{user};
  m.user_name = user;
  m.text = text;
  if (handler_) handler_(m);
}

}  // namespace runbot::testing
