#include "kvs/net/resolver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <system_error>

#include "kvs/cluster/address.h"

namespace kvs::net {
namespace {

// getaddrinfo's answer for `host`: its first IPv4 address, or why there is none.
bool ResolveIpv4(const std::string& host, in_addr& address, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0) {
    error = rc == EAI_SYSTEM ? std::string(std::strerror(errno)) : ::gai_strerror(rc);
    return false;
  }
  bool ok = false;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    if (a->ai_family == AF_INET && a->ai_addrlen >= sizeof(sockaddr_in)) {
      address = reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr;
      ok = true;
      break;
    }
  }
  ::freeaddrinfo(found);
  if (!ok) error = "no IPv4 address";
  return ok;
}

}  // namespace

Resolver::Resolver(ResolverOptions options) : options_(options) {}

Resolver::~Resolver() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  // A lookup in progress ends by the resolver's own timeouts (resolv.conf), not ours.
  if (thread_.joinable()) thread_.join();
}

bool Resolver::ParseNumeric(const std::string& member, sockaddr_in& address) {
  const std::optional<cluster::Address> parsed = cluster::Address::Parse(member);
  if (!parsed) return false;
  address = sockaddr_in{};
  address.sin_family = AF_INET;
  address.sin_port = htons(parsed->port);
  return ::inet_pton(AF_INET, parsed->host.c_str(), &address.sin_addr) == 1;
}

Resolver::Result Resolver::Lookup(const std::string& member) {
  Result result;
  if (ParseNumeric(member, result.address)) {
    result.state = State::kResolved;
    return result;
  }
  if (!cluster::Address::Parse(member)) {
    result.state = State::kFailed;
    result.error = "not host:port";
    return result;
  }
  const Clock::time_point now = Clock::now();
  std::lock_guard lock(mu_);
  auto [it, added] = entries_.try_emplace(member);
  Entry& entry = it->second;
  entry.used = now;
  if (added) {
    Enqueue(member, entry);
  } else if (!entry.queued) {
    const auto wait = entry.state == State::kFailed ? options_.retry_after : options_.refresh_after;
    if (now - entry.looked_up >= wait) Enqueue(member, entry);
  }
  result.state = entry.state;
  result.address = entry.address;
  result.error = entry.error;
  return result;
}

void Resolver::Refresh(const std::string& member) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(member);
  if (it != entries_.end() && !it->second.queued) Enqueue(member, it->second);
}

uint64_t Resolver::lookups_done() const {
  std::lock_guard lock(mu_);
  return lookups_done_;
}

void Resolver::Enqueue(const std::string& member, Entry& entry) {
  if (stopping_) return;
  if (!thread_.joinable()) {
    try {
      thread_ = std::thread([this] { Run(); });
    } catch (const std::system_error& e) {
      // No thread to resolve with (the process is out of threads): the name fails now and is
      // tried again after retry_after, like any failed lookup; the caller must not throw.
      entry.state = State::kFailed;
      entry.error = std::string("cannot start the resolver's thread: ") + e.what();
      entry.looked_up = Clock::now();
      return;
    }
  }
  entry.queued = true;
  queue_.push_back(member);
  wake_.notify_one();
}

void Resolver::Run() {
  pthread_setname_np(pthread_self(), "kvs-resolve");
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (queue_.empty()) {
      wake_.wait_for(lock, options_.forget_after);
      // Names not asked for in forget_after (and not queued) go.
      const Clock::time_point now = Clock::now();
      for (auto it = entries_.begin(); it != entries_.end();) {
        if (!it->second.queued && now - it->second.used >= options_.forget_after) {
          it = entries_.erase(it);
        } else {
          ++it;
        }
      }
      continue;
    }
    const std::string member = std::move(queue_.front());
    queue_.pop_front();
    // Only well-formed names are queued.
    const auto [host, port] = *cluster::Address::Parse(member);
    lock.unlock();
    in_addr address{};
    std::string error;
    const bool ok = ResolveIpv4(host, address, error);
    lock.lock();
    ++lookups_done_;
    auto it = entries_.find(member);
    if (it == entries_.end()) continue;
    Entry& entry = it->second;
    entry.queued = false;
    entry.looked_up = Clock::now();
    if (ok) {
      entry.state = State::kResolved;
      entry.address = sockaddr_in{};
      entry.address.sin_family = AF_INET;
      entry.address.sin_port = htons(port);
      entry.address.sin_addr = address;
      entry.error.clear();
    } else {
      entry.state = State::kFailed;
      entry.address = sockaddr_in{};
      entry.error = "cannot resolve " + host + ": " + error;
    }
  }
}

}  // namespace kvs::net
