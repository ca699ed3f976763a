#include "adapters/common/asio_clock.h"

#include <chrono>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "tests/adapters/common/run_until.h"

namespace runbot::common {
namespace {

using namespace std::chrono_literals;
using testing::run_until;

TEST(AsioClock, NowStartsAtWallClockAndNeverGoesBack) {
  boost::asio::io_context io;
  AsioClock clock(io);
  const auto wall = std::chrono::system_clock::now();
  const auto first = clock.now();
  EXPECT_LT(std::chrono::abs(first - std::chrono::floor<bot::Duration>(wall)), 5s);
  auto previous = first;
  for (int i = 0; i < 1000; ++i) {
    const auto t = clock.now();
    ASSERT_GE(t, previous);
    previous = t;
  }
}

TEST(AsioClock, CallbacksRunInTimeOrderAndNotBeforeTheirTime) {
  boost::asio::io_context io;
  AsioClock clock(io, 10.0);
  const auto start = clock.now();
  std::vector<int> order;
  bool early = false;
  for (int ms : {300, 100, 200}) {
    const auto due = start + bot::Duration(ms);
    clock.call_at(due, [&, ms, due] {
      if (clock.now() < due) early = true;
      order.push_back(ms);
    });
  }
  EXPECT_EQ(clock.pending(), 3u);
  ASSERT_TRUE(run_until(io, [&] { return order.size() == 3; }));
  EXPECT_EQ(order, (std::vector<int>{100, 200, 300}));
  EXPECT_FALSE(early);
  EXPECT_EQ(clock.pending(), 0u);
}

TEST(AsioClock, SpeedHundredFiresAOneSecondTimerInAboutTenMilliseconds) {
  boost::asio::io_context io;
  AsioClock clock(io, 100.0);
  const auto clock_start = clock.now();
  const auto real_start = std::chrono::steady_clock::now();
  bool fired = false;
  clock.call_after(1s, [&] { fired = true; });
  ASSERT_TRUE(run_until(io, [&] { return fired; }));
  const auto clock_elapsed = clock.now() - clock_start;
  const auto real_elapsed = std::chrono::steady_clock::now() - real_start;
  EXPECT_GE(clock_elapsed, 1s);
  // Proportional, not a deadline: at speed 1 the two would be about equal.
  EXPECT_GT(clock_elapsed, 10 * std::chrono::duration_cast<bot::Duration>(real_elapsed));
}

TEST(AsioClock, CancelPreventsTheCall) {
  boost::asio::io_context io;
  AsioClock clock(io, 10.0);
  bool cancelled_ran = false;
  bool sentinel_ran = false;
  const auto id = clock.call_after(50ms, [&] { cancelled_ran = true; });
  clock.call_after(100ms, [&] { sentinel_ran = true; });
  clock.cancel(id);
  EXPECT_EQ(clock.pending(), 1u);
  ASSERT_TRUE(run_until(io, [&] { return sentinel_ran; }));
  EXPECT_FALSE(cancelled_ran);
}

TEST(AsioClock, CancelOfUnknownOrFinishedIdIsIgnored) {
  boost::asio::io_context io;
  AsioClock clock(io);
  int runs = 0;
  const auto id = clock.call_after(0ms, [&] { ++runs; });
  ASSERT_TRUE(run_until(io, [&] { return runs == 1; }));
  clock.cancel(id);
  clock.cancel(id + 1000);
  bool later = false;
  clock.call_after(0ms, [&] { later = true; });
  ASSERT_TRUE(run_until(io, [&] { return later; }));
  EXPECT_EQ(runs, 1);
}

TEST(AsioClock, CallAtInThePastRunsSoonButNeverInline) {
  boost::asio::io_context io;
  AsioClock clock(io);
  bool ran = false;
  clock.call_at(clock.now() - 1h, [&] { ran = true; });
  EXPECT_FALSE(ran);
  ASSERT_TRUE(run_until(io, [&] { return ran; }));
}

TEST(AsioClock, CallbackCanScheduleAndCancelFromInside) {
  boost::asio::io_context io;
  AsioClock clock(io, 10.0);
  std::vector<std::string> seen;
  bot::TimerId victim = 0;
  clock.call_after(10ms, [&] {
    seen.push_back("first");
    clock.cancel(victim);
    clock.call_after(10ms, [&] { seen.push_back("chained"); });
  });
  victim = clock.call_after(500ms, [&] { seen.push_back("victim"); });
  ASSERT_TRUE(run_until(io, [&] { return seen.size() == 2; }));
  EXPECT_EQ(seen, (std::vector<std::string>{"first", "chained"}));
  EXPECT_EQ(clock.pending(), 0u);
}

TEST(AsioClock, DestructionCancelsPendingTimersWithoutCallingThem) {
  boost::asio::io_context io;
  bool ran = false;
  {
    AsioClock clock(io);
    clock.call_after(0ms, [&] { ran = true; });
    clock.call_after(1h, [&] { ran = true; });
  }
  // With the timers cancelled nothing is left to do, so this returns at once.
  io.run_for(2s);
  EXPECT_TRUE(io.stopped());
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace runbot::common
