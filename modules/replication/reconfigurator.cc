#include "kvs/replication/reconfigurator.h"

#include <Poco/Logger.h>
#include <pthread.h>

#include <future>
#include <map>
#include <thread>

#include "kvs/causal/metadata.h"
#include "kvs/cluster/hash_ring.h"

namespace kvs::replication {
namespace {

Poco::Logger& Log() { return Poco::Logger::get("kvs.reconfigure"); }

// A hand-off's entries go in batches of this many, each to every member of their shard,
// tried this many times (pausing between rounds) before they are given up.
constexpr size_t kHandoffBatch = 512;
constexpr int kHandoffAttempts = 5;
constexpr std::chrono::milliseconds kHandoffRetryPause{1000};
// Each call's bound (connect and answer): a member that hangs costs at most this per try.
constexpr std::chrono::milliseconds kHandoffCallTimeout{5000};

}  // namespace

Reconfigurator::Reconfigurator(store::Store& store, causal::HybridClock& clock,
                               cluster::ClusterState& cluster, net::PeerClient& client,
                               Replicator& replicator, Coordinator& coordinator,
                               ReconfigureOptions options, storage::Journal* journal)
    : store_(store),
      clock_(clock),
      cluster_(cluster),
      client_(client),
      replicator_(replicator),
      coordinator_(coordinator),
      options_(options),
      journal_(journal) {}

void Reconfigurator::Start() {
  // The cluster's configuration wins over the one derived from the environment.
  for (const cluster::Address& node : cluster_.View()) {
    if (node == cluster_.self()) continue;
    const net::CallResult result = client_.Call(node.ToString(), "GET", "/internal/config", "",
                                                std::chrono::milliseconds(500));
    if (!result.ok()) continue;
    std::string error;
    if (auto config = DecodeConfig(result.body, error)) Adopt(*config);
  }
  if (journal_ != nullptr) journal_->LogLayout(EncodeConfig(*cluster_.Config()));
  coordinator_.StartEpoch(cluster_.Config()->epoch);
  replicator_.Bootstrap();
}

bool Reconfigurator::Adopt(const cluster::ClusterConfig& config, uint64_t* held_ms) {
  std::lock_guard lock(adopt_mu_);
  const std::shared_ptr<const cluster::ClusterConfig> before = cluster_.Config();
  const std::optional<int> shard_before = before->ShardOf(cluster_.self());
  if (!cluster_.AdoptConfig(config)) return false;
  // Recovery replays layouts in log order and keeps only what the last one says this node owns
  // (the keys a reshard drops below are not logged one by one).
  if (journal_ != nullptr) journal_->LogLayout(EncodeConfig(config));
  const std::optional<int> shard_after = config.ShardOf(cluster_.self());
  Log().information("adopted configuration epoch %s (%d shards); this node: shard %s",
                    std::to_string(config.epoch), config.shard_count(),
                    shard_after ? std::to_string(*shard_after) : std::string("none"));
  if (config.barrier_epoch != before->barrier_epoch) {
    // A reshard committed: writes from now on carry a fresh origin, the keys this node no
    // longer owns go, and the gate reopens.
    bool took_part = false;
    {
      std::lock_guard freeze(freeze_mu_);
      took_part = frozen_for_epoch_ == config.epoch;
    }
    // A node that missed the barrier (down, restarted from disk, or cut off) did not receive
    // the keys moved to its shard, and anti-entropy's delta skips writes from before the
    // barrier: it needs a full copy from a peer.
    if (!took_part && shard_after) replicator_.RequestFullSync();
    coordinator_.StartEpoch(config.epoch);
    replicator_.ResetAfterBarrier();
    // Broadcast to the new shard peers before the first write of the new epoch.
    replicator_.RefreshPeers();
    {
      std::lock_guard freeze(freeze_mu_);
      if (took_part && held_ms != nullptr) {
        *held_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::steady_clock::now() - frozen_since_)
                                             .count());
      }
      frozen_for_epoch_ = 0;
    }
    // Writes reopen before the walk that drops what this node no longer owns, and the walk
    // runs after this returns (the commit's answer does not wait for it).
    coordinator_.Thaw();
    StartDrop(shard_after, config.epoch, /*hand_off=*/!took_part);
  } else if (shard_after && shard_after != shard_before) {
    replicator_.RequestFullSync();  // joined a shard: its data comes with the next round
  }
  replicator_.RefreshPeers();
  return true;
}

void Reconfigurator::FetchConfigFrom(const std::string& peer) {
  const net::CallResult result =
      client_.Call(peer, "GET", "/internal/config", "", std::chrono::milliseconds(2000));
  if (!result.ok()) return;
  std::string error;
  if (auto config = DecodeConfig(result.body, error)) Adopt(*config);
}

Reconfigurator::~Reconfigurator() {
  stopping_.store(true, std::memory_order_release);
  WaitForDrop();
  EndStaging(/*adopted=*/true);
}

