#include "kvs/ctl/args.h"

#include <charconv>
#include <map>

namespace kvs::ctl {
namespace {

struct CommandSpec {
  size_t min_operands;
  size_t max_operands;
};

const std::map<std::string, CommandSpec>& Commands() {
  static const std::map<std::string, CommandSpec> commands = {
      {"get", {1, 1}},    {"put", {2, 2}},      {"delete", {1, 1}},     {"view", {0, 2}},
      {"shards", {0, 0}}, {"shard-id", {0, 0}}, {"add-member", {2, 2}}, {"reshard", {1, 1}},
      {"status", {0, 0}}, {"health", {0, 1}},   {"metrics", {0, 0}},
  };
  return commands;
}

bool ParseInt(const std::string& text, int64_t* out) {
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return ec == std::errc() && ptr == end;
}

ParseResult Fail(std::string error) { return {std::nullopt, std::move(error)}; }

// Checks the operands of `options.command`; "" when they are fine.
std::string CheckOperands(const Options& options) {
  const auto found = Commands().find(options.command);
  if (found == Commands().end()) {
    return "unknown command '" + options.command + "' (see kvsctl --help)";
  }
  const size_t n = options.operands.size();
  const std::vector<std::string>& ops = options.operands;
  if (options.command == "view") {
    if (n == 0) return "";
    if (n == 2 && (ops[0] == "add" || ops[0] == "delete")) {
      std::string host;
      uint16_t port = 0;
      if (!SplitHostPort(ops[1], &host, &port))
        return "view " + ops[0] + ": bad address '" + ops[1] + "' (want ip:port)";
      return "";
    }
    return "view takes no operand, or 'add ADDR' / 'delete ADDR'";
  }
  if (n < found->second.min_operands || n > found->second.max_operands) {
    static const std::map<std::string, std::string> usage = {
        {"get", "get KEY"},           {"put", "put KEY VALUE"},
        {"delete", "delete KEY"},     {"shards", "shards"},
        {"shard-id", "shard-id"},     {"add-member", "add-member SHARD-ID ADDR"},
        {"reshard", "reshard N"},     {"status", "status"},
        {"health", "health [ready]"}, {"metrics", "metrics"}};
    return "usage: kvsctl [options] " + usage.at(options.command);
  }
  int64_t number = 0;
  if (options.command == "reshard" && (!ParseInt(ops[0], &number) || number < 1)) {
    return "reshard: N must be a positive integer, not '" + ops[0] + "'";
  }
  if (options.command == "add-member") {
    if (!ParseInt(ops[0], &number) || number < 0) {
      return "add-member: SHARD-ID must be a non-negative integer, not '" + ops[0] + "'";
    }
    std::string host;
    uint16_t port = 0;
    if (!SplitHostPort(ops[1], &host, &port))
      return "add-member: bad address '" + ops[1] + "' (want ip:port)";
  }
  if (options.command == "health" && n == 1 && ops[0] != "ready") {
    return "usage: kvsctl [options] health [ready]";
  }
  if ((options.command == "get" || options.command == "put" || options.command == "delete") &&
      ops[0].empty()) {
    return options.command + ": the key is empty";
  }
  return "";
}

}  // namespace

int ExitCodeForStatus(int http_status) {
  if (http_status >= 200 && http_status < 300) return kExitOk;
  if (http_status == 401 || http_status == 403) return kExitAuth;
  if (http_status == 0) return kExitUnreachable;
  return kExitRefused;
}

bool SplitHostPort(const std::string& text, std::string* host, uint16_t* port) {
  std::string rest = text;
  for (const char* scheme : {"http://", "https://"}) {
    const std::string s(scheme);
    if (rest.compare(0, s.size(), s) == 0) rest = rest.substr(s.size());
  }
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  const std::string h = rest.substr(0, colon);
  if (h.find_first_of("/ :@?#") != std::string::npos) return false;
  int64_t p = 0;
  if (!ParseInt(rest.substr(colon + 1), &p) || p < 1 || p > 65535) return false;
  *host = h;
  *port = static_cast<uint16_t>(p);
  return true;
}

ParseResult ParseArgs(const std::vector<std::string>& args, const EnvLookup& env) {
  Options options;
  options.node = env("KVS_NODE").value_or("");
  if (options.node.empty()) options.node = kDefaultNode;
  options.token = env("KVS_TOKEN").value_or("");
  options.session_file = env("KVS_SESSION").value_or("");
  std::vector<std::string> positional;
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_done || arg.size() < 2 || arg[0] != '-' || (arg[1] != '-' && arg != "-h")) {
      positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      options.help = true;
      continue;
    }
    std::string name = arg, value;
    bool has_value = false;
    if (const size_t eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    if (name == "--json" || name == "--no-session") {
      if (has_value) return Fail(name + " takes no value");
      if (name == "--json")
        options.json = true;
      else
        options.use_session = false;
      continue;
    }
    static const char* const kValued[] = {"--node", "--token",   "--cacert", "--cert",
                                          "--key",  "--timeout", "--session"};
    bool known = false;
    for (const char* v : kValued) known = known || name == v;
    if (!known) return Fail("unknown option " + name + " (see kvsctl --help)");
    if (!has_value) {
      if (i + 1 >= args.size()) return Fail(name + " needs a value");
      value = args[++i];
    }
    if (name == "--node") {
      options.node = value;
    } else if (name == "--token") {
      options.token = value;
    } else if (name == "--cacert") {
      options.cacert = value;
    } else if (name == "--cert") {
      options.cert = value;
    } else if (name == "--key") {
      options.key = value;
    } else if (name == "--session") {
      if (value.empty()) return Fail("--session needs a file name");
      options.session_file = value;
    } else if (name == "--timeout") {
      if (!ParseInt(value, &options.timeout_ms) || options.timeout_ms < 1 ||
          options.timeout_ms > 24LL * 3600 * 1000) {
        return Fail("--timeout must be a positive number of milliseconds, not '" + value + "'");
      }
    }
  }
  if (options.help) return {options, ""};
  if (!SplitHostPort(options.node, &options.host, &options.port)) {
    return Fail("bad node address '" + options.node + "' (want host:port)");
  }
  if (options.cert.empty() != options.key.empty()) {
    return Fail("--cert and --key go together");
  }
  if (positional.empty()) return Fail("no command given (see kvsctl --help)");
  options.command = positional[0];
  options.operands.assign(positional.begin() + 1, positional.end());
  if (std::string error = CheckOperands(options); !error.empty()) return Fail(error);
  return {options, ""};
}

