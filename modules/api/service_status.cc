// GET /status and GET /status?scope=cluster (Service's part: gathering the figures; status.cc
// renders them).
#include <algorithm>
#include <future>
#include <set>

#include "kvs/api/service.h"
#include "kvs/api/status_page.h"
#include "kvs/json/json_writer.h"

namespace kvs::api {
namespace {

int64_t AgeMs(std::chrono::steady_clock::time_point now, std::chrono::steady_clock::time_point t) {
  return std::max<int64_t>(0,
                           std::chrono::duration_cast<std::chrono::milliseconds>(now - t).count());
}

}  // namespace

NodeStatus Service::Status() const {
  const auto now = std::chrono::steady_clock::now();
  NodeStatus s;
  s.address = cluster_.self().ToString();
  s.shard_id = cluster_.MyShard();
  s.ready = replicator_.ready() && !recovering_.load(std::memory_order_acquire);
  s.keys = replicator_.OwnedLiveCount();
  const std::shared_ptr<const cluster::ClusterConfig> config = cluster_.Config();
  s.epoch = config->epoch;
  s.uptime_s = std::chrono::duration<double>(now - started_).count();
  for (const cluster::Address& a : cluster_.View()) s.view.push_back(a.ToString());
  for (const auto& members : config->shards) {
    std::vector<std::string> names;
    names.reserve(members.size());
    for (const cluster::Address& a : members) names.push_back(a.ToString());
    s.shards.push_back(std::move(names));
  }
  for (const auto& peer : detector_.Peers()) {
    s.peers.push_back({peer.first.ToString(), peer.second});
  }
  for (const replication::Replicator::PeerQueue& q : replicator_.QueueSnapshot()) {
    s.replication.push_back({q.peer, q.queued, q.oldest_age_ms});
  }
  const replication::Replicator::AntiEntropyStatus ae = replicator_.AntiEntropy();
  if (ae.last_run) s.anti_entropy_last_run_age_ms = AgeMs(now, *ae.last_run);
  if (ae.last_repair) s.anti_entropy_last_repair_age_ms = AgeMs(now, *ae.last_repair);
  s.anti_entropy_last_repair_entries = ae.last_repair_entries;
  s.anti_entropy_repaired_total = ae.repaired_total;
  if (journal_ != nullptr && journal_->enabled()) {
    s.disk = true;
    s.data_dir = journal_->dir()->path();
    s.data_bytes = journal_->DiskBytes();
  }
  const WindowSummary window = stats_.Window(
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count(),
      std::chrono::duration_cast<std::chrono::seconds>(started_.time_since_epoch()).count());
  s.requests_per_s = window.requests_per_s;
  s.p50_ms = window.p50_ms;
  s.p99_ms = window.p99_ms;
  if (const auto op = reconfigurator_.CurrentOperation()) {
    s.operation =
        NodeStatus::Operation{op->kind, op->phase, op->done, op->total, AgeMs(now, op->started)};
  }
  return s;
}

Response Service::HandleStatusPage(std::string_view method) const {
  if (method != "GET") return MethodNotAllowed(method, "GET");
  Response page;
  page.body = std::string(StatusPageHtml());
  page.content_type = "text/html; charset=utf-8";
  page.AddHeader("Content-Security-Policy", std::string(kStatusPageCsp));
  return page;
}

Response Service::HandleStatus(std::string_view method, std::string_view target) {
  if (method != "GET") return MethodNotAllowed(method, "GET");
  const size_t q = target.find('?');
  const std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);
  Response response;
  if (q == std::string_view::npos) {
    response.body = RenderNodeStatus(Status());
    return response;
  }
  if (query == "scope=cluster") return ClusterStatus();
  return ErrorResponse(400, "Unknown query: only scope=cluster is accepted", method);
}

Response Service::ClusterStatus() {
  // Every node this one knows of: the view, the nodes its failure detector watches (so that a
  // node down shows with its error) and the shards' members; sorted, as the view is.
  const std::shared_ptr<const cluster::ClusterConfig> config = cluster_.Config();
  std::set<cluster::Address> nodes;
  for (const cluster::Address& a : cluster_.View()) nodes.insert(a);
  for (const auto& peer : detector_.Peers()) nodes.insert(peer.first);
  for (const auto& members : config->shards) nodes.insert(members.begin(), members.end());

  std::vector<std::string> order;
  std::vector<std::future<ClusterEntry>> calls;
  std::optional<size_t> self_index;
  for (const cluster::Address& node : nodes) {
    order.push_back(node.ToString());
    if (node == cluster_.self()) {
      self_index = order.size() - 1;
      calls.emplace_back();
      continue;
    }
    // A thread per peer for this rare request (as Reconfigurator::CallAll), each call
    // bounded by kStatusPeerTimeout (plus the client's connect timeout).
    calls.push_back(std::async(std::launch::async, [this, name = order.back()] {
      ClusterEntry entry;
      entry.address = name;
      const auto start = std::chrono::steady_clock::now();
      net::CallResult result = peers_.Call(name, "GET", "/status", "", kStatusPeerTimeout);
      if (result.status == 200) {
        if (auto checked = CheckPeerStatus(result.body, name, entry.error)) {
          entry.json = std::move(*checked);
        }
        return entry;
      }
      if (result.status != 0) {
        entry.error = "answered " + std::to_string(result.status);
      } else if (std::chrono::steady_clock::now() - start >= kStatusPeerTimeout) {
        entry.error = "timed out after " + std::to_string(kStatusPeerTimeout.count()) + " ms";
      } else {
        entry.error = result.error.empty() ? "no answer" : result.error;
      }
      return entry;
    }));
  }
  std::vector<ClusterEntry> entries;
  entries.reserve(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    if (self_index == i) {
      entries.push_back({order[i], RenderNodeStatus(Status()), ""});
    } else {
      entries.push_back(calls[i].get());
    }
  }
  Response response;
  response.body = RenderClusterStatus(cluster_.self().ToString(), config->epoch, entries);
  return response;
}

}  // namespace kvs::api
