// Block Kit rendering. The message is first turned into a flat list of blocks, each no larger than
// one section's limit; the list is then packed into payloads under Slack's per-message limits.
// Text is split on "atoms" (one code point, one entity such as &amp;, one <@U…> mention) so that a
// split never cuts an entity, a mention or a UTF-8 sequence, and prefers line breaks.
#include "adapters/slack/slack_renderer.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <utility>

#include "adapters/common/utf8.h"

namespace runbot::slack {
namespace {

using nlohmann::json;

// Shorter than Slack's limits where a status card must stay one payload (see render()).
constexpr std::size_t kCardValueChars = 500;
constexpr std::size_t kCardTextChars = 500;
constexpr std::size_t kMaxFieldLabelChars = 100;
// Room kept in every payload for the "part k of n" label of continuation payloads.
constexpr std::size_t kPartLabelTitleChars = 120;
constexpr std::size_t kPartLabelReserveChars = kPartLabelTitleChars + 120;  // text and JSON around it
// Confirmation dialog limits.

using common::char_count;
using common::is_continuation_byte;
using common::prefix_bytes;
using common::shorten;

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

bool is_blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; });
}

json plain_text(std::string text) { return {{"type", "plain_text"}, {"text", std::move(text)}, {"emoji", true}}; }
json mrkdwn(std::string text) { return {{"type", "mrkdwn"}, {"text", std::move(text)}}; }
json section(std::string text) { return {{"type", "section"}, {"text", mrkdwn(std::move(text))}}; }
json context(std::string text) { return {{"type", "context"}, {"elements", json::array({mrkdwn(std::move(text))})}}; }

// The smallest unit a split may not cut.
struct Atom {
  std::string out;  // as rendered in mrkdwn
  std::string raw;  // what it stands for in the message
  std::size_t chars = 0;
  bool newline = false;
};

std::vector<Atom> atomize(std::string_view raw, bool mentions) {
  std::vector<Atom> atoms;
  atoms.reserve(raw.size());
  auto add = [&atoms](std::string out, std::string_view r, bool newline = false) {
    const std::size_t chars = char_count(out);
    atoms.push_back({std::move(out), std::string(r), chars, newline});
  };
  for (std::size_t i = 0; i < raw.size();) {
    const char c = raw[i];
    if (c == '\n') {
      add("\n", "\n", true);
    } else if (c == '&') {
      add("&amp;", "&");
    } else if (c == '<') {
      add("&lt;", "<");
    } else if (c == '>') {
      add("&gt;", ">");
    } else {
      if (mentions && c == '@' && (i == 0 || !is_word_char(raw[i - 1]))) {
        std::size_t end = i + 1;
        while (end < raw.size() && is_word_char(raw[end])) ++end;
        const std::string_view id = raw.substr(i + 1, end - i - 1);
        if (is_slack_user_id(id)) {
          add("<@" + std::string(id) + ">", raw.substr(i, end - i));
          i = end;
          continue;
        }
      }
      std::size_t len = 1;
      while (i + len < raw.size() && is_continuation_byte(raw[i + len])) ++len;
      add(std::string(raw.substr(i, len)), raw.substr(i, len));
      i += len;
      continue;
    }
    ++i;
  }
  return atoms;
}

struct Chunk {
  std::string out;
  std::string raw;
};

// Splits into chunks of at most `limit` rendered characters, breaking after whole lines when it
// can and inside a line only when that line alone is too long. The newline a chunk is broken at is
// dropped, so chunks are whole lines: a blank line can become an empty chunk.
std::vector<Chunk> chunk(const std::vector<Atom>& atoms, std::size_t limit) {
  std::vector<Chunk> chunks;
  auto emit = [&](std::size_t from, std::size_t to) {
    Chunk c;
    for (std::size_t k = from; k < to; ++k) {
      c.out += atoms[k].out;
      c.raw += atoms[k].raw;
    }
    chunks.push_back(std::move(c));
  };
  const std::size_t n = atoms.size();
  std::size_t start = 0;
  while (start < n) {
    std::size_t chars = 0;
    std::size_t j = start;
    std::optional<std::size_t> last_newline;
    while (j < n && chars + atoms[j].chars <= limit) {
      if (atoms[j].newline) last_newline = j;
      chars += atoms[j].chars;
      ++j;
    }
    if (j == n) {
      emit(start, n);
      break;
    }
    if (last_newline) {
      emit(start, *last_newline);
      start = *last_newline + 1;
    } else {
      const std::size_t end = std::max(j, start + 1);  // an atom is far smaller than any limit
      emit(start, end);
      start = end;
    }
  }
  return chunks;
}

// One block with its share of the plain-text fallback.
struct Piece {
  json block;
  std::string plain;
};

const char* severity_emoji(bot::Severity s) {
  switch (s) {
    case bot::Severity::info: return "";
    case bot::Severity::success: return ":white_check_mark:";
    case bot::Severity::warning: return ":warning:";
    case bot::Severity::danger: return ":x:";
  }
  return "";
}

