#include "settings.h"

#include <Poco/AutoPtr.h>
#include <Poco/Environment.h>
#include <Poco/File.h>
#include <Poco/Path.h>
#include <Poco/Util/MapConfiguration.h>
#include <Poco/Util/PropertyFileConfiguration.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <stdexcept>

extern char** environ;

namespace kvs::app {
namespace {

// Precedence in LayeredConfiguration: a lower number is searched first.
constexpr int kPrioCommandLine = -300;
constexpr int kPrioEnvironment = -200;
constexpr int kPrioFile = -100;
constexpr int kPrioDefaults = 100;

struct Identity {
  std::string_view env;   // SPEC §1 environment name
  std::string_view key;   // configuration key
  std::string_view flag;  // command-line spelling besides the env name
};
constexpr Identity kIdentities[] = {
    {"SOCKET_ADDRESS", "socket_address", "socket-address"},
    {"VIEW", "view", "view"},
    {"SHARD_COUNT", "shard_count", "shard-count"},
};

bool IsTunable(std::string_view key) {
  const auto& all = Tunables();
  return std::any_of(all.begin(), all.end(), [&](const Tunable& t) { return t.key == key; });
}

}  // namespace

const std::vector<Tunable>& Tunables() {
  static const std::vector<Tunable> kAll = {
      {"kvs.http.bind", "0.0.0.0",
       "address the HTTP listener binds (port comes from SOCKET_ADDRESS)"},
      {"kvs.http.frontend", "epoll",
       "HTTP front end: epoll (event loops; requests that may wait run on worker threads) "
       "or poco (POCO HTTPServer, one thread per connection)"},
      {"kvs.http.loops", "0",
       "epoll front end: event loop threads, 0 = half the cores (at least one)"},
      {"kvs.http.threads", "64",
       "epoll: worker threads for requests that may wait (forwarding, node-to-node); "
       "poco: threads, each serving one connection at a time"},
      {"kvs.http.loop_forwarding", "true",
       "epoll: requests for another shard are relayed by the event loops over pooled "
       "non-blocking connections, TLS with kvs.tls.*, and broadcasts to shard peers leave "
       "from the first loop (false: a worker's blocking call and a sender thread per peer; "
       "always so for members named by DNS names)"},
      {"kvs.http.max_connections", "10000",
       "epoll: open client connections at most; at the limit the oldest idle keep-alive "
       "connection is closed for a new one (refused only when none is idle)"},
      {"kvs.http.max_connections_per_ip", "0",
       "epoll: open connections from one client address at most (more are closed at once), "
       "0 = no cap"},
      {"kvs.http.max_queued", "256", "poco: accepted connections waiting for a free thread"},
      {"kvs.http.backlog", "512", "listen(2) backlog"},
      {"kvs.http.receive_timeout_ms", "10000", "time to wait for a request's bytes"},
      {"kvs.http.keepalive_timeout_ms", "5000", "idle keep-alive connections close after this"},
      {"kvs.http.max_keepalive_requests", "0", "requests per connection, 0 = unlimited"},
      {"kvs.http.shutdown_grace_ms", "5000", "on SIGTERM, time in-flight requests get to finish"},
      {"kvs.limits.max_body_bytes", "2097152", "largest request body accepted (413 above)"},
      {"kvs.limits.max_value_bytes", "1048576", "largest value accepted (413 above)"},
      {"kvs.cluster.heartbeat_period_ms", "1000", "how often every known node is pinged"},
      {"kvs.cluster.failure_timeout_ms", "3000",
       "a node silent this long is removed from the view"},
      {"kvs.replication.anti_entropy_period_ms", "1000",
       "how often each replica syncs with its shard peers"},
      {"kvs.replication.dependency_wait_ms", "2000",
       "how long a request waits for missing causal dependencies before 503"},
      {"kvs.replication.bootstrap_timeout_ms", "3000",
       "at start, how long to go on trying to load the shard's data from peers without "
       "receiving anything (a transfer that keeps sending is never cut off)"},
      {"kvs.replication.recent_updates", "65536",
       "the keys of this many recent updates are kept (~100 bytes each), so that a peer "
       "missing only recent updates (a restart, a short partition, a dependency pull) gets "
       "them without a walk of the store; 0 = always walk"},
      {"kvs.replication.recent_updates_percent", "10",
       "and at least this percentage of the live keys' count (a big shard's peer that fell "
       "behind under a burst of writes still gets a delta, not a walk of every key)"},
      {"kvs.replication.transfer_chunk_bytes", "4194304",
       "state transfers (bootstrap, catch-up, anti-entropy) move data in chunks of about "
       "this size"},
      {"kvs.replication.batch_max", "256", "updates per broadcast request"},
      {"kvs.replication.batch_linger_us", "1000",
       "a broadcast batch waits this long for more updates before it is sent"},
      {"kvs.storage.mode", "disk",
       "disk (every applied change goes to a write-ahead log and snapshots in kvs.storage.dir) "
       "or memory (nothing survives a restart; a warning is logged at start)"},
      {"kvs.storage.dir", "",
       "data directory; empty = kvs-data/<ip>_<port> under the working directory"},
      {"kvs.storage.fsync", "always",
       "always (a write is answered after its log record is fsynced, in groups), interval "
       "(fsync every kvs.storage.fsync_interval_ms) or never (the OS decides)"},
      {"kvs.storage.fsync_interval_ms", "1000", "fsync period with kvs.storage.fsync=interval"},
      {"kvs.storage.snapshot_min_log_bytes", "8388608",
       "a snapshot (and log truncation) starts once the log holds this many bytes and at least "
       "kvs.storage.snapshot_log_percent of the last snapshot's size"},
      {"kvs.storage.snapshot_log_percent", "25",
       "a snapshot starts once the log holds this percentage of the last snapshot's size (and "
       "kvs.storage.snapshot_min_log_bytes): lower = less log to replay at a restart, more "
       "snapshot writing under writes"},
      {"kvs.storage.snapshot_max_log_bytes", "134217728",
       "... or once the log holds this many bytes, however big the last snapshot (bounds the "
       "log a restart of a big store replays: 128 MiB is ~760k records, ~0.9 s here)"},
      {"kvs.storage.segment_bytes", "4194304",
       "size of a log segment; each is zero-filled ahead of use (a background thread "
       "prepares the next) so that an fsync flushes only data; 0 = segments grow as written"},
      {"kvs.storage.direct_io", "true",
       "with fsync=always: log groups are written with O_DIRECT where the file system takes it "
       "(the fsync then only flushes the device); false = through the page cache"},
      {"kvs.storage.repair", "false",
       "true (or --storage-repair): cut a damaged log or snapshot at the damage and catch up "
       "from the shard's peers, instead of refusing to start"},
      {"kvs.store.huge_pages", "true",
       "true: the memory the store takes while it recovers its data at start is asked for in "
       "transparent huge pages (madvise): far fewer page faults when millions of keys load; "
       "and, in the background, 2 MiB ranges of the store's memory that writes filled are "
       "moved into huge pages (madvise MADV_COLLAPSE): less CPU per wake-up for a big store; "
       "false: 4 KiB pages throughout"},
      {"kvs.cluster.id", "kvs",
       "name of the cluster, recorded in the data directory: a node refuses to start on a "
       "directory written for another cluster id or another node address"},
      {"kvs.cluster.secret", "",
       "shared secret of the cluster's nodes: when set, every node-to-node call carries an "
       "HMAC-SHA256 of its method, path, body, a timestamp and a nonce, and every /internal/ "
       "endpoint answers 401 to a call without a valid one (never logged or shown in /health; "
       "prefer the environment or a file readable by the server only)"},
      {"kvs.cluster.auth_window_ms", "30000",
       "with kvs.cluster.secret: a node-to-node call whose timestamp is further than this from "
       "the receiver's clock is refused (401), as is a second call with the same nonce within it"},
      {"kvs.admin.token", "",
       "when set, view PUT/DELETE, add-member and reshard require the header "
       "'Authorization: Bearer <token>' (401 otherwise); empty = no token needed (SPEC)"},
      {"kvs.tls.cert", "",
       "PEM certificate (chain) of this node: when set, the node serves HTTPS only (a plain-HTTP "
       "request gets a 400 saying so) and calls its peers over TLS; empty = plain HTTP"},
      {"kvs.tls.key", "", "PEM private key of kvs.tls.cert"},
      {"kvs.tls.ca", "",
       "PEM CA certificate(s) that peers' certificates (and clients' with "
       "kvs.tls.require_client_cert) must chain to"},
      {"kvs.tls.require_client_cert", "false",
       "true: every client, peers included, must present a certificate signed by kvs.tls.ca "
       "(mutual TLS); false: clients need none"},
      {"kvs.tls.verify_peer_name", "true",
       "true: a peer's certificate must name the host it is reached under (its address in the "
       "view: DNS or IP subject alternative name); false: any certificate of kvs.tls.ca will do"},
      {"kvs.net.connect_timeout_ms", "500", "connect timeout of node-to-node calls"},
      {"kvs.net.call_timeout_ms", "2000", "send/receive timeout of node-to-node calls"},
      {"kvs.log.level", "information",
       "fatal, critical, error, warning, notice, information, "
       "debug or trace"},
      {"kvs.log.format", "text",
       "text (one line per event: time, level, logger, message, request_id=ID when it is about "
       "a request) or json (one JSON object per line: ts, level, logger, msg, request_id)"},
      {"kvs.log.requests", "off",
       "access log (logger kvs.access): off, errors (client requests answered 4xx/5xx) or all "
       "(every client request: id, method, target, status, duration, local or forwarded to "
       "whom; costly at high request rates)"},
  };
  return kAll;
}

std::string EnvNameFor(std::string_view key) {
  std::string name(key);
  for (char& c : name) c = c == '.' ? '_' : static_cast<char>(std::toupper(c));
  return name;
}

std::optional<CommandLine> ParseCommandLine(const std::vector<std::string>& args,
                                            std::string& error) {
  CommandLine out;
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h") {
      out.help = true;
      continue;
    }
    if (arg == "--storage-repair") {
      out.values["kvs.storage.repair"] = "true";
      continue;
    }
    const size_t eq = arg.find('=');
    if (!arg.starts_with("--") || eq == std::string::npos) {
      error = "unexpected argument '" + arg + "' (expected --name=value)";
      return std::nullopt;
    }
    const std::string name = arg.substr(2, eq - 2);
    const std::string value = arg.substr(eq + 1);
    if (name == "config") {
      out.config_file = value;
      continue;
    }
    bool known = false;
    for (const Identity& id : kIdentities) {
      if (name == id.env || name == id.flag) {
        out.values[std::string(id.key)] = value;
        known = true;
      }
    }
    if (!known) {
      const std::string key = name.starts_with("kvs.") ? name : "kvs." + name;
      if (!IsTunable(key)) {
        error = "unknown option --" + name + " (see --help)";
        return std::nullopt;
      }
      out.values[key] = value;
    }
  }
  return out;
}

