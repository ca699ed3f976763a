#pragma once
// Classifies a record of the cluster-events topic into a bot::ClusterEvent.
//
// Recognised today:
//  (a) runbot's own CloudEvents, type io.runbot.cluster.<kind>.v1, binary or structured mode;
//  (b) an aws-node-termination-handler (NTH) webhook body rendered with
//      WEBHOOK_TEMPLATE='{{ toJson . }}' (or NTH's "Adding new event" log JSON, same field names),
//      see cluster-events.md §4.2-4.3. Kind -> ClusterEventKind:
//        SPOT_ITN -> spot_interruption            REBALANCE_RECOMMENDATION -> rebalance_recommendation
//        SCHEDULED_EVENT -> scheduled_maintenance STATE_CHANGE, ASG_LIFECYCLE, SQS_TERMINATE -> node_termination
//        ASG_LAUNCH_LIFECYCLE -> other (a node joining, nothing to warn about)
//      dedupe_key = EventID, source = "aws-node-termination-handler", node capacity = spot for
//      SPOT_ITN and REBALANCE_RECOMMENDATION (both exist only for spot instances).
//
// StartTime means different things in NTH's two modes (§0.5), resolved like this:
//  * Mode: Monitor == "SQS_MONITOR" is queue mode, any other Monitor is IMDS mode. Without a
//    Monitor field (older NTH, log form) the EventID decides: queue-mode ids are
//    "<kind>-event-<hex>" or "asg-lifecycle-term-<hex>"; anything else is IMDS mode.
//  * IMDS mode: StartTime is when the action happens -> deadline = StartTime for spot
//    interruptions, scheduled maintenance (the window's NotBefore) and ASG target-state
//    terminations; time = the record timestamp (when NTH reported it), else StartTime.
//  * Queue mode: StartTime is when the warning was sent -> time = StartTime; for SPOT_ITN
//    deadline = StartTime + 2 min (EC2's fixed two-minute warning); for STATE_CHANGE /
//    ASG_LIFECYCLE / SQS_TERMINATE deadline = StartTime (the node is already going; NTH sends the
//    webhook after draining); scheduled maintenance has no known deadline in queue mode.
//  * Rebalance recommendations never have a deadline (advisory, no interruption scheduled).
//  A zero Go time ("0001-01-01T00:00:00Z") counts as absent.
//
// Anything else (Kubernetes Events, Karpenter, janitor: later) returns Errc::invalid_argument
// "unrecognised record: ...". Pure function: no I/O, callable from any thread.
#include <optional>
#include <string_view>

#include "bot/model.h"
#include "bot/result.h"
#include "events/record.h"

namespace runbot::events {

inline constexpr const char* kNthSource = "aws-node-termination-handler";

bot::Result<bot::ClusterEvent> decode_cluster_record(const Record& record);

// The NTH part on its own, for a JSON body received some other way (e.g. an HTTP webhook).
// `reported_at` is when the body was received/produced, used as `time` in IMDS mode.
bot::Result<bot::ClusterEvent> decode_nth_webhook(std::string_view json_body,
                                                  std::optional<bot::TimePoint> reported_at);

}  // namespace runbot::events
