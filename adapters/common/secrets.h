#pragma once
// Shared secrets on inbound requests: HMAC-SHA256 signatures (GitHub webhooks, Mattermost button
// URLs) and constant-time comparison of what a peer sent with what it should have sent (also for
// plain tokens: the Mattermost slash token, the NTH ingest secret). OpenSSL 3; pure, no I/O.
#include <string>
#include <string_view>

namespace runbot::common {

// HMAC-SHA256 of `data` under `secret`, as lower-case hex (64 characters).
std::string hmac_sha256_hex(std::string_view secret, std::string_view data);

// Whether `a` and `b` are equal, in time that depends only on their lengths (which are not secret).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace runbot::common
