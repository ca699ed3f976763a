// Adaptive Card rendering. The card is built under a set of cuts (how many code lines, how much
// text, how many fields and how long their values may be); when the serialized activity is too
// large the cuts are tightened step by step, oldest log lines first, until it fits.
#include "adapters/teams/teams_renderer.h"

#include <algorithm>
#include <cctype>
#include <limits>
#include <optional>
#include <vector>

#include "adapters/common/utf8.h"

namespace runbot::teams {
namespace {

using nlohmann::json;

constexpr std::size_t kAll = std::numeric_limits<std::size_t>::max();
constexpr std::size_t kMaxTitleChars = 500;
constexpr std::size_t kMaxCodeLineChars = 1000;
constexpr std::size_t kMaxLabelChars = 100;
constexpr std::size_t kMaxSummaryChars = 150;
constexpr std::size_t kMinTextChars = 200;
constexpr std::size_t kMinFieldChars = 100;
constexpr const char* kTooLong = "too long for a Teams message";

using common::char_count;
using common::is_continuation_byte;
using common::prefix_bytes;
using common::shorten;

std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  for (;;) {
    const auto nl = text.find('\n', pos);
    out.emplace_back(
        text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return out;
}

bool is_blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; });
}

bool is_id_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == ':' || c == '-' ||
         c == '.';
}

const char* color_of(bot::Severity s) {
  switch (s) {
    case bot::Severity::success:
      return "Good";
    case bot::Severity::warning:
      return "Warning";
    case bot::Severity::danger:
      return "Attention";
    case bot::Severity::info:
      break;
  }
  return "Default";
}

const char* style_of(const bot::Button& b) {
  if (b.action == "down") return "destructive";
  if (b.action == "open" || b.action == "extend" || b.action == "retry" || b.action == "approve" ||
      (b.action == "confirm" && b.value == "yes")) {
    return "positive";
  }
  return nullptr;
}

struct Cuts {
  std::size_t code_lines = kAll;  // the last N code lines are kept
  std::size_t text_chars = kAll;
  std::size_t field_chars = kAll;
  std::size_t fields = kAll;
};

// Mentions found in the message: "@<id>" → "<at>Name</at>" for Teams user ids.
class Mentions {
 public:
  Mentions(const bot::Message& m, const RenderOptions& options) {
    for (const auto& u : m.mentions) {
      const std::string& id = u.str();
      if (!is_teams_user_id(id) ||
          std::any_of(people_.begin(), people_.end(), [&](const auto& p) { return p.id == id; })) {
        continue;
      }
      std::string name = id;
      if (auto it = options.names.find(id); it != options.names.end() && !is_blank(it->second))
        name = it->second;
      // The name sits between tags; angle brackets in it would end them early.
      name.erase(
          std::remove_if(name.begin(), name.end(), [](char c) { return c == '<' || c == '>'; }),
          name.end());
      people_.push_back({id, std::move(name), false});
    }
  }

  std::string apply(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size();) {
      if (text[i] == '@' && (i == 0 || !is_id_char(text[i - 1]))) {
        std::size_t end = i + 1;
        while (end < text.size() && is_id_char(text[end])) ++end;
        // Trailing punctuation ("@29:abc, …" or "…@29:abc.") is not part of the id.
        while (end > i + 1 &&
               (text[end - 1] == '.' || text[end - 1] == ':' || text[end - 1] == '-'))
          --end;
        const std::string_view id = text.substr(i + 1, end - i - 1);
        auto it = std::find_if(people_.begin(), people_.end(),
                               [&](const Person& p) { return p.id == id; });
        if (it != people_.end()) {
          it->used = true;
          out += tag(*it);
          i = end;
          continue;
        }
      }
      out += text[i++];
    }
    return out;
  }

  // "cc <at>…</at> …" for the people not named anywhere yet; empty when there are none.
  std::string cc() {
    std::string out;
    for (auto& p : people_) {
      if (p.used) continue;
      p.used = true;
      out += " " + tag(p);
    }
    return out.empty() ? out : "cc" + out;
  }

  json entities() const {
    json out = json::array();
    for (const auto& p : people_) {
      if (!p.used) continue;
      out.push_back(
          {{"type", "mention"}, {"text", tag(p)}, {"mentioned", {{"id", p.id}, {"name", p.name}}}});
    }
    return out;
  }

 private:
  struct Person {
    std::string id;
    std::string name;
    bool used = false;
  };
  static std::string tag(const Person& p) { return "<at>" + p.name + "</at>"; }
  std::vector<Person> people_;
};

