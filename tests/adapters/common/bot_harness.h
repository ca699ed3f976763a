#pragma once
// BotHarness: the real bot::Bot behind a chat adapter, for the adapters' component tests against
// their fake platforms: the demo configuration (plus extra YAML), an AsioClock, a
// RecordingJobQueue and an Outbox. start() attaches the adapter, starts the bot and waits for the
// adapter's startup outcome (its on_started). Everything runs on the test's io_context. The test
// fixture calls stop() and then stops its adapter, before either is destroyed.
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "adapters/common/asio_clock.h"
#include "bot/app/config.h"
#include "bot/bot.h"
#include "tests/adapters/common/run_until.h"
#include "tests/support/recording_job_queue.h"

namespace runbot::testing {

class BotHarness {
 public:
  explicit BotHarness(boost::asio::io_context& io) : clock(io), jobs(clock), io_(io) {}

  // Parses the demo configuration with `extra_yaml` appended, then builds the outbox (its
  // settings changed by `tune` first, when given) and the bot.
  ::testing::AssertionResult build(const std::string& extra_yaml = "",
                                   const std::function<void(bot::OutboxSettings&)>& tune = {}) {
    auto cfg = app::parse_config(app::demo_config_yaml() + extra_yaml, {});
    if (!cfg) return ::testing::AssertionFailure() << cfg.error().message;
    config = std::move(*cfg);
    bot::OutboxSettings os = config.outbox;
    if (tune) tune(os);
    outbox = std::make_unique<bot::Outbox>(os, clock, metrics);
    the_bot = std::make_unique<bot::Bot>(config.bot, bot::Registry{}, clock, jobs, *outbox, metrics, nullptr);
    return ::testing::AssertionSuccess();
  }

  // Attaches `adapter` (one with on_started: Slack, Mattermost), starts the bot and waits until
  // the adapter reports its startup; fails with the adapter's error.
  template <class Adapter>
  ::testing::AssertionResult start(Adapter& adapter) {
    auto started = std::make_shared<std::optional<bot::Status>>();
    adapter.on_started([started](bot::Status st) { *started = std::move(st); });
    the_bot->attach(adapter);
    the_bot->start();
    if (!common::testing::run_until(io_, [&] { return started->has_value(); })) {
      return ::testing::AssertionFailure() << "the adapter reported no startup outcome";
    }
    if (!**started) return ::testing::AssertionFailure() << (*started)->error().message;
    return ::testing::AssertionSuccess();
  }

  void stop() {
    if (the_bot) the_bot->stop();
  }

  app::Config config;
  common::AsioClock clock;
  bot::Metrics metrics;
  RecordingJobQueue jobs;
  std::unique_ptr<bot::Outbox> outbox;
  std::unique_ptr<bot::Bot> the_bot;

 private:
  boost::asio::io_context& io_;
};

}  // namespace runbot::testing
