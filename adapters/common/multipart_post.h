#pragma once
// Helpers the chat adapters share for sending one logical message as several platform posts.
// Header-only and free of Asio: the adapters pass in the platform calls as callbacks. Used on the
// adapter's executor only.
#include <cstddef>
#include <deque>
#include <map>
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

// What a message sent in parts has delivered so far, by delivery id, so that a retry of the same
// message (the outbox retries with the same delivery_id) resumes at the first part not yet
// delivered instead of posting part 0 again. Bounded: the oldest entries are forgotten first.
class PartProgress {
 public:
  struct Entry {
    std::size_t next = 0;  // the first part not delivered yet
    std::string root;      // part 0's id
  };
  explicit PartProgress(std::size_t capacity = 4096) : capacity_(capacity == 0 ? 1 : capacity) {}
  // The progress of `delivery` (next == 0: nothing delivered, or not remembered).
  Entry get(const std::string& delivery) const {
    auto it = entries_.find(delivery);
    return it == entries_.end() ? Entry{} : it->second;
  }
  void set(const std::string& delivery, Entry e) {
    if (delivery.empty()) return;
    if (entries_.insert_or_assign(delivery, std::move(e)).second) order_.push_back(delivery);
    // order_ also holds forgotten keys: bounding it bounds both.
    while (order_.size() > capacity_) {
      entries_.erase(order_.front());
      order_.pop_front();
    }
  }
  void forget(const std::string& delivery) { entries_.erase(delivery); }
  std::size_t size() const { return entries_.size(); }

 private:
  std::size_t capacity_;
  std::map<std::string, Entry> entries_;
  std::deque<std::string> order_;
};

// How a MultipartPost keeps its progress (see below).
struct PartResume {
  PartProgress* progress = nullptr;  // where progress is kept (null: not kept)
  std::string delivery;              // the message's delivery id (empty: not kept)
  bool chain = true;                 // later parts reply in the thread part 0 started
};

// One outbound message in `count` parts, sent in order: part 0 edits `edit` when set, else is
// created in `thread` (empty = a new thread root); later parts reply in `thread`, or in the thread
// part 0 started (unless `chain` is false: then every part goes to `thread`, as answers do). `done`
// gets part 0's id (the thread root for a new thread). Part 0 failing fails the message. A later
// part failing: with a PartProgress and a delivery id, the progress is kept and the error goes to
// `done`, so the outbox's retry resumes at that part; without them the message still counts as
// posted (reported to `later_failed`), since part 0 is already visible and resending it would
// duplicate it.
class MultipartPost : public std::enable_shared_from_this<MultipartPost> {
 public:
  using Callback = std::function<void(bot::Result<std::string>)>;
  struct Calls {
    std::function<void(const std::string& thread, std::size_t part, Callback)> create;
    std::function<void(const std::string& id, std::size_t part, Callback)> update;
    std::function<void(const bot::Error&)> failed;                       // the message failed
    std::function<void(std::size_t part, const bot::Error&)> later_failed;
    std::function<void()> delivered;                                     // every part went out
  };
  using Resume = PartResume;

  static void start(std::size_t count, std::string thread, std::string edit, Calls calls,
                    std::function<void(bot::Result<bot::PostResult>)> done, Resume resume = {}) {
    auto post = std::shared_ptr<MultipartPost>(new MultipartPost(count, std::move(thread), std::move(edit),
                                                                 std::move(calls), std::move(done), std::move(resume)));
    post->step();
  }

 private:
  MultipartPost(std::size_t count, std::string thread, std::string edit, Calls calls,
                std::function<void(bot::Result<bot::PostResult>)> done, Resume resume)
      : count_(count), thread_(std::move(thread)), edit_(std::move(edit)), calls_(std::move(calls)), done_(std::move(done)),
        resume_(std::move(resume)) {
    if (keeps_progress()) {
      auto e = resume_.progress->get(resume_.delivery);
      if (e.next > 0 && e.next < count_) {
        index_ = e.next;
        root_ = std::move(e.root);
      }
    }
  }

  bool keeps_progress() const { return resume_.progress && !resume_.delivery.empty(); }

  void step() {
    auto self = shared_from_this();
    Callback next = [self](bot::Result<std::string> r) { self->finished(std::move(r)); };
    if (index_ == 0 && !edit_.empty()) return calls_.update(edit_, 0, std::move(next));
    std::string thread = thread_;
    if (index_ > 0 && thread.empty() && resume_.chain) thread = root_;
    calls_.create(thread, index_, std::move(next));
  }

  void finished(bot::Result<std::string> r) {
    if (!r) {
      if (index_ == 0 || keeps_progress()) {
        if (index_ > 0) resume_.progress->set(resume_.delivery, {index_, root_});
        if (calls_.failed) calls_.failed(r.error());
        return done_(r.error());
      }
      if (calls_.later_failed) calls_.later_failed(index_, r.error());
      return done_(bot::PostResult{root_});
    }
    if (index_ == 0) root_ = edit_.empty() ? *r : edit_;
    if (++index_ < count_) return step();
    if (keeps_progress()) resume_.progress->forget(resume_.delivery);
    if (calls_.delivered) calls_.delivered();
    done_(bot::PostResult{root_});
  }

  std::size_t count_;
  std::string thread_;
  std::string edit_;
  Calls calls_;
  std::function<void(bot::Result<bot::PostResult>)> done_;
  Resume resume_;
  std::size_t index_ = 0;
  std::string root_;
};

}  // namespace runbot::common
