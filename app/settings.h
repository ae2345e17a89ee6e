// Start-up configuration of kvs-server: the table of tunables with defaults and docs, and the
// layering file < environment < command line on a Poco::Util::LayeredConfiguration.
// Plain functions; used once at start-up from the main thread.
#pragma once

#include <Poco/Util/LayeredConfiguration.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvs::app {

struct Tunable {
  std::string_view key;  // e.g. "kvs.http.threads"
  std::string_view default_value;
  std::string_view doc;
};

// Every tunable the server reads. config/kvs.properties documents the same keys.
const std::vector<Tunable>& Tunables();

// "kvs.limits.max_body_bytes" -> "KVS_LIMITS_MAX_BODY_BYTES".
std::string EnvNameFor(std::string_view key);

// The command line, parsed: `--name=value` pairs mapped to configuration keys, plus
// `--config=FILE`. Identity keys are "socket_address", "view", "shard_count".
struct CommandLine {
  std::map<std::string, std::string> values;
  std::optional<std::string> config_file;
  bool help = false;
};

// Parses argv[1..]; on error returns nullopt with a one-line reason in `error`.
std::optional<CommandLine> ParseCommandLine(const std::vector<std::string>& args,
                                            std::string& error);

// Adds the layers to `config` (lowest to highest precedence): built-in defaults, the
// properties file (if any), the environment (SOCKET_ADDRESS, VIEW, SHARD_COUNT, KVS_*), the
// command line. Returns the path of the file loaded, or "" when none. Throws
// std::runtime_error (one line) when an explicitly named file cannot be read.
std::string LayerConfiguration(Poco::Util::LayeredConfiguration& config,
                               const CommandLine& command_line, const std::string& binary_dir);

// Reads a non-negative integer tunable; nullopt with `error` set when it is not one.
std::optional<long long> ReadCount(const Poco::Util::AbstractConfiguration& config,
                                   const std::string& key, std::string& error);

// KVS_* environment variables that name no tunable (likely typos), for a warning.
std::vector<std::string> UnknownKvsEnvironment();

std::string UsageText();

}  // namespace kvs::app