void Reconfigurator::StartDrop(std::optional<int> shard, uint64_t epoch, bool hand_off) {
  WaitForDrop();
  // Until the drop ends, sync answers and key counts leave out the keys this node does not
  // own, as while staging (a node that missed the barrier has no staging of its own).
  replicator_.SetStaging(true);
  std::lock_guard lock(drop_mu_);
  drop_ = std::thread([this, shard, epoch, hand_off] {
    if (hand_off) HandOff(shard);
    const auto start = std::chrono::steady_clock::now();
    // Keys of other shards, and tombstones from before the barrier (a new write replaces
    // such a tombstone with a newer entry). Writes reopened before this walk, but they reach
    // only keys this node owns, which it keeps.
    const size_t dropped = store_.EraseIf([&](std::string_view key, const store::EntryView& entry) {
      return !shard || cluster_.ShardForKey(key) != shard ||
             (entry.tombstone && causal::OriginEpoch(entry.version.origin) < epoch);
    });
    // What the staging brought is owned now (and what it brought for another layout was just
    // dropped).
    EndStaging(/*adopted=*/true);
    replicator_.SetStaging(false);
    Log().information("reshard committed: dropped %z entries this node no longer owns in %s ms",
                      dropped,
                      std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - start)
                                         .count()));
  });
}

void Reconfigurator::HandOff(std::optional<int> shard) {
  const auto start = std::chrono::steady_clock::now();
  const std::string self = cluster_.self().ToString();
  const std::shared_ptr<const cluster::ClusterConfig> config = cluster_.Config();
  std::map<int, std::vector<Update>> by_shard;
  store_.ForEach([&](std::string_view key, const store::EntryView& entry) {
    const std::string_view origin = entry.version.origin;
    if (causal::OriginAddress(origin) != self) return;  // not a write of this node
    const std::optional<int> owner = cluster_.ShardForKey(key);
    if (!owner || owner == shard) return;
    by_shard[*owner].push_back(Update{std::string(key), entry.ToEntry()});
  });
  size_t sent = 0;
  size_t lost = 0;
  for (const auto& [owner, updates] : by_shard) {
    if (static_cast<size_t>(owner) >= config->shards.size()) {  // the layout moved meanwhile
      lost += updates.size();
      continue;
    }
    const int to_shard = owner;  // a structured binding cannot be captured (clang 14)
    const auto& members = config->shards[static_cast<size_t>(owner)];
    for (size_t first = 0; first < updates.size(); first += kHandoffBatch) {
      std::vector<const Update*> batch;
      for (size_t i = first; i < std::min(updates.size(), first + kHandoffBatch); ++i) {
        batch.push_back(&updates[i]);
      }
      const std::string body = EncodeBatch(self, batch);
      // Every member, each until it takes the batch (a few tries): anti-entropy's deltas do not
      // offer entries from before the last barrier, so a member left out would get these only
      // from a full sync. One member that took it is enough for them to survive.
      std::vector<const cluster::Address*> left;
      for (const cluster::Address& member : members) {
        if (member != cluster_.self()) left.push_back(&member);
      }
      bool taken = false;
      for (int attempt = 0; attempt < kHandoffAttempts && !left.empty(); ++attempt) {
        if (attempt > 0) {
          const auto until = std::chrono::steady_clock::now() + kHandoffRetryPause;
          while (!stopping_.load(std::memory_order_acquire) &&
                 std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
          }
        }
        std::erase_if(left, [&](const cluster::Address* member) {
          if (stopping_.load(std::memory_order_acquire)) return false;
          const net::CallResult result = client_.Call(
              member->ToString(), "POST", "/internal/handoff", body, kHandoffCallTimeout);
          if (!result.ok()) {
            Log().warning("hand-off of %z entries to %s (shard %d) failed: %s", batch.size(),
                          member->ToString(), to_shard, result.error);
            return false;
          }
          taken = true;
          return true;
        });
        if (stopping_.load(std::memory_order_acquire)) break;
      }
      (taken ? sent : lost) += batch.size();
    }
  }
  if (sent + lost > 0) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    if (lost == 0) {
      Log().information(
          "missed a reshard: handed %z of this node's writes to their new shards "
          "in %s ms",
          sent, std::to_string(ms));
    } else {
      Log().error(
          "missed a reshard: handed %z of this node's writes to their new shards; %z "
          "could not be handed to any member and are dropped",
          sent, lost);
    }
  }
}

void Reconfigurator::WaitForDrop() {
  std::lock_guard lock(drop_mu_);
  if (drop_.joinable()) drop_.join();
}

// --- staging (phase 1 of an online reshard, at every node) ---

