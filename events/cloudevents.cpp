#include "events/cloudevents.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>

#include "bot/model_json.h"
#include "events/decoder_detail.h"

namespace runbot::events {
namespace {

using nlohmann::json;
using bot::Errc;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// "application/json", "application/json; charset=utf-8", "*/*+json".
bool is_json_media_type(std::string_view content_type) {
  std::string ct = lower(trim(content_type.substr(0, content_type.find(';'))));
  return ct == "application/json" || ct == "text/json" ||
         (ct.size() > 5 && ct.compare(ct.size() - 5, 5, "+json") == 0);
}

bool is_structured(const Record& r) {
  const std::string* ct = r.header("content-type");
  return ct && lower(trim(*ct)).rfind("application/cloudevents", 0) == 0;
}

bot::Error invalid(std::string message) { return bot::make_error(Errc::invalid_argument, std::move(message)); }

std::string hyphenate(std::string s) {
  std::replace(s.begin(), s.end(), '_', '-');
  return s;
}

std::string underscore(std::string s) {
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}

EncodedRecord encode(std::string key, std::string id, std::string_view source, std::string type,
                     bot::TimePoint time, const json& data) {
  EncodedRecord r;
  r.headers = {{"ce_specversion", "1.0"},
               {"ce_id", std::move(id)},
               {"ce_source", std::string(source)},
               {"ce_type", std::move(type)},
               {"ce_subject", key},
               {"ce_time", bot::format_time(time)},
               {"ce_partitionkey", key},
               {"content-type", "application/json"}};
  r.key = std::move(key);
  r.value = data.dump();
  return r;
}

using Parsed = detail::ParsedCloudEvent;

bot::Result<Parsed> parse_structured(const Record& r) {
  const std::string ct = lower(trim(*r.header("content-type")));
  if (ct.rfind("application/cloudevents-batch", 0) == 0) {
    return invalid("cloudevent: batch mode (" + ct + ") is not supported by the Kafka binding");
  }
  if (!r.value) return invalid("cloudevent (structured): null value");
  json j = json::parse(*r.value, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid("cloudevent (structured): value is not valid JSON");
  if (!j.is_object()) return invalid("cloudevent (structured): value is not a JSON object");
  Parsed p;
  p.attrs.structured = true;
  std::string specversion;
  auto attr = [&j](const char* name, std::string& out, bool required) -> std::optional<bot::Error> {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) {
      if (required) return invalid(std::string("cloudevent (structured): missing attribute '") + name + "'");
      return std::nullopt;
    }
    if (!it->is_string()) return invalid(std::string("cloudevent (structured): attribute '") + name + "' is not a string");
    out = it->get<std::string>();
    if (required && out.empty()) return invalid(std::string("cloudevent (structured): attribute '") + name + "' is empty");
    return std::nullopt;
  };
  for (auto [name, out, required] : {std::tuple{"specversion", &specversion, true},
                                     std::tuple{"id", &p.attrs.id, true},
                                     std::tuple{"source", &p.attrs.source, true},
                                     std::tuple{"type", &p.attrs.type, true},
                                     std::tuple{"subject", &p.attrs.subject, false},
                                     std::tuple{"time", &p.attrs.time, false},
                                     std::tuple{"datacontenttype", &p.datacontenttype, false}}) {
    if (auto e = attr(name, *out, required)) return *e;
  }
  if (specversion != "1.0") return invalid("cloudevent: unsupported specversion '" + specversion + "' (expected 1.0)");
  if (!p.datacontenttype.empty() && !is_json_media_type(p.datacontenttype)) {
    p.data_problem = "cloudevent: unsupported datacontenttype '" + p.datacontenttype + "' (expected application/json)";
    return p;
  }
  if (auto b64 = j.find("data_base64"); b64 != j.end() && !b64->is_null()) {
    p.data_problem = "cloudevent: data_base64 is not supported (expected JSON data)";
    return p;
  }
  auto data = j.find("data");
  if (data == j.end() || data->is_null()) {
    p.data_problem = "cloudevent: event has no data";
    return p;
  }
  p.data = std::move(*data);
  return p;
}

bot::Result<Parsed> parse_binary(const Record& r) {
  Parsed p;
  auto header = [&r](const char* name, std::string& out, bool required) -> std::optional<bot::Error> {
    const std::string* h = r.header(name);
    if (!h) {
      if (required) return invalid(std::string("cloudevent: missing header ") + name);
      return std::nullopt;
    }
    if (required && h->empty()) return invalid(std::string("cloudevent: header ") + name + " is empty");
    out = *h;
    return std::nullopt;
  };
  std::string specversion;
  if (auto e = header("ce_specversion", specversion, true)) return *e;
  if (specversion != "1.0") return invalid("cloudevent: unsupported specversion '" + specversion + "' (expected 1.0)");
  for (auto [name, out] : {std::pair{"ce_id", &p.attrs.id}, std::pair{"ce_source", &p.attrs.source},
                           std::pair{"ce_type", &p.attrs.type}}) {
    if (auto e = header(name, *out, true)) return *e;
  }
  (void)header("ce_subject", p.attrs.subject, false);
  (void)header("ce_time", p.attrs.time, false);
  if (const std::string* ct = r.header("content-type")) {
    p.datacontenttype = *ct;
    if (!is_json_media_type(*ct)) {
      p.data_problem = "cloudevent: unsupported content-type '" + *ct + "' (expected application/json)";
      return p;
    }
  }
  if (!r.value) {
    p.data_problem = "cloudevent: null value (event has no data)";
    return p;
  }
  p.data = json::parse(*r.value, nullptr, /*allow_exceptions=*/false);
  if (p.data.is_discarded()) p.data_problem = "cloudevent: data is not valid JSON";
  return p;
}

bot::Result<Parsed> parse(const Record& r) {
  auto p = detail::parse_cloudevent(r);
  if (!p) return p;
  if (p->data_problem) return invalid(*p->data_problem);
  return p;
}

// "io.runbot.env.ready.v1" with prefix "io.runbot.env." -> "ready".
bot::Result<std::string> type_word(const std::string& type, std::string_view prefix, const char* what) {
  auto expected = [&] {
    return "cloudevent type '" + type + "' is not a " + what + " (expected " + std::string(prefix) +
           "<kind>" + std::string(kTypeSuffix) + ")";
  };
  if (type.size() <= prefix.size() + kTypeSuffix.size() || type.compare(0, prefix.size(), prefix) != 0) {
    return invalid(expected());
  }
  if (type.compare(type.size() - kTypeSuffix.size(), kTypeSuffix.size(), kTypeSuffix) != 0) {
    return invalid("cloudevent type '" + type + "' has an unsupported version (expected " +
                   std::string(kTypeSuffix) + ")");
  }
  return type.substr(prefix.size(), type.size() - prefix.size() - kTypeSuffix.size());
}

}  // namespace

EncodedRecord encode_job(const bot::Job& job, std::string_view source) {
  return encode(job.env.str(), job.id.str(), source,
                std::string(kJobTypePrefix) + bot::to_string(job.verb) + std::string(kTypeSuffix),
                job.requested_at, bot::to_json(job));
}

EncodedRecord encode_lifecycle(const bot::LifecycleEvent& event) {
  std::string_view source = event.source.empty() ? std::string_view("/runbot/provisioner") : event.source;
  return encode(event.env.str(), event.id, source,
                std::string(kLifecycleTypePrefix) + bot::to_string(event.kind) + std::string(kTypeSuffix),
                event.time, bot::to_json(event));
}

EncodedRecord encode_cluster_event(const bot::ClusterEvent& event, std::string_view fallback_source) {
  std::string key = !event.node.name.empty()      ? event.node.name.str()
                    : !event.namespace_name.empty() ? event.namespace_name
                                                    : event.dedupe_key;
  std::string_view source = event.source.empty() ? fallback_source : std::string_view(event.source);
  json data = bot::to_json(event);
  // bot::to_json always writes "node", but cluster_event_from_json rejects a node with an empty
  // name; leave it out for node-less events (pod warnings, namespace expiry) so they round-trip.
  if (event.node.name.empty()) data.erase("node");
  return encode(std::move(key), event.dedupe_key, source,
                std::string(kClusterTypePrefix) + hyphenate(bot::to_string(event.kind)) + std::string(kTypeSuffix),
                event.time, data);
}

bool is_cloudevent(const Record& record) {
  return is_structured(record) || record.header("ce_specversion") != nullptr;
}

bot::Result<CloudEventAttributes> decode_attributes(const Record& record) {
  auto p = parse(record);
  if (!p) return p.error();
  return p->attrs;
}

bot::Result<bot::Job> decode_job(const Record& record) {
  auto p = parse(record);
  if (!p) return p.error();
  auto word = type_word(p->attrs.type, kJobTypePrefix, "job");
  if (!word) return word.error();
  auto verb = bot::job_verb_from_string(*word);
  if (!verb) return invalid("cloudevent type '" + p->attrs.type + "' has unknown verb '" + *word + "'");
  auto job = bot::job_from_json(p->data);
  if (!job) return invalid("cloudevent data: " + job.error().message);
  if (job->verb != *verb) {
    return invalid("cloudevent type verb '" + *word + "' disagrees with data verb '" + bot::to_string(job->verb) + "'");
  }
  return job;
}

bot::Result<bot::LifecycleEvent> decode_lifecycle(const Record& record) {
  auto p = parse(record);
  if (!p) return p.error();
  auto word = type_word(p->attrs.type, kLifecycleTypePrefix, "lifecycle event");
  if (!word) return word.error();
  auto kind = bot::lifecycle_kind_from_string(*word);
  if (!kind) return invalid("cloudevent type '" + p->attrs.type + "' has unknown kind '" + *word + "'");
  auto event = bot::lifecycle_from_json(p->data);
  if (!event) return invalid("cloudevent data: " + event.error().message);
  if (event->kind != *kind) {
    return invalid("cloudevent type kind '" + *word + "' disagrees with data kind '" + bot::to_string(event->kind) + "'");
  }
  if (event->source.empty()) event->source = p->attrs.source;
  return event;
}

bot::Result<bot::ClusterEvent> decode_cluster_cloudevent(const Record& record) {
  auto p = parse(record);
  if (!p) return p.error();
  auto word = type_word(p->attrs.type, kClusterTypePrefix, "cluster event");
  if (!word) return word.error();
  auto event = bot::cluster_event_from_json(p->data);
  if (!event) return invalid("cloudevent data: " + event.error().message);
  if (underscore(*word) != bot::to_string(event->kind)) {
    return invalid("cloudevent type kind '" + *word + "' disagrees with data kind '" + bot::to_string(event->kind) + "'");
  }
  if (event->source.empty()) event->source = p->attrs.source;
  if (event->dedupe_key.empty()) event->dedupe_key = p->attrs.source + "/" + p->attrs.id;
  return event;
}

namespace detail {

bot::Result<ParsedCloudEvent> parse_cloudevent(const Record& record) {
  auto p = is_structured(record) ? parse_structured(record) : parse_binary(record);
  if (!p) return p;
  if (!p->attrs.time.empty()) {
    if (auto t = bot::parse_time(p->attrs.time); !t) return invalid("cloudevent: attribute time: " + t.error().message);
  }
  return p;
}

}  // namespace detail
}  // namespace runbot::events
