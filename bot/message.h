#pragma once
// The platform-neutral message model. The announcer produces it; each adapter's renderer turns it
// into platform JSON (or console text). Renderers are pure functions of it.
#include <optional>
#include <string>
#include <vector>

#include "bot/model.h"

namespace runbot::bot {

enum class NoticeKind {
  reply,           // an answer to a command
  status_card,     // the first message of an environment's thread, edited in place
  requested,
  queued,
  progress,
  ready,
  failed,
  updated,
  ttl_warning,
  extended,
  expired,
  deleted,
  suspended,
  resumed,
  interruption,
  recovered,
  warning_events,
  budget_alert,
  confirmation,
};
const char* to_string(NoticeKind k);

enum class Severity { info, success, warning, danger };

struct Button {
  std::string label;   // "Extend 4h"
  std::string action;  // "extend", "down", "open", "retry", "let_expire"
  std::string value;   // action argument, e.g. "front-end-pr-123 4h"
  std::string url;     // for link buttons ("open")
  bool operator==(const Button&) const = default;
};

struct Field {
  std::string label;
  std::string value;
  bool operator==(const Field&) const = default;
};

struct Message {
  NoticeKind kind = NoticeKind::reply;
  Severity severity = Severity::info;
  std::string title;                 // one line, plain text
  std::string text;                  // body; may contain several lines
  std::vector<Field> fields;
  std::vector<std::string> code;     // preformatted lines (log tail, tables)
  std::vector<Button> buttons;
  std::vector<UserId> mentions;      // users to notify (owner on interruptions)
  bool operator==(const Message&) const = default;
};

// Plain text of a message: title, text, fields as "label: value", code lines indented. Every
// renderer's fallback; also what the console prints.
std::string to_plain_text(const Message& m);

}  // namespace runbot::bot
