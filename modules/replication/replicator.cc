#include "kvs/replication/replicator.h"

#include <Poco/Logger.h>

#include <algorithm>
#include <future>
#include <iterator>
#include <memory>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <variant>

#include "kvs/cluster/hash_ring.h"

namespace kvs::replication {

namespace {
thread_local uint64_t t_dependency_pulls = 0;
}  // namespace

uint64_t ThreadDependencyPulls() { return t_dependency_pulls; }

namespace {

Poco::Logger& Log() { return Poco::Logger::get("kvs.replication"); }

// What an entry counts for against a chunk's max_bytes (about its size on the wire).
uint64_t TransferBytes(std::string_view key, const store::EntryView& entry) {
  return key.size() + entry.value.size() + entry.meta.size() + entry.version.origin.size() + 32;
}

// How long a hand-off's answer waits for its entries to be durable here.
constexpr std::chrono::milliseconds kHandoffFlushTimeout{10000};

// Origins whose shard one thread remembers (SameShardOrigin) before it starts over.
constexpr size_t kSameShardMemoSize = 4096;

// Lets the per-thread memo of SameShardOrigin be searched by a view, without a copy.
struct TransparentHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const noexcept {
    return std::hash<std::string_view>{}(text);
  }
};

}  // namespace

Replicator::Replicator(store::Store& store, causal::HybridClock& clock,
                       cluster::ClusterState& cluster, net::PeerClient& client,
                       ReplicationOptions options, storage::Journal* journal)
    : store_(store),
      clock_(clock),
      cluster_(cluster),
      client_(client),
      options_(options),
      self_(cluster.self().ToString()),
      journal_(journal),
      applied_(options.recent_updates) {}

Replicator::~Replicator() {
  std::unique_lock lock(senders_mu_);
  senders_.clear();
}

std::vector<std::string> Replicator::ShardPeers(bool live_only) const {
  std::vector<std::string> out;
  const auto config = cluster_.Config();
  const auto shard = config->ShardOf(cluster_.self());
  if (!shard) return out;
  for (const cluster::Address& member : config->shards[static_cast<size_t>(*shard)]) {
    if (member == cluster_.self()) continue;
    if (live_only && !cluster_.InView(member)) continue;
    out.push_back(member.ToString());
  }
  return out;
}

bool Replicator::SameShardOrigin(std::string_view origin) const {
  // Asked for each dependency of each request that this node has not applied (every other
  // shard's origin in a client's metadata): answers are remembered per thread until the layout
  // changes.
  thread_local struct {
    const Replicator* owner = nullptr;
    uint64_t layout_version = 0;
    uint64_t barrier_epoch = 0;
    std::unordered_map<std::string, bool, TransparentHash, std::equal_to<>> same;
  } memo;
  const uint64_t version = cluster_.layout_version();
  std::shared_ptr<const cluster::ClusterConfig> config;
  if (memo.owner != this || memo.layout_version != version ||
      memo.same.size() >= kSameShardMemoSize) {
    // Read after the version: at worst answers of a newer layout are kept under the older
    // version, and dropped at the next call.
    config = cluster_.Config();
    memo.owner = this;
    memo.layout_version = version;
    memo.barrier_epoch = config->barrier_epoch;
    memo.same.clear();
  }
  // Writes from before the last reshard were moved under its barrier: satisfied everywhere.
  if (causal::OriginEpoch(origin) < memo.barrier_epoch) return false;
  if (const auto it = memo.same.find(origin); it != memo.same.end()) return it->second;
  if (!config) config = cluster_.Config();
  const auto address = cluster::Address::Parse(causal::OriginAddress(origin));
  const auto mine = config->ShardOf(cluster_.self());
  const bool same = address && mine && config->ShardOf(*address) == mine;
  memo.same.emplace(std::string(origin), same);
  return same;
}

std::shared_ptr<PeerSender> Replicator::MakeSenderLocked(const std::string& peer) {
  SenderDriver* driver = driver_ != nullptr && driver_->Drives(peer) ? driver_ : nullptr;
  return std::make_shared<PeerSender>(
      self_, peer, client_, options_.sender,
      [this](const std::string& p) {
        auto address = cluster::Address::Parse(p);
        return address && cluster_.InView(*address);
      },
      sender_counters_, driver);
}

void Replicator::RefreshPeers() {
  const std::vector<std::string> peers = ShardPeers(/*live_only=*/false);
  std::vector<std::shared_ptr<PeerSender>> gone;  // stopped after the lock is released
  {
    std::unique_lock lock(senders_mu_);
    for (auto it = senders_.begin(); it != senders_.end();) {
      if (std::find(peers.begin(), peers.end(), it->first) == peers.end()) {
        gone.push_back(std::move(it->second));
        it = senders_.erase(it);
      } else {
        ++it;
      }
    }
    has_peers_.store(!peers.empty(), std::memory_order_release);
    for (const std::string& peer : peers) {
      if (!senders_.contains(peer)) senders_.emplace(peer, MakeSenderLocked(peer));
    }
  }
}