json text_block(std::string text) {
  return {{"type", "TextBlock"}, {"text", std::move(text)}, {"wrap", true}};
}

json note_block(std::string text) {
  json b = text_block(std::move(text));
  b["isSubtle"] = true;
  b["size"] = "Small";
  b["spacing"] = "Small";
  return b;
}

json action_of(const bot::Button& b) {
  const std::string title = shorten(b.label.empty() ? b.action : b.label, kMaxLabelChars);
  json a;
  if (b.action == "open" && !b.url.empty()) {
    a = {{"type", "Action.OpenUrl"}, {"title", title}, {"url", b.url}};
  } else {
    const json data = {{"action", b.action}, {"value", b.value}};
    a = {{"type", "Action.Execute"},
         {"title", title},
         {"verb", b.action},
         {"data", data},
         {"fallback", {{"type", "Action.Submit"}, {"title", title}, {"data", data}}}};
  }
  if (const char* style = style_of(b)) a["style"] = style;
  return a;
}

json build(const bot::Message& m, const RenderOptions& options, const Cuts& cuts) {
  Mentions mentions(m, options);
  json body = json::array();

  if (!m.title.empty()) {
    json title = text_block(mentions.apply(shorten(m.title, kMaxTitleChars)));
    title["weight"] = "Bolder";
    title["size"] = "Medium";
    title["color"] = color_of(m.severity);
    body.push_back(std::move(title));
  }

  if (!m.text.empty()) {
    const bool cut = cuts.text_chars != kAll && char_count(m.text) > cuts.text_chars;
    const std::string text = cut ? shorten(m.text, cuts.text_chars) : m.text;
    bool gap = false;
    for (const auto& line : lines_of(text)) {
      if (is_blank(line)) {
        gap = true;
        continue;
      }
      json b = text_block(mentions.apply(line));
      b["spacing"] = gap ? "Medium" : "Small";
      gap = false;
      body.push_back(std::move(b));
    }
    if (cut) body.push_back(note_block(std::string("(text shortened: ") + kTooLong + ")"));
  }

  if (!m.fields.empty() && cuts.fields > 0) {
    json facts = json::array();
    const std::size_t n = std::min(m.fields.size(), cuts.fields);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& f = m.fields[i];
      facts.push_back({{"title", shorten(f.label, kMaxLabelChars)},
                       {"value", shorten(f.value, cuts.field_chars)}});
    }
    body.push_back({{"type", "FactSet"}, {"facts", std::move(facts)}});
  }
  if (m.fields.size() > cuts.fields) {
    body.push_back(note_block("(" + std::to_string(m.fields.size() - cuts.fields) +
                              " more fields not shown: " + kTooLong + ")"));
  }

  if (!m.code.empty()) {
    const std::size_t keep = std::min(m.code.size(), cuts.code_lines);
    const std::size_t dropped = m.code.size() - keep;
    json items = json::array();
    if (dropped > 0) {
      items.push_back(note_block("… " + std::to_string(dropped) + " earlier line" +
                                 (dropped == 1 ? "" : "s") + " not shown: " + kTooLong));
    }
    for (std::size_t i = dropped; i < m.code.size(); ++i) {
      // A blank TextBlock collapses; a no-break space keeps the empty line visible.
      const std::string& line = m.code[i];
      json b = text_block(is_blank(line) ? "\u00a0" : shorten(line, kMaxCodeLineChars));
      b["fontType"] = "Monospace";
      b["size"] = "Small";
      b["spacing"] = "None";
      items.push_back(std::move(b));
    }
    body.push_back({{"type", "Container"}, {"style", "emphasis"}, {"items", std::move(items)}});
  }

  if (std::string cc = mentions.cc(); !cc.empty()) body.push_back(note_block(std::move(cc)));

  if (body.empty()) body.push_back(text_block(std::string("runbot ") + bot::to_string(m.kind)));

  json card = {{"type", "AdaptiveCard"},
               {"$schema", "http://adaptivecards.io/schemas/adaptive-card.json"},
               {"version", "1.5"},
               {"body", std::move(body)}};
  json actions = json::array();
  for (const auto& b : m.buttons) actions.push_back(action_of(b));
  if (!actions.empty()) card["actions"] = std::move(actions);
  json msteams = {{"width", "Full"}};
  if (json entities = mentions.entities(); !entities.empty())
    msteams["entities"] = std::move(entities);
  card["msteams"] = std::move(msteams);

  std::string summary = m.title;
  if (is_blank(summary)) summary = lines_of(bot::to_plain_text(m)).front();
  if (is_blank(summary)) summary = std::string("runbot ") + bot::to_string(m.kind);

  return {
      {"type", "message"},
      {"summary", shorten(summary, kMaxSummaryChars)},
      {"attachments",
       json::array({{{"contentType", kAdaptiveCardContentType}, {"content", std::move(card)}}})}};
}