void Reconfigurator::Stage(const cluster::ClusterConfig& next) {
  // The last commit's drop walks keys this node does not own: it must not meet new staged ones.
  WaitForDrop();
  std::lock_guard end(staging_end_mu_);
  {
    std::lock_guard lock(staging_mu_);
    if (staging_ != nullptr && staging_->next.epoch == next.epoch) {
      staging_->last_contact = std::chrono::steady_clock::now();
      return;  // asked again (a retried call): already under way
    }
  }
  if (next.epoch <= cluster_.Config()->epoch) return;  // stale: that layout is not ahead
  auto staging = std::make_unique<Staging>();
  staging->next = next;
  staging->current = cluster_.Config();
  staging->old_shard = staging->current->ShardOf(cluster_.self());
  staging->new_shard = next.ShardOf(cluster_.self());
  staging->progress.epoch = next.epoch;
  staging->progress.shard = staging->new_shard.value_or(-1);
  staging->progress.phase = StagingProgress::Phase::kStreaming;
  staging->last_contact = std::chrono::steady_clock::now();
  std::unique_ptr<Staging> previous;
  {
    std::lock_guard lock(staging_mu_);
    previous = std::move(staging_);
  }
  if (previous != nullptr) {  // a reshard that never finished: its keys go
    StopWorker(*previous);
    DropStaged(*previous);
  }
  // Every node holds tombstones from now on (its replicas may be someone's source), and its
  // sync answers leave out the keys it stages.
  replicator_.SetStaging(true);
  Staging& st = *staging;
  {
    std::lock_guard lock(staging_mu_);
    staging_ = std::move(staging);
  }
  Log().information("reshard to epoch %s: staging the keys of shard %s of the next layout",
                    std::to_string(next.epoch),
                    st.new_shard ? std::to_string(*st.new_shard) : std::string("none"));
  st.worker = std::thread([this, &st] { StageLoop(st); });
}

void Reconfigurator::StageLoop(Staging& st) {
  pthread_setname_np(pthread_self(), "kvs-stage");  // top -H, perf --sort comm
  auto set_phase = [&](StagingProgress::Phase phase, std::string error = {}) {
    std::lock_guard lock(staging_mu_);
    st.progress.phase = phase;
    st.progress.error = std::move(error);
  };
  if (!st.new_shard) {  // in no shard of the next layout: nothing to pull
    set_phase(StagingProgress::Phase::kCaughtUp);
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  uint64_t applied = 0;
  for (int source = 0; source < st.current->shard_count(); ++source) {
    if (source == st.old_shard) continue;  // this node has those keys already
    if (st.stop.load()) return;
    if (std::string error = PullRange(st, source, /*full=*/true, /*all_members=*/false, applied);
        !error.empty()) {
      Log().warning("reshard to epoch %s: staging failed: %s", std::to_string(st.next.epoch),
                    error);
      set_phase(StagingProgress::Phase::kFailed, error);
      return;
    }
  }
  uint64_t entries = 0;
  {
    std::lock_guard lock(staging_mu_);
    entries = st.progress.entries;
  }
  Log().information("reshard to epoch %s: shard %d's range streamed in: %s entries, %s ms",
                    std::to_string(st.next.epoch), *st.new_shard, std::to_string(entries),
                    std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::steady_clock::now() - start)
                                       .count()));
  set_phase(StagingProgress::Phase::kCatchingUp);
  // Catch-up passes (deltas: the writes made meanwhile) until the barrier stops them, so that
  // the barrier itself ships only the last few.
  int failures = 0;
  while (!st.stop.load()) {
    uint64_t delta = 0;
    std::string error;
    for (int source = 0; source < st.current->shard_count() && error.empty(); ++source) {
      if (source != st.old_shard) error = PullRange(st, source, false, false, delta);
    }
    if (!error.empty() && ++failures >= 5) {
      set_phase(StagingProgress::Phase::kFailed, error);
      return;
    }
    if (error.empty()) failures = 0;
    {
      std::lock_guard lock(staging_mu_);
      st.progress.last_delta = delta;
      if (error.empty()) {
        st.progress.phase = delta <= options_.caught_up_entries
                                ? StagingProgress::Phase::kCaughtUp
                                : StagingProgress::Phase::kCatchingUp;
      }
    }
    std::unique_lock lock(staging_mu_);
    staging_cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return st.stop.load(); });
  }
}