void Replicator::SetSenderDriver(SenderDriver* driver) {
  std::vector<std::shared_ptr<PeerSender>> replaced;  // stopped after the lock is released
  {
    std::unique_lock lock(senders_mu_);
    driver_ = driver;
    for (auto& [peer, sender] : senders_) {
      if (sender->driver() == (driver_ != nullptr && driver_->Drives(peer) ? driver_ : nullptr)) {
        continue;
      }
      std::shared_ptr<PeerSender> next = MakeSenderLocked(peer);
      next->Adopt(sender->Detach());
      replaced.push_back(std::exchange(sender, std::move(next)));
    }
  }
}

void Replicator::OnLocalWrite(const std::string& key, const store::Entry& entry) {
  applied_.Record(entry.version.origin, entry.version.seq, key);
  auto update = std::make_shared<const Update>(Update{key, entry});
  std::shared_lock lock(senders_mu_);
  for (auto& [peer, sender] : senders_) sender->Enqueue(update);
}

bool Replicator::Owned(const Update& u) const {
  // An update from a newer layout than ours, or for a key another shard owns, is not ours to
  // keep: anti-entropy delivers it again once this node has caught up with the layout.
  const auto config = cluster_.Config();
  if (causal::OriginEpoch(u.entry.version.origin) > config->epoch) return false;
  const auto mine = config->ShardOf(cluster_.self());
  return mine && cluster_.ShardForKey(u.key) == mine;
}

bool Replicator::ApplyOne(const Update& u, bool keep_key) {
  clock_.Observe(u.entry.version.hlc);
  const bool changed = store_.ApplyIfNewer(u.key, u.entry).written;
  // Logged after the store holds it, and before the vector claims it: a vector that a peer
  // sees (after a journal flush) never claims more than this replica's disk holds. Relaxed:
  // the write's own node made it durable before acknowledging it, and nobody waits for this
  // copy (a peer that asks for our vector flushes the journal first, see AnswerSync).
  if (journal_ != nullptr) {
    constexpr auto kRelaxed = storage::Wal::Urgency::kRelaxed;
    if (changed) {
      journal_->LogEntry(u.key, u.entry, /*record_applied=*/true, kRelaxed);
    } else {
      journal_->LogApplied(u.entry.version.origin, u.entry.version.seq, kRelaxed);
    }
  }
  if (keep_key) {
    applied_.Record(u.entry.version.origin, u.entry.version.seq, u.key);
  } else {
    applied_.Record(u.entry.version.origin, u.entry.version.seq);
  }
  return changed;
}

bool Replicator::Deliverable(const Update& u) const {
  const std::string& origin = u.entry.version.origin;
  if (applied_.Contiguous(origin) + 1 < u.entry.version.seq) return false;
  // The write's metadata is its dependencies plus its own dot (read in place: this runs for
  // every update of every broadcast).
  bool missing = false;
  uint64_t epoch = 0;
  const auto error =
      causal::ScanEntries(u.entry.meta, epoch, [&](std::string_view dep_origin, uint64_t dep_seq) {
        if (missing || dep_origin == origin) return;
        missing = applied_.Contiguous(dep_origin) < dep_seq && SameShardOrigin(dep_origin);
      });
  return error.has_value() || !missing;  // unreadable metadata: nothing we can check
}

size_t Replicator::DrainPendingLocked() {
  size_t changed = 0;
  bool progress = true;
  while (progress && !pending_.empty()) {
    progress = false;
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (applied_.Covers(it->entry.version.origin, it->entry.version.seq)) {
        it = pending_.erase(it);
      } else if (Deliverable(*it)) {
        changed += ApplyOne(*it);
        it = pending_.erase(it);
        progress = true;
      } else {
        ++it;
      }
    }
  }
  return changed;
}

size_t Replicator::ApplyBatch(const ReplicateBatch& batch) {
  std::unique_lock lock(pending_mu_);
  return ApplyBatchLocked(batch);
}

