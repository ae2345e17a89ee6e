#include "kvs/api/event_server.h"

#include <Poco/Logger.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <deque>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "forwarder.h"
#include "kvs/api/http_codec.h"
#include "kvs/cluster/worker_pool.h"
#include "kvs/net/resolver.h"
#include "kvs/net/tls.h"
#include "kvs/replication/peer_sender.h"

namespace kvs::api {
namespace {

using Clock = std::chrono::steady_clock;

Poco::Logger& Log() { return Poco::Logger::get("kvs.http"); }

// The client's address as 16 bytes: IPv6, or IPv4 in its IPv4-mapped IPv6 form (::ffff:a.b.c.d)
// so that both spellings of one client count as one address.
void AddressBytes(const sockaddr_storage& address, unsigned char (&bytes)[16]) {
  if (address.ss_family == AF_INET) {
    sockaddr_in v4;
    std::memcpy(&v4, &address, sizeof v4);
    bytes[10] = bytes[11] = 0xff;
    std::memcpy(bytes + 12, &v4.sin_addr, 4);
  } else if (address.ss_family == AF_INET6) {
    sockaddr_in6 v6;
    std::memcpy(&v6, &address, sizeof v6);
    std::memcpy(bytes, &v6.sin6_addr, 16);
  }
}

std::string AddressText(const sockaddr_storage& address) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (address.ss_family == AF_INET) {
    sockaddr_in v4;
    std::memcpy(&v4, &address, sizeof v4);
    ::inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text);
  } else if (address.ss_family == AF_INET6) {
    sockaddr_in6 v6;
    std::memcpy(&v6, &address, sizeof v6);
    ::inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text);
  }
  return text;
}

// Bytes asked of the kernel per read; the buffer grows beyond it only for large bodies.
constexpr size_t kReadChunk = 16 * 1024;
// A buffer this large is given back once its connection is idle again.
constexpr size_t kShrinkAbove = 1024 * 1024;
// Pipelined requests are not processed while this much output waits for the client.
constexpr size_t kMaxPendingOutput = 1024 * 1024;
// After a response that ends the connection, unread request bytes are drained this long
// so that closing does not reset the connection before the client read the answer.
constexpr std::chrono::milliseconds kLingerTime{2000};
constexpr std::chrono::milliseconds kSweepPeriod{250};
// A connection idle this long gives its buffers back (they come back with the next request).
constexpr std::chrono::milliseconds kIdleBufferRelease{1000};
constexpr int kMaxEvents = 256;
constexpr int kAcceptBurst = 64;
// Overload warnings (limit reached, an address at its cap) are logged this often at most.
constexpr std::chrono::seconds kOverloadWarningPeriod{10};

}  // namespace

// Overload defence (nginx's answer to too many idle keep-alive connections):
//
// - One shared count of open connections against kvs.http.max_connections, as before. Below the
//   limit an accepted connection is dealt round-robin to a loop.
// - Each loop keeps its idle connections (waiting for a request: nothing buffered, not even part
//   of a TLS record inside OpenSSL, nothing to write, no request on a worker or held for its
//   fsync, not closing) in an intrusive list in the order they became idle, and publishes when its
//   oldest one became idle (Loop::oldest_idle_, one relaxed atomic store when the list's head
//   changes).
// - An accept over the limit picks the loop whose oldest idle connection is the oldest of all
//   (a scan of the loops' published values) and hands it the new connection marked "evict": that
//   loop, on its own thread, closes its oldest idle connection and adopts the new one. Only the
//   owning loop ever touches a connection, so no lock is taken and a connection the loop has
//   since made busy is never closed: the loop re-checks its own list, skips a connection whose
//   next request already waits in the socket, and refuses the new connection (as before the
//   change) if none is idle any more. The count is briefly above the limit while such handovers
//   wait for their loop.
// - kvs.http.max_connections_per_ip: a map from client address to its open connections, under a
//   mutex taken only when the cap is set (once per accept and once per close).
struct EventServer::Shared {
  Shared(Service& s, const EventServerOptions& o) : service(s), options(o) {}

  // A client address: IPv6, or IPv4 as its IPv4-mapped IPv6 form.
  struct PeerKey {
    uint64_t hi = 0, lo = 0;
    bool operator==(const PeerKey&) const = default;
  };
  struct PeerKeyHash {
    size_t operator()(const PeerKey& key) const {
      return std::hash<uint64_t>()(key.hi * 0x9E3779B97F4A7C15ull ^ key.lo);
    }
  };

  static PeerKey KeyOf(const sockaddr_storage& address) {
    unsigned char bytes[16] = {};
    AddressBytes(address, bytes);
    PeerKey key;
    std::memcpy(&key.hi, bytes, 8);
    std::memcpy(&key.lo, bytes + 8, 8);
    return key;
  }
  bool per_ip_capped() const { return options.max_connections_per_ip > 0; }
  // Counts a connection from `peer`; false (nothing counted) when the address is at its cap.
  bool TakePerIpSlot(const PeerKey& peer) {
    if (!per_ip_capped()) return true;
    std::lock_guard lock(per_ip_mu);
    int& open = per_ip[peer];
    if (open >= options.max_connections_per_ip) return false;
    ++open;
    return true;
  }
  // Uncounts a connection that was counted in `connections` and by TakePerIpSlot.
  void Release(const PeerKey& peer) {
    connections.fetch_sub(1, std::memory_order_relaxed);
    if (!per_ip_capped()) return;
    std::lock_guard lock(per_ip_mu);
    auto it = per_ip.find(peer);
    if (it != per_ip.end() && --it->second <= 0) per_ip.erase(it);
  }
  void CountEvicted() {
    if (options.metrics != nullptr) options.metrics->CountEvicted();
  }
  void CountRefused(ConnectionRefusal reason) {
    if (options.metrics != nullptr) options.metrics->CountRefused(reason);
  }

  Service& service;
  const EventServerOptions options;
  Poco::Net::ServerSocket listener;
  int listen_fd = -1;
  std::unique_ptr<cluster::WorkerPool> workers;
  // With forwarding on the loops: resolves members named by host names for every loop's
  // Forwarder (a thread of its own; the loops only read its cache).
  std::unique_ptr<net::Resolver> resolver;
  std::atomic<int> connections{0};
  std::atomic<bool> stopping{false};
  Clock::time_point stop_deadline;     // written before `stopping` is set
  std::vector<Loop*> loops;            // set before the loops start
  std::atomic<uint64_t> next_loop{0};  // round-robin owner of the next accepted connection
  std::mutex per_ip_mu;
  std::unordered_map<PeerKey, int, PeerKeyHash> per_ip;  // GUARDED_BY(per_ip_mu)
};

// The loop this thread runs (null on other threads).
thread_local const void* tl_running_loop = nullptr;