std::string Reconfigurator::PullRange(Staging& st, int source, bool full, bool all_members,
                                      uint64_t& applied) {
  const std::string self = cluster_.self().ToString();
  const KeyRange range{st.next.shard_count(), *st.new_shard};
  int answered = 0;
  std::string last_error = "no live member";
  for (const cluster::Address& member : st.current->shards[static_cast<size_t>(source)]) {
    if (member == cluster_.self() || !cluster_.InView(member)) continue;
    if (st.stop.load() && !all_members) break;
    SyncRequest request{self,
                        full ? causal::VersionVector{} : st.have[source],
                        full,
                        0,
                        replicator_.transfer_chunk_bytes(),
                        range};
    Replicator::TransferStats stats;
    const std::optional<causal::VersionVector> vv = replicator_.StreamFrom(
        member.ToString(), std::move(request), std::nullopt,
        [&](std::vector<Update>& updates) {
          uint64_t bytes = 0;
          for (const Update& u : updates) bytes += u.key.size() + u.entry.value.size();
          applied += StageEntries(updates);
          staged_bytes_.fetch_add(bytes, std::memory_order_relaxed);
          std::lock_guard lock(staging_mu_);
          st.progress.entries += updates.size();
          st.progress.bytes += bytes;
        },
        &stats, "reshard staging");
    if (!vv) {
      last_error = member.ToString() + ": " + stats.error;
      continue;
    }
    ++answered;
    // Everything the answerer's vector covers is now here (or overwritten by newer).
    for (const auto& [origin, seq] : *vv) {
      uint64_t& held = st.have[source][origin];
      held = std::max(held, seq);
    }
    if (!all_members) break;
  }
  if (answered == 0) {
    return "no replica of shard " + std::to_string(source) + " gave its keys (" + last_error + ")";
  }
  return std::string();
}

size_t Reconfigurator::StageEntries(std::vector<Update>& updates) {
  size_t changed = 0;
  for (const Update& u : updates) {
    clock_.Observe(u.entry.version.hlc);
    const bool written = store_.ApplyIfNewer(u.key, u.entry).written;
    // Not recorded as applied: these origins belong to other shards, and once the reshard
    // commits they are behind its barrier. Recovery keeps them only if the log holds the
    // commit's layout after them.
    if (written && journal_ != nullptr) journal_->LogEntry(u.key, u.entry, false);
    changed += written;
  }
  staged_entries_.fetch_add(updates.size(), std::memory_order_relaxed);
  return changed;
}

StagingProgress Reconfigurator::Progress(uint64_t epoch) {
  std::lock_guard lock(staging_mu_);
  if (staging_ == nullptr || staging_->next.epoch != epoch) {
    StagingProgress none;
    none.epoch = epoch;
    return none;
  }
  staging_->last_contact = std::chrono::steady_clock::now();
  return staging_->progress;
}

void Reconfigurator::StopWorker(Staging& st) {
  {
    std::lock_guard lock(staging_mu_);
    st.stop.store(true);
  }
  staging_cv_.notify_all();
  if (st.worker.joinable()) st.worker.join();
}

void Reconfigurator::DropStaged(const Staging& st) {
  if (!st.new_shard) return;
  const std::optional<int> mine = cluster_.MyShard();
  const size_t dropped = store_.EraseIf([&](std::string_view key, const store::EntryView&) {
    return !mine || cluster_.ShardForKey(key) != mine;
  });
  // The staged entries are in the log: the layout logged again after them drops them at
  // recovery too (see StoreRecovery::OnLayout).
  if (journal_ != nullptr) journal_->LogLayout(EncodeConfig(*cluster_.Config()));
  Log().information("reshard to epoch %s abandoned: %z staged entries dropped",
                    std::to_string(st.next.epoch), dropped);
}

void Reconfigurator::EndStaging(bool adopted) {
  std::lock_guard end(staging_end_mu_);
  std::unique_ptr<Staging> st;
  {
    std::lock_guard lock(staging_mu_);
    st = std::move(staging_);
  }
  if (st == nullptr) return;
  StopWorker(*st);
  if (!adopted) DropStaged(*st);
  replicator_.SetStaging(false);
}

// --- the barrier (phases 2 and 3, at every node) ---

bool Reconfigurator::Prepare(uint64_t epoch) {
  {
    std::lock_guard lock(freeze_mu_);
    frozen_for_epoch_ = epoch;
    frozen_since_ = std::chrono::steady_clock::now();
  }
  const bool drained = coordinator_.Freeze(options_.drain_wait);
  Log().information("reshard to epoch %s: writes frozen%s", std::to_string(epoch),
                    std::string(drained ? "" : " (some writes still in progress)"));
  return drained;
}