std::optional<size_t> Replicator::TryApplyBatch(const ReplicateBatch& batch) {
  std::unique_lock lock(pending_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return std::nullopt;
  return ApplyBatchLocked(batch);
}

size_t Replicator::ApplyBatchLocked(const ReplicateBatch& batch) {
  size_t changed = 0;
  for (const Update& u : batch.updates) {
    if (applied_.Covers(u.entry.version.origin, u.entry.version.seq)) continue;  // duplicate
    if (!Owned(u)) {
      misrouted_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (Deliverable(u)) {
      changed += ApplyOne(u);
      continue;
    }
    if (pending_.size() >= kPendingMax) {
      pending_.pop_front();  // anti-entropy brings it later
      pending_dropped_.fetch_add(1, std::memory_order_relaxed);
    }
    pending_.push_back(u);
  }
  changed += DrainPendingLocked();
  broadcast_applied_.fetch_add(batch.updates.size(), std::memory_order_relaxed);
  return changed;
}

SyncReply Replicator::AnswerSync(const SyncRequest& request, bool wire) {
  // What the asker has applied (a staging pull sends what it holds of our range instead).
  if (!request.range) {
    std::lock_guard lock(peer_vv_mu_);
    peer_vv_[request.from] = request.vv;
  }
  SyncReply reply;
  reply.vv = applied_.Snapshot();  // before collecting: the store reflects at least this much
  // Peers purge tombstones once every replica's vector covers them: the vector we show must
  // be on disk, or a crash here could bring back a value they deleted.
  if (journal_ != nullptr) journal_->Flush(options_.sync_timeout);
  // Nothing to look for when the asker has everything our vector covers and we hold no
  // entry applied out of order (those are not in the vector).
  if (request.cursor == 0 && !request.full && causal::Dominates(request.vv, reply.vv) &&
      !applied_.HasGaps()) {
    return reply;
  }
  const uint64_t barrier = cluster_.Config()->barrier_epoch;
  // Only keys this node owns now: while a reshard stages, the store also holds keys of the
  // next layout that are not ours yet. A staging pull (`range`) wants, of those, the keys a
  // shard of the next layout will own.
  const bool foreign_keys = staging_.load(std::memory_order_acquire);
  const std::optional<int> mine = cluster_.MyShard();
  std::optional<cluster::HashRing> next_ring;
  if (request.range) next_ring.emplace(request.range->shards);
  auto wanted = [&](std::string_view key, const store::EntryView& entry) {
    if (!request.full && causal::OriginEpoch(entry.version.origin) < barrier) return false;
    auto it = request.vv.find(entry.version.origin);
    const uint64_t covered = it == request.vv.end() ? 0 : it->second;
    if (entry.version.seq <= covered) return false;
    if ((foreign_keys || next_ring) && cluster_.ShardForKey(key) != mine) return false;
    return !next_ring || next_ring->ShardFor(key) == request.range->shard;
  };
  // A delta the recent keys cover: just those keys' entries, no walk of the store. (A later
  // chunk whose keys are no longer all kept walks from its cursor instead: same answer.)
  if (!request.full) {
    if (auto keys = applied_.KeysAfter(request.vv, options_.recent_updates)) {
      ChunkFromKeys(std::move(*keys), request.cursor, request.max_bytes, wanted, reply);
      syncs_from_recent_.fetch_add(1, std::memory_order_relaxed);
      return reply;
    }
  }
  syncs_walked_.fetch_add(1, std::memory_order_relaxed);
  if (request.max_bytes == 0) {  // an asker that does not stream: everything at once
    store_.ForEach([&](std::string_view key, const store::EntryView& entry) {
      if (wanted(key, entry)) reply.updates.push_back(Update{std::string(key), entry.ToEntry()});
    });
    return reply;
  }
  CollectChunk(request.cursor, request.max_bytes, wanted, reply, wire);
  chunks_sent_.fetch_add(1, std::memory_order_relaxed);
  return reply;
}

void Replicator::ChunkFromKeys(std::vector<std::string> keys, uint64_t cursor, uint64_t max_bytes,
                               const Wanted& wanted, SyncReply& reply) const {
  // In walk order from the cursor, as a walk's chunks are, so that chunks from keys and from
  // walks can follow each other in one stream.
  std::vector<std::pair<uint64_t, const std::string*>> order;
  order.reserve(keys.size());
  for (const std::string& key : keys) {
    const uint64_t position = store::Store::WalkPosition(key);
    if (position >= cursor) order.emplace_back(position, &key);
  }
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : *a.second < *b.second;
  });
  uint64_t bytes = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    const uint64_t position = order[i].first;
    const std::string* key = order[i].second;
    if (i > 0 && *key == *order[i - 1].second) continue;  // listed twice
    if (max_bytes > 0 && bytes >= max_bytes && position != order[i - 1].first) {
      reply.next_cursor = position;
      return;
    }
    store_.Read(*key, [&](const store::EntryView& entry) {
      if (!wanted(*key, entry)) return;
      bytes += TransferBytes(*key, entry);
      reply.updates.push_back(Update{*key, entry.ToEntry()});
    });
  }
}

std::optional<uint64_t> Replicator::ChunkLimit(uint64_t cursor, uint64_t max_bytes,
                                               const Wanted& wanted) const {
  std::vector<std::pair<uint64_t, uint64_t>> sizes;  // (position, bytes) of wanted entries
  uint64_t bytes = 0;
  for (size_t stripe = store::Store::StripeOfPosition(cursor);
       stripe < store::Store::stripe_count(); ++stripe) {
    store_.ForEachInStripe(stripe, [&](std::string_view key, const store::EntryView& entry) {
      const uint64_t position = store::Store::WalkPosition(key);
      if (position < cursor || !wanted(key, entry)) return;
      const uint64_t size = TransferBytes(key, entry);
      sizes.emplace_back(position, size);
      bytes += size;
    });
    if (bytes < max_bytes) continue;
    // Stripes hold consecutive position ranges: the chunk ends inside this one, or with it.
    std::sort(sizes.begin(), sizes.end());
    size_t kept = 0;
    uint64_t total = 0;
    while (kept < sizes.size() && (kept == 0 || total + sizes[kept].second <= max_bytes ||
                                   sizes[kept].first == sizes[kept - 1].first)) {
      total += sizes[kept].second;
      ++kept;
    }
    if (kept < sizes.size()) return sizes[kept].first;
    if (stripe + 1 < store::Store::stripe_count()) {
      return store::Store::FirstPositionOfStripe(stripe + 1);
    }
    return std::nullopt;
  }
  return std::nullopt;
}