std::string LayerConfiguration(Poco::Util::LayeredConfiguration& config,
                               const CommandLine& command_line, const std::string& binary_dir) {
  Poco::AutoPtr<Poco::Util::MapConfiguration> defaults(new Poco::Util::MapConfiguration);
  for (const Tunable& t : Tunables())
    defaults->setString(std::string(t.key), std::string(t.default_value));
  config.add(defaults, kPrioDefaults);

  std::string file;
  if (command_line.config_file) {
    file = *command_line.config_file;
    if (!Poco::File(file).exists()) throw std::runtime_error("config file " + file + " not found");
  } else {
    const std::string candidates[] = {
        "config/kvs.properties",
        Poco::Path(binary_dir).parent().toString() + "config/kvs.properties",
        Poco::Path(binary_dir).parent().parent().toString() + "config/kvs.properties",
    };
    for (const std::string& candidate : candidates) {
      if (Poco::File(candidate).exists()) {
        file = candidate;
        break;
      }
    }
  }
  if (!file.empty()) {
    try {
      config.add(new Poco::Util::PropertyFileConfiguration(file), kPrioFile);
    } catch (const Poco::Exception& e) {
      throw std::runtime_error("cannot read config file " + file + ": " + e.displayText());
    }
  }

  Poco::AutoPtr<Poco::Util::MapConfiguration> env(new Poco::Util::MapConfiguration);
  for (const Identity& id : kIdentities) {
    if (Poco::Environment::has(std::string(id.env))) {
      env->setString(std::string(id.key), Poco::Environment::get(std::string(id.env)));
    }
  }
  for (const Tunable& t : Tunables()) {
    const std::string name = EnvNameFor(t.key);
    if (Poco::Environment::has(name))
      env->setString(std::string(t.key), Poco::Environment::get(name));
  }
  config.add(env, kPrioEnvironment);

  Poco::AutoPtr<Poco::Util::MapConfiguration> cli(new Poco::Util::MapConfiguration);
  for (const auto& [key, value] : command_line.values) cli->setString(key, value);
  config.add(cli, kPrioCommandLine);
  return file;
}