std::size_t size_of(const json& activity) {
  return activity.dump(-1, ' ', false, json::error_handler_t::replace).size();
}

// One step tighter, in the order a reader loses least; false when nothing is left to cut.
bool tighten(const bot::Message& m, Cuts& cuts) {
  if (!m.code.empty() && cuts.code_lines > 0) {
    cuts.code_lines = std::min(cuts.code_lines, m.code.size()) / 2;
    return true;
  }
  const std::size_t text = char_count(m.text);
  if (std::min(cuts.text_chars, text) > kMinTextChars) {
    cuts.text_chars = std::min(cuts.text_chars, text) / 2;
    return true;
  }
  std::size_t longest = 0;
  for (const auto& f : m.fields) longest = std::max(longest, char_count(f.value));
  if (std::min(cuts.field_chars, longest) > kMinFieldChars) {
    cuts.field_chars = std::min(cuts.field_chars, longest) / 2;
    return true;
  }
  if (!m.fields.empty() && cuts.fields > 0) {
    cuts.fields = std::min(cuts.fields, m.fields.size()) / 2;
    return true;
  }
  if (cuts.text_chars > 0 && text > 0) {
    cuts.text_chars = 0;
    return true;
  }
  return false;
}

}  // namespace

bool is_teams_user_id(std::string_view id) {
  const bool prefixed = id.rfind("29:", 0) == 0 || id.rfind("8:orgid:", 0) == 0;
  if (!prefixed || id.size() < 5 || id.size() > 200) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return is_id_char(c); });
}

json render(const bot::Message& m, const RenderOptions& options) {
  Cuts cuts;
  json activity = build(m, options, cuts);
  if (size_of(activity) <= options.max_bytes) return activity;
  if (!m.code.empty()) {
    // As many of the newest log lines as fit: the largest `keep` whose card is small enough.
    std::size_t lo = 0;
    std::size_t hi = m.code.size();
    std::optional<json> best;
    while (lo < hi) {
      cuts.code_lines = lo + (hi - lo + 1) / 2;
      json candidate = build(m, options, cuts);
      if (size_of(candidate) <= options.max_bytes) {
        lo = cuts.code_lines;
        best = std::move(candidate);
      } else {
        hi = cuts.code_lines - 1;
      }
    }
    if (best) return *best;
    cuts.code_lines = 0;
    activity = build(m, options, cuts);
  }
  while (size_of(activity) > options.max_bytes && tighten(m, cuts))
    activity = build(m, options, cuts);
  return activity;
}

std::string render_plain(const bot::Message& m, std::size_t max_chars) {
  std::string text = bot::to_plain_text(m);
  if (is_blank(text)) text = std::string("runbot ") + bot::to_string(m.kind);
  return shorten(text, max_chars);
}

}  // namespace runbot::teams