// The first loop also sends the replication broadcasts (issue 14): as a SenderDriver it is told
// when a shard peer's sender has a batch, relays it over its Forwarder (POST
// /internal/replicate, signed with the cluster secret when one is set, the sender's call timeout)
// and reports the outcome back. One batch per peer is in flight; a failed one backs off as the
// sender says. No thread hand-off on either side: the loop that applied a write usually sends
// its broadcast in the same turn, and the peer's answer is just another event.
class EventServer::Loop : public replication::SenderDriver {
 public:
  explicit Loop(Shared& shared);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  void Wake();
  // An accepted connection for a loop: `evict` when it is over the limit and the loop is to
  // close its oldest idle connection for it.
  struct Accepted {
    int fd;
    Shared::PeerKey peer;
    bool evict;
  };
  // Hands an accepted connection to this loop (from any thread).
  void Adopt(const Accepted& accepted);
  // When this loop's oldest idle connection became idle (steady clock ticks), kNoIdle if none.
  int64_t oldest_idle() const { return oldest_idle_.load(std::memory_order_relaxed); }
  static constexpr int64_t kNoIdle = std::numeric_limits<int64_t>::max();

  // replication::SenderDriver (with forwarding on the loops, the first loop only).
  bool Drives(const std::string& peer) override {
    return forwarder_ != nullptr && forwarder_->Addressable(peer);
  }
  void Ready(std::shared_ptr<replication::PeerSender> sender) override;

 private:
  // How to answer a request, and how many input bytes it took.
  struct Answering {
    size_t request_bytes = 0;
    bool keep_alive = false;
    bool http10 = false;
    bool is_head = false;
  };
  struct Conn {
    ~Conn() {
      if (ssl != nullptr) SSL_free(ssl);
    }
    int fd = -1;  // -1 once closed (the object lives on until the event batch is over)
    // With kvs.tls.*: kDetect until the first byte shows whether the client speaks TLS (a
    // handshake record) or plain HTTP (refused with a plain 400 that says so); then `ssl`
    // carries every byte in and out.
    enum class Tls { kOff, kDetect, kOn } tls = Tls::kOff;
    SSL* ssl = nullptr;
    size_t index = 0;  // position in conns_
    Shared::PeerKey peer;
    enum class State { kReading, kInFlight, kDraining } state = State::kReading;
    // Input: bytes [begin, end) of `in` are received and not yet consumed.
    std::unique_ptr<char[]> in;
    size_t in_cap = 0, in_begin = 0, in_end = 0;
    // Output not yet accepted by the kernel: out[out_sent, out.size()).
    std::string out;
    size_t out_sent = 0;
    bool close_after_write = false;  // the last response ended the connection
    bool eof = false;                // the client closed its side
    // An input edge came since a read last found the socket empty. Without one there is
    // nothing to read (edge-triggered: new bytes raise a new edge), so a connection whose
    // answer just left does not ask the socket for a request its client has yet to send.
    bool readable = true;
    bool broken = false;         // socket error while a request was in flight
    bool sent_continue = false;  // "100 Continue" sent for the request being received
    bool chunk_active = false;
    ChunkedDecoder chunk;
    std::string chunk_body;
    int served = 0;
    Clock::time_point last_progress;
    Clock::time_point drain_deadline;
    Answering flight;  // the request on a worker, or relayed
    // The request relayed to another node (Forwarder) and where it goes; its views point into
    // `in` / `chunk_body`, untouched while it is in flight.
    Request relay_request;
    ForwardPlan relay_plan;
    // Membership of the loop's idle list (oldest first), see IsIdle().
    bool idle = false;
    Conn* idle_prev = nullptr;
    Conn* idle_next = nullptr;
    Clock::time_point idle_since;
  };
  struct Completion {
    Conn* conn;
    Response response;
  };
  // An answer held until the journal reports its write durable (fsync=always).
  struct DurableWait {
    Conn* conn;
    Response response;
    std::string method;
    Clock::time_point deadline;  // then 503, as a worker waiting for the same write answers
  };

  void Run();
  void AcceptAll();
  // The loop whose oldest idle connection is the oldest of all loops', or nullptr if no loop
  // has one (as published; the chosen loop checks again).
  Loop* LoopWithOldestIdle() const;
  void AddConnection(const Accepted& accepted);
  void OnEvent(Conn& c, uint32_t events);
  // Reads, parses, dispatches and writes until the connection must wait for something (PumpIo),
  // then updates the idle list.
  void Pump(Conn& c);
  void PumpIo(Conn& c);
  // Handles every complete request buffered on `c` that can be handled now.
  void ProcessInput(Conn& c);
  void Dispatch(Conn& c, const RequestHead& head, std::string_view body, size_t request_bytes);
  void Respond(Conn& c, const Response& response, bool keep_alive, bool http10, bool is_head);
  // Writes the answer to the request at the front of the input and consumes that request.
  void Finish(Conn& c, const Response& response, const Answering& answering);
  void Fail(Conn& c, int status, std::string_view error, std::string_view method);
  enum class ReadResult { kData, kDrained, kEof, kError };
  ReadResult ReadSome(Conn& c);
  // ReadSome on a TLS port: the first byte decides TLS or the plain-HTTP refusal.
  ReadResult ReadTls(Conn& c, size_t space);
  // Sends buffered output; false when the connection was closed.
  bool Flush(Conn& c);
  void BeginLingeringClose(Conn& c);
  void Discard(Conn& c);
  // Closes and uncounts the connection; the object is destroyed after the current event batch
  // (a later event of the batch may still name it: OnEvent ignores closed connections).
  void Close(Conn& c);
  // Idle: waiting for the next request with nothing of a request in the loop's hands (no bytes
  // buffered, here or inside OpenSSL, nothing to write, nothing on a worker or held for its
  // fsync, not closing).
  static bool IsIdle(const Conn& c);
  // Nothing of a request in the loop's buffers: no byte read and not yet handled (in `in`, or
  // with TLS part of a record inside OpenSSL), nothing left to write. The idle list, a stop and
  // the sweep's choice of timeout all go by it.
  static bool NothingBuffered(const Conn& c);
  // With TLS, the bytes of a record not yet whole wait inside OpenSSL, not in `in` (and no longer
  // in the socket, where EvictOldestIdle looks): a request under way all the same.
  static bool HoldsPartOfTlsRecord(const Conn& c);
  // Puts `c` in the idle list (at the back if it did anything since it last went idle) or takes
  // it out, as IsIdle says. Called whenever the loop is done with a connection for now.
  void RefreshIdle(Conn& c);
  void LinkIdle(Conn& c);
  void UnlinkIdle(Conn& c);
  void PublishOldestIdle();
  // Closes the oldest idle connection; false if there is none.
  bool EvictOldestIdle();
  void OnCompletions();
  void Post(Conn* c, Response response);
  // Writes the answer of the connection's request in flight (from a worker or relayed) and
  // goes on with the connection's next requests.
  void Complete(Conn& c, const Response& response);
  // The Forwarder's outcome for the request relayed from connection `token` (or for the
  // broadcast batch `token`, see kBroadcastToken).
  void OnRelayed(uint64_t token, Forwarder::Outcome outcome);
  // Starts the batches of the senders that became ready, and of those whose backoff ended.
  void PumpBroadcasts();
  // Takes the sender's next batch and relays it (or notes when to try again).
  void SendBroadcast(std::shared_ptr<replication::PeerSender> sender);
  void OnBroadcastDone(uint64_t token, const Forwarder::Outcome& outcome);
  // Holds `response` until its durable_lsn is durable; the connection reads nothing meanwhile.
  void HoldUntilDurable(Conn& c, Response response, const Answering& answering,
                        std::string_view method);
  // Sends the held answers whose writes are now durable (or failed: 507).
  void ReleaseDurable();

