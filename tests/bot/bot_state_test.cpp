// Bot with a state store whose writes become durable only when the test says so: announcements
// wait for the snapshot that holds them, input offsets are released behind it, and a crash
// (a new Bot from the last durable snapshot) announces nothing twice and loses nothing.
#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <thread>

#include <nlohmann/json.hpp>

#include "bot/bot.h"
#include "tests/support/fake_chat_adapter.h"
#include "tests/support/recording_job_queue.h"

namespace runbot::bot {
namespace {

using namespace std::chrono_literals;
using testing::FakeChatAdapter;
using testing::FakeClock;
using testing::RecordingJobQueue;

// Keeps every snapshot; one becomes "durable" (what load() would return after a crash) only at
// make_durable().
class ManualStore final : public StateStore {
 public:
  Result<std::optional<std::string>> load() override { return durable_; }
  Status save(const std::string& snapshot) override {
    pending_ = snapshot;
    ++saves;
    if (save_takes > std::chrono::milliseconds::zero()) std::this_thread::sleep_for(save_takes);
    return ok();
  }
  int saves = 0;
  std::chrono::milliseconds save_takes{0};  // real time each save takes
  void when_durable(std::function<void()> cb) override { waiting_.push_back(std::move(cb)); }
  void make_durable() {
    durable_ = pending_;
    auto cbs = std::move(waiting_);
    waiting_.clear();
    for (auto& cb : cbs) cb();
  }
  std::optional<std::string> durable_;
  std::optional<std::string> pending_;
  std::deque<std::function<void()>> waiting_;
};

class BotState : public ::testing::Test {
 protected:
  BotState() {
    AppSpec app;
    app.name = AppName{"web"};
    app.repo = "acme/web";
    settings.apps[app.name] = app;
    outbox_settings.messages_per_second = 100;
    outbox_settings.burst = 100;
  }

  std::unique_ptr<Bot> make_bot(Registry registry, Outbox& outbox) {
    auto b = std::make_unique<Bot>(settings, std::move(registry), clock, jobs, outbox, metrics, &store);
    BotHooks hooks;
    hooks.state_checkpoint = [this]() -> std::function<void()> {
      int mark = ++checkpoints;
      return [this, mark] { committed = mark; };
    };
    b->set_hooks(std::move(hooks));
    b->attach(chat);
    b->start();
    return b;
  }

  LifecycleEvent progress(const std::string& id, const std::string& text) {
    LifecycleEvent e;
    e.id = id;
    e.kind = LifecycleKind::progress;
    e.env = EnvId{"web-pr-1"};
    e.stage = "deploy";
    e.message = text;
    return e;
  }

  size_t posts_with(const std::string& needle) const {
    size_t n = 0;
    for (const auto& p : chat.posts) n += to_plain_text(p.request.message).find(needle) != std::string::npos;
    return n;
  }

