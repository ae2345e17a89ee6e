// The node's key-value map: versioned entries in tbb::concurrent_hash_map stripes, kept in
// compact form (record.h); Entry is the owning form callers exchange with it.
// Thread-safe: every method may be called from any thread at any time.
// Invariant: an entry changes only under its key's write lock; live_count() equals the number
// of entries that are not tombstones. Point operations hold their stripe's traversal lock
// shared (they run concurrently with each other); whole-map walks hold it exclusively, one
// stripe at a time, because TBB does not allow traversal concurrent with insert/erase.
#pragma once

#include <tbb/concurrent_hash_map.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "kvs/store/record.h"

namespace kvs::store {

// Identifies one write: who coordinated it (origin = "address#incarnation"), its sequence
// number at that origin, and its hybrid-logical-clock timestamp. Concurrent writes to a key are
// ordered by (hlc, origin): the larger one wins everywhere (last-writer-wins).
struct Version {
  uint64_t hlc = 0;
  std::string origin;
  uint64_t seq = 0;

  // True when this version wins over `other` under last-writer-wins.
  bool Wins(const Version& other) const { return Wins(other.hlc, other.origin); }
  bool Wins(uint64_t other_hlc, std::string_view other_origin) const {
    return Wins(hlc, origin, other_hlc, other_origin);
  }
  // Whether (hlc, origin) wins over (other_hlc, other_origin).
  static bool Wins(uint64_t hlc, std::string_view origin, uint64_t other_hlc,
                   std::string_view other_origin) {
    if (hlc != other_hlc) return hlc > other_hlc;
    return origin > other_origin;
  }
};

// What the store keeps for one key. A delete is kept as a tombstone so that replicas can
// agree on it; `meta` is the encoded causal metadata of the write (opaque to the store).
struct Entry {
  std::string value;
  bool tombstone = false;
  Version version;
  std::string meta;
};

// A stored entry seen in place, without copying: valid only inside the callback it is given
// to. Reads like an Entry (value, tombstone, version.hlc/origin/seq, meta).
struct EntryView {
  struct VersionRef {
    uint64_t hlc;
    const std::string& origin;
    uint64_t seq;
  };
  std::string_view value;
  bool tombstone;
  VersionRef version;
  std::string_view meta;

  Entry ToEntry() const {
    return Entry{std::string(value), tombstone, Version{version.hlc, version.origin, version.seq},
                 std::string(meta)};
  }
};

// An entry given as views of someone else's bytes (a record being decoded): what a bulk load
// hands the store without building an Entry first. Valid only while those bytes are.
struct EntryRef {
  std::string_view value;
  bool tombstone = false;
  uint64_t hlc = 0;
  std::string_view origin;
  uint64_t seq = 0;
  std::string_view meta;

  static EntryRef Of(const Entry& e) {
    return EntryRef{e.value, e.tombstone, e.version.hlc, e.version.origin, e.version.seq, e.meta};
  }
  Entry ToEntry() const {
    return Entry{std::string(value), tombstone, Version{hlc, std::string(origin), seq},
                 std::string(meta)};
  }
};

// Outcome of a conditional write.
struct WriteResult {
  bool written = false;   // the store now holds the new entry
  bool was_live = false;  // a live (non-tombstone) entry existed before the call
};

class Store {
 public:
  Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Returns a copy of the entry for `key` (tombstones included), or nullopt.
  std::optional<Entry> Get(const std::string& key) const;

  // Calls `read(const EntryView&)` under the key's read lock (tombstones included) and returns
  // true, or returns false when the key has no entry. For readers that need only part of the
  // entry: nothing is copied. `read` must be quick and must not call back into the store.
  template <typename Reader>
  bool Read(const std::string& key, Reader&& read) const;

  // Runs `decide(const EntryView* current)` under the key's write lock; `current` is null when
  // the key has no entry. `decide` returns std::optional<Entry>: the entry to store, or nullopt to
  // leave the key as it is. `decide` must be quick and must not call back into the store.
  template <typename Decide>
  WriteResult Mutate(const std::string& key, Decide&& decide);

