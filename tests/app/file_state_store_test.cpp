#include "bot/app/file_state_store.h"

#include <fstream>

#include <gtest/gtest.h>

namespace runbot::app {
namespace {

TEST(FileStateStore, MissingFileMeansNoStateYet) {
  FileStateStore store(::testing::TempDir() + "runbot-none-" + std::to_string(::getpid()) + ".json");
  auto r = store.load();
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->has_value());
}

TEST(FileStateStore, SaveReplacesTheWholeSnapshotAndLeavesNoTemporaryFile) {
  std::string path = ::testing::TempDir() + "runbot-state-" + std::to_string(::getpid()) + ".json";
  FileStateStore store(path);
  ASSERT_TRUE(store.save(std::string(100000, 'a')));
  ASSERT_TRUE(store.save("short"));
  auto r = store.load();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(**r, "short");
  EXPECT_FALSE(std::ifstream(path + ".tmp").good());
  std::remove(path.c_str());
}

TEST(FileStateStore, UnwritableDirectoryIsAnError) {
  FileStateStore store("/nonexistent-dir/state.json");
  auto s = store.save("x");
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().message.find("/nonexistent-dir/state.json.tmp"), std::string::npos);
}

}  // namespace
}  // namespace runbot::app
