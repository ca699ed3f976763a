#pragma once
// ConsoleAdapter: a terminal chat for the embedded default and for tests. Lines typed (or piped)
// on the input are commands from one user in channel "console"; everything runbot says is printed,
// thread messages prefixed with the environment id and channel messages with the channel.
//
// Console-only directives, for scripted demos: lines starting with '#' are comments, and
// `wait <duration>` pauses reading for that long in the bot's (possibly sped-up) clock.
//
// Threading: the input is read by a helper thread that only posts lines to the io_context;
// everything else runs on the io_context thread. Owned by the composition root.
#include <deque>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bot/chat_adapter.h"
#include "bot/clock.h"

namespace boost::asio {
class io_context;
}

namespace runbot::console {

struct ConsoleSettings {
  std::string user = "dev";
  std::string email;                // the user's e-mail and groups, for role bindings
  std::vector<std::string> groups;  // (config console.email / console.groups)
  std::string channel = "console";
  bool interactive = false;   // a terminal: show a prompt
  bool timestamps = true;     // prefix lines with the clock's HH:MM:SS
  bool show_card_updates = false;  // print every status card edit (noisy; off by default)
};

class ConsoleAdapter final : public bot::ChatAdapter {
 public:
  // `in` may be null (output only). `out` must outlive the adapter.
  ConsoleAdapter(boost::asio::io_context& io, ConsoleSettings settings, bot::Clock& clock, std::ostream& out,
                 std::istream* in);
  ~ConsoleAdapter() override;

  std::string platform() const override { return "console"; }
  void start(InboundHandler handler) override;
  void post(bot::PostRequest request, std::function<void(bot::Result<bot::PostResult>)> done) override;
  // The console prints every answer at once: always in-band.
  bool answer_in_band(const bot::InboundMessage& to, const bot::Message& message) override;
  void stop() override;
  bool healthy() const override { return true; }

  // Handles one line as if typed (tests, and the reader thread through the io_context).
  void feed_line(const std::string& line);
  // Called once, on the io_context, after the input ended and every line was handled.
  void on_input_end(std::function<void()> cb) { on_end_ = std::move(cb); }
  bool input_done() const { return input_ended_ && lines_.empty() && !waiting_; }
  std::uint64_t printed_messages() const { return printed_; }

 private:
  void pump();
  void print(const std::vector<std::string>& lines);
  std::string stamp() const;

  boost::asio::io_context& io_;
  ConsoleSettings settings_;
  bot::Clock& clock_;
  std::ostream& out_;
  std::istream* in_;
  InboundHandler handler_;
  std::function<void()> on_end_;
  std::deque<std::string> lines_;
  bool waiting_ = false;
  bool input_ended_ = false;
  bool stopped_ = false;
  bot::TimerId wait_timer_ = 0;
  std::uint64_t next_id_ = 1;
  std::uint64_t printed_ = 0;
  std::thread reader_;
  std::shared_ptr<bool> alive_;
};

}  // namespace runbot::console