std::string HelpText() {
  return R"(kvsctl: the operators' command line for a kvs store.

usage: kvsctl [options] COMMAND [operands]

commands:
  get KEY                  the key's value (causal: see --session)
  put KEY VALUE            add or update a key
  delete KEY               delete a key
  view                     the nodes of the view
  view add ADDR            add ip:port to the view (admin)
  view delete ADDR         remove ip:port from the view (admin)
  shards                   every shard: id, members, key count; marks the shard of --node
  shard-id                 the shard of --node
  add-member SHARD ADDR    put node ADDR (in the view, in no shard) into shard SHARD (admin)
  reshard N                spread the keys over N shards (admin); shows progress
  status                   one table: nodes, liveness, readiness, keys, epoch, uptime,
                           replication lag, anti-entropy, storage (GET /status?scope=cluster)
  health [ready]           the node's /health (or /health/ready: 200 once it serves its
                           shard's data)
  metrics                  the node's /metrics (Prometheus text; --json: series -> value)

options:
  --node HOST:PORT    the node to ask (default: $KVS_NODE, then localhost:8082)
  --token T           admin bearer token (default: $KVS_TOKEN)
  --cacert FILE       speak HTTPS and verify the node against this CA
  --cert FILE --key FILE   client certificate for mutual TLS (implies HTTPS)
  --timeout MS        bound of every request (default 5000); reshard and add-member wait
                      as long as they run, polling the node's progress within this bound
  --json              print JSON (the server's answer, or kvsctl's own object)
  --session FILE      the causal session file (default: $KVS_SESSION, then
                      ~/.kvsctl/session.json); get/put/delete send its causal metadata
                      and store the one returned
  --no-session        send no causal metadata and store none
  -h, --help          this text

exit codes:
  0  ok
  1  the server said no (4xx/5xx, including a key that does not exist)
  2  usage error
  3  the node is unreachable or did not answer in time (incl. TLS failures)
  4  authentication refused (401/403: missing or wrong --token / certificate)

Errors are one line on stderr naming the node and the reason.
)";
}

}  // namespace kvs::ctl
