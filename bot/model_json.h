#pragma once
// JSON forms of the domain types, shared by the Kafka codecs (events/) and the state snapshot.
// Decoding validates: a missing or mistyped required field is an Error naming the field.
#include <nlohmann/json_fwd.hpp>

#include "bot/message.h"
#include "bot/model.h"
#include "bot/result.h"

namespace runbot::bot {

nlohmann::json to_json(const Job& job);
Result<Job> job_from_json(const nlohmann::json& j);

nlohmann::json to_json(const LifecycleEvent& e);
Result<LifecycleEvent> lifecycle_from_json(const nlohmann::json& j);

nlohmann::json to_json(const NodeInfo& n);
Result<NodeInfo> node_from_json(const nlohmann::json& j);

nlohmann::json to_json(const ClusterEvent& e);
Result<ClusterEvent> cluster_event_from_json(const nlohmann::json& j);

// Chat messages as the outbox journal keeps them across restarts.
nlohmann::json to_json(const Message& m);
Result<Message> message_from_json(const nlohmann::json& j);

}  // namespace runbot::bot
