// The /status JSON of kvs nodes as a model, and kvsctl's renderings of it: the `status` table
// and the progress line of a long operation (reshard, add-member).
// Pure and thread-compatible. Invariant: parsing never throws; a node object that is not
// well-formed becomes a node with `error` set, so one bad node never hides the others.
#ifndef KVS_CTL_STATUS_H_
#define KVS_CTL_STATUS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvs::ctl {

struct PeerLiveness {
  std::string address;
  bool alive = false;
};

struct ReplicationLag {
  std::string peer;
  int64_t queued = 0;
  double oldest_age_ms = 0;
};

struct Operation {
  std::string kind;  // "reshard" | "add-member"
  std::string phase;
  int64_t done = 0;
  int64_t total = 0;
  double age_ms = 0;
};

struct NodeStatus {
  std::string address;
  std::string error;  // non-empty: the node did not answer (the other fields are unset)
  std::optional<int64_t> shard_id;
  bool ready = false;
  int64_t keys = 0;
  int64_t epoch = 0;
  double uptime_s = 0;
  std::vector<std::string> view;
  std::vector<PeerLiveness> peers;
  std::vector<ReplicationLag> replication;
  std::optional<double> last_run_age_ms, last_repair_age_ms;
  int64_t last_repair_entries = 0, repaired_total = 0;
  std::string storage_mode;  // "disk" | "memory" | ""
  std::string storage_dir;
  std::optional<int64_t> storage_bytes;
  double requests_per_s = 0, p50_ms = 0, p99_ms = 0;
  std::optional<Operation> operation;
};

struct ClusterStatus {
  std::string via;
  int64_t epoch = 0;
  std::vector<NodeStatus> nodes;
};

// One node's object (GET /status). nullopt with `error` set if `text` is not a JSON object
// with an "address" string.
std::optional<NodeStatus> ParseNodeStatus(std::string_view text, std::string* error);
// GET /status?scope=cluster. nullopt with `error` set if the envelope is malformed (not an
// object, no "nodes" array); a malformed node inside becomes a node with `error` set.
std::optional<ClusterStatus> ParseClusterStatus(std::string_view text, std::string* error);

// How the other answering nodes see `node`: "yes", "no", "no (2 of 5)", "?" (nobody reports
// on it) or "unreachable" (it did not answer itself).
std::string AliveSeenByOthers(const ClusterStatus& cluster, const NodeStatus& node);

// The `kvsctl status` text: a summary line, one table (a row per node: address, shard, alive,
// ready, keys, epoch, uptime, replication lag per peer, last anti-entropy repair, data dir and
// size), then one line per node that did not answer and per operation under way.
std::string RenderStatus(const ClusterStatus& cluster);

// "reshard: moving 40/100 (4.2 s)" (no bar), or with `bar_width` > 0
// "[########............] 40% reshard: moving 40/100 (4.2 s)".
std::string RenderProgress(const Operation& operation, double elapsed_s, int bar_width);

// Prometheus text (GET /metrics) as a JSON object: each sample line's series (name and
// labels, as written) → its value, a number (JSON null for NaN/Inf, which JSON cannot hold).
// Comment and blank lines are skipped; a line without a value is skipped too.
std::string PrometheusToJson(std::string_view text);

}  // namespace kvs::ctl

#endif  // KVS_CTL_STATUS_H_