  // Stores `entry` unless the key already holds a version that wins over it (replica apply).
  WriteResult ApplyIfNewer(const std::string& key, const Entry& entry);
  // The same from views (recovery, which decodes millions of records): no Entry is built, the
  // record's block is filled straight from `entry`'s bytes.
  WriteResult ApplyIfNewer(std::string_view key, const EntryRef& entry);
  // ApplyIfNewer(key_of(i), entry_of(i)) for i in [0, count), as a bulk load (recovery) does
  // it: while one entry is applied, the buckets and then the nodes of the next ones are on
  // their way into the cache (each would otherwise be a miss waited for in turn, 300-400 ns
  // apiece on this VM), and a stripe's traversal lock is kept while consecutive entries fall
  // in it (a snapshot chunk is one stripe's). key_of returns std::string_view, entry_of
  // const EntryRef&.
  template <typename KeyOf, typename EntryOf>
  void ApplyAllIfNewer(size_t count, KeyOf&& key_of, EntryOf&& entry_of);

  // Number of live keys (tombstones excluded).
  int64_t live_count() const { return live_count_.load(std::memory_order_relaxed); }
  // Number of entries including tombstones.
  size_t size() const;
  // Sizes the map for about `entries` entries in all, so that a bulk load of that many does not
  // grow it step by step. Like a walk, it holds each stripe exclusively in turn.
  void Reserve(size_t entries);

  // Removes every entry for which `doomed(std::string_view key, const EntryView& entry)` is
  // true. Returns how many went.
  template <typename Pred>
  size_t EraseIf(Pred&& doomed);

  // Removes tombstones for which `collectable(key, entry)` is true. Returns how many went.
  // Touches only tombstones (each stripe keeps an index of its tombstone keys), so its cost
  // does not grow with the number of live keys; writers wait only for the key being checked.
  template <typename Pred>
  size_t PurgeTombstones(Pred&& collectable);

  // Number of tombstones (deleted keys not yet purged).
  size_t tombstone_count() const;

  // Calls `visit(key, entry)` for every entry, stripe by stripe; writers to the stripe being
  // visited wait meanwhile, so `visit` must be quick. Not atomic across stripes.
  void ForEach(const std::function<void(std::string_view, const EntryView&)>& visit) const;

  // Like ForEach, for one stripe (0 <= stripe < stripe_count()): a snapshot visits the map in
  // pieces so that writers wait for one stripe at a time and memory stays bounded.
  void ForEachInStripe(size_t stripe,
                       const std::function<void(std::string_view, const EntryView&)>& visit) const;
  static constexpr size_t stripe_count() { return kStripes; }

  // A key's place in walk order (its hash). Stripes hold consecutive ranges of it, stripe i
  // the positions with i in their top 6 bits, so a walk in pieces can stop at any position
  // and go on from there (a chunked state transfer).
  static uint64_t WalkPosition(std::string_view key) { return KeyHashCompare::hash(key); }
  static size_t StripeOfPosition(uint64_t position) { return position >> 58; }
  static uint64_t FirstPositionOfStripe(size_t stripe) { return uint64_t{stripe} << 58; }

  // Removes `key` if it has an entry for which `doomed(const EntryView&)` is true; returns
  // whether it did.
  template <typename Pred>
  bool EraseKeyIf(const std::string& key, Pred&& doomed);

  // Copies of all entries (for snapshots). Not atomic across stripes.
  std::vector<std::pair<std::string, Entry>> Snapshot() const;

