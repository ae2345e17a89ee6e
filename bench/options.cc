#include "kvs/bench/options.h"

#include <charconv>
#include <cmath>
#include <limits>

namespace kvs::bench {
namespace {

constexpr uint64_t kMaxConnections = 100000;
constexpr uint64_t kMaxThreads = 1024;
constexpr uint64_t kMaxValueSize = 64ull << 20;
constexpr double kMaxSeconds = 7 * 24 * 3600;
constexpr double kMinRate = 1e-3;
constexpr double kMaxRate = 1e9;  // a slot per nanosecond: the pacing clock's resolution

template <typename T>
bool ParseUnsigned(std::string_view text, T& out) {
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return false;
  if (value > static_cast<uint64_t>(std::numeric_limits<T>::max())) return false;
  out = static_cast<T>(value);
  return true;
}

// A plain decimal number in [0, max].
bool ParseNumber(std::string_view text, double max, double& out) {
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return false;
  if (!std::isfinite(value) || value < 0 || value > max) return false;
  out = value;
  return true;
}

bool ParseSeconds(std::string_view text, double& out) {
  return ParseNumber(text, kMaxSeconds, out);
}

std::vector<std::string_view> Split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  while (true) {
    const size_t at = text.find(sep);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + 1);
  }
}

bool ParseMix(std::string_view text, Mix& mix, std::string& error) {
  Mix parsed{0, 0, 0};
  for (std::string_view item : Split(text, ',')) {
    const size_t colon = item.find(':');
    int weight = 0;
    if (colon == std::string_view::npos || !ParseUnsigned(item.substr(colon + 1), weight) ||
        weight > 100) {
      error = "--mix: expected op:percent (0..100), got '" + std::string(item) + "'";
      return false;
    }
    const std::string_view op = item.substr(0, colon);
    if (op == "get") {
      parsed.get = weight;
    } else if (op == "put") {
      parsed.put = weight;
    } else if (op == "delete") {
      parsed.del = weight;
    } else {
      error = "--mix: unknown operation '" + std::string(op) + "' (get, put, delete)";
      return false;
    }
  }
  if (parsed.Total() <= 0) {
    error = "--mix: the weights sum to 0";
    return false;
  }
  mix = parsed;
  return true;
}

bool ParseSweep(std::string_view text, Options& options, std::string& error) {
  const size_t colon = text.find(':');
  const std::string_view param = text.substr(0, colon);
  if (colon == std::string_view::npos || (param != "connections" && param != "threads")) {
    error = "--sweep: expected connections:N,N,... or threads:N,N,...";
    return false;
  }
  options.sweep_param = std::string(param);
  options.sweep_values.clear();
  for (std::string_view item : Split(text.substr(colon + 1), ',')) {
    int value = 0;
    const uint64_t limit = param == "connections" ? kMaxConnections : kMaxThreads;
    if (!ParseUnsigned(item, value) || value < 1 || static_cast<uint64_t>(value) > limit) {
      error = "--sweep: bad value '" + std::string(item) + "' (1.." + std::to_string(limit) + ")";
      return false;
    }
    options.sweep_values.push_back(value);
  }
  return true;
}

}  // namespace

std::string_view ProtocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::kKvs:
      return "kvs";
    case Protocol::kRaw:
      return "raw";
    case Protocol::kEtcd:
      return "etcd";
  }
  return "?";
}

std::string_view OpName(Op op) {
  switch (op) {
    case Op::kGet:
      return "GET";
    case Op::kPut:
      return "PUT";
    case Op::kDelete:
      return "DELETE";
  }
  return "?";
}

std::string Mix::ToString() const {
  return "get:" + std::to_string(get) + ",put:" + std::to_string(put) +
         ",delete:" + std::to_string(del);
}

bool ParseTargets(std::string_view text, std::vector<Target>& out, std::string& error) {
  std::vector<Target> targets;
  for (std::string_view item : Split(text, ',')) {
    const size_t colon = item.rfind(':');
    Target target;
    if (colon == std::string_view::npos || colon == 0 ||
        !ParseUnsigned(item.substr(colon + 1), target.port) || target.port == 0) {
      error = "--targets: expected host:port, got '" + std::string(item) + "'";
      return false;
    }
    std::string_view host = item.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    target.host = std::string(host);
    targets.push_back(std::move(target));
  }
  out = std::move(targets);
  return true;
}

