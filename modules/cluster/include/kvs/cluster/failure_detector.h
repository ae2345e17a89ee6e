// Heartbeat failure detector and keeper of the view (SPEC §2: the view is the set of nodes
// currently up). Pings every known node once per Tick(); a node silent for longer than the
// failure timeout is removed from the view and every other node is told; a node that answers
// again, or whose heartbeat arrives, is added back and every other node is told.
// Network I/O goes through the injected Transport on a small worker pool, so Tick() (run by a
// timer) never blocks. Thread-safe: every public method may be called from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "kvs/cluster/address.h"
#include "kvs/cluster/cluster_state.h"
#include "kvs/cluster/worker_pool.h"

namespace kvs::cluster {

class FailureDetector {
 public:
  using Clock = std::chrono::steady_clock;

  struct Transport {
    // True when `peer` answered a heartbeat. Must time out on its own.
    std::function<bool(const Address& peer)> ping;
    // Tells `to` that `subject` is up or down; `forget` asks it to stop pinging `subject`.
    std::function<void(const Address& to, const Address& subject, bool up, bool forget)> notify;
  };

  FailureDetector(ClusterState& state, Transport transport,
                  std::chrono::milliseconds heartbeat_period,
                  std::chrono::milliseconds failure_timeout, size_t io_threads = 8);

  // Timer thread, at least once per heartbeat period (more often gives a tighter detection
  // time): pings each peer whose last ping started a period ago, judges silent ones.
  void Tick();
  // How often Tick() should run.
  std::chrono::milliseconds tick_interval() const;
  // A heartbeat from `peer` arrived: it is up.
  void OnHeartbeatFrom(const Address& peer);
  // Another node reports on `subject`.
  void OnNotice(const Address& subject, bool up, bool forget);
  // A client's view change (SPEC §2), applied here and sent to every other node. False when
  // the view already had (ClientAdd) / did not have (ClientRemove) the address.
  bool ClientAdd(const Address& node);
  bool ClientRemove(const Address& node);
  // Every other node this detector watches (the view's members and those silent since, until
  // a client removes them), sorted, each with whether it is in the view now (believed up).
  std::vector<std::pair<Address, bool>> Peers() const;

 private:
  struct Peer {
    Clock::time_point last_ok;
    Clock::time_point last_ping;
    bool in_flight = false;
  };
  void OnPingResult(const Address& peer, bool ok);
  void MarkUp(const Address& peer, bool tell_others);
  void TellOthers(const Address& subject, bool up, bool forget);

  ClusterState& state_;
  Transport transport_;
  const std::chrono::milliseconds heartbeat_period_;
  const std::chrono::milliseconds failure_timeout_;
  mutable std::mutex mu_;
  std::map<Address, Peer> known_;  // GUARDED_BY(mu_); every node but self
  bool ticked_ = false;            // GUARDED_BY(mu_): Tick() has run
  WorkerPool pool_;                // last member: its threads stop before the rest goes
};

}  // namespace kvs::cluster
