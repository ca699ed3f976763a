#include "bot/message.h"

namespace runbot::bot {

const char* to_string(NoticeKind k) {
  switch (k) {
    case NoticeKind::reply: return "reply";
    case NoticeKind::status_card: return "status_card";
    case NoticeKind::requested: return "requested";
    case NoticeKind::queued: return "queued";
    case NoticeKind::progress: return "progress";
    case NoticeKind::ready: return "ready";
    case NoticeKind::failed: return "failed";
    case NoticeKind::updated: return "updated";
    case NoticeKind::ttl_warning: return "ttl_warning";
    case NoticeKind::extended: return "extended";
    case NoticeKind::expired: return "expired";
    case NoticeKind::deleted: return "deleted";
    case NoticeKind::suspended: return "suspended";
    case NoticeKind::resumed: return "resumed";
    case NoticeKind::interruption: return "interruption";
    case NoticeKind::recovered: return "recovered";
    case NoticeKind::warning_events: return "warning_events";
    case NoticeKind::budget_alert: return "budget_alert";
    case NoticeKind::confirmation: return "confirmation";
  }
  return "unknown";
}

std::string to_plain_text(const Message& m) {
  std::string out = m.title;
  auto line = [&out](const std::string& s) {
    if (!out.empty()) out += '\n';
    out += s;
  };
  if (!m.text.empty()) line(m.text);
  for (const auto& f : m.fields) line(f.label + ": " + f.value);
  for (const auto& c : m.code) line("    " + c);
  return out;
}

}  // namespace runbot::bot