 public:
  // From the journal's writer thread after each log group: wakes the loop if it holds answers.
  void OnDurable() {
    if (has_durable_waits_.load()) Wake();
  }

 private:
  void Sweep();
  void BeginStop();
  void UpdateDate();

  Shared& shared_;
  Service& service_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<std::unique_ptr<Conn>> closed_;  // closed during this event batch
  Conn* idle_head_ = nullptr;                  // oldest idle connection
  Conn* idle_tail_ = nullptr;
  // Own cache line: written by this loop, read by accepting loops, away from done_mu_.
  alignas(64) std::atomic<int64_t> oldest_idle_{kNoIdle};
  Clock::time_point now_;
  Clock::time_point next_sweep_;
  Clock::time_point listener_resume_;  // accept paused (out of descriptors) until then
  Clock::time_point last_accept_warning_;
  Clock::time_point last_limit_warning_;
  Clock::time_point last_per_ip_warning_;
  bool listening_ = false;
  bool stop_seen_ = false;
  std::time_t date_second_ = 0;
  std::string date_;

  std::mutex done_mu_;
  std::vector<Completion> done_;   // GUARDED_BY(done_mu_)
  std::vector<Accepted> adopted_;  // GUARDED_BY(done_mu_): accepted by another loop, for us
  std::vector<Completion> done_local_;
  std::vector<Accepted> adopted_local_;
  // Loop thread only; LSNs grow from front to back (this loop appended them in that order).
  std::deque<DurableWait> durable_waits_;
  std::atomic<bool> has_durable_waits_{false};
  // Relays requests for other shards (null: forwarding left to the workers).
  std::unique_ptr<Forwarder> forwarder_;

  // Broadcasts (SenderDriver). Ready() from any thread:
  std::mutex ready_mu_;
  std::vector<std::shared_ptr<replication::PeerSender>> ready_;  // GUARDED_BY(ready_mu_)
  std::atomic<bool> has_ready_{false};
  // Loop thread only:
  std::vector<std::shared_ptr<replication::PeerSender>> ready_local_;
  std::unordered_map<uint64_t, std::shared_ptr<replication::PeerSender>> broadcasts_;  // by token
  std::vector<std::shared_ptr<replication::PeerSender>> backing_off_;
  Clock::time_point next_retry_ = Clock::time_point::max();  // earliest end of a backoff
  uint64_t broadcasts_started_ = 0;
  Clock::time_point last_refusal_warning_;
  // A broadcast's Forwarder token: (number << 3) | kBroadcastToken. A relayed request's token
  // is its Conn*, whose low three bits are 0.
  static constexpr uint64_t kBroadcastToken = 2;
  // How often a broadcast to a peer whose name is being resolved looks again.
  static constexpr std::chrono::milliseconds kResolvingRecheck{5};

  // epoll user data for the two non-connection descriptors.
  static constexpr uint64_t kListenerTag = 1;
  static constexpr uint64_t kWakeTag = 2;
};

EventServer::Loop::Loop(Shared& shared) : shared_(shared), service_(shared.service) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    throw Poco::SystemException(std::string("epoll/eventfd: ") + std::strerror(errno));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeTag;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  // EPOLLEXCLUSIVE: one loop (not all) wakes for each incoming connection.
  ev.events = EPOLLIN | EPOLLEXCLUSIVE;
  ev.data.u64 = kListenerTag;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, shared_.listen_fd, &ev) != 0) {
    throw Poco::SystemException(std::string("epoll_ctl(listener): ") + std::strerror(errno));
  }
  listening_ = true;
  if (shared_.options.forward_on_loops) {
    ForwarderOptions forwarding;
    forwarding.tls = shared_.options.tls;
    forwarding.resolver = shared_.resolver.get();
    forwarder_ = std::make_unique<Forwarder>(epoll_fd_, forwarding,
                                             [this](uint64_t token, Forwarder::Outcome outcome) {
                                               OnRelayed(token, std::move(outcome));
                                             });
  }
}

EventServer::Loop::~Loop() {
  forwarder_.reset();  // its connections, before the epoll descriptor goes
  for (const Accepted& accepted : adopted_) {
    ::close(accepted.fd);
    shared_.Release(accepted.peer);
  }
  for (auto& c : conns_) {
    ::close(c->fd);
    shared_.Release(c->peer);
  }
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

void EventServer::Loop::Wake() {
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void EventServer::Loop::UpdateDate() {
  const std::time_t second = std::time(nullptr);
  if (second == date_second_) return;
  date_second_ = second;
  date_ = HttpDate(second);
}

void EventServer::Loop::Run() {
  pthread_setname_np(pthread_self(), "kvs-loop");  // top -H, perf --sort comm
  tl_running_loop = this;
  epoll_event events[kMaxEvents];
  now_ = Clock::now();
  next_sweep_ = now_ + kSweepPeriod;
  while (true) {
    if (shared_.stopping.load(std::memory_order_acquire)) {
      if (!stop_seen_) BeginStop();
      if (conns_.empty() || now_ >= shared_.stop_deadline) break;
    }
    ReleaseDurable();
    // Requests relayed and broadcast batches taken since the last wait leave now, one write
    // per peer connection. A relayed answer handled meanwhile may let a pipelined write in,
    // whose broadcast then waits in ready_ with no wake-up to come: pumped again.
    do {
      PumpBroadcasts();
      if (forwarder_ != nullptr) forwarder_->Flush();
    } while (has_ready_.load(std::memory_order_acquire));
    const Clock::time_point wake_at = std::min(next_sweep_, next_retry_);
    const int timeout_ms = static_cast<int>(std::max<int64_t>(
        1, std::chrono::duration_cast<std::chrono::milliseconds>(wake_at - now_).count()));
    const int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, timeout_ms);
    now_ = Clock::now();
    UpdateDate();
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kListenerTag) {
        AcceptAll();
      } else if (tag == kWakeTag) {
        uint64_t count = 0;
        [[maybe_unused]] const ssize_t r = ::read(wake_fd_, &count, sizeof count);
        OnCompletions();
      } else if (tag & Forwarder::kTagBit) {
        forwarder_->OnEvent(tag, events[i].events, now_);
      } else {
        Conn& c = *reinterpret_cast<Conn*>(tag);
        if (c.fd >= 0) OnEvent(c, events[i].events);  // not closed earlier in this batch
      }
    }
    if (now_ >= next_sweep_) {
      Sweep();
      next_sweep_ = now_ + kSweepPeriod;
    }
    closed_.clear();  // no event of the next batch can name them
  }
}