std::string Reconfigurator::Finish(uint64_t epoch, StagingProgress& out) {
  using Clock = std::chrono::steady_clock;
  const auto called = Clock::now();
  std::lock_guard end(staging_end_mu_);
  Staging* st = nullptr;
  {
    std::lock_guard lock(staging_mu_);
    if (staging_ != nullptr && staging_->next.epoch == epoch) st = staging_.get();
  }
  if (st == nullptr) return "no staging for epoch " + std::to_string(epoch);
  StopWorker(*st);
  {
    std::lock_guard lock(staging_mu_);
    st->last_contact = Clock::now();
    if (st->progress.phase == StagingProgress::Phase::kFailed) return st->progress.error;
  }
  // Where the barrier's time goes: the worker's last pass, the pulls from the sources, the
  // sync with this shard's peers, the log flush.
  auto since = [](Clock::time_point t) {
    return std::to_string(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count());
  };
  const std::string stop_ms = since(called);
  auto step = Clock::now();
  std::string pull_ms = "0", sync_ms = "0";
  uint64_t delta = 0;
  if (st->new_shard) {
    // Writes are held everywhere: every live replica's state is final. A write acknowledged
    // by one replica may not have reached the others, so each one is asked.
    for (int source = 0; source < st->current->shard_count(); ++source) {
      if (source == st->old_shard) continue;
      if (std::string error = PullRange(*st, source, false, /*all_members=*/true, delta);
          !error.empty()) {
        return error;
      }
    }
    pull_ms = since(step);
    step = Clock::now();
    // The keys that stay in this node's shard: the same, from its own peers.
    if (st->old_shard) {
      for (const cluster::Address& peer :
           st->current->shards[static_cast<size_t>(*st->old_shard)]) {
        if (peer == cluster_.self() || !cluster_.InView(peer)) continue;
        if (!replicator_.SyncWith(peer.ToString())) {
          Log().warning("reshard to epoch %s: shard peer %s did not answer the last sync",
                        std::to_string(epoch), peer.ToString());
        }
      }
    }
    sync_ms = since(step);
    step = Clock::now();
  }
  // The old owners drop these keys at the commit: they must be on disk here first.
  if (journal_ != nullptr && !journal_->Flush(std::chrono::seconds(10))) {
    return "the log could not be flushed";
  }
  {
    std::lock_guard lock(staging_mu_);
    st->progress.last_delta = delta;
    out = st->progress;
  }
  Log().information(
      "reshard to epoch %s: last delta %s entries in %s ms (staging stopped in %s ms, sources "
      "%s ms, shard peers %s ms, log flush %s ms)",
      std::to_string(epoch), std::to_string(delta), since(called), stop_ms, pull_ms, sync_ms,
      since(step));
  return std::string();
}

void Reconfigurator::Abort(uint64_t epoch) {
  bool staged = false;
  {
    std::lock_guard lock(staging_mu_);
    staged = staging_ != nullptr && staging_->next.epoch == epoch;
  }
  if (staged) EndStaging(/*adopted=*/false);
  {
    std::lock_guard lock(freeze_mu_);
    if (frozen_for_epoch_ != epoch) return;
    frozen_for_epoch_ = 0;
  }
  coordinator_.Thaw();
  Log().warning("reshard to epoch %s aborted: writes reopened", std::to_string(epoch));
}

void Reconfigurator::CheckFreeze() {
  uint64_t stale_staging = 0;
  {
    std::lock_guard lock(staging_mu_);
    if (staging_ != nullptr &&
        std::chrono::steady_clock::now() - staging_->last_contact >= options_.staging_lease) {
      stale_staging = staging_->next.epoch;
    }
  }
  if (stale_staging != 0) {
    Log().warning("reshard to epoch %s: its coordinator stopped asking; staging dropped",
                  std::to_string(stale_staging));
    EndStaging(/*adopted=*/false);
  }
  uint64_t epoch = 0;
  {
    std::lock_guard lock(freeze_mu_);
    if (frozen_for_epoch_ == 0 ||
        std::chrono::steady_clock::now() - frozen_since_ < options_.freeze_limit) {
      return;
    }
    epoch = frozen_for_epoch_;
  }
  Log().warning("no commit for the reshard to epoch %s within the freeze limit",
                std::to_string(epoch));
  Abort(epoch);
}

std::vector<net::CallResult> Reconfigurator::CallAll(const std::vector<cluster::Address>& nodes,
                                                     const std::string& method,
                                                     const std::string& path,
                                                     const std::string& body,
                                                     std::chrono::milliseconds timeout) {
  std::vector<std::future<net::CallResult>> calls;
  calls.reserve(nodes.size());
  for (const cluster::Address& node : nodes) {
    calls.push_back(std::async(std::launch::async, [this, &node, &method, &path, &body, timeout] {
      return client_.Call(node.ToString(), method, path, body, timeout);
    }));
  }
  std::vector<net::CallResult> results;
  results.reserve(nodes.size());
  for (auto& call : calls) results.push_back(call.get());
  return results;
}

std::string Reconfigurator::ForAll(const std::vector<cluster::Address>& nodes,
                                   const std::string& method, const std::string& path,
                                   const std::string& body, std::chrono::milliseconds timeout) {
  const std::vector<net::CallResult> results = CallAll(nodes, method, path, body, timeout);
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (!results[i].ok()) return nodes[i].ToString() + ": " + results[i].Describe();
  }
  return std::string();
}

void Reconfigurator::AbortEverywhere(const std::vector<cluster::Address>& nodes, uint64_t epoch) {
  reshards_failed_.fetch_add(1, std::memory_order_relaxed);
  const std::string body = "{\"epoch\":" + std::to_string(epoch) + "}";
  for (const cluster::Address& node : nodes) {
    client_.Call(node.ToString(), "POST", "/internal/reshard/abort", body,
                 std::chrono::milliseconds(2000));
  }
}