ParsedOptions ParseOptions(const std::vector<std::string_view>& args) {
  ParsedOptions result;
  Options& o = result.options;
  std::string& error = result.error;
  bool duration_given = false;
  bool targets_given = false;

  for (std::string_view arg : args) {
    if (arg == "--help" || arg == "-h") {
      o.help = true;
      return result;
    }
  }
  for (std::string_view arg : args) {
    if (!arg.starts_with("--")) {
      error = "unexpected argument '" + std::string(arg) + "' (options are --name=value)";
      return result;
    }
    const size_t eq = arg.find('=');
    const std::string_view name = arg.substr(2, eq == std::string_view::npos ? eq : eq - 2);
    const bool has_value = eq != std::string_view::npos;
    const std::string_view value = has_value ? arg.substr(eq + 1) : std::string_view();
    const std::string flag = "--" + std::string(name);

    if (name == "preload" || name == "quiet" || name == "tls") {
      if (has_value) {
        error = flag + " takes no value";
        return result;
      }
      (name == "preload" ? o.preload : name == "quiet" ? o.quiet : o.tls) = true;
      continue;
    }
    if (!has_value) {
      error = flag == "--" ? "empty option '--'" : flag + " needs a value (" + flag + "=...)";
      return result;
    }
    auto bad = [&](std::string_view what) {
      error = flag + ": " + std::string(what) + ", got '" + std::string(value) + "'";
      return result;
    };
    if (name == "targets") {
      if (!ParseTargets(value, o.targets, error)) return result;
      targets_given = true;
    } else if (name == "threads") {
      if (!ParseUnsigned(value, o.threads) || o.threads < 1 ||
          static_cast<uint64_t>(o.threads) > kMaxThreads) {
        return bad("expected an integer 1..1024");
      }
    } else if (name == "connections") {
      if (!ParseUnsigned(value, o.connections) || o.connections < 1 ||
          static_cast<uint64_t>(o.connections) > kMaxConnections) {
        return bad("expected an integer 1..100000");
      }
    } else if (name == "duration") {
      if (!ParseSeconds(value, o.duration_s) || o.duration_s <= 0) {
        return bad("expected seconds > 0");
      }
      duration_given = true;
    } else if (name == "requests") {
      if (!ParseUnsigned(value, o.requests) || o.requests < 1)
        return bad("expected an integer > 0");
    } else if (name == "warmup") {
      if (!ParseSeconds(value, o.warmup_s)) return bad("expected seconds >= 0");
    } else if (name == "keys") {
      if (!ParseUnsigned(value, o.keys) || o.keys < 1) return bad("expected an integer > 0");
    } else if (name == "value-size") {
      if (!ParseUnsigned(value, o.value_size) || o.value_size > kMaxValueSize) {
        return bad("expected bytes 0..67108864");
      }
    } else if (name == "mix") {
      if (!ParseMix(value, o.mix, error)) return result;
    } else if (name == "seed") {
      if (!ParseUnsigned(value, o.seed)) return bad("expected an unsigned integer");
    } else if (name == "causal") {
      if (value != "on" && value != "off") return bad("expected on or off");
      o.causal = value == "on";
    } else if (name == "rate") {
      // Below kMinRate a slot gap would not fit the loops' nanosecond clock.
      if (!ParseNumber(value, kMaxRate, o.rate) || (o.rate > 0 && o.rate < kMinRate)) {
        return bad("expected requests per second 0.001..1000000000 (0 = unthrottled)");
      }
    } else if (name == "only-shard") {
      if (!ParseUnsigned(value, o.only_shard)) return bad("expected a shard id (integer >= 0)");
    } else if (name == "protocol") {
      if (value == "kvs") {
        o.protocol = Protocol::kKvs;
      } else if (value == "raw") {
        o.protocol = Protocol::kRaw;
      } else if (value == "etcd") {
        o.protocol = Protocol::kEtcd;
      } else {
        return bad("expected kvs, raw or etcd");
      }
    } else if (name == "path") {
      if (!value.starts_with('/') || value.find_first_of(" \r\n\t") != std::string_view::npos) {
        return bad("expected an absolute path without spaces");
      }
      o.path = std::string(value);
    } else if (name == "timeout") {
      if (!ParseUnsigned(value, o.timeout_ms) || o.timeout_ms < 1) {
        return bad("expected milliseconds > 0");
      }
    } else if (name == "cacert" || name == "cert" || name == "key") {
      if (value.empty()) return bad("expected a PEM file name");
      (name == "cacert" ? o.ca_file : name == "cert" ? o.cert_file : o.key_file) = value;
      o.tls = true;
    } else if (name == "tls-verify-name") {
      if (value != "on" && value != "off") return bad("expected on or off");
      o.tls_verify_name = value == "on";
    } else if (name == "json") {
      if (value.empty()) return bad("expected a file name");
      o.json_file = std::string(value);
    } else if (name == "csv") {
      if (value.empty()) return bad("expected a file name");
      o.csv_file = std::string(value);
    } else if (name == "label") {
      o.label = std::string(value);
    } else if (name == "sweep") {
      if (!ParseSweep(value, o, error)) return result;
    } else if (name == "plot") {
      if (value.empty()) return bad("expected a .png file name");
      o.plot_file = std::string(value);
    } else {
      error = "unknown option " + flag + " (see --help)";
      return result;
    }
  }

  if (o.requests > 0 && !duration_given) o.duration_s = 0;  // --requests alone: stop at the count
  if (!targets_given) {
    error = "--targets=host:port[,host:port...] is required";
  } else if (!o.plot_file.empty() && o.sweep_param.empty()) {
    error = "--plot needs --sweep";
  } else if (o.causal && o.protocol != Protocol::kKvs) {
    error = "--causal=on needs --protocol=kvs";
  } else if (o.cert_file.empty() != o.key_file.empty()) {
    error = "--cert and --key go together (a client certificate and its private key)";
  } else if (o.preload && o.protocol == Protocol::kRaw) {
    error = "--preload needs --protocol=kvs or etcd (raw only sends GET " + o.path + ")";
  } else if (o.only_shard >= 0 && o.protocol != Protocol::kKvs) {
    error = "--only-shard needs --protocol=kvs (only kvs answers a PUT with its shard-id)";
  } else if (o.only_shard >= 0 && !o.preload) {
    error = "--only-shard needs --preload (the preload's answers say which shard holds a key)";
  }
  return result;
}