void Replicator::CollectChunk(uint64_t cursor, uint64_t max_bytes, const Wanted& wanted,
                              SyncReply& reply, bool wire) const {
  // Two walks: the first finds where the chunk ends from positions and sizes alone, the
  // second copies (or encodes) just the entries of [cursor, limit). Copying every entry of
  // the walk and sorting the copies, as before, cost more than the second walk.
  const std::optional<uint64_t> limit = ChunkLimit(cursor, max_bytes, wanted);
  const size_t last =
      limit ? store::Store::StripeOfPosition(*limit - 1) : store::Store::stripe_count() - 1;
  if (wire) reply.wire_updates.reserve(max_bytes + max_bytes / 4);
  for (size_t stripe = store::Store::StripeOfPosition(cursor); stripe <= last; ++stripe) {
    store_.ForEachInStripe(stripe, [&](std::string_view key, const store::EntryView& entry) {
      const uint64_t position = store::Store::WalkPosition(key);
      if (position < cursor || (limit && position >= *limit) || !wanted(key, entry)) return;
      if (wire) {
        AppendEntryWire(reply.wire_updates, key, entry);
        ++reply.wire_count;
      } else {
        reply.updates.push_back(Update{std::string(key), entry.ToEntry()});
      }
    });
  }
  reply.next_cursor = limit;
}

std::optional<causal::VersionVector> Replicator::StreamFrom(
    const std::string& peer, SyncRequest request,
    std::optional<std::chrono::steady_clock::time_point> deadline,
    const std::function<void(std::vector<Update>&)>& apply, TransferStats* stats,
    const char* what) {
  using Clock = std::chrono::steady_clock;
  TransferStats local;
  TransferStats& st = stats != nullptr ? *stats : local;
  std::optional<causal::VersionVector> answerer_vv;
  const auto start = Clock::now();
  auto next_progress_log = start + std::chrono::seconds(2);
  // One chunk is fetched (and decoded) on a helper thread while the one before is applied
  // here: the answerer's walk and the wire overlap this side's work. At most two chunks are
  // in memory.
  struct Fetched {
    size_t body_bytes = 0;
    std::optional<SyncReply> reply;
    std::string error;
  };
  auto fetch = [this, &peer, deadline](SyncRequest req) {
    Fetched out;
    auto timeout = options_.sync_timeout;
    if (deadline) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
      if (left <= std::chrono::milliseconds(0)) {
        out.error = "no time left";
        return out;
      }
      timeout = std::min(timeout, left);
    }
    const net::CallResult result =
        client_.Call(peer, "POST", "/internal/sync", EncodeSyncRequest(req), timeout);
    out.error = result.Describe();
    out.body_bytes = result.body.size();
    if (!result.ok()) return out;
    out.error.clear();
    out.reply = DecodeSyncReply(result.body, out.error);
    if (out.reply && out.reply->next_cursor && *out.reply->next_cursor <= req.cursor) {
      out.error = "its next cursor does not move forward";
      out.reply.reset();
    }
    return out;
  };
  auto ms_since = [](Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t);
  };
  auto waiting = Clock::now();
  Fetched current = fetch(request);
  st.waited += ms_since(waiting);
  // A stream of more than one chunk is a bulk transfer: no snapshot until it ends (see
  // Journal::SnapshotHold).
  std::optional<storage::Journal::SnapshotHold> hold;
  while (true) {
    if (!current.reply) {
      if (st.chunks > 0 || current.body_bytes > 0) {
        transfers_failed_.fetch_add(1, std::memory_order_relaxed);
        Log().warning("%s from %s broke off after %s chunks (%s entries): %s", std::string(what),
                      peer, std::to_string(st.chunks), std::to_string(st.entries), current.error);
      }
      if (stats != nullptr) stats->error = current.error;
      return std::nullopt;
    }
    SyncReply& reply = *current.reply;
    std::future<Fetched> next;
    if (reply.next_cursor) {
      if (!hold) hold.emplace(journal_);
      request.cursor = *reply.next_cursor;
      next = std::async(std::launch::async, fetch, request);
    }
    if (!answerer_vv) answerer_vv = reply.vv;
    ++st.chunks;
    st.entries += reply.updates.size();
    st.bytes += current.body_bytes;
    const auto applying = Clock::now();
    apply(reply.updates);
    st.applied += ms_since(applying);
    chunks_received_.fetch_add(1, std::memory_order_relaxed);
    transfer_bytes_received_.fetch_add(current.body_bytes, std::memory_order_relaxed);
    if (!next.valid()) break;
    if (Clock::now() >= next_progress_log) {
      next_progress_log = Clock::now() + std::chrono::seconds(2);
      // The cursor is a hash position: how far it is through 2^64 is how far the walk is.
      const double done = static_cast<double>(request.cursor) / 18446744073709551616.0;
      Log().information("%s from %s: %s entries, %s MiB in %s chunks, %s%% of the keys",
                        std::string(what), peer, std::to_string(st.entries),
                        std::to_string(st.bytes >> 20), std::to_string(st.chunks),
                        std::to_string(static_cast<int>(done * 100)));
    }
    waiting = Clock::now();
    current = next.get();
    st.waited += ms_since(waiting);
  }
  if (st.chunks > 1) {
    Log().information(
        "%s from %s done: %s entries, %s MiB in %s chunks, %s ms (waiting for chunks %s ms, "
        "applying %s ms)",
        std::string(what), peer, std::to_string(st.entries), std::to_string(st.bytes >> 20),
        std::to_string(st.chunks), std::to_string(ms_since(start).count()),
        std::to_string(st.waited.count()), std::to_string(st.applied.count()));
  }
  return answerer_vv;
}

