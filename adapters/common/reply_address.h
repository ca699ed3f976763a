#pragma once
// ReplyAddress: where an adapter sends the answer to a command when it does not ride in-band
// (bot::InboundMessage::reply_to, handed back in PostRequest::reply_to). The adapter writes it
// when the command arrives and reads it when the outbox sends the answer, possibly after a
// restart (it is kept in the outbox journal as JSON text). Pure; no I/O.
#include <string>

#include "bot/result.h"

namespace runbot::common {

struct ReplyAddress {
  enum class Via {
    response_url,  // the command's response URL (Slack, Mattermost): `url`, `type`
    post,          // a visible post in the channel, in `thread` (empty: top level)
    ephemeral,     // a message only `user` sees, in `thread`
  };
  Via via = Via::post;
  std::string url;
  std::string type;    // Slack's response_type for response_url answers ("ephemeral", "in_channel")
  std::string user;
  std::string thread;

  // A visible post can be looked for by its delivery id before it is sent again; the others
  // leave nothing to look for.
  bool findable() const { return via == Via::post; }
  std::string to_json() const;
  // invalid_argument for text that is not an address this function wrote.
  static bot::Result<ReplyAddress> parse(const std::string& text);
};

}  // namespace runbot::common