std::string HelpText() {
  return R"(kvs-bench: HTTP/1.1 keep-alive load generator for kvs (and raw HTTP / etcd).

Usage: kvs-bench --targets=host:port[,host:port...] [options]

  --targets=host:port[,...]  servers; connections are spread round-robin over them (required)
  --threads=N                event-loop threads (default 2)
  --connections=N            keep-alive connections in total, one request in flight each
                             (default 16)
  --duration=SECONDS         length of the measured phase (default 10; not applied when
                             only --requests is given)
  --requests=N               measured requests in total; with --duration, stop at the first
  --warmup=SECONDS           unmeasured load before measuring (default 1)
  --keys=N                   key space key0..key{N-1}, uniform random (default 10000)
  --seed=N                   random seed (default 1)
  --value-size=BYTES         PUT value size (default 100)
  --mix=get:G,put:P,delete:D operation weights in percent (default get:80,put:20,delete:0)
  --preload                  PUT every key once before warm-up (not measured)
  --causal=on|off            chain causal-metadata per connection (default off; kvs only)
  --rate=N                   pace warm-up and the measured phase to N requests/s in total
                             (N/threads per thread; at most what --connections can carry);
                             0 = unthrottled (default 0)
  --only-shard=N             with --preload (kvs only): warm-up and measured requests use only
                             the keys whose preload PUT answer said "shard-id": N
  --protocol=kvs|raw|etcd    kvs: /key-value-store/<key>; raw: GET --path, 2xx = ok;
                             etcd: v3 JSON gateway /v3/kv/{put,range,deleterange}
                             (default kvs)
  --path=PATH                request path for --protocol=raw (default /)
  --timeout=MS               connect timeout and per-request timeout (default 5000)
  --tls                      HTTPS: TLS on every connection (implied by the next three)
  --cacert=FILE              trust the CAs in this PEM file (default: the system's store)
  --cert=FILE --key=FILE     client certificate and key (PEM), for servers that ask for one
  --tls-verify-name=on|off   check that the server's certificate names the target host or
                             address (default on; off still checks the chain)
  --json=FILE                write the result as one JSON object (an array with --sweep)
  --csv=FILE                 append one row per run (header row if the file is new)
  --label=TEXT               label carried into every output
  --quiet                    no per-second progress line on stderr
  --sweep=connections:1,2,4  run once per value (also threads:1,2,...) and print a table
  --plot=FILE.png            with --sweep: draw req/s and p50/p99 latency with gnuplot
                             (writes FILE.dat and FILE.gp next to it)
  --help                     this text

Exit status: 0 when the run completed (even with HTTP errors), 1 when no request succeeded,
--only-shard matched no key or the plot could not be drawn, 2 on bad options.
)";
}

}  // namespace kvs::bench
