#pragma once
// EmbeddedBroker: an in-process Kafka "broker" (librdkafka's mock cluster) for the demo mode and
// for tests, so runbot runs without a real Kafka. It listens on plaintext 127.0.0.1 ports that
// other processes can reach too (`kcat -b $(bootstrap_servers) -L`).
//
// Ownership: owned by bot/app (or a test); must outlive every producer and consumer using it.
// Threading: the mock cluster runs on its own librdkafka thread; methods may be called from any
// single thread. Limits (librdkafka 2.0.2 mock): no compaction, no retention, no SASL/TLS, no
// Admin API, transactions not isolated, the first group join waits ~3 s, later rebalances wait
// about session.timeout.ms - 1 s.
//
// Errors: start() fails with Errc::internal if librdkafka cannot create the cluster.
#include <memory>
#include <string>

#include "bot/result.h"
#include "events/kafka_settings.h"

namespace runbot::events {

class EmbeddedBroker {
 public:
  // Starts `brokers` mock brokers (ids 1..N) and creates the topics of `topics` with
  // `partitions` partitions each (replication factor min(3, brokers)).
  static bot::Result<std::unique_ptr<EmbeddedBroker>> start(const KafkaSettings::Topics& topics,
                                                            int brokers = 1, int partitions = 4);
  ~EmbeddedBroker();
  EmbeddedBroker(const EmbeddedBroker&) = delete;
  EmbeddedBroker& operator=(const EmbeddedBroker&) = delete;

  // "127.0.0.1:port[,127.0.0.1:port...]", for KafkaSettings::brokers and for kcat.
  std::string bootstrap_servers() const;

  // Creates another topic (the mock has no Admin API). Creating an existing topic fails.
  bot::Status create_topic(const std::string& name, int partitions);

  // Test fault injection: the next `count` Produce requests, from any producer, fail with the
  // retriable NOT_ENOUGH_REPLICAS (producers retry until message.timeout.ms). clear_produce_errors()
  // drops the ones not used up yet.
  void fail_produce_requests(int count);
  void clear_produce_errors();

 private:
  struct Impl;
  explicit EmbeddedBroker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace runbot::events