bool Replicator::SyncWith(const std::string& peer, bool full,
                          std::optional<std::chrono::steady_clock::time_point> deadline,
                          TransferStats* stats) {
  if (journal_ != nullptr) journal_->Flush(options_.sync_timeout);  // see AnswerSync
  size_t changed = 0;
  const std::optional<causal::VersionVector> answerer_vv = StreamFrom(
      peer, SyncRequest{self_, applied_.Snapshot(), full, 0, options_.transfer_chunk_bytes},
      deadline,
      [&](std::vector<Update>& updates) {
        changed += ApplySyncUpdates(updates, /*keep_keys=*/!full);
      },
      stats, "transfer");
  if (!answerer_vv) return false;
  changed += FinishSync(*answerer_vv, /*delta=*/!full);
  {
    std::lock_guard lock(peer_vv_mu_);
    peer_vv_[peer] = *answerer_vv;
  }
  if (changed > 0) Log().information("anti-entropy: %z entries from %s", changed, peer);
  return true;
}

size_t Replicator::ApplySyncUpdates(const std::vector<Update>& updates, bool keep_keys) {
  const size_t changed = ApplyInClockOrder(updates, keep_keys);
  anti_entropy_applied_.fetch_add(changed, std::memory_order_relaxed);
  return changed;
}

size_t Replicator::ApplyInClockOrder(const std::vector<Update>& updates, bool keep_keys) {
  // The answerer's state is causally closed; applying it in clock order keeps every
  // intermediate state closed too (a causally later write has a larger hybrid clock). Across
  // the chunks of a stream it is not: the causal gate covers that, since the vector is raised
  // only after the last chunk (a read carrying a dependency not yet here waits or pulls).
  std::vector<const Update*> ordered;
  ordered.reserve(updates.size());
  for (const Update& u : updates) ordered.push_back(&u);
  std::sort(ordered.begin(), ordered.end(), [](const Update* a, const Update* b) {
    return b->entry.version.Wins(a->entry.version);
  });
  std::lock_guard lock(pending_mu_);
  size_t changed = 0;
  for (const Update* u : ordered) {
    if (Owned(*u)) {
      changed += ApplyOne(*u, keep_keys);
    } else {
      misrouted_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return changed;
}

std::optional<size_t> Replicator::ApplyHandoff(const std::vector<Update>& updates) {
  const size_t changed = ApplyInClockOrder(updates, /*keep_keys=*/true);
  handoff_applied_.fetch_add(changed, std::memory_order_relaxed);
  if (journal_ != nullptr && !journal_->Flush(kHandoffFlushTimeout)) return std::nullopt;
  return changed;
}

size_t Replicator::FinishSync(const causal::VersionVector& vv, bool delta) {
  std::lock_guard lock(pending_mu_);
  // An idle round's answer raises nothing: no log record (and no fsync) for it.
  if (!causal::Dominates(applied_.Snapshot(), vv)) {
    if (journal_ != nullptr) journal_->LogRaise(vv);
    applied_.RaiseTo(vv, /*keys_delivered=*/delta);
  }
  const size_t changed = DrainPendingLocked();
  anti_entropy_applied_.fetch_add(changed, std::memory_order_relaxed);
  return changed;
}

void Replicator::SizeRecentUpdates() {
  size_t capacity = options_.recent_updates;
  if (capacity > 0) {
    const auto live = static_cast<size_t>(std::max<int64_t>(0, store_.live_count()));
    capacity = std::max(capacity, live / 100 * options_.recent_updates_percent);
  }
  applied_.SetCapacity(capacity);
}

void Replicator::AntiEntropyRound() {
  // What the round changed: entries applied from its pulls (another pull running meanwhile,
  // a catch-up, would be counted too: rare, and repair as well).
  const uint64_t applied_before = anti_entropy_applied_.load(std::memory_order_relaxed);
  SizeRecentUpdates();
  RefreshPeers();
  if (full_sync_wanted_.load(std::memory_order_acquire)) CatchUp();
  for (const std::string& peer : ShardPeers(/*live_only=*/true)) {
    TransferStats pulled;
    SyncWith(peer, /*full=*/false, std::nullopt, &pulled);
    ae_received_bytes_.fetch_add(pulled.bytes, std::memory_order_relaxed);
    ae_received_entries_.fetch_add(pulled.entries, std::memory_order_relaxed);
  }
  CollectTombstones();
  RefreshStable();
  const uint64_t repaired = anti_entropy_applied_.load(std::memory_order_relaxed) - applied_before;
  const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::steady_clock::now().time_since_epoch())
                             .count();
  if (repaired > 0) {
    ae_last_repair_entries_.store(repaired, std::memory_order_relaxed);
    ae_repaired_total_.fetch_add(repaired, std::memory_order_relaxed);
    ae_last_repair_unix_ms_.store(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count(),
                                  std::memory_order_relaxed);
    ae_last_repair_ns_.store(now_ns, std::memory_order_release);
  }
  ae_last_run_ns_.store(now_ns, std::memory_order_release);
}

std::vector<Replicator::PeerQueue> Replicator::QueueSnapshot() const {
  const auto now = std::chrono::steady_clock::now();
  std::vector<PeerQueue> out;
  std::shared_lock lock(senders_mu_);
  out.reserve(senders_.size());
  for (const auto& entry : senders_) {
    const PeerSender::QueueState state = entry.second->Snapshot();
    PeerQueue queue;
    queue.peer = entry.first;
    queue.queued = state.queued;
    if (state.queued > 0) {
      queue.oldest_age_ms = std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(now - state.oldest).count());
    }
    out.push_back(std::move(queue));
  }
  return out;
}