void EventServer::Loop::BeginStop() {
  stop_seen_ = true;
  if (listening_) {
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, shared_.listen_fd, nullptr);
    listening_ = false;
  }
  // Idle connections go now; the others finish the request they are on (its answer says
  // "Connection: close").
  for (size_t i = conns_.size(); i-- > 0;) {
    Conn& c = *conns_[i];
    if (c.state == Conn::State::kReading && NothingBuffered(c)) {
      Close(c);
    }
  }
}

void EventServer::Loop::AcceptAll() {
  for (int i = 0; i < kAcceptBurst; ++i) {
    sockaddr_storage address{};
    socklen_t address_size = sizeof address;
    const int fd = ::accept4(shared_.listen_fd, reinterpret_cast<sockaddr*>(&address),
                             &address_size, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: stop accepting for a moment instead of spinning on the
        // listener; connections wait in the backlog.
        if (now_ - last_accept_warning_ >= std::chrono::seconds(10)) {
          // Once per 10 s: while the limit holds, accepting fails every 100 ms.
          last_accept_warning_ = now_;
          Log().warning("accept: %s; pausing accepts for 100 ms at a time (%d connections open)",
                        std::string(std::strerror(errno)),
                        shared_.connections.load(std::memory_order_relaxed));
        }
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, shared_.listen_fd, nullptr);
        listening_ = false;
        listener_resume_ = now_ + std::chrono::milliseconds(100);
      }
      return;
    }
    Accepted accepted{fd, shared_.per_ip_capped() ? Shared::KeyOf(address) : Shared::PeerKey{},
                      /*evict=*/false};
    if (!shared_.TakePerIpSlot(accepted.peer)) {
      ::close(fd);
      shared_.CountRefused(ConnectionRefusal::kPerIp);
      if (now_ - last_per_ip_warning_ >= kOverloadWarningPeriod) {
        last_per_ip_warning_ = now_;
        Log().warning("refusing connections from %s: kvs.http.max_connections_per_ip (%d) reached",
                      AddressText(address), shared_.options.max_connections_per_ip);
      }
      continue;
    }
    Loop* owner = nullptr;
    if (shared_.connections.fetch_add(1, std::memory_order_relaxed) >=
        shared_.options.max_connections) {
      // Full: the loop holding the oldest idle connection closes it for this one.
      owner = LoopWithOldestIdle();
      if (now_ - last_limit_warning_ >= kOverloadWarningPeriod) {
        last_limit_warning_ = now_;
        Log().warning(
            "kvs.http.max_connections (%d) reached: %s", shared_.options.max_connections,
            std::string(owner != nullptr ? "closing the oldest idle connections for new ones"
                                         : "no connection is idle, refusing new ones"));
      }
      if (owner == nullptr) {
        ::close(fd);
        shared_.Release(accepted.peer);
        shared_.CountRefused(ConnectionRefusal::kLimit);
        continue;
      }
      accepted.evict = true;
    } else {
      // Connections are dealt round-robin over the loops: the loop that happens to wake for a
      // burst of connects must not end up serving all of them on one core.
      owner = shared_.loops[shared_.next_loop.fetch_add(1, std::memory_order_relaxed) %
                            shared_.loops.size()];
    }
    if (owner == this) {
      AddConnection(accepted);
    } else {
      owner->Adopt(accepted);
    }
  }
}

EventServer::Loop* EventServer::Loop::LoopWithOldestIdle() const {
  Loop* best = nullptr;
  int64_t best_since = kNoIdle;
  for (Loop* loop : shared_.loops) {
    const int64_t since = loop->oldest_idle();
    if (since < best_since) {
      best = loop;
      best_since = since;
    }
  }
  return best;
}

void EventServer::Loop::Adopt(const Accepted& accepted) {
  bool was_empty = false;
  {
    std::lock_guard lock(done_mu_);
    was_empty = done_.empty() && adopted_.empty();
    adopted_.push_back(accepted);
  }
  if (was_empty) Wake();
}

void EventServer::Loop::AddConnection(const Accepted& accepted) {
  if (accepted.evict && !EvictOldestIdle()) {
    // Every connection of this loop got busy since the accepting loop looked.
    ::close(accepted.fd);
    shared_.Release(accepted.peer);
    shared_.CountRefused(ConnectionRefusal::kLimit);
    return;
  }
  const int fd = accepted.fd;
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto conn = std::make_unique<Conn>();
  conn->fd = fd;
  conn->index = conns_.size();
  conn->peer = accepted.peer;
  conn->last_progress = now_;
  if (shared_.options.tls != nullptr) conn->tls = Conn::Tls::kDetect;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = reinterpret_cast<uint64_t>(conn.get());
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    ::close(fd);
    shared_.Release(accepted.peer);
    return;
  }
  conns_.push_back(std::move(conn));
  // Waiting for its first request: idle (Sweep gives it the keep-alive timeout too).
  LinkIdle(*conns_.back());
}

void EventServer::Loop::OnEvent(Conn& c, uint32_t events) {
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) c.readable = true;
  if (c.state == Conn::State::kInFlight) {
    // The answer is not ready; input waits in the socket. Remember a dead socket so that
    // the answer is not written to it.
    if (events & EPOLLERR) c.broken = true;
    return;
  }
  if (events & EPOLLERR) {
    Close(c);
    return;
  }
  Pump(c);
}

EventServer::Loop::ReadResult EventServer::Loop::ReadSome(Conn& c) {
  if (c.in_begin == c.in_end) c.in_begin = c.in_end = 0;
  if (c.in_cap - c.in_end < kReadChunk) {
    const size_t used = c.in_end - c.in_begin;
    if (c.in_begin > 0 && c.in_cap - used >= kReadChunk) {
      std::memmove(c.in.get(), c.in.get() + c.in_begin, used);
    } else {
      const size_t cap = std::max(c.in_cap * 2, used + kReadChunk);
      auto bigger = std::make_unique<char[]>(cap);
      if (used > 0) std::memcpy(bigger.get(), c.in.get() + c.in_begin, used);
      c.in = std::move(bigger);
      c.in_cap = cap;
    }
    c.in_begin = 0;
    c.in_end = used;
  }
  const size_t space = c.in_cap - c.in_end;
  if (c.tls != Conn::Tls::kOff) return ReadTls(c, space);
  while (true) {
    const ssize_t n = ::recv(c.fd, c.in.get() + c.in_end, space, 0);
    if (n > 0) {
      c.in_end += static_cast<size_t>(n);
      c.last_progress = now_;
      // A short read emptied the socket: the next arrival raises a new edge.
      return static_cast<size_t>(n) < space ? ReadResult::kDrained : ReadResult::kData;
    }
    if (n == 0) return ReadResult::kEof;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return ReadResult::kDrained;
    return ReadResult::kError;
  }
}

