#include "kvs/replication/reconfigurator.h"

#include <Poco/Logger.h>

#include <map>

#include "kvs/cluster/hash_ring.h"

namespace kvs::replication {
namespace {

Poco::Logger& Log() { return Poco::Logger::get("kvs.reconfigure"); }

std::string Describe(const net::CallResult& result) {
  if (result.status == 0) return result.error;
  return "status " + std::to_string(result.status) + " " + result.body.substr(0, 200);
}

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

bool Reconfigurator::Adopt(const cluster::ClusterConfig& config) {
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
    size_t dropped = 0;
    if (shard_after) {
      dropped = store_.EraseIf([&](std::string_view key, const store::EntryView& entry) {
        return cluster_.ShardForKey(key) != shard_after ||
               (entry.tombstone && causal::OriginEpoch(entry.version.origin) < config.epoch);
      });
    } else {
      dropped = store_.EraseIf([](std::string_view, const store::EntryView&) { return true; });
    }
    Log().information("reshard committed: dropped %z entries this node no longer owns", dropped);
    // Broadcast to the new shard peers before the first write of the new epoch.
    replicator_.RefreshPeers();
    {
      std::lock_guard freeze(freeze_mu_);
      frozen_for_epoch_ = 0;
    }
    coordinator_.Thaw();
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

void Reconfigurator::Abort(uint64_t epoch) {
  {
    std::lock_guard lock(freeze_mu_);
    if (frozen_for_epoch_ != epoch) return;
    frozen_for_epoch_ = 0;
  }
  coordinator_.Thaw();
  Log().warning("reshard to epoch %s aborted: writes reopened", std::to_string(epoch));
}

void Reconfigurator::CheckFreeze() {
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

size_t Reconfigurator::Ingest(const std::vector<Update>& updates) {
  size_t changed = 0;
  for (const Update& u : updates) {
    clock_.Observe(u.entry.version.hlc);
    const bool written = store_.ApplyIfNewer(u.key, u.entry).written;
    // Moved under a barrier: its origin is satisfied by construction, not recorded as applied.
    if (written && journal_ != nullptr) journal_->LogEntry(u.key, u.entry, false);
    changed += written;
  }
  // The coordinator drops these keys at their old owners once every new owner has answered:
  // they must be on disk first.
  if (journal_ != nullptr && changed > 0) journal_->Flush(std::chrono::seconds(10));
  return changed;
}

std::string Reconfigurator::ForAll(const std::vector<cluster::Address>& nodes,
                                   const std::string& method, const std::string& path,
                                   const std::string& body) {
  for (const cluster::Address& node : nodes) {
    const net::CallResult result =
        client_.Call(node.ToString(), method, path, body, options_.call_timeout);
    if (!result.ok()) return node.ToString() + ": " + Describe(result);
  }
  return std::string();
}

void Reconfigurator::AbortEverywhere(const std::vector<cluster::Address>& nodes, uint64_t epoch) {
  const std::string body = "{\"epoch\":" + std::to_string(epoch) + "}";
  for (const cluster::Address& node : nodes) {
    client_.Call(node.ToString(), "POST", "/internal/reshard/abort", body,
                 std::chrono::milliseconds(2000));
  }
}

ChangeOutcome Reconfigurator::AddMember(int shard, const cluster::Address& node) {
  std::lock_guard change(change_mu_);
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
                    Describe(result));
    }
  }
  Adopt(next);
  // The new member loads the shard's data before the client hears 200.
  if (node == cluster_.self()) {
    replicator_.CatchUp();
  } else {
    const net::CallResult result =
        client_.Call(node.ToString(), "POST", "/internal/catch-up", "{}", options_.call_timeout);
    if (!result.ok()) {
      return {503, "New member " + node.ToString() +
                       " could not load the shard's data: " + Describe(result)};
    }
  }
  return {};
}

ChangeOutcome Reconfigurator::ReshardTo(int shard_count) {
  std::lock_guard change(change_mu_);
  const auto started = std::chrono::steady_clock::now();
  const std::shared_ptr<const cluster::ClusterConfig> current = cluster_.Config();
  const std::vector<cluster::Address> live = cluster_.View();
  const cluster::ClusterConfig next = cluster::Reshard(*current, live, shard_count);
  const std::string epoch_body = "{\"epoch\":" + std::to_string(next.epoch) + "}";
  Log().information("reshard: %d -> %d shards over %z nodes (epoch %s)", current->shard_count(),
                    shard_count, live.size(), std::to_string(next.epoch));

  // 1. Barrier: every node stops taking writes and lets those in progress finish.
  if (std::string failed = ForAll(live, "POST", "/internal/reshard/prepare", epoch_body);
      !failed.empty()) {
    AbortEverywhere(live, next.epoch);
    return {503, "Resharding failed: node " + failed + " could not pause writes"};
  }

  // 2. Gather every key from every live replica of every old shard (LWW-merged, so a write
  //    acknowledged by any one replica is kept).
  std::map<std::string, store::Entry> all;
  const std::string full_request =
      EncodeSyncRequest(SyncRequest{cluster_.self().ToString(), {}, /*full=*/true});
  for (int shard = 0; shard < current->shard_count(); ++shard) {
    int answered = 0;
    for (const cluster::Address& member : current->shards[static_cast<size_t>(shard)]) {
      if (!cluster_.InView(member)) continue;
      const net::CallResult result = client_.Call(member.ToString(), "POST", "/internal/sync",
                                                  full_request, options_.call_timeout);
      std::string error;
      auto reply = result.ok() ? DecodeSyncReply(result.body, error) : std::nullopt;
      if (!reply) continue;
      ++answered;
      for (Update& u : reply->updates) {
        auto [it, inserted] = all.try_emplace(u.key, u.entry);
        if (!inserted && u.entry.version.Wins(it->second.version)) it->second = std::move(u.entry);
      }
    }
    if (answered == 0 && !current->shards[static_cast<size_t>(shard)].empty()) {
      AbortEverywhere(live, next.epoch);
      return {503, "Resharding failed: no replica of shard " + std::to_string(shard) + " answered"};
    }
  }

  // 3. Send each key to every member of its new shard, whether it changes shard or not: a
  //    replica may lack a write its peer acknowledged just before the barrier, and entries
  //    from before the barrier are not offered by anti-entropy afterwards.
  const cluster::HashRing old_ring(std::max(current->shard_count(), 1));
  const cluster::HashRing new_ring(shard_count);
  std::vector<Update> updates;
  updates.reserve(all.size());
  for (auto& [key, entry] : all) updates.push_back(Update{key, std::move(entry)});
  std::vector<std::vector<const Update*>> by_shard(static_cast<size_t>(shard_count));
  size_t moved = 0, live_keys = 0;
  for (const Update& u : updates) {
    const int to = new_ring.ShardFor(u.key);
    if (current->shard_count() == 0 || old_ring.ShardFor(u.key) != to) ++moved;
    live_keys += u.entry.tombstone ? 0 : 1;
    by_shard[static_cast<size_t>(to)].push_back(&u);
  }
  Log().information("reshard: %z keys (%z live) gathered; %z change shard", updates.size(),
                    live_keys, moved);
  size_t sent = 0;
  for (int shard = 0; shard < shard_count; ++shard) {
    const std::vector<const Update*>& batch = by_shard[static_cast<size_t>(shard)];
    for (size_t begin = 0; begin < batch.size(); begin += options_.ingest_chunk) {
      const size_t end = std::min(batch.size(), begin + options_.ingest_chunk);
      const std::vector<const Update*> chunk(batch.begin() + static_cast<long>(begin),
                                             batch.begin() + static_cast<long>(end));
      const std::string body = EncodeBatch(cluster_.self().ToString(), chunk);
      if (std::string failed =
              ForAll(next.shards[static_cast<size_t>(shard)], "POST", "/internal/ingest", body);
          !failed.empty()) {
        AbortEverywhere(live, next.epoch);
        return {503, "Resharding failed: node " + failed + " could not take its keys"};
      }
      sent += end - begin;
      Log().information("reshard: %z / %z keys placed", sent, updates.size());
    }
  }

  // 4. Commit: every node switches to the new layout and reopens writes.
  const std::string config_body = EncodeConfig(next);
  for (const cluster::Address& node : live) {
    if (node == cluster_.self()) continue;
    const net::CallResult result = client_.Call(node.ToString(), "POST", "/internal/config",
                                                config_body, options_.call_timeout);
    if (!result.ok()) {
      Log().warning("reshard: %s did not take the commit (%s); it will by heartbeat",
                    node.ToString(), Describe(result));
    }
  }
  Adopt(next);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  Log().information("reshard done: %d shards, %z keys, %z moved, %s ms", shard_count,
                    updates.size(), moved, std::to_string(took.count()));
  return {};
}

}  // namespace kvs::replication
