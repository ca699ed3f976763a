#include "adapters/console/console_adapter.h"

#include <ctime>
#include <istream>
#include <ostream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "adapters/console/console_renderer.h"

namespace runbot::console {

ConsoleAdapter::ConsoleAdapter(boost::asio::io_context& io, ConsoleSettings settings, bot::Clock& clock,
                               std::ostream& out, std::istream* in)
    : io_(io), settings_(std::move(settings)), clock_(clock), out_(out), in_(in), alive_(std::make_shared<bool>(true)) {}

ConsoleAdapter::~ConsoleAdapter() {
  stop();
  alive_.reset();
  // The reader may be blocked on a terminal; it only touches the io_context, checked by `alive_`.
  if (reader_.joinable()) reader_.detach();
}

void ConsoleAdapter::start(InboundHandler handler) {
  handler_ = std::move(handler);
  if (!in_) return;
  if (settings_.interactive) {
    out_ << "runbot console — you are @" << settings_.user << ". Type `help`, Ctrl-D to quit.\n> " << std::flush;
  }
  std::weak_ptr<bool> alive = alive_;
  reader_ = std::thread([this, alive] {
    std::string line;
    while (std::getline(*in_, line)) {
      boost::asio::post(io_, [this, alive, line] {
        if (alive.expired()) return;
        lines_.push_back(line);
        pump();
      });
    }
    boost::asio::post(io_, [this, alive] {
      if (alive.expired()) return;
      input_ended_ = true;
      pump();
    });
  });
}

void ConsoleAdapter::stop() {
  stopped_ = true;
  if (wait_timer_) clock_.cancel(wait_timer_);
  wait_timer_ = 0;
}

void ConsoleAdapter::pump() {
  while (!waiting_ && !lines_.empty() && !stopped_) {
    std::string line = std::move(lines_.front());
    lines_.pop_front();
    feed_line(line);
  }
  if (input_ended_ && lines_.empty() && !waiting_ && on_end_) {
    auto cb = std::move(on_end_);
    on_end_ = nullptr;
    cb();
  }
}

void ConsoleAdapter::feed_line(const std::string& raw) {
  auto b = raw.find_first_not_of(" \t\r");
  if (b == std::string::npos || raw[b] == '#') return;
  std::string line = raw.substr(b);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  if (line.rfind("wait ", 0) == 0 || line == "wait") {
    auto d = bot::parse_duration(line.size() > 5 ? line.substr(5) : "");
    if (!d) {
      print({stamp() + "runbot › wait: " + d.error().message});
      return;
    }
    if (!settings_.interactive) print({stamp() + "… waiting " + bot::format_duration(*d)});
    waiting_ = true;
    wait_timer_ = clock_.call_after(*d, [this] {
      wait_timer_ = 0;
      waiting_ = false;
      pump();
    });
    return;
  }
  if (!settings_.interactive) print({stamp() + "@" + settings_.user + " › " + line});
  if (!handler_) return;
  bot::InboundMessage msg;
  msg.platform = "console";
  msg.channel = bot::ChannelId{settings_.channel};
  msg.user = bot::UserId{settings_.user};
  msg.user_name = settings_.user;
  msg.user_email = settings_.email;
  msg.user_groups = settings_.groups;
  msg.text = line;
  handler_(msg);
}

std::string ConsoleAdapter::stamp() const {
  if (!settings_.timestamps) return "";
  auto t = std::chrono::floor<std::chrono::seconds>(clock_.now());
  std::time_t tt = t.time_since_epoch().count();
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%H:%M:%S ", &tm);
  return buf;
}

void ConsoleAdapter::print(const std::vector<std::string>& lines) {
  for (const auto& l : lines) out_ << l << '\n';
  if (settings_.interactive) out_ << "> ";
  out_ << std::flush;
}

void ConsoleAdapter::post(bot::PostRequest request, std::function<void(bot::Result<bot::PostResult>)> done) {
  std::string id;
  bool is_card_edit = !request.edit.empty();
  bool is_new_card = request.message.kind == bot::NoticeKind::status_card && request.edit.empty();
  if (is_card_edit) {
    id = request.edit;
  } else {
    id = "console-" + std::to_string(next_id_++);
  }
  if (!is_card_edit || settings_.show_card_updates) {
    std::string where = request.env.empty() ? "#" + request.channel.str() : request.env.str();
    if (request.channel.str() != settings_.channel && !request.env.empty()) where += " #" + request.channel.str();
    std::string prefix = stamp() + "[" + where + "] ";
    bot::Message m = request.message;
    if (is_new_card) m.title = "── thread " + request.env.str() + " ── " + m.title;
    if (is_new_card) {
      // A new thread: show its title line only; the card's details are what `describe` shows.
      print({prefix + m.title});
    } else {
      print(render(m, prefix));
    }
    ++printed_;
  }
  boost::asio::post(io_, [done = std::move(done), id, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    done(bot::PostResult{id});
  });
}

bool ConsoleAdapter::answer_in_band(const bot::InboundMessage&, const bot::Message& message) {
  print(render(message, stamp() + "runbot › "));
  ++printed_;
  return true;
}

}  // namespace runbot::console