EventServer::Loop::ReadResult EventServer::Loop::ReadTls(Conn& c, size_t space) {
  if (c.tls == Conn::Tls::kDetect) {
    unsigned char first = 0;
    ssize_t n;
    do {
      n = ::recv(c.fd, &first, 1, MSG_PEEK);
    } while (n < 0 && errno == EINTR);
    if (n == 0) return ReadResult::kEof;
    if (n < 0) {
      return errno == EAGAIN || errno == EWOULDBLOCK ? ReadResult::kDrained : ReadResult::kError;
    }
    if (first != 0x16) {  // not a TLS handshake record: most likely plain HTTP
      c.tls = Conn::Tls::kOff;
      Fail(c, 400, "This port serves HTTPS (TLS is on): use https://", "request");
      return ReadResult::kData;
    }
    c.ssl = SSL_new(shared_.options.tls->server()->sslContext());
    if (c.ssl == nullptr || SSL_set_fd(c.ssl, c.fd) != 1) return ReadResult::kError;
    SSL_set_accept_state(c.ssl);
    c.tls = Conn::Tls::kOn;
  }
  ERR_clear_error();
  const int n =
      SSL_read(c.ssl, c.in.get() + c.in_end, static_cast<int>(std::min<size_t>(space, 1u << 30)));
  if (n > 0) {
    c.in_end += static_cast<size_t>(n);
    c.last_progress = now_;
    // Never "drained" on a short read: OpenSSL returns one record at a time, and more may be
    // buffered in it or in the socket without a new edge to come.
    return ReadResult::kData;
  }
  switch (SSL_get_error(c.ssl, n)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:  // the handshake's answer waits for room: EPOLLOUT resumes it
      return ReadResult::kDrained;
    case SSL_ERROR_ZERO_RETURN:  // close_notify
      return ReadResult::kEof;
    default:
      // A failed handshake (untrusted or missing client certificate, no common cipher, not TLS
      // after all) or a connection cut without close_notify.
      if (Log().debug()) {
        char reason[256];
        ERR_error_string_n(ERR_peek_last_error(), reason, sizeof reason);
        Log().debug("TLS connection ended: %s", std::string(reason));
      }
      ERR_clear_error();
      return ReadResult::kError;
  }
}

void EventServer::Loop::Pump(Conn& c) {
  PumpIo(c);
  if (c.fd >= 0) RefreshIdle(c);
}

void EventServer::Loop::PumpIo(Conn& c) {
  if (c.state == Conn::State::kDraining) {
    Discard(c);
    return;
  }
  if (!Flush(c)) return;
  // (With TLS, OpenSSL may hold bytes it read from the socket: always asked.)
  bool socket_empty = c.tls == Conn::Tls::kOff && !c.readable;
  while (c.state == Conn::State::kReading) {
    ProcessInput(c);
    if (!Flush(c)) return;
    if (c.state != Conn::State::kReading) return;
    if (c.out_sent < c.out.size()) return;  // the client is slow to read: wait for EPOLLOUT
    if (c.eof || socket_empty) break;
    switch (ReadSome(c)) {
      case ReadResult::kData:
        break;
      case ReadResult::kDrained:
        socket_empty = true;
        c.readable = false;
        break;
      case ReadResult::kEof:
        c.eof = true;
        break;
      case ReadResult::kError:
        Close(c);
        return;
    }
    if (c.in_begin == c.in_end && socket_empty) break;
  }
  if (c.state == Conn::State::kReading && c.eof) {
    // The client sent everything it will send and every complete request is answered.
    if (c.out_sent == c.out.size()) Close(c);
  }
}

void EventServer::Loop::ProcessInput(Conn& c) {
  const size_t max_head = shared_.options.max_head_bytes;
  while (c.state == Conn::State::kReading && !c.close_after_write &&
         c.out.size() - c.out_sent < kMaxPendingOutput && c.in_begin < c.in_end) {
    const std::string_view data(c.in.get() + c.in_begin, c.in_end - c.in_begin);
    RequestHead head;
    std::string error;
    switch (ParseRequestHead(data, max_head, head, error)) {
      case HeadStatus::kIncomplete:
        return;
      case HeadStatus::kComplete:
        break;
      case HeadStatus::kBad:
        Fail(c, 400, "Malformed HTTP request: " + error, head.method);
        return;
      case HeadStatus::kTooLarge:
        Fail(c, 431, "Request header fields too large", head.method);
        return;
      case HeadStatus::kBadVersion:
        Fail(c, 505, "HTTP version not supported", head.method);
        return;
      case HeadStatus::kNotImplemented:
        Fail(c, 501, "Transfer coding not supported: " + error, head.method);
        return;
    }
    const size_t limit = service_.limits().BodyLimitFor(head.target);
    auto wait_for_body = [&] {
      // curl and others wait for "100 Continue" (or a timeout) before sending a large body.
      if (head.expect_continue && !c.sent_continue && head.minor_version >= 1) {
        c.out += "HTTP/1.1 100 Continue\r\n\r\n";
        c.sent_continue = true;
      }
    };
    if (head.chunked) {
      if (!c.chunk_active) {
        c.chunk.Reset();
        c.chunk_body.clear();
        c.chunk_active = true;
      }
      switch (c.chunk.Feed(data.substr(head.head_bytes), limit, c.chunk_body)) {
        case ChunkedDecoder::Status::kIncomplete:
          wait_for_body();
          return;
        case ChunkedDecoder::Status::kBad:
          Fail(c, 400, "Malformed chunked body", head.method);
          return;
        case ChunkedDecoder::Status::kTooLarge:
          Fail(c, 413, "Request body too large", head.method);
          return;
        case ChunkedDecoder::Status::kComplete:
          break;
      }
      Dispatch(c, head, c.chunk_body, head.head_bytes + c.chunk.consumed());
    } else if (head.has_content_length) {
      if (head.content_length > limit) {
        // Refused before the body is read (it may never end).
        Fail(c, 413, "Request body too large", head.method);
        return;
      }
      const size_t length = static_cast<size_t>(head.content_length);
      if (data.size() - head.head_bytes < length) {
        wait_for_body();
        return;
      }
      Dispatch(c, head, data.substr(head.head_bytes, length), head.head_bytes + length);
    } else {
      // RFC 9112 §6.3: neither Content-Length nor chunked means no body.
      Dispatch(c, head, {}, head.head_bytes);
    }
  }
}

