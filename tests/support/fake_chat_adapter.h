#pragma once
// FakeChatAdapter: an in-process ChatAdapter for tests. Records every post and reply; completes
// posts through the FakeClock (never inline), optionally failing the next N with a given error.
#include <deque>
#include <string>
#include <vector>

#include "bot/chat_adapter.h"
#include "tests/support/fake_clock.h"

namespace runbot::testing {

class FakeChatAdapter final : public bot::ChatAdapter {
 public:
  struct Posted {
    bot::PostRequest request;
    std::string id;
    bot::TimePoint at;
  };

  FakeChatAdapter(FakeClock& clock, std::string platform = "fake") : clock_(clock), platform_(std::move(platform)) {}

  std::string platform() const override { return platform_; }
  void start(InboundHandler handler) override { handler_ = std::move(handler); }
  void post(bot::PostRequest request, std::function<void(bot::Result<bot::PostResult>)> done) override;
  // Takes every answer in-band (recorded in `replies`) unless answers_in_band is false: then
  // answers go through the outbox's answer lane and arrive as posts with reply_to set.
  bool answer_in_band(const bot::InboundMessage&, const bot::Message& message) override {
    if (!answers_in_band) return false;
    replies.push_back(message);
    return true;
  }
  void stop() override {}
  bool healthy() const override { return true; }

  // Sends a line as user `user` in `channel`.
  void say(const std::string& text, const std::string& user = "alice", const std::string& channel = "C1");
  // The next `n` posts fail with `error` (not recorded as delivered).
  void fail_next(int n, bot::Error error) {
    for (int i = 0; i < n; ++i) failures_.push_back(error);
  }

  // Like Slack: a maybe_delivered post whose delivery_id is already among `posts` is reported as
  // already there (not posted again). Off: such posts are posted again, like a platform that
  // cannot look.
  bool finds_deliveries = true;
  // Lookups made for maybe_delivered posts.
  int lookups = 0;
  // Reports each post done before post() returns (allowed by ChatAdapter), instead of on the
  // next turn of the clock.
  bool completes_inline = false;
  bool answers_in_band = true;

  std::vector<Posted> posts;           // delivered, in order
  std::vector<bot::Message> replies;   // immediate answers
  int attempts = 0;

 private:
  FakeClock& clock_;
  std::string platform_;
  InboundHandler handler_;
  std::deque<bot::Error> failures_;
  int next_id_ = 1;
};

}  // namespace runbot::testing