std::optional<long long> ReadCount(const Poco::Util::AbstractConfiguration& config,
                                   const std::string& key, std::string& error) {
  const std::string text = config.getString(key, "");
  long long value = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < 0) {
    error = key + " '" + text + "' is not a non-negative integer (env " + EnvNameFor(key) + ")";
    return std::nullopt;
  }
  return value;
}

std::vector<std::string> UnknownKvsEnvironment() {
  std::vector<std::string> unknown;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view var(*entry);
    const std::string_view name = var.substr(0, var.find('='));
    if (!name.starts_with("KVS_")) continue;
    const auto& all = Tunables();
    if (std::none_of(all.begin(), all.end(),
                     [&](const Tunable& t) { return EnvNameFor(t.key) == name; })) {
      unknown.emplace_back(name);
    }
  }
  return unknown;
}

std::string UsageText() {
  std::string out =
      "usage: kvs-server [--config=FILE] [--socket-address=IP:PORT] [--view=A,B,...]\n"
      "                  [--shard-count=N] [--storage-repair] [--kvs.<tunable>=VALUE ...]\n"
      "Environment: SOCKET_ADDRESS, VIEW, SHARD_COUNT, and KVS_<TUNABLE> for any tunable.\n"
      "Precedence: command line > environment > config file > built-in default.\n"
      "Tunables:\n";
  for (const Tunable& t : Tunables()) {
    out += "  " + std::string(t.key) + " (env " + EnvNameFor(t.key) + ", default " +
           std::string(t.default_value) + "): " + std::string(t.doc) + "\n";
  }
  return out;
}

}  // namespace kvs::app
