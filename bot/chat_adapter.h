#pragma once
// ChatAdapter: one chat platform (console, Slack, Mattermost, Teams). Inbound it delivers typed
// messages to the bot; outbound it posts, replies in threads and edits the status card.
#include <functional>
#include <string>
#include <vector>

#include "bot/message.h"
#include "bot/result.h"

namespace runbot::bot {

// Something a person typed or clicked.
struct InboundMessage {
  std::string platform;    // "console", "slack", ...
  ChannelId channel;
  UserId user;
  std::string user_name;   // display name, for replies
  std::string user_email;  // when the platform tells it (for role bindings by e-mail)
  std::vector<std::string> user_groups;  // platform groups the user is in, when known
  // Why the adapter could not find out the user's e-mail address or groups (empty when it did,
  // or did not need to): policy then decides from the other bindings and says so in a denial.
  std::string identity_error;
  std::string text;        // the command text without "/ephemeral" or the bot mention
  std::string thread;      // thread the message was in, if any
  bool is_button = false;  // a button click: text is the equivalent command
};

// Where an outbound message goes. An empty `thread` starts a new thread (the status card);
// a non-empty `edit` replaces that message in place.
struct PostRequest {
  ChannelId channel;
  std::string thread;
  std::string edit;
  EnvId env;               // for logs and coalescing; may be empty
  Message message;
  // Stable id of this message across restarts (the outbox journal's). An adapter that can attach
  // it to the platform message (Slack message metadata) does, so a resend can be recognised.
  std::string delivery_id;
  // The message was in flight when runbot stopped: it may already be there. An adapter that can
  // look (by delivery_id) reports the existing message instead of posting it again.
  bool maybe_delivered = false;
};

struct PostResult {
  std::string message_id;  // platform id of the posted message (thread root for cards)
  // A maybe_delivered message was found already posted (message_id is that one): nothing new
  // was sent.
  bool already_there = false;
};

class ChatAdapter {
 public:
  using InboundHandler = std::function<void(const InboundMessage&)>;
  virtual ~ChatAdapter() = default;

  // "console", "slack", "mattermost", "teams".
  virtual std::string platform() const = 0;
  // Starts receiving; `handler` runs on the bot's executor for each inbound message.
  virtual void start(InboundHandler handler) = 0;
  // Posts, replies or edits. `done` runs once on the bot's executor with the message id, or an
  // Error (rate_limited with a retryable code, unauthorized and invalid_argument not retryable).
  virtual void post(PostRequest request, std::function<void(Result<PostResult>)> done) = 0;
  // Answers a command right away (Slack's ack payload, an ephemeral reply, a console line).
  virtual void reply(const InboundMessage& to, Message message) = 0;
  // Stops reading; pending posts may still complete.
  virtual void stop() = 0;
  // Whether the adapter is connected and able to deliver.
  virtual bool healthy() const = 0;
};

}  // namespace runbot::bot
