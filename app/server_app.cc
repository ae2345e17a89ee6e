#include "server_app.h"

#include <Poco/AutoPtr.h>
#include <Poco/ConsoleChannel.h>
#include <Poco/FormattingChannel.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Logger.h>
#include <Poco/Path.h>
#include <Poco/Util/Timer.h>
#include <Poco/Util/TimerTask.h>

#include <chrono>
#include <functional>
#include <iostream>
#include <limits>
#include <thread>
#include <variant>

#include "kvs/api/event_server.h"
#include "kvs/api/http_server.h"
#include "kvs/api/metrics.h"
#include "kvs/api/request_log.h"
#include "kvs/api/service.h"
#include "kvs/auth/cluster_auth.h"
#include "kvs/causal/hybrid_clock.h"
#include "kvs/cluster/cluster_config.h"
#include "kvs/cluster/cluster_state.h"
#include "kvs/cluster/failure_detector.h"
#include "kvs/json/json_writer.h"
#include "kvs/net/peer_client.h"
#include "kvs/net/tls.h"
#include "kvs/replication/coordinator.h"
#include "kvs/replication/reconfigurator.h"
#include "kvs/replication/recovery.h"
#include "kvs/replication/replicator.h"
#include "kvs/replication/wire.h"
#include "kvs/storage/data_dir.h"
#include "kvs/storage/journal.h"
#include "kvs/store/memory.h"
#include "kvs/store/store.h"

namespace kvs::app {
namespace {

// A damaged data directory (EX_DATAERR): the operator decides (--storage-repair).
constexpr int kExitDamagedData = 65;

int StartupError(const std::string& problem) {
  std::cerr << "kvs-server: error: " << problem << std::endl;
  return Poco::Util::Application::EXIT_CONFIG;
}

// Lines as "<UTC time> <Level> <logger>: <text>[ request_id=ID]" (kvs.log.format=text) or one
// JSON object each (json); the id is the request the logging thread serves (request_log.h).
void SetUpLogging(const std::string& level, api::LogFormat format) {
  Poco::AutoPtr<api::LogFormatter> formatter(new api::LogFormatter(format));
  Poco::AutoPtr<Poco::FormattingChannel> channel(
      new Poco::FormattingChannel(formatter, new Poco::ConsoleChannel));
  Poco::Logger::root().setChannel(channel);
  Poco::Logger::root().setLevel(level);
}

// Runs a function on a POCO timer thread; an exception is logged, never lets the timer die.
class FunctionTask : public Poco::Util::TimerTask {
 public:
  FunctionTask(std::string name, std::function<void()> fn)
      : name_(std::move(name)), fn_(std::move(fn)) {}
  void run() override {
    try {
      fn_();
    } catch (const Poco::Exception& e) {
      Poco::Logger::get("kvs").error("%s failed: %s", name_, e.displayText());
    } catch (const std::exception& e) {
      Poco::Logger::get("kvs").error("%s failed: %s", name_, std::string(e.what()));
    }
  }