Replicator::AntiEntropyStatus Replicator::AntiEntropy() const {
  auto point = [](int64_t ns) -> std::optional<std::chrono::steady_clock::time_point> {
    if (ns == 0) return std::nullopt;
    return std::chrono::steady_clock::time_point(
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::nanoseconds(ns)));
  };
  AntiEntropyStatus status;
  status.last_run = point(ae_last_run_ns_.load(std::memory_order_acquire));
  status.last_repair = point(ae_last_repair_ns_.load(std::memory_order_acquire));
  status.last_repair_entries = ae_last_repair_entries_.load(std::memory_order_relaxed);
  status.repaired_total = ae_repaired_total_.load(std::memory_order_relaxed);
  return status;
}

void Replicator::RefreshStable() {
  // The minimum over every member of the shard (down ones included: a member we have no
  // vector for makes nothing stable).
  causal::VersionVector stable = applied_.Snapshot();
  {
    std::lock_guard lock(peer_vv_mu_);
    for (const std::string& member : ShardPeers(/*live_only=*/false)) {
      auto it = peer_vv_.find(member);
      if (it == peer_vv_.end()) {
        stable.clear();
        break;
      }
      for (auto s = stable.begin(); s != stable.end();) {
        auto theirs = it->second.find(s->first);
        if (theirs == it->second.end()) {
          s = stable.erase(s);
        } else {
          s->second = std::min(s->second, theirs->second);
          ++s;
        }
      }
    }
  }
  for (auto s = stable.begin(); s != stable.end();) {
    s = SameShardOrigin(s->first) ? std::next(s) : stable.erase(s);
  }
  stable_.store(std::make_shared<const causal::VersionVector>(std::move(stable)));
}

bool Replicator::PruneSatisfied(causal::Metadata& m) const {
  if (m.vv.empty()) return false;
  const uint64_t barrier = cluster_.Config()->barrier_epoch;
  const std::shared_ptr<const causal::VersionVector> stable = stable_.load();
  bool changed = false;
  for (auto it = m.vv.begin(); it != m.vv.end();) {
    bool drop = causal::OriginEpoch(it->first) < barrier;
    if (!drop && stable != nullptr) {
      auto s = stable->find(it->first);
      drop = s != stable->end() && it->second <= s->second;
    }
    if (drop) {
      it = m.vv.erase(it);
      changed = true;
    } else {
      ++it;
    }
  }
  return changed;
}

bool Replicator::CatchUp() {
  RefreshPeers();
  for (const std::string& peer : ShardPeers(/*live_only=*/true)) {
    if (SyncWith(peer, /*full=*/true)) {
      full_sync_wanted_.store(false, std::memory_order_release);
      Log().information("caught up with %s: %z live keys", peer,
                        static_cast<size_t>(store_.live_count()));
      return true;
    }
  }
  return ShardPeers(/*live_only=*/true).empty();
}

void Replicator::ResetAfterBarrier() {
  std::lock_guard lock(pending_mu_);
  pending_.clear();
}

int64_t Replicator::OwnedLiveCount() const {
  if (!staging()) return store_.live_count();
  const std::optional<int> mine = cluster_.MyShard();
  int64_t count = 0;
  store_.ForEach([&](std::string_view key, const store::EntryView& entry) {
    if (!entry.tombstone && cluster_.ShardForKey(key) == mine) ++count;
  });
  return count;
}

