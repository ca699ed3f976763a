#include "adapters/common/url.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace runbot::common {

std::string Url::authority() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

bot::Result<Url> parse_url(std::string_view text) {
  auto bad = [](const char* why) { return bot::make_error(bot::Errc::invalid_argument, std::string("bad url: ") + why); };
  const auto sep = text.find("://");
  if (sep == std::string_view::npos) return bad("no scheme");
  Url url;
  url.scheme = std::string(text.substr(0, sep));
  std::transform(url.scheme.begin(), url.scheme.end(), url.scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::uint16_t default_port = 0;
  if (url.scheme == "https" || url.scheme == "wss") {
    default_port = 443;
  } else if (url.scheme == "http" || url.scheme == "ws") {
    default_port = 80;
  } else {
    return bad("unsupported scheme");
  }
  std::string_view rest = text.substr(sep + 3);
  const auto path_at = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, path_at);
  std::string_view target = path_at == std::string_view::npos ? std::string_view{} : rest.substr(path_at);
  if (target.find('#') != std::string_view::npos) return bad("fragment not allowed");
  if (authority.find('@') != std::string_view::npos) return bad("userinfo not allowed");
  if (authority.empty()) return bad("no host");
  std::string_view port_text;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 literal");
    url.host = std::string(authority.substr(1, close - 1));
    const auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("junk after IPv6 literal");
      port_text = after.substr(1);
    }
  } else {
    const auto colon = authority.rfind(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (url.host.empty()) return bad("no host");
  url.port = default_port;
  if (!port_text.empty()) {
    unsigned value = 0;
    const auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc{} || p != port_text.data() + port_text.size() || value == 0 || value > 65535) {
      return bad("bad port");
    }
    url.port = static_cast<std::uint16_t>(value);
  }
  url.target = target.empty() ? "/" : std::string(target);
  if (url.target.front() == '?') url.target.insert(0, "/");
  return url;
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  auto encode = [&out](const std::string& s) {
    for (unsigned char c : s) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
        out += static_cast<char>(c);
      } else {
        out += '%';
        out += hex[c >> 4];
        out += hex[c & 15];
      }
    }
  };
  for (const auto& [name, value] : fields) {
    if (!out.empty()) out += '&';
    encode(name);
    out += '=';
    encode(value);
  }
  return out;
}

}  // namespace runbot::common
