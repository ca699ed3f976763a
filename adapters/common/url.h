#pragma once
// Url: the parts of an absolute http(s)/ws(s) URL the clients need. Pure; no I/O.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bot/result.h"

namespace runbot::common {

struct Url {
  std::string scheme;   // "https", "http", "wss", "ws" (lower-case)
  std::string host;     // "slack.com", "127.0.0.1" (IPv6 without brackets)
  std::uint16_t port = 0;  // explicit, or the scheme's default
  std::string target;   // path and query, at least "/"
  bool secure() const { return scheme == "https" || scheme == "wss"; }
  // "host:port", the key for connection reuse.
  std::string authority() const;
};

// Parses "scheme://host[:port][/path][?query]". Userinfo and fragments are refused; errors are
// invalid_argument with a reason (the URL itself is not repeated: it may carry a ticket).
bot::Result<Url> parse_url(std::string_view text);

// application/x-www-form-urlencoded: "a=1&b=x%2Fy" (unreserved characters kept, space as %20).
std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace runbot::common
