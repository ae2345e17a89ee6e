// The JSON of GET /status (one node's state) and GET /status?scope=cluster (every node's, asked
// through one node), as plain values and pure functions: Service gathers the figures, these
// render them, and check what peers answered. No I/O, no shared state: thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvs::api {

struct NodeStatus {
  std::string address;
  std::optional<int> shard_id;  // none before the node has a shard
  bool ready = false;
  int64_t keys = 0;
  uint64_t epoch = 0;
  double uptime_s = 0;
  std::vector<std::string> view;
  std::vector<std::vector<std::string>> shards;  // shard id -> members
  struct Peer {
    std::string address;
    bool alive = false;
  };
  std::vector<Peer> peers;
  struct Queue {
    std::string peer;
    uint64_t queued = 0;
    int64_t oldest_age_ms = 0;
  };
  std::vector<Queue> replication;
  std::optional<int64_t> anti_entropy_last_run_age_ms;
  std::optional<int64_t> anti_entropy_last_repair_age_ms;
  uint64_t anti_entropy_last_repair_entries = 0;
  uint64_t anti_entropy_repaired_total = 0;
  bool disk = false;  // storage mode: disk (with dir and bytes) or memory
  std::string data_dir;
  uint64_t data_bytes = 0;
  double requests_per_s = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  struct Operation {
    std::string kind;
    std::string phase;
    uint64_t done = 0;
    uint64_t total = 0;
    int64_t age_ms = 0;
  };
  std::optional<Operation> operation;
};

// The /status object (see README, "Status endpoint").
std::string RenderNodeStatus(const NodeStatus& status);

// One node's entry in the cluster answer: its /status object, or {"address","error"}.
struct ClusterEntry {
  std::string address;
  std::string json;   // the node's /status object (valid JSON) when error is empty
  std::string error;  // why the node gave none
};
// {"via":...,"epoch":...,"nodes":[...]} with the entries in the given order.
std::string RenderClusterStatus(std::string_view via, uint64_t epoch,
                                const std::vector<ClusterEntry>& nodes);

// Checks a peer's answer to GET /status: a JSON object whose "address" is `address`. Returns
// the object re-serialized (nothing of the peer's bytes is passed on unparsed), or nullopt
// with `error` saying what was wrong.
std::optional<std::string> CheckPeerStatus(std::string_view body, std::string_view address,
                                           std::string& error);

// A number for JSON: fixed-point with up to three decimals; 0 for NaN or infinities.
std::string JsonNumber(double value);

}  // namespace kvs::api
