#include "kvs/cluster/failure_detector.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace kvs::cluster {
namespace {

using std::chrono::milliseconds;

Address A(int last) { return Address{"10.0.0." + std::to_string(last), 8080}; }

// A fake network: which peers answer pings, and the notices sent.
struct FakeNet {
  std::mutex mu;
  std::set<Address> down;
  struct Notice {
    Address to, subject;
    bool up, forget;
  };
  std::vector<Notice> notices;

  FailureDetector::Transport Transport() {
    return {[this](const Address& peer) {
              std::lock_guard lock(mu);
              return !down.contains(peer);
            },
            [this](const Address& to, const Address& subject, bool up, bool forget) {
              std::lock_guard lock(mu);
              notices.push_back({to, subject, up, forget});
            }};
  }
  size_t CountNotices(const Address& subject, bool up) {
    std::lock_guard lock(mu);
    size_t n = 0;
    for (const auto& notice : notices) n += notice.subject == subject && notice.up == up;
    return n;
  }
};

// Ticks until `done()` or the deadline; returns done().
template <typename Done>
bool TickUntil(FailureDetector& detector, Done done, milliseconds deadline = milliseconds(3000)) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!done() && std::chrono::steady_clock::now() < end) {
    detector.Tick();
    std::this_thread::sleep_for(milliseconds(5));
  }
  return done();
}

class FailureDetectorTest : public ::testing::Test {
 protected:
  FailureDetectorTest()
      : state_(A(1), {A(1), A(2), A(3)}, InitialAssignment({A(1), A(2), A(3)}, 1)),
        detector_(state_, net_.Transport(), milliseconds(20), milliseconds(100), 2) {}

  FakeNet net_;
  ClusterState state_;
  FailureDetector detector_;
};

TEST_F(FailureDetectorTest, SilentPeerIsRemovedAndOthersAreTold) {
  {
    std::lock_guard lock(net_.mu);
    net_.down.insert(A(3));
  }
  ASSERT_TRUE(TickUntil(detector_, [&] { return !state_.InView(A(3)); }));
  EXPECT_TRUE(state_.InView(A(2)));  // answering peers stay
  EXPECT_TRUE(TickUntil(detector_, [&] { return net_.CountNotices(A(3), false) >= 1; }));
}

// A node starts ticking only once it has recovered its data, which may take longer than the
// failure timeout: its peers get their grace from the first tick, and are not reported down
// for the silence of the recovery.
TEST_F(FailureDetectorTest, GraceStartsAtTheFirstTickNotAtConstruction) {
  std::this_thread::sleep_for(milliseconds(150));  // the recovery: no tick, past the timeout
  detector_.Tick();
  EXPECT_TRUE(state_.InView(A(2)));
  EXPECT_TRUE(state_.InView(A(3)));
  EXPECT_EQ(net_.CountNotices(A(2), false), 0u);
  EXPECT_EQ(net_.CountNotices(A(3), false), 0u);
}

TEST_F(FailureDetectorTest, PeerThatAnswersAgainIsAddedBack) {
  {
    std::lock_guard lock(net_.mu);
    net_.down.insert(A(3));
  }
  ASSERT_TRUE(TickUntil(detector_, [&] { return !state_.InView(A(3)); }));
  {
    std::lock_guard lock(net_.mu);
    net_.down.clear();
  }
  ASSERT_TRUE(TickUntil(detector_, [&] { return state_.InView(A(3)); }));
  EXPECT_TRUE(TickUntil(detector_, [&] { return net_.CountNotices(A(3), true) >= 1; }));
}

TEST_F(FailureDetectorTest, HeartbeatFromUnknownNodeAddsIt) {
  detector_.OnHeartbeatFrom(A(7));
  EXPECT_TRUE(state_.InView(A(7)));
}

TEST_F(FailureDetectorTest, NoticesFromPeersApply) {
  detector_.OnNotice(A(2), /*up=*/false, /*forget=*/false);
  EXPECT_FALSE(state_.InView(A(2)));
  detector_.OnNotice(A(9), /*up=*/true, /*forget=*/false);
  EXPECT_TRUE(state_.InView(A(9)));
  detector_.OnNotice(A(1), /*up=*/false, /*forget=*/false);  // about ourselves: ignored
  EXPECT_TRUE(state_.InView(A(1)));
}

TEST_F(FailureDetectorTest, ClientChangesAreSpread) {
  EXPECT_TRUE(detector_.ClientAdd(A(5)));
  EXPECT_FALSE(detector_.ClientAdd(A(5)));
  EXPECT_TRUE(detector_.ClientRemove(A(5)));
  EXPECT_FALSE(detector_.ClientRemove(A(5)));
  EXPECT_TRUE(TickUntil(detector_, [&] {
    return net_.CountNotices(A(5), true) >= 2 && net_.CountNotices(A(5), false) >= 2;
  }));
}

}  // namespace
}  // namespace kvs::cluster