std::string indent_lines(std::string_view raw) {
  std::string out = "    ";
  for (char c : raw) {
    out += c;
    if (c == '\n') out += "    ";
  }
  return out;
}

void add_title(std::vector<Piece>& pieces, const bot::Message& m) {
  if (m.title.empty()) return;
  const bool card = m.kind == bot::NoticeKind::status_card;
  if (card && char_count(m.title) <= kMaxHeaderChars && m.title.find('\n') == std::string::npos) {
    // plain_text shows characters as they are: no escaping, and no mentions to resolve in a card title.
    pieces.push_back({{{"type", "header"}, {"text", plain_text(m.title)}}, m.title});
    return;
  }
  // Titles that begin with their own glyph (✔ ⚠ …) already say how serious they are.
  std::string prefix = static_cast<unsigned char>(m.title[0]) >= 0x80 ? "" : severity_emoji(m.severity);
  if (!prefix.empty()) prefix += ' ';
  bool first = true;
  for (auto& c : chunk(atomize(m.title, true), kMaxSectionTextChars - char_count(prefix) - 2)) {
    if (is_blank(c.raw)) continue;
    std::string text = (first ? prefix : "") + "*" + c.out + "*";
    first = false;
    pieces.push_back({section(std::move(text)), std::move(c.raw)});
  }
}

void add_text(std::vector<Piece>& pieces, const bot::Message& m) {
  if (m.text.empty()) return;
  const bool card = m.kind == bot::NoticeKind::status_card;
  const std::string text = card ? shorten(m.text, kCardTextChars) : m.text;
  for (auto& c : chunk(atomize(text, true), card ? kMaxContextTextChars : kMaxSectionTextChars)) {
    if (is_blank(c.raw)) continue;
    while (c.out.back() == '\n') c.out.pop_back();  // not blank, so something else remains
    while (c.raw.back() == '\n') c.raw.pop_back();
    // A card keeps its remark small, under the title.
    pieces.push_back({card ? context(std::move(c.out)) : section(std::move(c.out)), std::move(c.raw)});
  }
}

void add_fields(std::vector<Piece>& pieces, const bot::Message& m) {
  const bool card = m.kind == bot::NoticeKind::status_card;
  json fields = json::array();
  std::size_t chars = 0;
  std::string plain;
  auto flush = [&]() {
    if (fields.empty()) return;
    pieces.push_back({{{"type", "section"}, {"fields", std::move(fields)}}, std::move(plain)});
    fields = json::array();
    chars = 0;
    plain.clear();
  };
  for (const auto& f : m.fields) {
    const std::string value = card ? shorten(f.value, kCardValueChars) : f.value;
    bool first = true;
    // Labels are short by construction; bounding them keeps room for the value in every field.
    const std::string label = shorten(f.label, kMaxFieldLabelChars);
    auto label_for = [&label](bool head) {
      return label.empty() ? "" : "*" + escape_mrkdwn(head ? label : label + " (continued)") + "*\n";
    };
    const std::size_t limit = kMaxFieldTextChars - char_count(label_for(false));
    auto chunks = chunk(atomize(value, true), limit);
    if (chunks.empty()) chunks.push_back({});
    for (auto& c : chunks) {
      std::string text = label_for(first) + c.out;
      if (text.empty()) continue;
      const std::size_t n = char_count(text);
      if (fields.size() == kMaxFieldsPerSection || chars + n > kMaxSectionTextChars) flush();
      fields.push_back(mrkdwn(std::move(text)));
      chars += n;
      plain += (plain.empty() ? "" : "\n") + label + (first ? "" : " (continued)") + ": " + c.raw;
      first = false;
    }
  }
  flush();
}

void add_code(std::vector<Piece>& pieces, const bot::Message& m) {
  if (m.code.empty()) return;
  std::vector<Atom> atoms;
  for (const auto& line : m.code) {
    if (!atoms.empty()) atoms.push_back({"\n", "\n", 1, true});
    auto a = atomize(line, false);  // a preformatted block shows mentions literally anyway
    atoms.insert(atoms.end(), std::make_move_iterator(a.begin()), std::make_move_iterator(a.end()));
  }
  static constexpr std::string_view kOpen = "```\n";
  static constexpr std::string_view kClose = "\n```";
  for (auto& c : chunk(atoms, kMaxSectionTextChars - kOpen.size() - kClose.size())) {
    pieces.push_back({section(std::string(kOpen) + c.out + std::string(kClose)), indent_lines(c.raw)});
  }
}

// People to notify who are not already mentioned where Slack resolves mentions (code blocks show
// "@U…" literally), e.g. the owners listed in an interruption summary.
void add_mentions(std::vector<Piece>& pieces, const bot::Message& m) {
  std::string shown;
  for (const auto& p : pieces) shown += p.block.dump();
  std::string cc;
  std::vector<std::string> seen;
  for (const auto& u : m.mentions) {
    const std::string& id = u.str();
    if (id.empty() || std::find(seen.begin(), seen.end(), id) != seen.end()) continue;
    seen.push_back(id);
    if (is_slack_user_id(id) && shown.find("<@" + id + ">") != std::string::npos) continue;
    if (!is_slack_user_id(id) && shown.find("@" + id) != std::string::npos) continue;
    cc += " @" + id;
  }
  if (cc.empty()) return;
  for (auto& c : chunk(atomize("cc" + cc, true), kMaxContextTextChars)) pieces.push_back({context(std::move(c.out)), ""});
}

