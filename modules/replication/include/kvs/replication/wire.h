// Forms of the inter-node messages under /internal/ (not part of the public contract): JSON for
// the small ones (sync requests, layouts); update batches and sync replies as netstrings
// behind a magic tag ("KVB1", "KVS1"), since they carry every write.
// Pure functions; decoding failures come back as an error string, never as an exception.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvs/causal/metadata.h"
#include "kvs/cluster/cluster_config.h"
#include "kvs/store/store.h"

namespace kvs::replication {

// One key's entry as shipped between replicas.
struct Update {
  std::string key;
  store::Entry entry;
};

// POST /internal/replicate   KVB1 netstring(from) netstring(count) updates...
struct ReplicateBatch {
  std::string from;
  std::vector<Update> updates;
};
// POST /internal/sync
//   {"from":A,"vv":{origin:seq},"full":bool,"cursor":"<u64>","max_bytes":N,"range":R}
//   -> SyncReply
// `full` asks for every entry, including those moved in by a reshard (a new or restarted
// member); otherwise entries written before the last reshard barrier are not offered again.
// With max_bytes > 0 the answer is one chunk of a stream: the entries from walk position
// `cursor` on, about max_bytes of them, and the cursor of the next chunk (none: the last).
// The asker sends the same vv in every chunk of a stream. Without max_bytes (0, or absent:
// older peers) the answer holds every entry at once.
// With "range":{"shards":M,"shard":s} (an online reshard staging data for its next layout)
// the answer holds only the keys the answerer owns now that shard s of an M-shard ring
// would own.
struct KeyRange {
  int shards = 0;
  int shard = 0;
  bool operator==(const KeyRange&) const = default;
};
struct SyncRequest {
  std::string from;
  causal::VersionVector vv;
  bool full = false;
  uint64_t cursor = 0;
  uint64_t max_bytes = 0;
  std::optional<KeyRange> range = std::nullopt;
};
// KVS1 netstring(vv) count updates...                (the whole answer, or a stream's last chunk)
// KVS2 netstring(vv) netstring(next cursor) count updates...   (a chunk with more to come)
// The answerer's applied vector (taken before it collected the updates) and the entries whose
// write the asker's vector does not cover.
struct SyncReply {
  causal::VersionVector vv;
  std::vector<Update> updates;
  std::optional<uint64_t> next_cursor;
  // More updates, already in wire form (AppendEntryWire), sent after `updates`: an answerer
  // encodes a walk's chunk straight from its store, with no copy of each entry in between.
  // DecodeSyncReply never fills these (it decodes every update into `updates`).
  std::string wire_updates;
  size_t wire_count = 0;
};

// Appends the entry of `key`, seen in place in the store, to `out` in the wire form of a sync
// reply's updates.
void AppendEntryWire(std::string& out, std::string_view key, const store::EntryView& entry);

std::string EncodeBatch(const std::string& from, const std::vector<const Update*>& updates);
std::optional<ReplicateBatch> DecodeBatch(std::string_view json, std::string& error);

std::string EncodeSyncRequest(const SyncRequest& request);
std::optional<SyncRequest> DecodeSyncRequest(std::string_view json, std::string& error);

std::string EncodeSyncReply(const SyncReply& reply);
std::optional<SyncReply> DecodeSyncReply(std::string_view json, std::string& error);

// GET /internal/reshard/progress?epoch=E   (a node's staging for an online reshard)
//   {"epoch":E,"shard":S,"phase":P,"entries":N,"bytes":B,"last_delta":D,"error":"..."}
struct StagingProgress {
  enum class Phase { kIdle, kStreaming, kCatchingUp, kCaughtUp, kFailed };
  uint64_t epoch = 0;
  int shard = -1;  // its shard in the next layout (-1: none, nothing to pull)
  Phase phase = Phase::kIdle;
  uint64_t entries = 0;     // entries pulled so far
  uint64_t bytes = 0;       // bytes of the chunks that carried them
  uint64_t last_delta = 0;  // entries the last catch-up pass brought
  std::string error;        // kFailed: why
  bool operator==(const StagingProgress&) const = default;
};
std::string_view ToString(StagingProgress::Phase phase);
std::string EncodeStagingProgress(const StagingProgress& progress);
std::optional<StagingProgress> DecodeStagingProgress(std::string_view json, std::string& error);

// POST /internal/config answer: {"adopted":bool,"held_ms":N}: whether the node took the
// layout, and for a reshard's commit how long its writes were held (barrier to reopening).
struct ConfigAnswer {
  bool adopted = false;
  uint64_t held_ms = 0;
  bool operator==(const ConfigAnswer&) const = default;
};
std::string EncodeConfigAnswer(const ConfigAnswer& answer);
std::optional<ConfigAnswer> DecodeConfigAnswer(std::string_view json, std::string& error);

// GET /internal/config       {"epoch":E,"shards":[["a:1","b:1"],...]}
std::string EncodeConfig(const cluster::ClusterConfig& config);
std::optional<cluster::ClusterConfig> DecodeConfig(std::string_view json, std::string& error);

}  // namespace kvs::replication