 private:
  std::string name_;
  std::function<void()> fn_;
};

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
    for (const char* key : {"kvs.http.threads",
                            "kvs.http.loops",
                            "kvs.http.max_connections",
                            "kvs.http.max_connections_per_ip",
                            "kvs.http.max_queued",
                            "kvs.http.backlog",
                            "kvs.http.receive_timeout_ms",
                            "kvs.http.keepalive_timeout_ms",
                            "kvs.http.max_keepalive_requests",
                            "kvs.http.shutdown_grace_ms",
                            "kvs.limits.max_body_bytes",
                            "kvs.limits.max_value_bytes",
                            "kvs.cluster.heartbeat_period_ms",
                            "kvs.cluster.failure_timeout_ms",
                            "kvs.replication.anti_entropy_period_ms",
                            "kvs.replication.dependency_wait_ms",
                            "kvs.replication.bootstrap_timeout_ms",
                            "kvs.replication.transfer_chunk_bytes",
                            "kvs.replication.recent_updates",
                            "kvs.replication.recent_updates_percent",
                            "kvs.replication.batch_max",
                            "kvs.replication.batch_linger_us",
                            "kvs.net.connect_timeout_ms",
                            "kvs.net.call_timeout_ms",
                            "kvs.cluster.auth_window_ms",
                            "kvs.storage.fsync_interval_ms",
                            "kvs.storage.snapshot_min_log_bytes",
                            "kvs.storage.snapshot_log_percent",
                            "kvs.storage.snapshot_max_log_bytes",
                            "kvs.storage.segment_bytes"}) {
      if (!error.empty()) break;
      if (auto v = ReadCount(cfg, key, error)) out[key] = *v;
    }
    return out;
  }();
  if (!error.empty()) return StartupError(error);
  const std::string frontend = cfg.getString("kvs.http.frontend");
  if (frontend != "epoll" && frontend != "poco") {
    return StartupError("kvs.http.frontend '" + frontend + "' must be epoll or poco");
  }
  const std::string storage_mode = cfg.getString("kvs.storage.mode");
  if (storage_mode != "disk" && storage_mode != "memory") {
    return StartupError("kvs.storage.mode '" + storage_mode + "' must be disk or memory");
  }
  const std::optional<storage::FsyncPolicy> fsync =
      storage::ParseFsyncPolicy(cfg.getString("kvs.storage.fsync"));
  if (!fsync) {
    return StartupError("kvs.storage.fsync '" + cfg.getString("kvs.storage.fsync") +
                        "' must be always, interval or never");
  }
  const std::string repair_text = cfg.getString("kvs.storage.repair");
  if (repair_text != "true" && repair_text != "false") {
    return StartupError("kvs.storage.repair '" + repair_text + "' must be true or false");
  }
  const std::string direct_text = cfg.getString("kvs.storage.direct_io");
  if (direct_text != "true" && direct_text != "false") {
    return StartupError("kvs.storage.direct_io '" + direct_text + "' must be true or false");
  }
  const std::string huge_pages_text = cfg.getString("kvs.store.huge_pages");
  if (huge_pages_text != "true" && huge_pages_text != "false") {
    return StartupError("kvs.store.huge_pages '" + huge_pages_text + "' must be true or false");
  }
  const bool recovery_huge_pages = huge_pages_text == "true";
  store::SetHugePages(false);  // see the recovery below
  const std::string cluster_id = cfg.getString("kvs.cluster.id");
  if (cluster_id.empty() || cluster_id.find_first_of("\n\r") != std::string::npos) {
    return StartupError("kvs.cluster.id must be a non-empty single line");
  }
  for (const char* key : {"kvs.http.max_connections", "kvs.http.max_connections_per_ip"}) {
    if (counts.at(key) > std::numeric_limits<int>::max()) {
      return StartupError(std::string(key) +
                          " must be <= " + std::to_string(std::numeric_limits<int>::max()));
    }
  }
  for (const char* key :
       {"kvs.http.threads", "kvs.http.max_connections", "kvs.cluster.heartbeat_period_ms",
        "kvs.cluster.failure_timeout_ms", "kvs.replication.anti_entropy_period_ms",
        "kvs.replication.batch_max", "kvs.net.connect_timeout_ms", "kvs.net.call_timeout_ms",
        "kvs.storage.fsync_interval_ms", "kvs.cluster.auth_window_ms"}) {
    if (counts.at(key) < 1) return StartupError(std::string(key) + " must be >= 1");
  }
  const std::optional<api::LogFormat> log_format =
      api::ParseLogFormat(cfg.getString("kvs.log.format"));
  if (!log_format) {
    return StartupError("kvs.log.format '" + cfg.getString("kvs.log.format") +
                        "' must be text or json");
  }
  const std::optional<api::RequestLogMode> request_log =
      api::ParseRequestLogMode(cfg.getString("kvs.log.requests"));
  if (!request_log) {
    return StartupError("kvs.log.requests '" + cfg.getString("kvs.log.requests") +
                        "' must be off, errors or all");
  }
  try {
    SetUpLogging(cfg.getString("kvs.log.level"), *log_format);
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
  if (frontend == "poco" && counts.at("kvs.http.max_connections_per_ip") > 0) {
    log.warning(
        "kvs.http.max_connections_per_ip is not enforced by the poco front end (epoll only)");
  }
  if (plan.single_node) {
    log.warning("single-node store (VIEW is only %s): it is not fault-tolerant",
                plan.self.ToString());
  }

  using std::chrono::milliseconds;
  auto ms = [&](const char* key) { return milliseconds(counts.at(key)); };
  // Storage: lock and check the data directory, and take this run's incarnation from it (a
  // fresh, durably recorded number: no (origin, seq) of an earlier run can be reused).
  uint64_t incarnation = causal::HybridClock::SystemMillis();
  std::unique_ptr<storage::Journal> journal;
  if (storage_mode == "disk") {
    std::string dir = cfg.getString("kvs.storage.dir");
    if (dir.empty()) dir = "kvs-data/" + plan.self.host + "_" + std::to_string(plan.self.port);
    std::string error;
    auto data_dir =
        storage::DataDir::Open(dir, plan.self.ToString(), cluster_id, incarnation, error);
    if (!data_dir) return StartupError(error);
    incarnation = data_dir->incarnation();
    storage::JournalOptions journal_options;
    journal_options.wal.fsync = *fsync;
    journal_options.wal.fsync_interval = ms("kvs.storage.fsync_interval_ms");
    journal_options.snapshot_min_log_bytes =
        static_cast<uint64_t>(counts.at("kvs.storage.snapshot_min_log_bytes"));
    journal_options.snapshot_log_percent =
        static_cast<uint64_t>(counts.at("kvs.storage.snapshot_log_percent"));
    journal_options.snapshot_max_log_bytes =
        static_cast<uint64_t>(counts.at("kvs.storage.snapshot_max_log_bytes"));
    journal_options.wal.segment_bytes =
        static_cast<uint64_t>(counts.at("kvs.storage.segment_bytes"));
    journal_options.repair = repair_text == "true";
    journal_options.wal.direct_io = direct_text == "true";
    journal = std::make_unique<storage::Journal>(std::move(data_dir), journal_options);
  } else {
    log.warning(
        "kvs.storage.mode=memory: data is kept in memory only; a restart loses this "
        "node's data");
    journal = std::make_unique<storage::Journal>();
  }

  // The node's parts, owned here and passed down by reference.
  store::Store store;
  causal::HybridClock clock;
  const std::string origin = plan.self.ToString() + "#" + std::to_string(incarnation);
  cluster::ClusterConfig initial = plan.shard_count
                                       ? cluster::InitialAssignment(plan.view, *plan.shard_count)
                                       : cluster::ClusterConfig{};
  cluster::ClusterState cluster_state(plan.self, plan.view, std::move(initial));
  // The secret and the token are read here and never logged, echoed or shown in /health.
  auth::ClusterAuth cluster_auth(cfg.getString("kvs.cluster.secret"),
                                 ms("kvs.cluster.auth_window_ms"));
  const std::string admin_token = cfg.getString("kvs.admin.token");
  log.information("node-to-node authentication: %s; admin token: %s",
                  std::string(cluster_auth.enabled() ? "on (kvs.cluster.secret set)"
                                                     : "off (kvs.cluster.secret empty)"),
                  std::string(admin_token.empty() ? "off" : "required"));
  std::unique_ptr<net::Tls> tls;
  {
    net::TlsOptions tls_options;
    tls_options.cert = cfg.getString("kvs.tls.cert");
    tls_options.key = cfg.getString("kvs.tls.key");
    tls_options.ca = cfg.getString("kvs.tls.ca");
    for (const auto& [key, flag] : {std::pair<const char*, bool*>{"kvs.tls.require_client_cert",
                                                                  &tls_options.require_client_cert},
                                    {"kvs.tls.verify_peer_name", &tls_options.verify_peer_name}}) {
      const std::string text = cfg.getString(key);
      if (text != "true" && text != "false") {
        return StartupError(std::string(key) + " '" + text + "' must be true or false");
      }
      *flag = text == "true";
    }
    if (tls_options.enabled()) {
      std::string error;
      tls = net::Tls::Create(tls_options, error);
      if (!tls) return StartupError(error);
      log.information(
          "TLS on: serving HTTPS with %s; client certificates %s; peers verified "
          "against %s%s",
          tls_options.cert,
          std::string(tls_options.require_client_cert ? "required" : "not required"),
          tls_options.ca, std::string(tls_options.verify_peer_name ? " and by name" : ""));
    } else if (!tls_options.key.empty() || !tls_options.ca.empty()) {
      return StartupError("kvs.tls.key and kvs.tls.ca need kvs.tls.cert (TLS is off without it)");
    }
  }
  net::PeerClient peers(ms("kvs.net.connect_timeout_ms"), 8, &cluster_auth, tls.get());
  replication::ReplicationOptions replication_options;
  replication_options.dependency_wait = ms("kvs.replication.dependency_wait_ms");
  replication_options.bootstrap_timeout = ms("kvs.replication.bootstrap_timeout_ms");
  replication_options.recent_updates =
      static_cast<size_t>(counts.at("kvs.replication.recent_updates"));
  replication_options.recent_updates_percent =
      static_cast<size_t>(counts.at("kvs.replication.recent_updates_percent"));
  replication_options.transfer_chunk_bytes =
      std::max<size_t>(1, static_cast<size_t>(counts.at("kvs.replication.transfer_chunk_bytes")));
  replication_options.sender.call_timeout = ms("kvs.net.call_timeout_ms");
  replication_options.sender.batch_max =
      static_cast<size_t>(counts.at("kvs.replication.batch_max"));
  replication_options.sender.linger =
      std::chrono::microseconds(counts.at("kvs.replication.batch_linger_us"));
  replication::Replicator replicator(store, clock, cluster_state, peers, replication_options,
                                     journal.get());
  replication::Coordinator coordinator(store, clock, replicator, origin, journal.get());
  replication::Reconfigurator reconfigurator(store, clock, cluster_state, peers, replicator,
                                             coordinator, replication::ReconfigureOptions{},
                                             journal.get());

  const std::string self = plan.self.ToString();
  const milliseconds ping_timeout =
      std::min(ms("kvs.cluster.heartbeat_period_ms"), milliseconds(1000));
  cluster::FailureDetector::Transport transport{
      [&peers, &cluster_state, &reconfigurator, self, ping_timeout](const cluster::Address& peer) {
        const net::CallResult reply = peers.Call(
            peer.ToString(), "GET", "/internal/heartbeat?from=" + self, "", ping_timeout);
        if (!reply.ok()) return false;
        // Every heartbeat also compares layouts: a peer ahead of us has a configuration to
        // hand over (a change this node missed while down or cut off).
        try {
          Poco::JSON::Parser parser;
          auto object = parser.parse(reply.body).extract<Poco::JSON::Object::Ptr>();
          const auto ours = cluster_state.Config();
          const auto epoch = object->getValue<uint64_t>("epoch");
          const int shards = object->optValue<int>("shards", 0);
          if (epoch > ours->epoch || (ours->shard_count() == 0 && shards > 0)) {
            reconfigurator.FetchConfigFrom(peer.ToString());
          }
        } catch (const Poco::Exception&) {
          // An old or odd peer: liveness is all we needed.
        }
        return true;
      },
      [&peers, ping_timeout](const cluster::Address& to, const cluster::Address& subject, bool up,
                             bool forget) {
        const std::string body = json::JsonObject()
                                     .Str("address", subject.ToString())
                                     .Str("change", up       ? "up"
                                                    : forget ? "forget"
                                                             : "down")
                                     .Finish();
        peers.Call(to.ToString(), "POST", "/internal/view", body, ping_timeout);
      }};
  cluster::FailureDetector detector(cluster_state, transport, ms("kvs.cluster.heartbeat_period_ms"),
                                    ms("kvs.cluster.failure_timeout_ms"));

  api::Metrics metrics;
  api::Limits limits;
  limits.max_body_bytes = static_cast<size_t>(counts.at("kvs.limits.max_body_bytes"));
  limits.max_value_bytes = static_cast<size_t>(counts.at("kvs.limits.max_value_bytes"));
  api::Service service(store, cluster_state, detector, replicator, coordinator, reconfigurator,
                       peers, metrics, limits, journal.get(),
                       api::Security{&cluster_auth, admin_token});
  if (journal->enabled()) service.SetRecovering(true);
  service.SetRequestLog(*request_log);

  api::HttpOptions http;
  http.bind_host = cfg.getString("kvs.http.bind");
  http.port = plan.self.port;
  http.threads = static_cast<int>(counts.at("kvs.http.threads"));
  http.max_queued = static_cast<int>(counts.at("kvs.http.max_queued"));
  http.backlog = static_cast<int>(counts.at("kvs.http.backlog"));
  http.receive_timeout = milliseconds(counts.at("kvs.http.receive_timeout_ms"));
  http.keepalive_timeout = milliseconds(counts.at("kvs.http.keepalive_timeout_ms"));
  http.max_keepalive_requests = static_cast<int>(counts.at("kvs.http.max_keepalive_requests"));
  http.tls = tls.get();
  std::optional<api::HttpServer> poco_server;
  std::optional<api::EventServer> event_server;
  if (frontend == "poco") {
    poco_server.emplace(service, http);
  } else {
    api::EventServerOptions options;
    options.bind_host = http.bind_host;
    options.port = http.port;
    options.loops = static_cast<int>(counts.at("kvs.http.loops"));
    options.tls = tls.get();
    options.workers = http.threads;
    options.backlog = http.backlog;
    options.max_connections = static_cast<int>(counts.at("kvs.http.max_connections"));
    options.max_connections_per_ip = static_cast<int>(counts.at("kvs.http.max_connections_per_ip"));
    options.metrics = &metrics;
    options.receive_timeout = http.receive_timeout;
    options.keepalive_timeout = http.keepalive_timeout;
    options.max_keepalive_requests = http.max_keepalive_requests;
    const std::string loop_forwarding = cfg.getString("kvs.http.loop_forwarding");
    if (loop_forwarding != "true" && loop_forwarding != "false") {
      return StartupError("kvs.http.loop_forwarding '" + loop_forwarding +
                          "' must be true or false");
    }
    options.forward_on_loops = loop_forwarding == "true";
    event_server.emplace(service, options);
  }
  try {
    if (poco_server) poco_server->Start();
    if (event_server) event_server->Start();
  } catch (const Poco::Exception& e) {
    return StartupError("cannot listen on " + http.bind_host + ":" + std::to_string(http.port) +
                        ": " + e.displayText());
  }
  const std::string frontend_text =
      event_server ? "epoll front end, " + std::to_string(event_server->loop_count()) +
                         " loop(s) + " + std::to_string(http.threads) + " worker(s)"
                   : "POCO HTTPServer, " + std::to_string(http.threads) + " thread(s)";

  // Recovery, with the port already open (/health says "ready": false, everything else 503):
  // newest snapshot + the log after it, then only the keys the recovered layout gives this
  // node. Peers fill in what happened meanwhile (Replicator::Bootstrap, a delta) before the
  // node reports ready.
  if (journal->enabled()) {
    replication::StoreRecovery sink(store, clock, replicator, plan.self);
    // A bulk load fills the store's memory densely: huge pages cost it nothing and spare it
    // most page faults. Afterwards, writes allocate a little at a time on many threads, where
    // partly used huge pages only add to the RSS (README "Memory").
    store::SetHugePages(recovery_huge_pages);
    const storage::RecoveryReport report = journal->Recover(sink);
    store::SetHugePages(false);
    if (!report.ok) {
      std::cerr << "kvs-server: error: " << report.error << std::endl;
      return kExitDamagedData;
    }
    std::string error;
    if (!sink.layout().empty()) {
      if (auto config = replication::DecodeConfig(sink.layout(), error)) {
        cluster_state.AdoptConfig(*config);
      } else {
        log.warning("storage: recovered layout unreadable (%s); using the configured one", error);
      }
    }
    const std::optional<int> mine = cluster_state.MyShard();
    size_t dropped = sink.dropped();
    if (!sink.HoldsOnlyOwned(cluster_state.Config()->shard_count(), mine)) {
      dropped += store.EraseIf([&](std::string_view key, const store::EntryView&) {
        return !mine || cluster_state.ShardForKey(key) != mine;
      });
    }
    replicator.SetRecovered(sink.has_data(), report.repaired);
    std::string summary = "storage: recovered " + std::to_string(store.live_count()) +
                          " live keys (" + std::to_string(store.size()) + " entries) from " +
                          journal->dir()->path() + " in " + std::to_string(report.took.count()) +
                          " ms: " + std::to_string(report.snapshot_entries) +
                          " snapshot entries, " + std::to_string(report.log_records) +
                          " log records in " + std::to_string(report.segments) + " segment(s)";
    if (report.torn_bytes_cut > 0) {
      summary += ", torn tail of " + std::to_string(report.torn_bytes_cut) + " bytes cut";
    }
    if (dropped > 0) summary += ", " + std::to_string(dropped) + " entries no longer owned dropped";
    if (report.repaired) summary += ", REPAIRED (a full copy comes from the shard's peers)";
    log.information("%s; incarnation %s", summary, std::to_string(incarnation));
    if (!journal->Start(error)) return StartupError("storage: " + error);
    journal->StartSnapshots(
        store, [&replicator] { return replicator.AppliedVector(); },
        [&cluster_state] { return replication::EncodeConfig(*cluster_state.Config()); });
    log.information("storage: writing the log in %s (fsync=%s)", journal->dir()->path(),
                    std::string(storage::ToString(*fsync)));
    service.SetRecovering(false);
  }

  // Load the shard's data from peers while already answering them (they may be starting too).
  std::thread bootstrap([&reconfigurator] { reconfigurator.Start(); });
  Poco::Util::Timer heartbeat_timer;
  Poco::Util::Timer anti_entropy_timer;
  heartbeat_timer.scheduleAtFixedRate(
      new FunctionTask("heartbeat",
                       [&detector, &reconfigurator] {
                         detector.Tick();
                         reconfigurator.CheckFreeze();  // a reshard whose coordinator vanished
                       }),
      0, detector.tick_interval().count());
  // Memory that writes filled is in 4 KiB pages: the anti-entropy task also moves the dense
  // parts of a big store into huge pages, 32 MiB a round (store/memory.h). A small store keeps
  // its pages: the ~1.5% more RSS would buy it nothing that shows (idle at 1M keys is
  // 0.3-0.5% of a core either way).
  constexpr uint64_t kCollapseFromBytes = uint64_t{512} << 20;  // ~2.5M keys of 100 bytes
  auto anti_entropy_round = [&replicator, recovery_huge_pages] {
    if (replicator.ready()) replicator.AntiEntropyRound();
    if (recovery_huge_pages && store::GetMemoryStats().region_bytes >= kCollapseFromBytes) {
      store::CollapseDenseRanges(16);
    }
  };
  anti_entropy_timer.scheduleAtFixedRate(new FunctionTask("anti-entropy", anti_entropy_round),
                                         counts.at("kvs.replication.anti_entropy_period_ms"),
                                         counts.at("kvs.replication.anti_entropy_period_ms"));

  const auto my_shard = cluster_state.MyShard();
  log.information(
      "kvs-server %s serving on %s:%hu with the %s (origin %s, shard %s, %d shard(s), view %s)",
      plan.self.ToString(), http.bind_host, http.port, frontend_text, origin,
      my_shard ? std::to_string(*my_shard) : std::string("none: waiting for add-member"),
      cluster_state.Config()->shard_count(), cluster::JoinAddresses(cluster_state.View()));

  waitForTerminationRequest();
  log.information("termination requested: draining in-flight requests");
  heartbeat_timer.cancel(/*wait=*/true);
  anti_entropy_timer.cancel(/*wait=*/true);
  if (poco_server) poco_server->Stop(milliseconds(counts.at("kvs.http.shutdown_grace_ms")));
  if (event_server) event_server->Stop(milliseconds(counts.at("kvs.http.shutdown_grace_ms")));
  bootstrap.join();
  journal->Stop();  // everything logged is written and synced
  log.information("stopped cleanly (%z live keys in memory)",
                  static_cast<size_t>(store.live_count()));
  return EXIT_OK;
}

}  // namespace kvs::app
