#pragma once
// Produce/consume scenarios shared by the mock-cluster tests and the real-broker tests. Each
// scenario drives one io_context until its condition holds (bounded, asserted), never sleeps.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <string>

#include "events/kafka_settings.h"

namespace runbot::events::testing {

inline constexpr std::chrono::seconds kPatience{30};

// Runs `io` until `done()` is true or `limit` passes; returns done().
inline bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::steady_clock::duration limit = kPatience) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    if (io.stopped()) io.restart();
    io.run_one_for(std::chrono::milliseconds(100));
  }
  return done();
}

// Settings for tests: short session timeout (the mock waits ~session.timeout to rebalance).
inline KafkaSettings test_settings(const std::string& bootstrap, const std::string& topic_suffix = "") {
  KafkaSettings s;
  s.brokers = bootstrap;
  s.client_id = "runbot-test";
  s.session_timeout = std::chrono::milliseconds(6000);
  s.topics.jobs += topic_suffix;
  s.topics.events += topic_suffix;
  s.topics.cluster_events += topic_suffix;
  return s;
}

// Jobs produced with KafkaJobQueue arrive at KafkaJobSource in order; delivery reports run; a
// poison record between them is skipped and counted; after close + re-create with the same group
// nothing already handled is delivered again.
void jobs_flow_with_poison_and_restart(const KafkaSettings& settings, const std::string& group);

// Lifecycle events and an NTH webhook body published with KafkaEventPublisher reach a recording
// EventSink through KafkaEventSource, decoded and equal to what was sent.
void lifecycle_and_cluster_flow(const KafkaSettings& settings, const std::string& group);

}  // namespace runbot::events::testing