void Replicator::CollectTombstones() {
  if (staging()) return;  // a reshard's staging pulls must see every delete
  const std::vector<std::string> members = ShardPeers(/*live_only=*/false);
  std::vector<causal::VersionVector> vectors;
  vectors.push_back(applied_.Snapshot());
  {
    std::lock_guard lock(peer_vv_mu_);
    for (const std::string& member : members) {
      auto it = peer_vv_.find(member);
      if (it == peer_vv_.end()) return;  // a member we know nothing of may lack the delete
      vectors.push_back(it->second);
    }
  }
  std::vector<std::tuple<std::string, std::string, uint64_t>> purged_keys;
  const size_t purged =
      store_.PurgeTombstones([&](std::string_view key, const store::EntryView& e) {
        for (const auto& vv : vectors) {
          auto it = vv.find(e.version.origin);
          if (it == vv.end() || it->second < e.version.seq) return false;
        }
        if (journal_ != nullptr) purged_keys.emplace_back(key, e.version.origin, e.version.seq);
        return true;
      });
  for (const auto& [key, origin, seq] : purged_keys) journal_->LogPurge(key, origin, seq);
  tombstones_collected_.fetch_add(purged, std::memory_order_relaxed);
}

bool Replicator::WaitReady(std::chrono::steady_clock::time_point deadline) {
  if (ready()) return true;
  std::unique_lock lock(ready_mu_);
  return ready_cv_.wait_until(lock, deadline, [&] { return ready(); });
}

const std::string* Replicator::FirstMissing(const causal::Metadata& m) const {
  for (const auto& [origin, seq] : m.vv) {
    // Causality needs the whole prefix 1..seq, so compare with the contiguous part; origins
    // of other shards are carried along, not checked.
    if (applied_.Contiguous(origin) < seq && SameShardOrigin(origin)) return &origin;
  }
  return nullptr;
}

bool Replicator::DependenciesPresent(const causal::Metadata& m) const {
  return ready() && FirstMissing(m) == nullptr;
}

bool Replicator::AwaitDependencies(const causal::Metadata& m, std::string& missing) {
  const auto deadline = std::chrono::steady_clock::now() + options_.dependency_wait;
  if (!WaitReady(deadline)) {
    missing = "replica is still loading its data";
    return false;
  }
  const std::string* gap = FirstMissing(m);
  if (gap == nullptr) return true;
  // The write is most likely on its way in a broadcast batch (batches linger up to
  // sender.linger): give it a moment before pulling, since a pull makes the peer walk its
  // whole store.
  const auto grace_end =
      std::min(deadline, std::chrono::steady_clock::now() + 2 * options_.sender.linger +
                             std::chrono::milliseconds(5));
  while (std::chrono::steady_clock::now() < grace_end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    gap = FirstMissing(m);
    if (gap == nullptr) return true;
  }
  dependency_pulls_.fetch_add(1, std::memory_order_relaxed);
  ++t_dependency_pulls;
  auto pause = std::chrono::milliseconds(20);
  while (true) {
    {
      // One pull at a time: requests that find one running wait for its result instead of
      // each asking every peer for the same data.
      std::unique_lock pull(pull_mu_, std::try_to_lock);
      if (pull.owns_lock()) {
        for (const std::string& peer : ShardPeers(/*live_only=*/false)) {
          // Each pull gets only what is left of the request's wait, so an unreachable peer
          // cannot stretch the bounded wait.
          if (std::chrono::steady_clock::now() >= deadline) break;
          SyncWith(peer, /*full=*/false, deadline);
        }
      }
    }
    gap = FirstMissing(m);
    if (gap == nullptr) return true;
    if (std::chrono::steady_clock::now() + pause >= deadline) break;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(200));
  }
  missing = *gap;
  dependency_timeouts_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void Replicator::Bootstrap() {
  using Clock = std::chrono::steady_clock;
  RefreshPeers();
  // A node that recovered its data from disk asks only for what it lacks (its applied vector
  // says what it has); an empty or repaired one asks for everything.
  const bool full =
      !recovered_data_ || recovery_repaired_ || full_sync_wanted_.load(std::memory_order_acquire);
  // Passes over the live peers until one hands over the whole stream. When no peer answers
  // at all there is nobody to load from now (a fresh cluster still starting, or every peer
  // down): start with what we have and let anti-entropy bring whatever appears later; the
  // causal gate still protects every client that carries metadata. A transfer that broke
  // off is started again, until bootstrap_timeout passes without a chunk arriving.
  constexpr int kMaxPasses = 10;
  bool synced = false;
  auto give_up_at = Clock::now() + options_.bootstrap_timeout;
  for (int pass = 0; pass < kMaxPasses && !synced; ++pass) {
    bool answered = false;
    for (const std::string& peer : ShardPeers(/*live_only=*/true)) {
      const int64_t before = store_.live_count();
      TransferStats stats;
      if (SyncWith(peer, full, std::nullopt, &stats)) {
        if (full) full_sync_wanted_.store(false, std::memory_order_release);
        Log().information("bootstrap: %s shard data from %s (%s live keys, %s before)",
                          std::string(full ? "loaded" : "caught up on"), peer,
                          std::to_string(store_.live_count()), std::to_string(before));
        synced = true;
        break;
      }
      if (stats.chunks > 0) {
        answered = true;
        give_up_at = Clock::now() + options_.bootstrap_timeout;
      }
    }
    if (synced || !answered || Clock::now() >= give_up_at) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!synced) {
    Log().information("bootstrap: no shard peer completed a transfer; starting with what we have");
  }
  {
    std::lock_guard lock(ready_mu_);
    ready_.store(true, std::memory_order_release);
  }
  ready_cv_.notify_all();
}

