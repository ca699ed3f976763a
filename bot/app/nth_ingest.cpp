#include "bot/app/nth_ingest.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "adapters/common/secrets.h"
#include "events/cluster_decoder.h"

namespace runbot::app {

common::HttpResponse NthIngest::handle(const common::HttpRequest& request) {
  auto reject = [this](int status, std::string why) {
    ++rejected_;
    return common::HttpResponse{status, "text/plain; charset=utf-8", why + "\n", {}};
  };
  auto header = request.headers.find(kSecretHeader);
  if (secret_.empty() || header == request.headers.end() || !common::constant_time_equal(header->second, secret_)) {
    spdlog::warn("nth ingest: rejected request remote={} reason=bad secret", request.remote);
    return reject(401, std::string("missing or wrong ") + kSecretHeader + " header");
  }
  auto decoded = events::decode_nth_webhook(request.body, std::nullopt);
  if (!decoded) {
    spdlog::warn("nth ingest: rejected body remote={} reason={}", request.remote, decoded.error().message);
    return reject(400, "not an aws-node-termination-handler notice: " + decoded.error().message);
  }
  ++accepted_;
  std::string key = decoded->node.name.str();
  std::string event_id = decoded->dedupe_key;
  produce_(key, request.body, [event_id](bot::Status s) {
    if (!s) spdlog::error("nth ingest: could not produce event_id={} error={}", event_id, s.error().message);
  });
  return common::HttpResponse{202, "application/json", nlohmann::json{{"accepted", event_id}}.dump() + "\n", {}};
}

}  // namespace runbot::app
