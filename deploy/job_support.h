#pragma once
// Pure helpers shared by the backends: template expansion, the namespace and URL of a job,
// kube-janitor annotation values (cluster-events.md §3.1), and the deploy module's logger.
// No I/O, no clock: callers pass the instants they mean.
#include <optional>
#include <string>
#include <string_view>

#include "bot/model.h"

namespace spdlog {
class logger;
}

namespace runbot::deploy {

// Replaces {env}, {app} and {pr} in `tmpl`; other text (and unknown braces) is kept.
std::string expand_template(std::string_view tmpl, const bot::Job& job);

// The job's namespace: job.namespace_name, else the app's namespace_template, else the env id.
std::string namespace_for(const bot::Job& job, const bot::AppSpec& app);

// The TTL the job asks for, else the app's default TTL.
bot::Duration ttl_for(const bot::Job& job, const bot::AppSpec& app);

// When the environment expires: job.expires_at, else requested_at + ttl (if requested_at is set).
std::optional<bot::TimePoint> expires_for(const bot::Job& job, const bot::AppSpec& app);

// `janitor/ttl` value: one number and one unit (s, m, h, d, w), the largest unit that divides the
// TTL exactly, rounded up to whole seconds: 8h -> "8h", 90m -> "90m", 14d -> "2w".
std::string janitor_ttl(bot::Duration ttl);

// `janitor/expires` value: "YYYY-MM-DDTHH:MM:SSZ" (UTC, no fraction, no offset).
std::string janitor_expires(bot::TimePoint t);

// RFC 3339 without fractional seconds, as Go's encoding/json writes a whole-second time.
std::string rfc3339_seconds(bot::TimePoint t);

// Human form of short and long durations: "300ms", "45s", "15m".
std::string describe_duration(bot::Duration d);

// The module's logger ("deploy"), cloned from spdlog's default logger on first use.
spdlog::logger& log();

}  // namespace runbot::deploy