json button(const bot::Button& b) {
  json e = {{"type", "button"},
            {"action_id", b.action},
            {"text", plain_text(shorten(b.label.empty() ? b.action : b.label, kMaxButtonTextChars))}};
  if (!b.value.empty()) e["value"] = b.value;
  // Slack rejects the whole message for an over-long url; the address is in the text anyway.
  if (!b.url.empty() && char_count(b.url) <= kMaxButtonUrlChars) e["url"] = b.url;
  if (b.action == "open" || b.action == "extend" || b.action == "retry" || (b.action == "confirm" && b.value == "yes")) {
    e["style"] = "primary";
  } else if (b.action == "down") {
    // No Slack confirm dialog: the bot asks "yes/no" itself, the same on every platform.
    e["style"] = "danger";
  }
  return e;
}

void add_buttons(std::vector<Piece>& pieces, const bot::Message& m) {
  json elements = json::array();
  auto flush = [&]() {
    if (elements.empty()) return;
    pieces.push_back({{{"type", "actions"}, {"elements", std::move(elements)}}, ""});
    elements = json::array();
  };
  for (const auto& b : m.buttons) {
    const bool same_action = std::any_of(elements.begin(), elements.end(),
                                         [&b](const json& e) { return e["action_id"] == b.action; });
    if (same_action || elements.size() == kMaxActionsElements) flush();
    elements.push_back(button(b));
  }
  flush();
}

std::string fallback_text(std::string plain, const bot::Message& m) {
  if (is_blank(plain)) plain = std::string("runbot ") + bot::to_string(m.kind);
  return shorten(to_mrkdwn(plain), kMaxFallbackTextChars);
}

}  // namespace

bool is_slack_user_id(std::string_view id) {
  if (id.size() < 7 || id.size() > 21 || (id[0] != 'U' && id[0] != 'W')) return false;
  bool digit = false;
  for (char c : id) {
    if (c >= '0' && c <= '9') {
      digit = true;
    } else if (c < 'A' || c > 'Z') {
      return false;
    }
  }
  return digit;
}

std::string escape_mrkdwn(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string to_mrkdwn(std::string_view text) {
  std::string out;
  for (const auto& a : atomize(text, true)) out += a.out;
  return out;
}

std::vector<nlohmann::json> render(const bot::Message& m) {
  std::vector<Piece> pieces;
  add_title(pieces, m);
  add_text(pieces, m);
  add_fields(pieces, m);
  add_code(pieces, m);
  add_mentions(pieces, m);
  add_buttons(pieces, m);

  if (pieces.empty()) {
    std::string text = fallback_text(bot::to_plain_text(m), m);
    return {json{{"text", text}, {"blocks", json::array({section(text)})}}};
  }

  // Pack in order. Every payload keeps room for a "part k of n" label, so labelling the
  // continuations afterwards cannot push one over a limit.
  std::vector<std::vector<Piece>> parts(1);
  std::size_t chars = 0;
  for (auto& p : pieces) {
    // Slack's cumulative limit counts more than the text values (bolt-js #2867 was rejected at
    // 11 341 text characters), so a block costs its serialized length, containers included.
    const std::size_t cost = char_count(p.block.dump());
    const bool full = parts.back().size() + 1 > kMaxBlocksPerPayload - 1 ||
                      chars + cost > kMaxBlockCharsPerPayload - kPartLabelReserveChars;
    if (!parts.back().empty() && full) {
      parts.emplace_back();
      chars = 0;
    }
    chars += cost;
    parts.back().push_back(std::move(p));
  }

  std::vector<json> payloads;
  if (parts.size() == 1) {
    json blocks = json::array();
    for (auto& p : parts.front()) blocks.push_back(std::move(p.block));
    payloads.push_back({{"text", fallback_text(bot::to_plain_text(m), m)}, {"blocks", std::move(blocks)}});
    return payloads;
  }
  const std::string short_title = shorten(m.title.empty() ? bot::to_string(m.kind) : m.title, kPartLabelTitleChars);
  for (std::size_t k = 0; k < parts.size(); ++k) {
    const std::string label =
        short_title + " (part " + std::to_string(k + 1) + " of " + std::to_string(parts.size()) + ")";
    json blocks = json::array();
    std::string plain;
    if (k > 0) {
      blocks.push_back(context("_" + to_mrkdwn(label) + "_"));
      plain = label;
    }
    for (auto& p : parts[k]) {
      if (!p.plain.empty()) plain += (plain.empty() ? "" : "\n") + p.plain;
      blocks.push_back(std::move(p.block));
    }
    payloads.push_back({{"text", fallback_text(std::move(plain), m)}, {"blocks", std::move(blocks)}});
  }
  return payloads;
}

}  // namespace runbot::slack