Reconfigurator::OperationScope::OperationScope(Reconfigurator& owner, std::string kind,
                                               std::string phase, uint64_t total)
    : owner_(owner) {
  std::lock_guard lock(owner_.operation_mu_);
  owner_.operation_ =
      Operation{std::move(kind), std::move(phase), 0, total, std::chrono::steady_clock::now()};
}

Reconfigurator::OperationScope::~OperationScope() {
  std::lock_guard lock(owner_.operation_mu_);
  owner_.operation_.reset();
}

void Reconfigurator::OperationScope::Set(std::string_view phase, uint64_t done, uint64_t total) {
  std::lock_guard lock(owner_.operation_mu_);
  if (!owner_.operation_) return;
  owner_.operation_->phase = phase;
  owner_.operation_->done = done;
  owner_.operation_->total = total;
}

void Reconfigurator::OperationScope::SetDone(uint64_t done) {
  std::lock_guard lock(owner_.operation_mu_);
  if (owner_.operation_) owner_.operation_->done = done;
}

std::optional<Reconfigurator::Operation> Reconfigurator::CurrentOperation() const {
  std::lock_guard lock(operation_mu_);
  return operation_;
}

ChangeOutcome Reconfigurator::AddMember(int shard, const cluster::Address& node) {
  std::lock_guard change(change_mu_);
  OperationScope operation(*this, "add-member", "config", 2);
  cluster::ClusterConfig next = *cluster_.Config();
  for (auto& members : next.shards) std::erase(members, node);
  auto& members = next.shards.at(static_cast<size_t>(shard));
  members.push_back(node);
  std::sort(members.begin(), members.end());
  ++next.epoch;
  Log().information("add-member: %s joins shard %d (epoch %s)", node.ToString(), shard,
                    std::to_string(next.epoch));
  // Every node in the view learns the layout (nodes that miss it get it by heartbeat).
  const std::string body = EncodeConfig(next);
  for (const cluster::Address& peer : cluster_.View()) {
    if (peer == cluster_.self()) continue;
    const net::CallResult result =
        client_.Call(peer.ToString(), "POST", "/internal/config", body, options_.call_timeout);
    if (!result.ok()) {
      Log().warning("add-member: %s did not take the new layout: %s", peer.ToString(),
                    result.Describe());
    }
  }
  Adopt(next);
  operation.Set("catch-up", 1, 2);
  // The new member loads the shard's data before the client hears 200.
  if (node == cluster_.self()) {
    replicator_.CatchUp();
  } else {
    const net::CallResult result =
        client_.Call(node.ToString(), "POST", "/internal/catch-up", "{}", options_.call_timeout);
    if (!result.ok()) {
      return {503, "New member " + node.ToString() +
                       " could not load the shard's data: " + result.Describe()};
    }
  }
  return {};
}

