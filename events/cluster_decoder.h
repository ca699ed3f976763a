#pragma once
// Classifies a record of the cluster-events topic into a bot::ClusterEvent, following
// /work/shared/docs/cluster-events.md §7. Tried in this order:
//
//  1. Structured CloudEvent (content-type application/cloudevents*), 2. binary CloudEvent
//     (ce_specversion header): runbot's own io.runbot.cluster.<kind>.v1 decode as before; any
//     other io.runbot.* type is an error ("is not a cluster event"); a foreign type (e.g.
//     dev.acme.prenv.ingest.k8s-event.v1) has its JSON `data` unwrapped and classified by 3-5,
//     with dedupe_key = "<ce source>/<ce id>" and the CE time standing in for a missing one.
//     Non-JSON data (text/xml, data_base64, a JSON string) is "unrecognised record: ...".
//     A JSON value with specversion/id/type but no content-type header (an exporter `layout`
//     writing a CE envelope) is read as a structured CE too.
//  3. Kubernetes Event (JSON with involvedObject and reason): resmoio and opsgenie
//     kubernetes-event-exporter shapes, or a raw core/v1 Event; values stringified by a layout
//     ("count": "1") are accepted. Time = lastTimestamp, series.lastObservedTime, eventTime,
//     firstTimestamp, metadata.creationTimestamp, then the CE/record time. dedupe_key =
//     metadata.uid when the record is recognisably resmoio's (clusterName or
//     involvedObject.deleted present), else "<uid>/<count>" (opsgenie re-exports on update).
//     source = source.component, falling back to reportingComponent; object = "<Kind>/<name>";
//     namespace_name = the involved object's namespace (empty for Node/NodeClaim; the name
//     for a Namespace). By component:
//       kube-janitor: TimeToLiveExpired, ExpiryTimeReached (deadline = event time),
//         DeleteNotification (deadline parsed from "will be deleted at ...") -> namespace_expired;
//         an event without any namespace is an error.
//       aws-node-termination-handler (§4.4; node = involvedObject Node name, else source.host;
//         instance type / zone / capacity from the Event annotations, else the Node labels):
//         SpotInterruption -> spot_interruption (deadline: IMDS text "Spot ITN received ...
//         interrupted at T" -> T; queue text "... at T" -> T + 2 min), RebalanceRecommendation ->
//         rebalance_recommendation, ScheduledEvent -> scheduled_maintenance (deadline =
//         "between T and"), StateChange/ASGLifecycle/UnknownInterruption -> node_termination
//         (deadline = event time). v1's SQSTermination is refined from the message text (spot /
//         rebalance / scheduled), else node_termination. Action reasons (Cordon, ...Error) -> other.
//       karpenter (§5.1), events on a Node only (the NodeClaim twin names no node -> other):
//         SpotInterrupted -> spot_interruption (deadline = event time + 2 min, estimated),
//         SpotRebalanceRecommendation -> rebalance_recommendation, InstanceStopping/
//         InstanceTerminating/TerminatingOnInterruption -> node_termination (deadline = event
//         time), InstanceUnhealthy/CapacityReservationInstanceInterrupted/DisruptionTerminating ->
//         node_termination (no deadline).
//       cluster-autoscaler (§5.2): ScaleDown on a Node -> node_termination.
//       Pods (any component, when the rules above left `other`): Scheduled -> pod_scheduled, node
//         parsed from "Successfully assigned ns/pod to <node>" (an unparseable message is an
//         error); CrashLoopBackOff, ImagePullBackOff, ErrImagePull, FailedScheduling, OOMKilled,
//         BackOff, Failed, NotTriggerScaleUp, ... or any type=Warning -> pod_warning (node =
//         source.host of a kubelet event). Everything else -> other (e.g. Pulling, SuccessfulCreate).
//  4. EventBridge JSON (detail-type + source; §4.5), dedupe_key = id, object = "Instance/<id>",
//     node name empty (EventBridge knows instances, not nodes):
//       Spot Instance Interruption Warning -> spot_interruption, deadline = time + 2 min;
//       Instance Rebalance Recommendation -> rebalance_recommendation;
//       State-change: stopping/stopped/shutting-down/terminated -> node_termination (deadline =
//         time), pending/running -> other;
//       Instance-terminate Lifecycle Action -> node_termination (deadline = time), launch -> other;
//       AWS Health EC2 scheduledChange -> scheduled_maintenance, deadline = detail.startTime
//         (RFC 1123), first affected entity; other Health events -> other;
//       any other detail-type -> "unrecognised record: EventBridge detail-type ...".
//     Also: direct ASG->SQS lifecycle messages (TEST_NOTIFICATION -> other; dedupe "asg/<RequestId>"),
//     SNS notifications (the JSON string in Message is classified), and IMDS documents: spot
//     instance-action (deadline = time), rebalance noticeTime, scheduled events (an array; the
//     earliest active instance-stop/-retirement/-reboot or system-reboot -> scheduled_maintenance
//     with deadline NotBefore, otherwise other; dedupe "<EventId>/<State>"). IMDS has no node
//     name: the record key (runbot keys this topic by node name) is used.
//  5. NTH webhook {{ toJson . }} / log JSON (EventID + Kind), rules below.
//
// Times: parse_event_time (event_time.h) accepts RFC 3339, RFC 1123, "2 Jan 2006 15:04:05 GMT"
// and Go's time.String() layout everywhere.
//
// NTH webhook Kind -> ClusterEventKind:
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
// Errors: Errc::invalid_argument. A record that matches no shape says "unrecognised record:
// <why>" (the caller counts it as unknown / dead-letters it); a record of a known shape with a
// bad or missing field names the shape, the record's place and the field ("k8s event at
// t/2@17: field 'count' must be an integer"). Never throws. Pure function: no I/O, no clock,
// callable from any thread.
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
