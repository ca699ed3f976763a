#pragma once
// Produce/consume scenarios shared by the mock-cluster tests and the real-broker tests. Each
// scenario drives one io_context until its condition holds (bounded, asserted), never sleeps.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <vector>
#include <string>

#include "events/kafka_settings.h"
#include "events/record.h"

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

// Good cluster records (NTH webhook bodies) interleaved with poison ones, all on one key and so
// one partition, reach KafkaEventSource: every good one reaches the sink in order; every poison
// one is in "<cluster topic>.dlq" with the same key/value, its ce_*/content-type headers and the
// dlq.* headers; dead_lettered() counts them; after close + re-create with the same group only
// a new record arrives (the committed offsets are past the poison records).
void poison_records_go_to_the_dead_letter_topic(const KafkaSettings& settings, const std::string& group);

// With deferred offsets, a KafkaEventSource commits only through the checkpoints it was told
// to: records handled after the last commit_through() (a poison one included) are delivered
// again to the next consumer of the group; those before it are not.
void deferred_offsets_commit_only_through_checkpoints(const KafkaSettings& settings, const std::string& group);
// Records handled after the last commit but already applied to the saved state (positions()
// kept with it) are read again after a restart and skipped (skip_applied), DLQ included.
void records_applied_to_the_state_are_not_handled_again(const KafkaSettings& settings, const std::string& group);
// A consumer restarted with every record committed consumes nothing, yet knows its lag is 0
// (end-of-partition): runbot waits for that before it takes commands.
void an_idle_restart_knows_its_lag(const KafkaSettings& settings, const std::string& group);

// A valid NTH webhook body (toJson template) with the given EventID, node ip-10-0-3-17.
std::string nth_body(const std::string& event_id);

// Produces raw records and waits for every delivery report; asserts they all succeeded.
struct RawRecord {
  std::string key;
  std::optional<std::string> value;
  Headers headers;
};
void produce_all(boost::asio::io_context& io, const KafkaSettings& settings, const std::string& topic,
                 const std::vector<RawRecord>& records);

// Reads `count` records of `topic` from the beginning (a fresh group), or fails after kPatience.
std::vector<Record> read_topic(boost::asio::io_context& io, const KafkaSettings& settings, const std::string& topic,
                               const std::string& group, size_t count);

}  // namespace runbot::events::testing
