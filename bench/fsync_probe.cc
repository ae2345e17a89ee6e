// kvs-fsync-probe: what one durable small write costs on a file system, the floor under any
// "fsync before acknowledging" design. Times N rounds of pwrite(SIZE bytes) + fdatasync on a
// fresh file in --dir, one thread, and prints the latency distribution as one JSON object.
//
//   kvs-fsync-probe --dir=/tmp/x [--count=1000] [--size=4096] [--mode=append|overwrite]
//
// append:    each write extends the file (what a write-ahead log that does not preallocate
//            does): fdatasync must also persist the new file size, a journal commit on ext4.
// overwrite: the file is first written to its full length and synced, then the same blocks
//            are rewritten in order (a preallocated log): fdatasync persists data only.
// Each sample is the time of pwrite + fdatasync together (the write itself only copies into the
// page cache). The file is removed at the end.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

bool TakeOption(std::string_view arg, std::string_view name, std::string& value) {
  if (!arg.starts_with(name) || arg.size() <= name.size() || arg[name.size()] != '=') return false;
  value = std::string(arg.substr(name.size() + 1));
  return true;
}

int Usage(const char* why) {
  std::fprintf(stderr,
               "kvs-fsync-probe: %s\nusage: kvs-fsync-probe --dir=DIR [--count=N] [--size=BYTES] "
               "[--mode=append|overwrite]\n",
               why);
  return 2;
}

bool WriteFully(int fd, const char* data, size_t size, off_t offset) {
  while (size > 0) {
    const ssize_t n = pwrite(fd, data, size, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
    offset += n;
  }
  return true;
}

double PercentileUs(const std::vector<double>& sorted, double p) {
  // Nearest rank: the smallest sample with at least p% of the samples at or below it.
  size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir, mode = "append", text;
  long count = 1000, size = 4096;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help") {
      Usage("times pwrite + fdatasync of small writes");
      return 0;
    }
    if (TakeOption(arg, "--dir", dir)) continue;
    if (TakeOption(arg, "--mode", mode)) continue;
    if (TakeOption(arg, "--count", text)) {
      count = std::strtol(text.c_str(), nullptr, 10);
      continue;
    }
    if (TakeOption(arg, "--size", text)) {
      size = std::strtol(text.c_str(), nullptr, 10);
      continue;
    }
    return Usage(("unknown option " + std::string(arg)).c_str());
  }
  if (dir.empty()) return Usage("--dir is required");
  if (count < 1 || size < 1 || size > (64 << 20)) return Usage("bad --count or --size");
  if (mode != "append" && mode != "overwrite") return Usage("--mode is append or overwrite");

  const std::string path = dir + "/kvs-fsync-probe." + std::to_string(getpid());
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::fprintf(stderr, "kvs-fsync-probe: open %s: %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  std::vector<char> block(static_cast<size_t>(size), 'x');
  auto fail = [&](const char* what) {
    std::fprintf(stderr, "kvs-fsync-probe: %s: %s\n", what, std::strerror(errno));
    close(fd);
    unlink(path.c_str());
    return 1;
  };
  if (mode == "overwrite") {
    for (long i = 0; i < count; ++i) {
      if (!WriteFully(fd, block.data(), block.size(), static_cast<off_t>(i) * size))
        return fail("pwrite");
    }
    if (fsync(fd) != 0) return fail("fsync");
  }

  std::vector<double> samples;
  samples.reserve(static_cast<size_t>(count));
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < count; ++i) {
    block[static_cast<size_t>(i % size)] = static_cast<char>('a' + i % 26);
    const auto t0 = std::chrono::steady_clock::now();
    if (!WriteFully(fd, block.data(), block.size(), static_cast<off_t>(i) * size))
      return fail("pwrite");
    if (fdatasync(fd) != 0) return fail("fdatasync");
    const auto t1 = std::chrono::steady_clock::now();
    samples.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  const double total_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  close(fd);
  unlink(path.c_str());

  double sum = 0;
  for (double s : samples) sum += s;
  std::sort(samples.begin(), samples.end());
  std::printf(
      "{\"mode\":\"%s\",\"count\":%ld,\"size\":%ld,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
      "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"mean_ms\":%.3f,\"min_ms\":%.3f,\"per_second\":%.0f}\n",
      mode.c_str(), count, size, PercentileUs(samples, 50) / 1000, PercentileUs(samples, 90) / 1000,
      PercentileUs(samples, 99) / 1000, samples.back() / 1000, sum / count / 1000,
      samples.front() / 1000, static_cast<double>(count) / total_s);
  return 0;
}
