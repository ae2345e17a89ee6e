#include "kvs/store/store.h"

namespace kvs::store {

std::optional<Entry> Store::Get(const std::string& key) const {
  const Stripe& stripe = StripeFor(key);
  std::shared_lock traverse_lock(stripe.traverse_mu);
  Map::const_accessor acc;
  if (!stripe.map.find(acc, key)) return std::nullopt;
  return acc->second;
}

WriteResult Store::ApplyIfNewer(const std::string& key, Entry entry) {
  return Mutate(key, [&](const Entry* current) -> std::optional<Entry> {
    if (current != nullptr && !entry.version.Wins(current->version)) return std::nullopt;
    return std::move(entry);
  });
}

size_t Store::size() const {
  size_t total = 0;
  for (const Stripe& stripe : stripes_) total += stripe.map.size();
  return total;
}

void Store::ForEach(const std::function<void(const std::string&, const Entry&)>& visit) const {
  for (const Stripe& stripe : stripes_) {
    std::unique_lock traverse_lock(stripe.traverse_mu);
    for (const auto& [key, entry] : stripe.map) visit(key, entry);
  }
}

std::vector<std::pair<std::string, Entry>> Store::Snapshot() const {
  std::vector<std::pair<std::string, Entry>> out;
  out.reserve(size());
  ForEach([&](const std::string& key, const Entry& entry) { out.emplace_back(key, entry); });
  return out;
}

}  // namespace kvs::store
