#pragma once
// FileStateStore: the embedded default's StateStore, a local file written atomically
// (temporary file, fsync, rename, fsync of the directory), so a crash leaves the old or the new
// snapshot, never half of one.
#include <string>

#include "bot/state_store.h"

namespace runbot::app {

class FileStateStore final : public bot::StateStore {
 public:
  explicit FileStateStore(std::string path) : path_(std::move(path)) {}
  bot::Result<std::optional<std::string>> load() override;
  bot::Status save(const std::string& snapshot) override;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace runbot::app