std::string Replicator::MetricsText() const {
  std::string out;
  auto counter = [&](const char* name, const char* help, uint64_t value) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name +
           " " + std::to_string(value) + "\n";
  };
  counter("kvs_replication_broadcast_sent_total", "Updates acknowledged by shard peers.",
          sender_counters_.sent.load());
  counter("kvs_replication_broadcast_dropped_total",
          "Updates not broadcast (peer out of the view or queue full); anti-entropy repairs them.",
          sender_counters_.dropped.load());
  counter("kvs_replication_updates_applied_total", "Entries received by broadcast.",
          broadcast_applied_.load());
  counter("kvs_anti_entropy_updates_applied_total", "Entries applied from anti-entropy pulls.",
          anti_entropy_applied_.load());
  counter("kvs_replication_handoff_applied_total",
          "Entries applied from a hand-off (a node that missed a reshard passing on its writes).",
          handoff_applied_.load());
  counter("kvs_anti_entropy_received_bytes_total",
          "Bytes of the answers of this node's periodic anti-entropy pulls.",
          ae_received_bytes_.load());
  counter("kvs_anti_entropy_received_entries_total",
          "Entries in those answers (applied or already here).", ae_received_entries_.load());
  counter("kvs_causal_dependency_pulls_total", "Requests that had to pull missing dependencies.",
          dependency_pulls_.load());
  counter("kvs_causal_dependency_timeouts_total", "Requests answered 503: dependencies missing.",
          dependency_timeouts_.load());
  counter("kvs_replication_pending_dropped_total",
          "Broadcast updates dropped from the causal buffer (anti-entropy repairs them).",
          pending_dropped_.load());
  counter("kvs_replication_misrouted_total",
          "Received updates ignored: key owned by another shard or layout newer than ours.",
          misrouted_.load());
  counter("kvs_sync_answered_from_recent_total",
          "Sync requests answered from the keys of recent updates (no walk of the store).",
          syncs_from_recent_.load());
  counter("kvs_sync_store_walks_total",
          "Sync requests (or stream chunks) answered by walking the store.", syncs_walked_.load());
  counter("kvs_transfer_chunks_sent_total", "State-transfer chunks answered to peers.",
          chunks_sent_.load());
  counter("kvs_transfer_chunks_received_total", "State-transfer chunks received from peers.",
          chunks_received_.load());
  counter("kvs_transfer_received_bytes_total", "Bytes of state-transfer chunks received.",
          transfer_bytes_received_.load());
  counter("kvs_transfer_failures_total", "State transfers that broke off before their end.",
          transfers_failed_.load());
  counter("kvs_tombstones_collected_total", "Tombstones purged after every replica applied them.",
          tombstones_collected_.load());
  out +=
      "# HELP kvs_sync_recent_updates Updates whose keys are kept to answer peers' deltas.\n"
      "# TYPE kvs_sync_recent_updates gauge\nkvs_sync_recent_updates " +
      std::to_string(applied_.recent_count()) +
      "\n# HELP kvs_sync_recent_updates_capacity How many of them can be kept now.\n"
      "# TYPE kvs_sync_recent_updates_capacity gauge\nkvs_sync_recent_updates_capacity " +
      std::to_string(applied_.capacity()) + "\n";
  out +=
      "# HELP kvs_anti_entropy_last_repair_timestamp_seconds Unix time of the last anti-entropy "
      "round that changed entries (0: none since start).\n"
      "# TYPE kvs_anti_entropy_last_repair_timestamp_seconds gauge\n"
      "kvs_anti_entropy_last_repair_timestamp_seconds " +
      std::to_string(ae_last_repair_unix_ms_.load(std::memory_order_relaxed) / 1000) + "\n";
  const std::vector<PeerQueue> queues = QueueSnapshot();
  out +=
      "# HELP kvs_replication_queue_depth Updates queued for broadcast to each shard peer.\n"
      "# TYPE kvs_replication_queue_depth gauge\n";
  for (const PeerQueue& q : queues) {
    out +=
        "kvs_replication_queue_depth{peer=\"" + q.peer + "\"} " + std::to_string(q.queued) + "\n";
  }
  out +=
      "# HELP kvs_replication_queue_oldest_age_seconds Age of the oldest update queued for each "
      "shard peer (0: none queued).\n"
      "# TYPE kvs_replication_queue_oldest_age_seconds gauge\n";
  for (const PeerQueue& q : queues) {
    out += "kvs_replication_queue_oldest_age_seconds{peer=\"" + q.peer + "\"} " +
           std::to_string(static_cast<double>(q.oldest_age_ms) / 1000.0) + "\n";
  }
  out +=
      "# HELP kvs_tombstones Deleted keys kept as tombstones until every replica has them.\n"
      "# TYPE kvs_tombstones gauge\nkvs_tombstones " +
      std::to_string(store_.tombstone_count()) + "\n";
  return out;
}

}  // namespace kvs::replication
