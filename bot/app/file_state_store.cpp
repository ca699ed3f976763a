#include "bot/app/file_state_store.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <unistd.h>

namespace runbot::app {
namespace {

bot::Error io_error(const std::string& what, const std::string& path) {
  return bot::make_error(bot::Errc::unavailable, what + " '" + path + "': " + std::strerror(errno));
}

std::string directory_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

bot::Result<std::optional<std::string>> FileStateStore::load() {
  std::ifstream f(path_, std::ios::binary);
  if (!f) {
    if (errno == ENOENT) return std::optional<std::string>{};
    return io_error("cannot read state file", path_);
  }
  std::stringstream ss;
  ss << f.rdbuf();
  return std::optional<std::string>{ss.str()};
}

bot::Status FileStateStore::save(const std::string& snapshot) {
  const std::string tmp = path_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return io_error("cannot create", tmp);
  size_t written = 0;
  while (written < snapshot.size()) {
    ssize_t n = ::write(fd, snapshot.data() + written, snapshot.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      auto err = io_error("cannot write", tmp);
      ::close(fd);
      return err;
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    auto err = io_error("cannot fsync", tmp);
    ::close(fd);
    return err;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path_.c_str()) != 0) return io_error("cannot rename onto", path_);
  int dir = ::open(directory_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return bot::ok();
}

}  // namespace runbot::app