 private:
  // std::hash (murmur-based in libstdc++) mixes every bit into the low ones the buckets use;
  // TBB's default string hasher left long chains for keys that differ only in their tails
  // ("key123", "key124", ...), which showed as 12% of a write-heavy profile.
  struct KeyHashCompare {
    static size_t hash(std::string_view key) { return std::hash<std::string_view>{}(key); }
    static size_t hash(const StoredKey& key) { return hash(key.view()); }
    static bool equal(const StoredKey& a, const StoredKey& b) { return a == b; }
  };
  // Nodes come from the store's pool (memory.h): tbbmalloc packs the 64-byte node without the
  // 16 bytes of header and rounding that malloc adds (README "Memory"), in huge pages.
  using NodeAllocator = PoolAllocator<std::pair<const StoredKey, Record>>;
  using BaseMap = tbb::concurrent_hash_map<StoredKey, Record, KeyHashCompare, NodeAllocator>;
  // The map, and a prefetch of where a key lives (ApplyAllIfNewer). It reaches into oneTBB's
  // protected bucket table (hash_map_base: my_mask, get_bucket, bucket::node_list), which
  // nothing public exposes.
  class Map : public BaseMap {
   public:
    using BaseMap::BaseMap;
    // Prefetches the bucket of `hash`. Reads only the map object (mask, segment table).
    void PrefetchBucket(size_t hash) const noexcept {
      __builtin_prefetch(this->get_bucket(hash & this->my_mask.load(std::memory_order_acquire)));
    }
    // Prefetches the first node of the bucket of `hash` (a read of the bucket). REQUIRES: the
    // stripe's traversal lock, shared (no clear or swap meanwhile).
    void PrefetchFirstNode(size_t hash) const noexcept {
      const auto* bucket = this->get_bucket(hash & this->my_mask.load(std::memory_order_acquire));
      const auto* node = bucket->node_list.load(std::memory_order_relaxed);
      // Small values are oneTBB's markers (empty, needs rehash), not nodes.
      if (reinterpret_cast<uintptr_t>(node) > 63) __builtin_prefetch(node);
    }
  };
  static constexpr size_t kStripes = 64;
  // Looked up by string_view (no key copy to find one).
  struct TransparentHash {
    using is_transparent = void;
    size_t operator()(std::string_view key) const { return KeyHashCompare::hash(key); }
  };
  using TombstoneSet = std::unordered_set<std::string, TransparentHash, std::equal_to<>>;
  struct Stripe {
    mutable std::shared_mutex traverse_mu;
    Map map;
    // The keys of this stripe whose entry is a tombstone. Changed while the key's write lock
    // (accessor) is held, so it always agrees with the map; lock order: accessor, tomb_mu.
    mutable std::mutex tomb_mu;
    TombstoneSet tombstones;  // GUARDED_BY(tomb_mu)
  };
  // Keeps stripe.tombstones in step with a key whose entry went from / to a tombstone.
  static void IndexTombstone(Stripe& stripe, std::string_view key, bool was, bool is) {
    if (was == is) return;
    std::lock_guard lock(stripe.tomb_mu);
    if (is) {
      stripe.tombstones.emplace(key);
    } else if (auto it = stripe.tombstones.find(key); it != stripe.tombstones.end()) {
      stripe.tombstones.erase(it);
    }
  }

  // The stripe takes the hash's high bits; the buckets inside a stripe use its low bits.
  static_assert(sizeof(size_t) == 8 && kStripes == 64, "walk positions assume 64-bit hashes");
  static size_t StripeIndex(std::string_view key) { return StripeOfPosition(WalkPosition(key)); }
  Stripe& StripeFor(std::string_view key) { return stripes_[StripeIndex(key)]; }
  const Stripe& StripeFor(std::string_view key) const { return stripes_[StripeIndex(key)]; }

  EntryView View(const Record& r) const {
    return EntryView{
        r.value(), r.tombstone(), {r.hlc(), origins_.Get(r.origin()), r.seq()}, r.meta()};
  }
  void AssignRecord(Record& record, const Entry& entry) {
    record.Assign(entry.value, entry.meta, entry.tombstone, entry.version.hlc,
                  origins_.Intern(entry.version.origin), entry.version.seq);
  }

  // ApplyIfNewer's work once the stripe's traversal lock is held (shared).
  WriteResult ApplyInStripe(Stripe& stripe, std::string_view key, const EntryRef& entry);

  void AccountTransition(bool was_live, bool is_live) {
    if (was_live != is_live) live_count_.fetch_add(is_live ? 1 : -1, std::memory_order_relaxed);
  }