  FakeClock clock;
  Metrics metrics;
  BotSettings settings;
  OutboxSettings outbox_settings;
  RecordingJobQueue jobs{clock};
  FakeChatAdapter chat{clock};
  ManualStore store;
  int checkpoints = 0;
  int committed = 0;
};

TEST_F(BotState, AnnouncementsWaitForTheSnapshotThatHoldsThem) {
  Outbox outbox(outbox_settings, clock, metrics);
  auto bot = make_bot(Registry{}, outbox);
  chat.say("up web 1");
  clock.advance(1s);
  EXPECT_TRUE(chat.posts.empty()) << "nothing announced before the state holding it is durable";
  ASSERT_TRUE(store.pending_.has_value());
  EXPECT_EQ(committed, 0);
  const int taken = checkpoints;
  store.make_durable();
  EXPECT_EQ(committed, taken) << "offsets are released with the snapshot";
  clock.advance(1s);
  EXPECT_FALSE(chat.posts.empty());
}

TEST_F(BotState, SlowSnapshotsAreSpacedOutButNotBeyondFourTimesTheDelay) {
  // Only waits that do not depend on how fast this machine is are asserted: the first snapshot
  // (no cost known yet) and the cap.
  settings.state_save_delay = 50ms;
  Outbox outbox(outbox_settings, clock, metrics);
  auto bot = make_bot(Registry{}, outbox);
  chat.say("up web 1");
  clock.advance(49ms);
  EXPECT_EQ(store.saves, 0);
  clock.advance(1ms);
  ASSERT_EQ(store.saves, 1) << "the first snapshot after the configured delay";
  store.save_takes = 20ms;  // real time; 20 times that is 400 ms, capped at 4 x 50 ms
  bot->on_lifecycle(progress("p1", "one"));
  clock.advance(200ms);
  ASSERT_EQ(store.saves, 2);
  store.save_takes = 0ms;
  bot->on_lifecycle(progress("p2", "two"));
  clock.advance(199ms);
  EXPECT_EQ(store.saves, 2) << "after a 20 ms snapshot the next one waits 200 ms";
  clock.advance(1ms);
  EXPECT_EQ(store.saves, 3);
}

TEST_F(BotState, ACrashBeforeTheSnapshotIsDurableAnnouncesEverythingOnceAfterTheRestart) {
  {
    Outbox outbox(outbox_settings, clock, metrics);
    auto bot = make_bot(Registry{}, outbox);
    chat.say("up web 1");
    clock.advance(1s);
    store.make_durable();
    clock.advance(1s);
    bot->on_lifecycle(progress("p1", "[m1]"));
    clock.advance(1s);
    store.make_durable();  // p1 and its announcement are in durable state
    bot->on_lifecycle(progress("p2", "[m2]"));
    clock.advance(1s);      // p2 handled, its snapshot never becomes durable: crash
    EXPECT_EQ(posts_with("[m2]"), 0u) << "held back: its snapshot is not durable";
    chat.finds_deliveries = true;
  }
  // Restart from the durable snapshot; the input after it (p2, and p1 again) is re-read.
  auto restored = Registry::restore(*store.durable_);
  ASSERT_TRUE(restored) << restored.error().message;
  Outbox outbox(outbox_settings, clock, metrics);
  auto bot = make_bot(std::move(*restored), outbox);
  bot->on_lifecycle(progress("p1", "[m1]"));
  bot->on_lifecycle(progress("p2", "[m2]"));
  clock.advance(1s);
  store.make_durable();
  clock.advance(5s);
  EXPECT_EQ(posts_with("[m1]"), 1u);
  EXPECT_GE(chat.lookups, 1) << "the restored reply was looked up, not posted blindly";
  EXPECT_EQ(posts_with("[m2]"), 1u);
  EXPECT_EQ(outbox.pending(), 0u);
}

TEST_F(BotState, EverySnapshotCarriesHowFarTheInputWasAppliedAndARestoreGivesItBack) {
  Outbox outbox(outbox_settings, clock, metrics);
  auto bot = make_bot(Registry{}, outbox);
  int applied = 0;
  BotHooks hooks;
  hooks.input_positions = [&applied] { return nlohmann::json{{"events", {{"0", applied}}}}; };
  bot->set_hooks(std::move(hooks));
  chat.say("up web 1");
  applied = 7;
  clock.advance(1s);
  store.make_durable();
  auto restored = Registry::restore(*store.durable_);
  ASSERT_TRUE(restored) << restored.error().message;
  EXPECT_EQ(restored->input_positions(), (nlohmann::json{{"events", {{"0", 7}}}}))
      << "taken with the snapshot, so it names exactly the input that state holds";
  bot->on_lifecycle(progress("p1", "[m1]"));
  applied = 8;
  clock.advance(1s);
  store.make_durable();
  EXPECT_EQ(Registry::restore(*store.durable_)->input_positions()["events"]["0"], 8);
}

}  // namespace
}  // namespace runbot::bot
