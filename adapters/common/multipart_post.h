#pragma once
// Helpers the chat adapters share for sending one logical message as several platform posts.
// Header-only and free of Asio: the adapters pass in the platform calls as callbacks. Used on the
// adapter's executor only.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bot/chat_adapter.h"

namespace runbot::common {

// Runs steps one after another; each step calls `next` when it is done.
struct Sequence : std::enable_shared_from_this<Sequence> {
  using Step = std::function<void(std::function<void()> next)>;
  std::vector<Step> steps;
  std::size_t next = 0;
  void run() {
    if (next >= steps.size()) return;
    auto self = shared_from_this();
    auto step = std::move(steps[next++]);
    step([self] { self->run(); });
  }
};

// One outbound message in `count` parts, sent in order: part 0 edits `edit` when set, else is
// created in `thread` (empty = a new thread root); later parts reply in `thread`, or in the thread
// part 0 started. `done` gets part 0's id (the thread root for a new thread). Part 0 failing fails
// the message; a later part failing is reported to `later_failed` and the message still counts as
// posted, since part 0 is already visible and resending it would duplicate it.
class MultipartPost : public std::enable_shared_from_this<MultipartPost> {
 public:
  using Callback = std::function<void(bot::Result<std::string>)>;
  struct Calls {
    std::function<void(const std::string& thread, std::size_t part, Callback)> create;
    std::function<void(const std::string& id, std::size_t part, Callback)> update;
    std::function<void(const bot::Error&)> failed;                       // part 0's error
    std::function<void(std::size_t part, const bot::Error&)> later_failed;
    std::function<void()> delivered;                                     // every part went out
  };

  static void start(std::size_t count, std::string thread, std::string edit, Calls calls,
                    std::function<void(bot::Result<bot::PostResult>)> done) {
    auto post = std::shared_ptr<MultipartPost>(new MultipartPost(count, std::move(thread), std::move(edit),
                                                                 std::move(calls), std::move(done)));
    post->step();
  }

 private:
  MultipartPost(std::size_t count, std::string thread, std::string edit, Calls calls,
                std::function<void(bot::Result<bot::PostResult>)> done)
      : count_(count), thread_(std::move(thread)), edit_(std::move(edit)), calls_(std::move(calls)), done_(std::move(done)) {}

  void step() {
    auto self = shared_from_this();
    Callback next = [self](bot::Result<std::string> r) { self->finished(std::move(r)); };
    if (index_ == 0 && !edit_.empty()) return calls_.update(edit_, 0, std::move(next));
    std::string thread = thread_;
    if (index_ > 0 && thread.empty()) thread = root_;
    calls_.create(thread, index_, std::move(next));
  }

  void finished(bot::Result<std::string> r) {
    if (!r) {
      if (index_ == 0) {
        if (calls_.failed) calls_.failed(r.error());
        return done_(r.error());
      }
      if (calls_.later_failed) calls_.later_failed(index_, r.error());
      return done_(bot::PostResult{root_});
    }
    if (index_ == 0) root_ = edit_.empty() ? *r : edit_;
    if (++index_ < count_) return step();
    if (calls_.delivered) calls_.delivered();
    done_(bot::PostResult{root_});
  }

  std::size_t count_;
  std::string thread_;
  std::string edit_;
  Calls calls_;
  std::function<void(bot::Result<bot::PostResult>)> done_;
  std::size_t index_ = 0;
  std::string root_;
};

}  // namespace runbot::common