std::string Reconfigurator::StageEverywhere(const std::vector<cluster::Address>& nodes,
                                            const cluster::ClusterConfig& next,
                                            OperationScope& operation) {
  using Clock = std::chrono::steady_clock;
  if (std::string failed = ForAll(nodes, "POST", "/internal/reshard/stage", EncodeConfig(next),
                                  options_.call_timeout);
      !failed.empty()) {
    return "node " + failed + " could not start staging";
  }
  const std::string path = "/internal/reshard/progress?epoch=" + std::to_string(next.epoch);
  std::vector<int> unreachable(nodes.size(), 0);
  uint64_t last_total = 0;
  auto last_progress = Clock::now();
  auto next_log = Clock::now() + std::chrono::seconds(2);
  while (true) {
    const std::vector<net::CallResult> results =
        CallAll(nodes, "GET", path, "", options_.call_timeout);
    std::map<int, StagingProgress> by_shard;
    bool all_caught_up = true;
    uint64_t total = 0;
    uint64_t caught_up = 0;
    for (size_t i = 0; i < nodes.size(); ++i) {
      const std::string name = nodes[i].ToString();
      std::string error;
      const auto progress =
          results[i].ok() ? DecodeStagingProgress(results[i].body, error) : std::nullopt;
      if (!progress) {
        // A node that stops answering is given a few polls (it may be busy), not forever.
        if (++unreachable[i] >= 20) {
          return "node " + name + " stopped answering (" +
                 (results[i].ok() ? error : results[i].Describe()) + ")";
        }
        all_caught_up = false;
        continue;
      }
      unreachable[i] = 0;
      if (progress->phase == StagingProgress::Phase::kFailed) {
        return "node " + name + " could not stage its keys: " + progress->error;
      }
      if (progress->phase == StagingProgress::Phase::kIdle) {
        return "node " + name + " is not staging (restarted?)";
      }
      all_caught_up = all_caught_up && progress->phase == StagingProgress::Phase::kCaughtUp;
      caught_up += progress->phase == StagingProgress::Phase::kCaughtUp;
      total += progress->entries;
      if (progress->shard >= 0) {
        StagingProgress& shard = by_shard[progress->shard];
        shard.shard = progress->shard;
        shard.entries += progress->entries;
        shard.bytes += progress->bytes;
        shard.last_delta += progress->last_delta;
        shard.phase = std::min(shard.phase == StagingProgress::Phase::kIdle
                                   ? StagingProgress::Phase::kCaughtUp
                                   : shard.phase,
                               progress->phase);
      }
    }
    {
      std::lock_guard lock(report_mu_);
      coordinated_ = by_shard;
    }
    operation.SetDone(caught_up);
    if (all_caught_up) return std::string();
    if (total != last_total) {
      last_total = total;
      last_progress = Clock::now();
    } else if (Clock::now() - last_progress > options_.call_timeout) {
      return "staging made no progress for " +
             std::to_string(options_.call_timeout.count() / 1000) + " s";
    }
    if (Clock::now() >= next_log) {
      next_log = Clock::now() + std::chrono::seconds(2);
      std::string line;
      for (const auto& [shard, p] : by_shard) {
        line += " shard " + std::to_string(shard) + ": " + std::string(ToString(p.phase)) + ", " +
                std::to_string(p.entries) + " entries (" + std::to_string(p.bytes >> 20) + " MiB);";
      }
      Log().information("reshard to epoch %s: staging:%s", std::to_string(next.epoch), line);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

ChangeOutcome Reconfigurator::ReshardTo(int shard_count) {
  using Clock = std::chrono::steady_clock;
  std::lock_guard change(change_mu_);
  const auto started = Clock::now();
  const std::shared_ptr<const cluster::ClusterConfig> current = cluster_.Config();
  const std::vector<cluster::Address> live = cluster_.View();
  const cluster::ClusterConfig next = cluster::Reshard(*current, live, shard_count);
  OperationScope operation(*this, "reshard", "staging", live.size());
  const std::string epoch_body = "{\"epoch\":" + std::to_string(next.epoch) + "}";
  Log().information("reshard: %d -> %d shards over %z nodes (epoch %s)", current->shard_count(),
                    shard_count, live.size(), std::to_string(next.epoch));
  auto fail = [&](const std::string& why) -> ChangeOutcome {
    Log().warning("reshard to epoch %s failed: %s", std::to_string(next.epoch), why);
    AbortEverywhere(live, next.epoch);
    return {503, "Resharding failed: " + why, ""};
  };

  // 1. Every node pulls the keys it will own, while the cluster serves reads and writes.
  if (std::string failed = StageEverywhere(live, next, operation); !failed.empty()) {
    return fail(failed);
  }
  const auto staged = Clock::now();
  operation.Set("barrier", 0, live.size());

  // 2. The barrier: writes held everywhere while each node takes the last delta.
  const auto hold_start = Clock::now();
  if (std::string failed = ForAll(live, "POST", "/internal/reshard/prepare", epoch_body,
                                  options_.barrier_call_timeout);
      !failed.empty()) {
    return fail("node " + failed + " could not pause writes");
  }
  const std::vector<net::CallResult> finished =
      CallAll(live, "POST", "/internal/reshard/finish", epoch_body, options_.barrier_call_timeout);
  std::map<int, StagingProgress> by_shard;
  for (size_t i = 0; i < live.size(); ++i) {
    std::string error;
    const auto progress =
        finished[i].ok() ? DecodeStagingProgress(finished[i].body, error) : std::nullopt;
    if (!progress) {
      return fail("node " + live[i].ToString() + " could not take its last keys: " +
                  (finished[i].ok() ? error : finished[i].Describe()));
    }
    if (progress->shard < 0) continue;
    StagingProgress& shard = by_shard[progress->shard];
    shard.shard = progress->shard;
    shard.phase = StagingProgress::Phase::kCaughtUp;
    shard.entries += progress->entries;
    shard.bytes += progress->bytes;
    shard.last_delta += progress->last_delta;
  }

  operation.Set("commit", live.size(), live.size());
  // 3. Commit: every node (this one too, at the same time) switches to the new layout,
  //    reopens writes, then drops what it no longer owns; each says how long it held writes.
  if (Clock::now() - hold_start > options_.barrier_limit) {
    return fail("the barrier took longer than " +
                std::to_string(options_.barrier_limit.count() / 1000) + " s");
  }
  const std::vector<net::CallResult> committed =
      CallAll(live, "POST", "/internal/config", EncodeConfig(next), options_.barrier_call_timeout);
  auto ms = [](Clock::duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  int64_t held_ms = 0;
  for (size_t i = 0; i < live.size(); ++i) {
    std::string error;
    const auto answer =
        committed[i].ok() ? DecodeConfigAnswer(committed[i].body, error) : std::nullopt;
    if (!answer) {
      Log().warning("reshard: %s did not take the commit (%s); it will by heartbeat",
                    live[i].ToString(), committed[i].ok() ? error : committed[i].Describe());
      held_ms = std::max(held_ms, ms(Clock::now() - hold_start));  // at most this long
      continue;
    }
    held_ms = std::max(held_ms, static_cast<int64_t>(answer->held_ms));
  }
  Adopt(next);  // in case the call to itself failed
  const auto done = Clock::now();
  last_hold_ms_.store(static_cast<uint64_t>(held_ms), std::memory_order_relaxed);
  last_reshard_ms_.store(static_cast<uint64_t>(ms(done - started)), std::memory_order_relaxed);
  reshards_done_.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(report_mu_);
    coordinated_ = by_shard;
  }
  std::string report = "{\"epoch\":" + std::to_string(next.epoch) +
                       ",\"shards\":" + std::to_string(shard_count) +
                       ",\"took_ms\":" + std::to_string(ms(done - started)) +
                       ",\"staging_ms\":" + std::to_string(ms(staged - started)) +
                       ",\"writes_held_ms\":" + std::to_string(held_ms) + ",\"by_shard\":[";
  std::string line;
  for (const auto& [shard, p] : by_shard) {
    if (report.back() != '[') report += ",";
    report += "{\"shard\":" + std::to_string(shard) + ",\"entries\":" + std::to_string(p.entries) +
              ",\"bytes\":" + std::to_string(p.bytes) +
              ",\"last_delta\":" + std::to_string(p.last_delta) + "}";
    line += " shard " + std::to_string(shard) + ": " + std::to_string(p.entries) + " entries (" +
            std::to_string(p.bytes >> 20) + " MiB, last delta " + std::to_string(p.last_delta) +
            ");";
  }
  report += "]}";
  Log().information("reshard done: %d shards in %s ms (staging %s ms, writes held %s ms);%s",
                    shard_count, std::to_string(ms(done - started)),
                    std::to_string(ms(staged - started)), std::to_string(held_ms), line);
  return {200, "", report};
}

std::string Reconfigurator::MetricsText() const {
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, const std::string& v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
           name + " " + v + "\n";
  };
  metric("kvs_reshards_total", "counter", "Reshards this node coordinated to their end.",
         std::to_string(reshards_done_.load()));
  metric("kvs_reshard_failures_total", "counter", "Reshards this node coordinated that failed.",
         std::to_string(reshards_failed_.load()));
  metric("kvs_reshard_last_duration_seconds", "gauge",
         "Length of the last reshard this node coordinated.",
         std::to_string(static_cast<double>(last_reshard_ms_.load()) / 1000.0));
  metric("kvs_reshard_last_writes_held_seconds", "gauge",
         "How long the last reshard this node coordinated held writes (its barrier).",
         std::to_string(static_cast<double>(last_hold_ms_.load()) / 1000.0));
  metric("kvs_reshard_staged_entries_total", "counter",
         "Entries this node pulled while staging reshards.",
         std::to_string(staged_entries_.load()));
  metric("kvs_reshard_staged_bytes_total", "counter",
         "Key and value bytes this node pulled while staging reshards.",
         std::to_string(staged_bytes_.load()));
  metric("kvs_reshard_staging", "gauge", "1 while this node stages keys for a reshard.",
         replicator_.staging() ? "1" : "0");
  {
    // The reshard or add-member this node coordinates (GET /status "operation"), by kind: the
    // series are always there (0 when none runs), so dashboards and alerts find them.
    const std::optional<Operation> op = CurrentOperation();
    out +=
        "# HELP kvs_operation_running 1 while this node coordinates the operation (reshard, "
        "add-member).\n# TYPE kvs_operation_running gauge\n";
    for (const char* kind : {"reshard", "add-member"}) {
      out += std::string("kvs_operation_running{kind=\"") + kind + "\"} " +
             (op && op->kind == kind ? "1" : "0") + "\n";
    }
    out +=
        "# HELP kvs_operation_progress_ratio Share of the running operation's current phase "
        "done (nodes caught up while staging, ...), 0 when none runs.\n"
        "# TYPE kvs_operation_progress_ratio gauge\n";
    for (const char* kind : {"reshard", "add-member"}) {
      const double ratio = op && op->kind == kind && op->total > 0
                               ? static_cast<double>(op->done) / static_cast<double>(op->total)
                               : 0.0;
      out += std::string("kvs_operation_progress_ratio{kind=\"") + kind + "\"} " +
             std::to_string(ratio) + "\n";
    }
  }
  std::lock_guard lock(report_mu_);
  if (!coordinated_.empty()) {
    out +=
        "# HELP kvs_reshard_shard_entries Entries the members of each shard of the next layout "
        "have pulled (the reshard this node coordinates, or its last one).\n"
        "# TYPE kvs_reshard_shard_entries gauge\n";
    for (const auto& [shard, p] : coordinated_) {
      out += "kvs_reshard_shard_entries{shard=\"" + std::to_string(shard) + "\"} " +
             std::to_string(p.entries) + "\n";
    }
  }
  return out;
}

}  // namespace kvs::replication
