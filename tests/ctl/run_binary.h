// Runs a program (the real kvsctl) as a child process with a given environment, capturing its
// stdout and stderr apart, and its exit code, within a bounded time.
// Thread-safe: every call forks its own child and shares no state.
#ifndef KVS_TESTS_CTL_RUN_BINARY_H_
#define KVS_TESTS_CTL_RUN_BINARY_H_

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace kvs::ctl_test {

struct RunResult {
  int exit_code = -1;  // -1: could not start, killed by a signal, or out of time
  bool timed_out = false;
  std::string out, err;
};

// Runs `program` with `args` and exactly `env` (name, value) as its environment; stdin is
// /dev/null. Killed (SIGKILL) and reaped after `timeout`.
RunResult RunBinary(const std::string& program, const std::vector<std::string>& args,
                    const std::vector<std::pair<std::string, std::string>>& env,
                    std::chrono::milliseconds timeout);

// As RunBinary, but stdout and stderr are both a pseudo-terminal (isatty() holds for them);
// what the program wrote to either is in `out` (the terminal turns "\n" into "\r\n").
RunResult RunBinaryOnTerminal(const std::string& program, const std::vector<std::string>& args,
                              const std::vector<std::pair<std::string, std::string>>& env,
                              std::chrono::milliseconds timeout);

// For failure messages: exit code, stdout and stderr.
std::string Describe(const RunResult& result);

}  // namespace kvs::ctl_test

#endif  // KVS_TESTS_CTL_RUN_BINARY_H_
