#pragma once
// NthIngest: the HTTP endpoint that accepts aws-node-termination-handler webhook POSTs (with
// WEBHOOK_TEMPLATE='{{ toJson . }}') and produces them to the cluster-events topic, for
// installations whose NTH has no path to Kafka. Protected by a shared secret header compared in
// constant time. Runs on the io_context thread (HttpServer handlers are synchronous).
#include <functional>
#include <string>

#include "adapters/common/http_server.h"
#include "bot/result.h"

namespace runbot::app {

class NthIngest {
 public:
  // Produces `value` (the body as received) keyed by `key` (the node name) to the cluster-events
  // topic; the callback reports delivery.
  using Produce = std::function<void(std::string key, std::string value, std::function<void(bot::Status)>)>;

  static constexpr const char* kSecretHeader = "x-runbot-secret";
  static constexpr const char* kPath = "/ingest/nth";

  NthIngest(std::string secret, Produce produce) : secret_(std::move(secret)), produce_(std::move(produce)) {}

  // 202 when accepted (queued for Kafka), 401 for a missing or wrong secret, 400 with the reason
  // for a body that is not an NTH notice, 413/405 are the server's.
  common::HttpResponse handle(const common::HttpRequest& request);

  std::uint64_t accepted() const { return accepted_; }
  std::uint64_t rejected() const { return rejected_; }

 private:
  std::string secret_;
  Produce produce_;
  std::uint64_t accepted_ = 0;
  std::uint64_t rejected_ = 0;
};

}  // namespace runbot::app
