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
  // Where an answer to this message goes when it cannot ride in-band: the adapter's own address
  // (e.g. Slack {"via":"ephemeral","user":…,"thread":…}), opaque to the bot, kept in the outbox
  // journal and handed back in PostRequest::reply_to.
  std::string reply_to;
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
  // An answer to a command (InboundMessage::reply_to): the adapter addresses it from this (an
  // ephemeral post, a response_url, a reply in the asker's thread) instead of `thread`/`edit`.
  std::string reply_to;
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
  // Posts, replies, edits or sends an answer (reply_to set). `done` runs once on the bot's
  // executor with the message id, or an Error (rate_limited, unavailable and timeout are
  // retryable and are retried by the outbox with the same delivery_id; unauthorized and
  // invalid_argument are not). A message sent in several parts resumes at the first part not yet
  // delivered when it is retried with the same delivery_id.
  virtual void post(PostRequest request, std::function<void(Result<PostResult>)> done) = 0;
  // Takes `message` as the in-band answer to `to` (Slack's ack payload, Mattermost's slash-command
  // response body, a Teams invoke response, a console line) when `to` is being handled right now
  // and the platform carries answers that way. Returns false when the answer must be sent as a
  // message instead (or as well): the caller then queues it in the outbox, which calls post()
  // with PostRequest::reply_to = to.reply_to. Runs inside the inbound handler; never does I/O.
  virtual bool answer_in_band(const InboundMessage& to, const Message& message) = 0;
  // Stops reading; pending posts may still complete.
  virtual void stop() = 0;
  // Whether the adapter is connected and able to deliver.
  virtual bool healthy() const = 0;
};

}  // namespace runbot::bot
