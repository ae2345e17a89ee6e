// Runs administration programs (ip, iptables) of the host for the cluster test harness, with a
// bounded run time and the program's combined output captured.
// Thread-safe: every call forks its own child and shares no state.
#ifndef KVS_TESTS_CLUSTER_HOST_COMMAND_H_
#define KVS_TESTS_CLUSTER_HOST_COMMAND_H_

#include <chrono>
#include <string>
#include <vector>

namespace kvs::cluster_test {

struct CommandResult {
  int exit_code = -1;  // -1: it could not be started, was killed, or ran out of time.
  std::string output;  // stdout and stderr, interleaved as written.

  bool ok() const { return exit_code == 0; }
};

// Runs `argv` (argv[0] a program name looked up in /usr/sbin, /sbin, /usr/bin, /bin) with
// stdin from /dev/null. A program still running after `timeout` is killed (SIGKILL) and reaped.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));

// "ip netns add x" style text of `argv` and its result, for failure messages.
std::string DescribeCommand(const std::vector<std::string>& argv, const CommandResult& result);

}  // namespace kvs::cluster_test

#endif  // KVS_TESTS_CLUSTER_HOST_COMMAND_H_