void EventServer::Loop::Dispatch(Conn& c, const RequestHead& head, std::string_view body,
                                 size_t request_bytes) {
  c.sent_continue = false;
  ++c.served;
  const int max_requests = shared_.options.max_keepalive_requests;
  const Answering answering{request_bytes,
                            head.keep_alive && !(max_requests > 0 && c.served >= max_requests) &&
                                !shared_.stopping.load(std::memory_order_relaxed),
                            head.minor_version == 0, head.method == "HEAD"};
  Request request{head.method,
                  head.target,
                  body,
                  static_cast<int>(std::min<uint64_t>(head.hops, 1000)),
                  head.epoch,
                  head.authorization,
                  head.cluster_proof,
                  head.request_id};
  ForwardPlan& plan = c.relay_plan;
  plan.shard = -1;
  if (forwarder_ != nullptr) request.forward = &plan;
  if (std::optional<Response> now = service_.TryHandle(request)) {
    if (now->durable_lsn != 0) {
      HoldUntilDurable(c, std::move(*now), answering, head.method);
      return;
    }
    Finish(c, *now, answering);
    return;
  }
  request.forward = nullptr;
  c.state = Conn::State::kInFlight;
  c.flight = answering;
  const bool forwarded = plan.shard >= 0;
  const bool on_loop = forwarded && forwarder_->Reachable(plan);
  if (forwarded && shared_.options.metrics != nullptr) {
    shared_.options.metrics->CountForwarded(on_loop);
  }
  if (on_loop) {
    // For another shard: relayed from this loop; OnRelayed answers it.
    c.relay_request = request;
    forwarder_->Start(reinterpret_cast<uint64_t>(&c), c.relay_request, plan);
    return;
  }
  // May block: a worker runs it and hands the answer back through Post().
  Conn* conn = &c;
  shared_.workers->Submit([this, conn, request] { Post(conn, shared_.service.Handle(request)); });
}

void EventServer::Loop::Finish(Conn& c, const Response& response, const Answering& answering) {
  Respond(c, response, answering.keep_alive, answering.http10, answering.is_head);
  c.in_begin += answering.request_bytes;
  c.chunk_active = false;
  if (!answering.keep_alive) c.close_after_write = true;
}

void EventServer::Loop::Respond(Conn& c, const Response& response, bool keep_alive, bool http10,
                                bool is_head) {
  // A large body (a state-transfer chunk: MiBs) is copied once, not grown into by doubling.
  if (!is_head && response.body.size() > (64u << 10)) {
    c.out.reserve(c.out.size() + 512 + response.body.size());
  }
  // Reused by this loop thread: the usual answer (an X-Request-Id line) allocates nothing.
  thread_local std::string extra;
  extra.clear();
  for (const ExtraHeader& header : response.headers) {
    extra.append(header.name).append(": ").append(header.value).append("\r\n");
  }
  if (!response.request_id.empty()) {
    extra.append(kRequestIdHeader).append(": ").append(response.request_id.view()).append("\r\n");
  }
  AppendResponseHead(c.out, response.status, response.content_type, response.allow,
                     response.body.size(), keep_alive, http10 && keep_alive, date_, extra);
  if (!is_head) c.out += response.body;
}

void EventServer::Loop::Fail(Conn& c, int status, std::string_view error, std::string_view method) {
  Respond(c, ErrorResponse(status, error, method.empty() ? "request" : method),
          /*keep_alive=*/false, /*http10=*/false, /*is_head=*/false);
  c.close_after_write = true;
}

bool EventServer::Loop::Flush(Conn& c) {
  while (c.ssl != nullptr && c.out_sent < c.out.size()) {
    ERR_clear_error();
    const int n =
        SSL_write(c.ssl, c.out.data() + c.out_sent,
                  static_cast<int>(std::min<size_t>(c.out.size() - c.out_sent, 1u << 30)));
    if (n > 0) {
      c.out_sent += static_cast<size_t>(n);
      c.last_progress = now_;
      continue;
    }
    const int error = SSL_get_error(c.ssl, n);
    ERR_clear_error();
    // The same bytes are offered again on the next EPOLLOUT (or EPOLLIN, for WANT_READ).
    if (error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ) return true;
    Close(c);
    return false;
  }
  while (c.out_sent < c.out.size()) {
    const ssize_t n =
        ::send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_sent += static_cast<size_t>(n);
      c.last_progress = now_;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    Close(c);
    return false;
  }
  if (c.out.capacity() > kShrinkAbove) {
    std::string().swap(c.out);
  } else {
    c.out.clear();
  }
  c.out_sent = 0;
  if (c.close_after_write && c.state == Conn::State::kReading) {
    BeginLingeringClose(c);
    return c.fd >= 0;  // draining, or already closed
  }
  if (c.in_begin == c.in_end && c.in_cap > kShrinkAbove) {
    c.in.reset();
    c.in_cap = c.in_begin = c.in_end = 0;
  }
  return true;
}

void EventServer::Loop::BeginLingeringClose(Conn& c) {
  if (c.ssl != nullptr) {
    ERR_clear_error();
    SSL_shutdown(c.ssl);  // close_notify, best effort: what the client sends after is discarded
    ERR_clear_error();
  }
  ::shutdown(c.fd, SHUT_WR);
  c.state = Conn::State::kDraining;
  c.drain_deadline = now_ + kLingerTime;
  Discard(c);
}

void EventServer::Loop::Discard(Conn& c) {
  char sink[4096];
  while (true) {
    const ssize_t n = ::recv(c.fd, sink, sizeof sink, 0);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    Close(c);  // end of stream or error: the client has the answer or is gone
    return;
  }
}

void EventServer::Loop::Close(Conn& c) {
  UnlinkIdle(c);
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
  ::close(c.fd);
  c.fd = -1;
  shared_.Release(c.peer);
  const size_t index = c.index;
  closed_.push_back(std::move(conns_[index]));
  if (index + 1 != conns_.size()) {
    conns_[index] = std::move(conns_.back());
    conns_[index]->index = index;
  }
  conns_.pop_back();
}

bool EventServer::Loop::IsIdle(const Conn& c) {
  return c.fd >= 0 && c.state == Conn::State::kReading && !c.close_after_write && !c.eof &&
         NothingBuffered(c);
}

bool EventServer::Loop::NothingBuffered(const Conn& c) {
  return c.in_begin == c.in_end && c.out_sent == c.out.size() && !HoldsPartOfTlsRecord(c);
}

bool EventServer::Loop::HoldsPartOfTlsRecord(const Conn& c) {
  if (c.ssl == nullptr) return false;
  // Some of a record's bytes are buffered; or its header was read and none of its body yet
  // ("RB": reading the body), which leaves nothing buffered for SSL_has_pending to see.
  return SSL_has_pending(c.ssl) == 1 || std::strcmp(SSL_rstate_string(c.ssl), "RB") == 0;
}

