#pragma once
// Drives an io_context until `done()` holds or `limit` of real time passes; returns done().
// Tests assert on the result, so a hang fails the test instead of blocking ctest.
#include <chrono>

#include <boost/asio/io_context.hpp>

namespace runbot::common::testing {

template <class Pred>
bool run_until(boost::asio::io_context& io, Pred done,
               std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (io.stopped()) io.restart();
    io.run_one_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace runbot::common::testing
