#include "kvs/storage/data_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "kvs/storage/snapshot.h"
#include "kvs/storage/wal.h"

namespace kvs::storage {
namespace {

constexpr char kIdentityFile[] = "IDENTITY";
constexpr char kLockFile[] = "LOCK";

std::string Errno() { return std::strerror(errno); }

bool WriteFileDurably(const std::string& dir, const std::string& name, const std::string& text,
                      std::string& error) {
  const std::string path = dir + "/" + name;
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    error = "cannot create " + tmp + ": " + Errno();
    return false;
  }
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  if (!ok) error = "cannot write " + tmp + ": " + Errno();
  ::close(fd);
  if (ok && ::rename(tmp.c_str(), path.c_str()) != 0) {
    error = "cannot rename " + tmp + ": " + Errno();
    ok = false;
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    return false;
  }
  return SyncDirectory(dir, error);
}

std::map<std::string, std::string> ParseIdentity(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

}  // namespace

bool SyncDirectory(const std::string& dir, std::string& error) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool ok = fd >= 0 && ::fsync(fd) == 0;
  if (!ok) error = "cannot sync directory " + dir + ": " + Errno();
  if (fd >= 0) ::close(fd);
  return ok;
}

std::unique_ptr<DataDir> DataDir::Open(const std::string& path, const std::string& address,
                                       const std::string& cluster, uint64_t now_ms,
                                       std::string& error) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    error = "cannot create data directory " + path + ": " + ec.message();
    return nullptr;
  }
  const std::string lock_path = path + "/" + kLockFile;
  const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) {
    error = "cannot open " + lock_path + ": " + Errno();
    return nullptr;
  }
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    error = "data directory " + path + " is in use by another kvs-server process";
    ::close(lock_fd);
    return nullptr;
  }
  auto fail = [&](std::string why) -> std::unique_ptr<DataDir> {
    error = std::move(why);
    ::close(lock_fd);
    return nullptr;
  };

  uint64_t last_incarnation = 0;
  const std::string identity_path = path + "/" + kIdentityFile;
  std::ifstream identity_in(identity_path);
  if (identity_in) {
    std::stringstream text;
    text << identity_in.rdbuf();
    auto fields = ParseIdentity(text.str());
    if (fields["format"] != "1" || fields["address"].empty()) {
      return fail("data directory " + path + ": " + identity_path + " is not a kvs identity file");
    }
    if (fields["address"] != address) {
      return fail("data directory " + path + " belongs to node " + fields["address"] + ", not to " +
                  address);
    }
    if (fields["cluster"] != cluster) {
      return fail("data directory " + path + " belongs to cluster '" + fields["cluster"] +
                  "', not to '" + cluster + "' (kvs.cluster.id)");
    }
    const std::string& inc = fields["incarnation"];
    std::from_chars(inc.data(), inc.data() + inc.size(), last_incarnation);
  } else {
    // No identity: the directory must not hold data of unknown origin.
    DataDir probe(path, -1, 0);
    if (!probe.Segments().empty() || !probe.Snapshots().empty()) {
      return fail("data directory " + path + " holds kvs data files but no " + kIdentityFile);
    }
  }
  const uint64_t incarnation = std::max(now_ms, last_incarnation + 1);
  const std::string text = "format=1\naddress=" + address + "\ncluster=" + cluster +
                           "\nincarnation=" + std::to_string(incarnation) + "\n";
  if (!WriteFileDurably(path, kIdentityFile, text, error)) return fail(error);
  return std::unique_ptr<DataDir>(new DataDir(path, lock_fd, incarnation));
}

DataDir::~DataDir() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

std::vector<uint64_t> DataDir::List(const char* prefix, const char* suffix) const {
  std::vector<uint64_t> out;
  DIR* dir = ::opendir(path_.c_str());
  if (dir == nullptr) return out;
  const size_t plen = std::strlen(prefix), slen = std::strlen(suffix);
  while (const dirent* e = ::readdir(dir)) {
    const std::string_view name(e->d_name);
    if (name.size() != plen + 16 + slen || !name.starts_with(prefix) || !name.ends_with(suffix)) {
      continue;
    }
    uint64_t n = 0;
    const char* first = name.data() + plen;
    const auto [ptr, ec] = std::from_chars(first, first + 16, n);
    if (ec == std::errc() && ptr == first + 16) out.push_back(n);
  }
  ::closedir(dir);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<uint64_t> DataDir::Segments() const { return List("wal-", ".log"); }
std::vector<uint64_t> DataDir::Snapshots() const { return List("snap-", ".kvs"); }
std::string DataDir::SegmentPath(uint64_t n) const { return path_ + "/" + SegmentName(n); }
std::string DataDir::SnapshotPath(uint64_t n) const { return path_ + "/" + SnapshotName(n); }

}  // namespace kvs::storage
