#include "kvs/store/store.h"

namespace kvs::store {

std::optional<Entry> Store::Get(const std::string& key) const {
  std::optional<Entry> out;
  Read(key, [&](const EntryView& entry) { out = entry.ToEntry(); });
  return out;
}

WriteResult Store::ApplyIfNewer(const std::string& key, const Entry& entry) {
  return ApplyIfNewer(std::string_view(key), EntryRef::Of(entry));
}

WriteResult Store::ApplyIfNewer(std::string_view key, const EntryRef& entry) {
  Stripe& stripe = StripeFor(key);
  std::shared_lock traverse_lock(stripe.traverse_mu);
  return ApplyInStripe(stripe, key, entry);
}

WriteResult Store::ApplyInStripe(Stripe& stripe, std::string_view key, const EntryRef& entry) {
  Map::accessor acc;
  const bool inserted = stripe.map.insert(acc, StoredKey::Borrow(key));
  bool was_live = false, was_tombstone = false;
  if (!inserted) {
    const Record& current = acc->second;
    if (!Version::Wins(entry.hlc, entry.origin, current.hlc(), origins_.Get(current.origin()))) {
      return WriteResult{false, !current.tombstone()};
    }
    was_live = !current.tombstone();
    was_tombstone = current.tombstone();
  }
  AccountTransition(was_live, !entry.tombstone);
  IndexTombstone(stripe, key, was_tombstone, entry.tombstone);
  acc->second.Assign(entry.value, entry.meta, entry.tombstone, entry.hlc,
                     origins_.Intern(entry.origin), entry.seq);
  return WriteResult{true, was_live};
}

size_t Store::tombstone_count() const {
  size_t total = 0;
  for (const Stripe& stripe : stripes_) {
    std::lock_guard lock(stripe.tomb_mu);
    total += stripe.tombstones.size();
  }
  return total;
}

size_t Store::size() const {
  size_t total = 0;
  for (const Stripe& stripe : stripes_) total += stripe.map.size();
  return total;
}

void Store::Reserve(size_t entries) {
  const size_t per_stripe = entries / kStripes + 1;
  for (Stripe& stripe : stripes_) {
    std::unique_lock lock(stripe.traverse_mu);
    if (stripe.map.bucket_count() < per_stripe) stripe.map.rehash(per_stripe);
  }
}

void Store::ForEach(const std::function<void(std::string_view, const EntryView&)>& visit) const {
  for (size_t stripe = 0; stripe < kStripes; ++stripe) ForEachInStripe(stripe, visit);
}

void Store::ForEachInStripe(
    size_t stripe, const std::function<void(std::string_view, const EntryView&)>& visit) const {
  const Stripe& s = stripes_.at(stripe);
  std::unique_lock traverse_lock(s.traverse_mu);
  for (const auto& [key, record] : s.map) visit(key.view(), View(record));
}

std::vector<std::pair<std::string, Entry>> Store::Snapshot() const {
  std::vector<std::pair<std::string, Entry>> out;
  out.reserve(size());
  ForEach([&](std::string_view key, const EntryView& entry) {
    out.emplace_back(std::string(key), entry.ToEntry());
  });
  return out;
}

}  // namespace kvs::store
