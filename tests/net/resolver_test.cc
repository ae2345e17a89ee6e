// net::Resolver: numeric addresses at once, host names through its own thread and cache,
// failures with their reason, refreshes. Uses "localhost" (the hosts file) and names the
// resolver refuses without asking a server, so it needs no network.
#include "kvs/net/resolver.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

namespace kvs::net {
namespace {

using namespace std::chrono_literals;

// Polls Lookup until it is no longer kPending (10 s at most).
Resolver::Result Settled(Resolver& resolver, const std::string& member) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  Resolver::Result result = resolver.Lookup(member);
  while (result.state == Resolver::State::kPending && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
    result = resolver.Lookup(member);
  }
  return result;
}

std::string Ip(const sockaddr_in& address) {
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &address.sin_addr, text, sizeof text);
  return text;
}

TEST(ResolverTest, NumericAddressesAreAnsweredAtOnceWithoutALookup) {
  Resolver resolver;
  const Resolver::Result result = resolver.Lookup("10.1.2.3:8090");
  ASSERT_EQ(result.state, Resolver::State::kResolved);
  EXPECT_EQ(result.address.sin_family, AF_INET);
  EXPECT_EQ(Ip(result.address), "10.1.2.3");
  EXPECT_EQ(ntohs(result.address.sin_port), 8090);
  EXPECT_EQ(resolver.lookups_done(), 0u);
}

TEST(ResolverTest, WhatIsNotHostColonPortFailsAtOnce) {
  Resolver resolver;
  for (const char* bad : {"localhost", "localhost:", ":8090", "localhost:0", "localhost:65536",
                          "localhost:80x", "localhost:-1"}) {
    SCOPED_TRACE(bad);
    const Resolver::Result result = resolver.Lookup(bad);
    EXPECT_EQ(result.state, Resolver::State::kFailed);
    EXPECT_EQ(result.error, "not host:port");
  }
  EXPECT_EQ(resolver.lookups_done(), 0u);
}

TEST(ResolverTest, ANameIsPendingUntilItsLookupEndsThenServedFromTheCache) {
  Resolver resolver;
  EXPECT_EQ(resolver.Lookup("localhost:8090").state, Resolver::State::kPending);
  const Resolver::Result result = Settled(resolver, "localhost:8090");
  ASSERT_EQ(result.state, Resolver::State::kResolved) << result.error;
  EXPECT_EQ(Ip(result.address), "127.0.0.1");
  EXPECT_EQ(ntohs(result.address.sin_port), 8090);
  // Fresh: answered from the cache, no second lookup.
  const uint64_t done = resolver.lookups_done();
  EXPECT_EQ(resolver.Lookup("localhost:8090").state, Resolver::State::kResolved);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(resolver.lookups_done(), done);
  // The same host with another port is another member, with its own port.
  const Resolver::Result other = Settled(resolver, "localhost:9000");
  ASSERT_EQ(other.state, Resolver::State::kResolved);
  EXPECT_EQ(ntohs(other.address.sin_port), 9000);
}

TEST(ResolverTest, ANameThatCannotBeResolvedFailsWithTheReason) {
  Resolver resolver;
  const Resolver::Result result = Settled(resolver, "bad..name:8090");
  ASSERT_EQ(result.state, Resolver::State::kFailed);
  EXPECT_NE(result.error.find("cannot resolve bad..name: "), std::string::npos) << result.error;
}

TEST(ResolverTest, AStaleNameIsServedWhileItIsLookedUpAgain) {
  ResolverOptions options;
  options.refresh_after = 0ms;
  Resolver resolver(options);
  ASSERT_EQ(Settled(resolver, "localhost:8090").state, Resolver::State::kResolved);
  const uint64_t done = resolver.lookups_done();
  // Stale at once: still answered with the address, and looked up again behind it.
  EXPECT_EQ(resolver.Lookup("localhost:8090").state, Resolver::State::kResolved);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (resolver.lookups_done() == done && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_GT(resolver.lookups_done(), done);
}

TEST(ResolverTest, RefreshLooksAKnownNameUpAgain) {
  Resolver resolver;  // refreshes only after 5 s by itself
  ASSERT_EQ(Settled(resolver, "localhost:8090").state, Resolver::State::kResolved);
  const uint64_t done = resolver.lookups_done();
  resolver.Refresh("localhost:8090");
  resolver.Refresh("10.0.0.1:80");  // numeric, never cached: nothing to do
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (resolver.lookups_done() == done && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(resolver.lookups_done(), done + 1);
  EXPECT_EQ(resolver.Lookup("localhost:8090").state, Resolver::State::kResolved);
}

}  // namespace
}  // namespace kvs::net
