#include "deploy/job_support.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <ctime>

#include "bot/module_logger.h"

namespace runbot::deploy {

std::string expand_template(std::string_view tmpl, const bot::Job& job) {
  std::string out;
  out.reserve(tmpl.size() + 32);
  for (size_t i = 0; i < tmpl.size();) {
    auto starts = [&](std::string_view key) { return tmpl.substr(i, key.size()) == key; };
    if (starts("{env}")) {
      out += job.env.str();
      i += 5;
    } else if (starts("{app}")) {
      out += job.app.str();
      i += 5;
    } else if (starts("{pr}")) {
      out += std::to_string(job.pr);
      i += 4;
    } else {
      out += tmpl[i++];
    }
  }
  return out;
}

std::string namespace_for(const bot::Job& job, const bot::AppSpec& app) {
  if (!job.namespace_name.empty()) return job.namespace_name;
  if (!app.namespace_template.empty()) return expand_template(app.namespace_template, job);
  return job.env.str();
}

bot::Duration ttl_for(const bot::Job& job, const bot::AppSpec& app) {
  return job.ttl.value_or(app.default_ttl);
}

std::optional<bot::TimePoint> expires_for(const bot::Job& job, const bot::AppSpec& app) {
  if (job.expires_at) return job.expires_at;
  if (job.requested_at == bot::TimePoint{}) return std::nullopt;
  return job.requested_at + ttl_for(job, app);
}

std::string janitor_ttl(bot::Duration ttl) {
  using namespace std::chrono;
  auto s = duration_cast<seconds>(ttl + milliseconds(999)).count();
  if (s <= 0) s = 1;  // "0s" means "never" to kube-janitor; never write that by accident
  struct Unit {
    char name;
    long long secs;
  };
  for (Unit u : {Unit{'w', 604800}, Unit{'d', 86400}, Unit{'h', 3600}, Unit{'m', 60}}) {
    if (s % u.secs == 0) return std::to_string(s / u.secs) + u.name;
  }
  return std::to_string(s) + "s";
}

std::string rfc3339_seconds(bot::TimePoint t) {
  auto secs = std::chrono::floor<std::chrono::seconds>(t);
  std::time_t tt = secs.time_since_epoch().count();
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string janitor_expires(bot::TimePoint t) {
  return rfc3339_seconds(t);
}

std::string describe_duration(bot::Duration d) {
  if (d < std::chrono::seconds(1) && d > -std::chrono::seconds(1)) {
    return std::to_string(d.count()) + "ms";
  }
  return bot::format_duration(d);
}

spdlog::logger& log() {
  static const std::shared_ptr<spdlog::logger> logger = bot::module_logger("deploy");
  return *logger;
}

}  // namespace runbot::deploy