void EventServer::Loop::RefreshIdle(Conn& c) {
  if (!IsIdle(c)) {
    UnlinkIdle(c);
    return;
  }
  if (c.idle && c.last_progress <= c.idle_since) return;  // nothing happened since
  UnlinkIdle(c);
  LinkIdle(c);
}

void EventServer::Loop::LinkIdle(Conn& c) {
  c.idle = true;
  c.idle_since = now_;
  c.idle_prev = idle_tail_;
  c.idle_next = nullptr;
  if (idle_tail_ != nullptr) {
    idle_tail_->idle_next = &c;
  } else {
    idle_head_ = &c;
  }
  idle_tail_ = &c;
  PublishOldestIdle();
}

void EventServer::Loop::UnlinkIdle(Conn& c) {
  if (!c.idle) return;
  c.idle = false;
  (c.idle_prev != nullptr ? c.idle_prev->idle_next : idle_head_) = c.idle_next;
  (c.idle_next != nullptr ? c.idle_next->idle_prev : idle_tail_) = c.idle_prev;
  c.idle_prev = c.idle_next = nullptr;
  PublishOldestIdle();
}

void EventServer::Loop::PublishOldestIdle() {
  const int64_t since =
      idle_head_ != nullptr ? idle_head_->idle_since.time_since_epoch().count() : kNoIdle;
  if (oldest_idle_.load(std::memory_order_relaxed) != since) {
    oldest_idle_.store(since, std::memory_order_relaxed);
  }
}

bool EventServer::Loop::EvictOldestIdle() {
  while (Conn* c = idle_head_) {
    char byte = 0;
    const ssize_t n = ::recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) {
      // Its next request began arriving after the loop last read (the event is on its way):
      // not idle. Pump puts it back in the list once it is idle again.
      UnlinkIdle(*c);
      continue;
    }
    // Nothing waiting (or the client already closed or reset it): close it for the new one.
    Close(*c);
    shared_.CountEvicted();
    return true;
  }
  return false;
}

void EventServer::Loop::Post(Conn* c, Response response) {
  bool was_empty = false;
  {
    std::lock_guard lock(done_mu_);
    was_empty = done_.empty() && adopted_.empty();
    done_.push_back(Completion{c, std::move(response)});
  }
  if (was_empty) Wake();
}

void EventServer::Loop::HoldUntilDurable(Conn& c, Response response, const Answering& answering,
                                         std::string_view method) {
  c.state = Conn::State::kInFlight;
  c.flight = answering;
  durable_waits_.push_back(DurableWait{&c, std::move(response), std::string(method),
                                       Clock::now() + Service::kDurableWait});
  // Set before the next ReleaseDurable() check: either that check sees the write durable, or
  // the journal's listener (which runs after the durable mark moves) sees the flag and wakes us.
  has_durable_waits_.store(true);
}

void EventServer::Loop::ReleaseDurable() {
  if (durable_waits_.empty()) return;
  storage::Journal* journal = service_.journal();
  while (!durable_waits_.empty()) {
    const storage::Wal::State state = journal->Check(durable_waits_.front().response.durable_lsn);
    // Deadlines grow from front to back too; a stuck disk is seen here at least every sweep.
    if (state == storage::Wal::State::kPending && Clock::now() < durable_waits_.front().deadline) {
      break;
    }
    DurableWait wait = std::move(durable_waits_.front());
    durable_waits_.pop_front();
    Conn& c = *wait.conn;
    c.state = Conn::State::kReading;
    if (c.broken) {
      Close(c);
      continue;
    }
    if (state == storage::Wal::State::kDurable) {
      Finish(c, wait.response, c.flight);
    } else {
      Response failed = state == storage::Wal::State::kFailed
                            ? service_.StorageFailure(wait.method)
                            : Service::DurabilityTimeout(wait.method);
      failed.request_id = wait.response.request_id;
      const ScopedRequestId scoped_id(failed.request_id);
      Poco::Logger::get("kvs.api").warning("%s answered %d: %s", wait.method, failed.status,
                                           failed.body);
      Finish(c, failed, c.flight);
    }
    c.last_progress = now_;
    Pump(c);
  }
  has_durable_waits_.store(!durable_waits_.empty());
}

void EventServer::Loop::OnCompletions() {
  {
    std::lock_guard lock(done_mu_);
    done_local_.swap(done_);
    adopted_local_.swap(adopted_);
  }
  for (const Accepted& accepted : adopted_local_) {
    if (stop_seen_) {
      ::close(accepted.fd);
      shared_.Release(accepted.peer);
    } else {
      AddConnection(accepted);
    }
  }
  adopted_local_.clear();
  for (Completion& done : done_local_) Complete(*done.conn, done.response);
  done_local_.clear();
}

void EventServer::Loop::Complete(Conn& c, const Response& response) {
  c.state = Conn::State::kReading;
  if (c.broken) {
    Close(c);
    return;
  }
  Finish(c, response, c.flight);
  c.last_progress = now_;
  Pump(c);
}

void EventServer::Loop::Ready(std::shared_ptr<replication::PeerSender> sender) {
  bool was_empty = false;
  {
    std::lock_guard lock(ready_mu_);
    was_empty = ready_.empty();
    ready_.push_back(std::move(sender));
    has_ready_.store(true, std::memory_order_release);
  }
  // On this loop's own thread (a write it applied) PumpBroadcasts runs before it waits.
  if (was_empty && tl_running_loop != this) Wake();
}

void EventServer::Loop::PumpBroadcasts() {
  if (has_ready_.load(std::memory_order_acquire)) {
    {
      std::lock_guard lock(ready_mu_);
      ready_local_.swap(ready_);
      has_ready_.store(false, std::memory_order_relaxed);
    }
    for (auto& sender : ready_local_) SendBroadcast(std::move(sender));
    ready_local_.clear();
  }
  if (now_ >= next_retry_) {
    next_retry_ = Clock::time_point::max();
    std::vector<std::shared_ptr<replication::PeerSender>> due;
    due.swap(backing_off_);
    for (auto& sender : due) SendBroadcast(std::move(sender));
  }
}

void EventServer::Loop::SendBroadcast(std::shared_ptr<replication::PeerSender> sender) {
  if (forwarder_->Resolving(sender->peer())) {
    // A peer named by a host name whose first lookup has not ended: looked at again shortly
    // (a name that cannot be resolved fails the batch, and the sender backs off).
    next_retry_ = std::min(next_retry_, now_ + kResolvingRecheck);
    backing_off_.push_back(std::move(sender));
    return;
  }
  std::optional<replication::PeerSender::Batch> batch = sender->TakeBatch();
  if (!batch) {
    const Clock::time_point retry_at = sender->retry_at();
    if (retry_at > now_) {
      next_retry_ = std::min(next_retry_, retry_at);
      backing_off_.push_back(std::move(sender));
    }
    return;
  }
  static constexpr std::string_view kPath = "/internal/replicate";
  Request request;
  request.method = "POST";
  request.target = kPath;
  request.body = batch->body;
  ForwardPlan plan;
  plan.members.push_back(sender->peer());
  plan.answer_timeout = sender->call_timeout();
  if (const auth::ClusterAuth* auth = service_.cluster_auth()) {
    plan.headers.emplace_back(auth::kAuthHeader, auth->Sign("POST", kPath, batch->body));
  }
  const uint64_t token = (++broadcasts_started_ << 3) | kBroadcastToken;
  broadcasts_.emplace(token, std::move(sender));
  forwarder_->Start(token, request, plan);
}