  OriginTable origins_;
  std::array<Stripe, kStripes> stripes_;
  std::atomic<int64_t> live_count_{0};
};

template <typename Decide>
WriteResult Store::Mutate(const std::string& key, Decide&& decide) {
  Stripe& stripe = StripeFor(key);
  std::shared_lock traverse_lock(stripe.traverse_mu);
  Map::accessor acc;
  const bool inserted = stripe.map.insert(acc, StoredKey::Borrow(key));
  std::optional<EntryView> current;
  if (!inserted) current.emplace(View(acc->second));
  const bool was_live = current && !current->tombstone;
  const bool was_tombstone = current && current->tombstone;
  std::optional<Entry> next = decide(current ? &*current : nullptr);
  if (!next) {
    if (inserted) stripe.map.erase(acc);
    return WriteResult{false, was_live};
  }
  AccountTransition(was_live, !next->tombstone);
  IndexTombstone(stripe, key, was_tombstone, next->tombstone);
  AssignRecord(acc->second, *next);
  return WriteResult{true, was_live};
}

template <typename KeyOf, typename EntryOf>
void Store::ApplyAllIfNewer(size_t count, KeyOf&& key_of, EntryOf&& entry_of) {
  // Entry i is applied while the node of entry i + kAhead and the bucket of entry i + 2 kAhead
  // are fetched. Reading a bucket (for its node) needs the stripe's traversal lock: the one
  // held, or one taken without waiting (never a second lock waited for while one is held).
  constexpr size_t kAhead = 8;
  const auto hash_of = [&](size_t i) { return KeyHashCompare::hash(key_of(i)); };
  const auto prefetch_bucket = [&](size_t i) {
    const size_t hash = hash_of(i);
    stripes_[StripeOfPosition(hash)].map.PrefetchBucket(hash);
  };
  Stripe* locked = nullptr;
  std::shared_lock<std::shared_mutex> lock;
  const auto prefetch_node = [&](size_t i) {
    const size_t hash = hash_of(i);
    Stripe& stripe = stripes_[StripeOfPosition(hash)];
    if (&stripe == locked) {
      stripe.map.PrefetchFirstNode(hash);
    } else if (std::shared_lock other(stripe.traverse_mu, std::try_to_lock); other.owns_lock()) {
      stripe.map.PrefetchFirstNode(hash);
    }
  };
  for (size_t i = 0; i < std::min(count, 2 * kAhead); ++i) prefetch_bucket(i);
  for (size_t i = 0; i < std::min(count, kAhead); ++i) prefetch_node(i);
  for (size_t i = 0; i < count; ++i) {
    if (i + 2 * kAhead < count) prefetch_bucket(i + 2 * kAhead);
    if (i + kAhead < count) prefetch_node(i + kAhead);
    const std::string_view key = key_of(i);
    Stripe& stripe = StripeFor(key);
    if (&stripe != locked) {
      if (lock.owns_lock()) lock.unlock();
      lock = std::shared_lock(stripe.traverse_mu);
      locked = &stripe;
    }
    ApplyInStripe(stripe, key, entry_of(i));
  }
}

template <typename Reader>
bool Store::Read(const std::string& key, Reader&& read) const {
  const Stripe& stripe = StripeFor(key);
  std::shared_lock traverse_lock(stripe.traverse_mu);
  Map::const_accessor acc;
  if (!stripe.map.find(acc, StoredKey::Borrow(key))) return false;
  read(View(acc->second));
  return true;
}

template <typename Pred>
bool Store::EraseKeyIf(const std::string& key, Pred&& doomed) {
  Stripe& stripe = StripeFor(key);
  std::shared_lock traverse_lock(stripe.traverse_mu);
  Map::accessor acc;
  if (!stripe.map.find(acc, StoredKey::Borrow(key))) return false;
  const EntryView view = View(acc->second);
  if (!doomed(view)) return false;
  const bool was_live = !view.tombstone;
  IndexTombstone(stripe, key, view.tombstone, false);
  stripe.map.erase(acc);
  AccountTransition(was_live, false);
  return true;
}

template <typename Pred>
size_t Store::PurgeTombstones(Pred&& collectable) {
  size_t erased = 0;
  std::vector<std::string> keys;
  for (Stripe& stripe : stripes_) {
    {
      std::lock_guard lock(stripe.tomb_mu);
      keys.assign(stripe.tombstones.begin(), stripe.tombstones.end());
    }
    // Each key is checked again under its write lock: it may have been written since.
    for (const std::string& key : keys) {
      erased += EraseKeyIf(key, [&](const EntryView& entry) {
        return entry.tombstone && collectable(std::string_view(key), entry);
      });
    }
  }
  return erased;
}

template <typename Pred>
size_t Store::EraseIf(Pred&& doomed) {
  size_t erased = 0;
  std::vector<StoredKey> keys;
  for (Stripe& stripe : stripes_) {
    std::unique_lock traverse_lock(stripe.traverse_mu);
    keys.clear();
    int64_t live = 0;
    for (const auto& [key, record] : stripe.map) {
      if (doomed(key.view(), View(record))) {
        keys.push_back(key);
        if (record.tombstone()) {
          IndexTombstone(stripe, key.view(), true, false);
        } else {
          ++live;
        }
      }
    }
    for (const StoredKey& key : keys) stripe.map.erase(key);
    live_count_.fetch_sub(live, std::memory_order_relaxed);
    erased += keys.size();
  }
  return erased;
}

}  // namespace kvs::store
