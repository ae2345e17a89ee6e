// kvs-bench's command line: the Options value and its parser. Plain values; ParseOptions is a
// pure function (no I/O), safe to call from any thread.
// Invariant: a ParseOptions result with an empty error holds validated, consistent options.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kvs::bench {

enum class Protocol { kKvs, kRaw, kEtcd };
enum class Op { kGet = 0, kPut = 1, kDelete = 2 };
inline constexpr int kOpCount = 3;

std::string_view ProtocolName(Protocol protocol);
std::string_view OpName(Op op);

struct Target {
  std::string host;  // a name or an address; IPv6 without the brackets
  uint16_t port = 0;

  // "host:port", "[v6]:port": also the Host header.
  std::string ToString() const {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  }
};

// Percent weights of the operations; only their ratios matter (sum > 0).
struct Mix {
  int get = 80;
  int put = 20;
  int del = 0;

  int Total() const { return get + put + del; }
  std::string ToString() const;
};

struct Options {
  std::vector<Target> targets;
  int threads = 2;
  int connections = 16;
  double duration_s = 10;   // measured phase length; 0 = no time limit (only --requests)
  uint64_t requests = 0;    // measured requests in total; 0 = no count limit
  double warmup_s = 1;      // unmeasured load before the measured phase
  uint64_t keys = 10000;    // key space key0..key{keys-1}
  size_t value_size = 100;  // bytes per PUT value
  Mix mix;
  uint64_t seed = 1;
  bool preload = false;  // PUT every key once before warm-up, unmeasured
  bool causal = false;   // chain causal-metadata per connection (kvs only)
  // Requests per second in total that warm-up and the measured phase are paced to (each loop
  // paces its own rate / threads); 0 = unthrottled. The preload is never paced.
  double rate = 0;
  // Warm-up and measured requests use only the keys whose preload PUT answer named this
  // "shard-id" (kvs, needs --preload); -1 = every key.
  int only_shard = -1;
  Protocol protocol = Protocol::kKvs;
  std::string path = "/";  // request path of --protocol=raw
  int timeout_ms = 5000;   // connect timeout and per-request timeout
  // HTTPS (--tls; implied by --cacert, --cert): the server's certificate must chain to
  // `ca_file` (the system's trust store when empty) and, with tls_verify_name, name the
  // target host (DNS name or IP address). `cert_file`/`key_file`: a client certificate.
  bool tls = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool tls_verify_name = true;
  std::string json_file;
  std::string csv_file;
  std::string label;
  bool quiet = false;       // no per-second progress on stderr
  std::string sweep_param;  // "connections" or "threads"; empty = no sweep
  std::vector<int> sweep_values;
  std::string plot_file;  // PNG drawn by gnuplot after a sweep
  bool help = false;
};

struct ParsedOptions {
  Options options;
  std::string error;  // empty on success: one line naming the bad option

  bool ok() const { return error.empty(); }
};

// Parses argv-style arguments (without the program name). `--help` sets options.help and
// skips validation of the rest.
ParsedOptions ParseOptions(const std::vector<std::string_view>& args);

// The --help text: every option, its default, one line each.
std::string HelpText();

// "host:port[,host:port...]"; on error returns false and sets `error`.
bool ParseTargets(std::string_view text, std::vector<Target>& out, std::string& error);

}  // namespace kvs::bench