void EventServer::Loop::OnBroadcastDone(uint64_t token, const Forwarder::Outcome& outcome) {
  auto it = broadcasts_.find(token);
  if (it == broadcasts_.end()) return;
  std::shared_ptr<replication::PeerSender> sender = std::move(it->second);
  broadcasts_.erase(it);
  const bool ok = outcome.status >= 200 && outcome.status < 300;
  std::string error;
  if (!ok) {
    error = outcome.status == 0
                ? outcome.error
                : "status " + std::to_string(outcome.status) + " " + outcome.body.substr(0, 200);
    // A peer that refuses our credential or certificate is a configuration error worth a
    // warning (every 10 s at most), as the workers' client gives.
    if ((outcome.status == 401 || outcome.failure == net::CallFailure::kTls) &&
        now_ - last_refusal_warning_ >= std::chrono::seconds(10)) {
      last_refusal_warning_ = now_;
      Poco::Logger::get("kvs.replication")
          .warning("replicate to %s refused: %s", sender->peer(), error);
    }
  }
  if (sender->Finished(ok, error)) {
    SendBroadcast(std::move(sender));
  } else if (!ok) {
    const Clock::time_point retry_at = sender->retry_at();
    next_retry_ = std::min(next_retry_, retry_at);
    backing_off_.push_back(std::move(sender));
  }
}

void EventServer::Loop::OnRelayed(uint64_t token, Forwarder::Outcome outcome) {
  if ((token & 7) == kBroadcastToken) {
    OnBroadcastDone(token, outcome);
    return;
  }
  Conn& c = *reinterpret_cast<Conn*>(token);
  const Response response =
      outcome.status != 0
          ? service_.Relayed(c.relay_request, c.relay_plan, outcome.status, std::move(outcome.body),
                             outcome.member)
          : service_.RelayFailed(c.relay_request, c.relay_plan, outcome.error, outcome.failure);
  c.relay_plan.shard = -1;
  Complete(c, response);
}

void EventServer::Loop::Sweep() {
  if (forwarder_ != nullptr) forwarder_->Sweep(now_);
  if (!listening_ && !stop_seen_ && now_ >= listener_resume_) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.u64 = kListenerTag;
    listening_ = ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, shared_.listen_fd, &ev) == 0;
    if (!listening_) listener_resume_ = now_ + std::chrono::milliseconds(100);
  }
  const auto& options = shared_.options;
  for (size_t i = conns_.size(); i-- > 0;) {
    Conn& c = *conns_[i];
    switch (c.state) {
      case Conn::State::kInFlight:
        break;
      case Conn::State::kDraining:
        if (now_ >= c.drain_deadline) Close(c);
        break;
      case Conn::State::kReading: {
        // Part of a request in hand (part of a TLS record too) gets the receive timeout.
        const bool idle = NothingBuffered(c);
        const auto limit = idle ? options.keepalive_timeout : options.receive_timeout;
        if (now_ - c.last_progress >= limit || (idle && stop_seen_)) {
          Close(c);
        } else if (idle && c.in_cap > 0 && now_ - c.last_progress >= kIdleBufferRelease) {
          // Many quiet keep-alive connections should not each hold a read buffer.
          c.in.reset();
          c.in_cap = c.in_begin = c.in_end = 0;
          std::string().swap(c.out);
        }
        break;
      }
    }
  }
}

EventServer::EventServer(Service& service, const EventServerOptions& options)
    : service_(service), options_(options) {}

EventServer::~EventServer() { Stop(std::chrono::milliseconds(0)); }

void EventServer::Start() {
  shared_ = std::make_unique<Shared>(service_, options_);
  if (options_.forward_on_loops) shared_->resolver = std::make_unique<net::Resolver>();
  shared_->listener.bind(Poco::Net::SocketAddress(options_.bind_host, options_.port),
                         /*reuseAddress=*/true, /*reusePort=*/false);
  shared_->listener.listen(options_.backlog);
  shared_->listener.setBlocking(false);
  shared_->listen_fd = shared_->listener.impl()->sockfd();
  shared_->workers =
      std::make_unique<cluster::WorkerPool>(static_cast<size_t>(std::max(1, options_.workers)));
  int loops = options_.loops;
  // Half the cores: the other half is left to the kernel's network work (softirq), the
  // workers and the replication senders. Measured on 2 cores with the load generator on the
  // same machine, one loop served ~30% more than two (README "Performance").
  if (loops <= 0) loops = static_cast<int>(std::max(1u, std::thread::hardware_concurrency() / 2));
  for (int i = 0; i < loops; ++i) loops_.push_back(std::make_unique<Loop>(*shared_));
  for (auto& loop : loops_) shared_->loops.push_back(loop.get());
  if (options_.metrics != nullptr) {
    options_.metrics->SetOpenConnectionsGauge([shared = shared_.get()] {
      return static_cast<int64_t>(shared->connections.load(std::memory_order_relaxed));
    });
  }
  for (auto& loop : loops_) loop->Start();
  // Broadcasts to shard peers leave from the first loop rather than from a thread per peer.
  if (options_.forward_on_loops) service_.replicator().SetSenderDriver(loops_.front().get());
  if (storage::Journal* journal = service_.journal()) {
    journal->SetDurabilityListener([shared = shared_.get()] {
      for (Loop* loop : shared->loops) loop->OnDurable();
    });
  }
  started_ = true;
}

void EventServer::Stop(std::chrono::milliseconds grace) {
  if (!started_) return;
  started_ = false;
  // Queued broadcasts go back to sender threads, which outlive the loops.
  if (options_.forward_on_loops) service_.replicator().SetSenderDriver(nullptr);
  shared_->stop_deadline = Clock::now() + grace;
  shared_->stopping.store(true, std::memory_order_release);
  for (auto& loop : loops_) loop->Wake();
  for (auto& loop : loops_) loop->Join();
  if (storage::Journal* journal = service_.journal()) journal->SetDurabilityListener({});
  if (options_.metrics != nullptr) options_.metrics->SetOpenConnectionsGauge({});
  // Requests still on workers finish (or are dropped if queued) before their connections go.
  shared_->workers.reset();
  loops_.clear();
  shared_->listener.close();
  shared_.reset();
}

}  // namespace kvs::api
