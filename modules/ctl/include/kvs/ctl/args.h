// kvsctl's command line: global options, the command and its operands, and the exit codes.
// Pure functions (no I/O besides the environment lookup passed in); thread-safe.
// Invariant: a parse either yields Options whose command exists with the right operand count,
// or a one-line usage error (exit code kExitUsage).
#ifndef KVS_CTL_ARGS_H_
#define KVS_CTL_ARGS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace kvs::ctl {

// Exit codes, as --help documents them.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRefused = 1;      // the server answered with an error (4xx/5xx)
inline constexpr int kExitUsage = 2;        // bad command line
inline constexpr int kExitUnreachable = 3;  // no answer: connection failed, timed out, TLS failed
inline constexpr int kExitAuth = 4;         // 401/403: credential missing or refused

// The exit code for an HTTP status the server answered with.
int ExitCodeForStatus(int http_status);

inline constexpr const char* kDefaultNode = "localhost:8082";
inline constexpr int64_t kDefaultTimeoutMs = 5000;

struct Options {
  std::string node;  // host:port
  std::string host;
  uint16_t port = 0;
  std::string token;
  std::string cacert, cert, key;
  int64_t timeout_ms = kDefaultTimeoutMs;
  bool json = false;
  bool use_session = true;
  std::string session_file;  // "" → DefaultSessionFile()
  bool help = false;
  std::string command;  // get, put, delete, view, shards, shard-id, add-member, reshard, status,
                        // health, metrics ("" only with help)
  std::vector<std::string> operands;

  bool tls() const { return !cacert.empty() || !cert.empty(); }
};

struct ParseResult {
  std::optional<Options> options;
  std::string error;  // one line, when !options
};

// Looks up an environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// Parses argv[1..] (args excludes the program name). Defaults: --node from KVS_NODE, then
// localhost:8082; --token from KVS_TOKEN; the session file from KVS_SESSION.
ParseResult ParseArgs(const std::vector<std::string>& args, const EnvLookup& env);

// Splits "host:port" (a scheme "http://" or "https://" and a trailing '/' are tolerated).
bool SplitHostPort(const std::string& text, std::string* host, uint16_t* port);

// The --help text (usage, commands, options, exit codes).
std::string HelpText();

}  // namespace kvs::ctl

#endif  // KVS_CTL_ARGS_H_
