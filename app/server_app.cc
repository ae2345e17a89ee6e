#include "server_app.h"

#include <Poco/AutoPtr.h>
#include <Poco/ConsoleChannel.h>
#include <Poco/FormattingChannel.h>
#include <Poco/Logger.h>
#include <Poco/Path.h>
#include <Poco/PatternFormatter.h>

#include <chrono>
#include <iostream>
#include <variant>

#include "kvs/api/http_server.h"
#include "kvs/api/metrics.h"
#include "kvs/api/service.h"
#include "kvs/causal/hybrid_clock.h"
#include "kvs/cluster/cluster_config.h"
#include "kvs/cluster/cluster_state.h"
#include "kvs/replication/coordinator.h"
#include "kvs/store/store.h"

namespace kvs::app {
namespace {

int StartupError(const std::string& problem) {
  std::cerr << "kvs-server: error: " << problem << std::endl;
  return Poco::Util::Application::EXIT_CONFIG;
}

void SetUpLogging(const std::string& level) {
  Poco::AutoPtr<Poco::PatternFormatter> formatter(
      new Poco::PatternFormatter("%Y-%m-%dT%H:%M:%S.%iZ %p %s: %t"));
  Poco::AutoPtr<Poco::FormattingChannel> channel(
      new Poco::FormattingChannel(formatter, new Poco::ConsoleChannel));
  Poco::Logger::root().setChannel(channel);
  Poco::Logger::root().setLevel(level);
}

std::optional<std::string> Optional(const Poco::Util::AbstractConfiguration& config,
                                    const std::string& key) {
  if (!config.has(key)) return std::nullopt;
  return config.getString(key);
}

}  // namespace

void ServerApp::initialize(Poco::Util::Application& self) {
  // Not calling loadConfiguration(): the layers are ours (SPEC §1 precedence).
  try {
    config_file_ = LayerConfiguration(
        config(), command_line_, Poco::Path(config().getString("application.dir", ".")).toString());
  } catch (const std::exception& e) {
    config_error_ = e.what();
  }
  ServerApplication::initialize(self);
}

int ServerApp::main(const std::vector<std::string>&) {
  if (command_line_.help) {
    std::cout << UsageText();
    return EXIT_OK;
  }
  if (!config_error_.empty()) return StartupError(config_error_);
  auto& cfg = config();

  auto validated = cluster::ValidateStartup(cluster::StartupInput{
      Optional(cfg, "socket_address"), Optional(cfg, "view"), Optional(cfg, "shard_count")});
  if (auto* problem = std::get_if<std::string>(&validated)) return StartupError(*problem);
  const cluster::StartupPlan plan = std::get<cluster::StartupPlan>(std::move(validated));

  std::string error;
  const std::map<std::string, long long> counts = [&] {
    std::map<std::string, long long> out;
    for (const char* key : {"kvs.http.threads", "kvs.http.max_queued", "kvs.http.backlog",
                            "kvs.http.receive_timeout_ms", "kvs.http.keepalive_timeout_ms",
                            "kvs.http.max_keepalive_requests", "kvs.http.shutdown_grace_ms",
                            "kvs.limits.max_body_bytes", "kvs.limits.max_value_bytes"}) {
      if (!error.empty()) break;
      if (auto v = ReadCount(cfg, key, error)) out[key] = *v;
    }
    return out;
  }();
  if (!error.empty()) return StartupError(error);
  if (counts.at("kvs.http.threads") < 1) return StartupError("kvs.http.threads must be >= 1");
  try {
    SetUpLogging(cfg.getString("kvs.log.level"));
  } catch (const Poco::Exception&) {
    return StartupError("kvs.log.level '" + cfg.getString("kvs.log.level") +
                        "' is not a log level");
  }
  Poco::Logger& log = Poco::Logger::get("kvs");
  log.information("config file: %s",
                  config_file_.empty() ? std::string("(none, defaults)") : config_file_);
  for (const std::string& name : UnknownKvsEnvironment()) {
    log.warning("ignoring environment variable %s: it names no tunable", name);
  }
  if (plan.single_node) {
    log.warning("single-node store (VIEW is only %s): it is not fault-tolerant",
                plan.self.ToString());
  }

  // The node's parts, owned here and passed down by reference.
  store::Store store;
  causal::HybridClock clock;
  const std::string origin =
      plan.self.ToString() + "#" + std::to_string(causal::HybridClock::SystemMillis());
  cluster::ClusterConfig initial = plan.shard_count
                                       ? cluster::InitialAssignment(plan.view, *plan.shard_count)
                                       : cluster::ClusterConfig{};
  cluster::ClusterState cluster_state(plan.self, plan.view, std::move(initial));
  replication::Coordinator coordinator(store, clock, origin);
  api::Metrics metrics;
  api::Limits limits;
  limits.max_body_bytes = static_cast<size_t>(counts.at("kvs.limits.max_body_bytes"));
  limits.max_value_bytes = static_cast<size_t>(counts.at("kvs.limits.max_value_bytes"));
  api::Service service(store, cluster_state, coordinator, metrics, limits);

  using std::chrono::milliseconds;
  api::HttpOptions http;
  http.bind_host = cfg.getString("kvs.http.bind");
  http.port = plan.self.port;
  http.threads = static_cast<int>(counts.at("kvs.http.threads"));
  http.max_queued = static_cast<int>(counts.at("kvs.http.max_queued"));
  http.backlog = static_cast<int>(counts.at("kvs.http.backlog"));
  http.receive_timeout = milliseconds(counts.at("kvs.http.receive_timeout_ms"));
  http.keepalive_timeout = milliseconds(counts.at("kvs.http.keepalive_timeout_ms"));
  http.max_keepalive_requests = static_cast<int>(counts.at("kvs.http.max_keepalive_requests"));
  api::HttpServer server(service, http);
  try {
    server.Start();
  } catch (const Poco::Exception& e) {
    return StartupError("cannot listen on " + http.bind_host + ":" + std::to_string(http.port) +
                        ": " + e.displayText());
  }

  const auto my_shard = cluster_state.MyShard();
  log.information(
      "kvs-server %s serving on %s:%hu (origin %s, shard %s, %d shard(s), view %s)",
      plan.self.ToString(), http.bind_host, http.port, origin,
      my_shard ? std::to_string(*my_shard) : std::string("none: waiting for add-member"),
      cluster_state.Config()->shard_count(), cluster::JoinAddresses(cluster_state.View()));

  waitForTerminationRequest();
  log.information("termination requested: draining in-flight requests");
  server.Stop(milliseconds(counts.at("kvs.http.shutdown_grace_ms")));
  log.information("stopped cleanly (%z live keys in memory)",
                  static_cast<size_t>(store.live_count()));
  return EXIT_OK;
}

}  // namespace kvs::app
