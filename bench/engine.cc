#include "kvs/bench/engine.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "kvs/net/http_response_parser.h"

namespace kvs::bench {

struct ResolvedTarget {
  sockaddr_storage address{};
  socklen_t address_length = 0;
  int family = AF_INET;
  std::string host_header;  // "host:port"
  std::string host;         // as given: the name TLS checks (and sends as SNI if a name)
  bool host_is_address = false;
};

// The TLS settings every connection shares (read-only once made, so safe across the loops).
class TlsClientContext {
 public:
  ~TlsClientContext() { SSL_CTX_free(ctx_); }
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;

  static std::unique_ptr<TlsClientContext> Create(const Options& options, std::string& error);
  SSL_CTX* get() const { return ctx_; }

 private:
  explicit TlsClientContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

namespace {

constexpr int64_t kNanosPerMilli = 1'000'000;
constexpr int64_t kScanPeriodNs = 10 * kNanosPerMilli;   // timeout / backoff resolution
constexpr int64_t kMaxBackoffNs = 100 * kNanosPerMilli;  // pause after a failed connect
constexpr size_t kReadBufferSize = 64 * 1024;
constexpr int kMaxEvents = 256;
// --rate: how many missed send slots a loop that fell behind (a slow server, all connections
// busy, a late wake-up) may still send back to back. More would turn a stall into a burst
// that the measured latencies then blame on the server.
constexpr int64_t kCatchUpSlots = 3;

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// splitmix64: small, fast, good enough to pick keys and operations.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound) by multiply-shift (no division on the hot path).
  uint64_t Below(uint64_t bound) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * bound) >> 64);
  }

 private:
  uint64_t state_;
};

// OpenSSL's queued errors as one line (and clears the queue); `fallback` when it is empty.
std::string OpenSslErrors(std::string_view fallback) {
  std::string out;
  while (const unsigned long code = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    if (!out.empty()) out += "; ";
    out += text;
  }
  return out.empty() ? std::string(fallback) : out;
}

}  // namespace

std::unique_ptr<TlsClientContext> TlsClientContext::Create(const Options& options,
                                                           std::string& error) {
  ERR_clear_error();
  SSL_CTX* raw = SSL_CTX_new(TLS_client_method());
  if (raw == nullptr) {
    error = "TLS: " + OpenSslErrors("cannot make a client context");
    return nullptr;
  }
  std::unique_ptr<TlsClientContext> tls(new TlsClientContext(raw));
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  // Partial writes and a write buffer that may move: the loop resends from c.out + offset.
  SSL_CTX_set_mode(raw, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // A server that closes without close_notify (kvs does when it drops an idle connection) is
  // an end of stream, as with plain TCP, not a TLS error.
  SSL_CTX_set_options(raw, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
  const bool cas_loaded = options.ca_file.empty() ? SSL_CTX_set_default_verify_paths(raw) == 1
                                                  : SSL_CTX_load_verify_locations(
                                                        raw, options.ca_file.c_str(), nullptr) == 1;
  if (!cas_loaded) {
    error = "--cacert=" + options.ca_file + ": " + OpenSslErrors("cannot load the CAs");
    return nullptr;
  }
  if (!options.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(raw, options.cert_file.c_str()) != 1) {
      error = "--cert=" + options.cert_file + ": " + OpenSslErrors("cannot load the certificate");
      return nullptr;
    }
    if (SSL_CTX_use_PrivateKey_file(raw, options.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(raw) != 1) {
      error = "--key=" + options.key_file + ": " +
              OpenSslErrors("cannot load the key, or it does not match the certificate");
      return nullptr;
    }
  }
  return tls;
}

// The state one phase shares between the loops: the limits, and the flags that end it.
struct PhaseControl {
  PhaseSpec spec;
  int64_t start_ns = 0;
  int64_t end_ns = 0;         // 0 = no time limit
  uint64_t ticket_limit = 0;  // 0 = no count limit
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> tickets{0};
  std::atomic<int64_t> last_alive_ns{0};  // last time any loop had an open connection
  std::atomic<bool> stalled{false};
};

// One keep-alive connection to one target with at most one request in flight.
// Owned and touched only by its Worker's thread.
struct Connection {
  enum class State {
    kIdle,         // no socket; connects when a phase wants requests
    kConnecting,   // non-blocking connect under way (deadline_ns = connect timeout)
    kHandshaking,  // TLS handshake under way (deadline_ns = the same connect timeout)
    kBackoff,      // the last connect failed; retry at deadline_ns
    kReady,        // connected, nothing in flight
    kWriting,      // request partly sent (deadline_ns = request timeout)
    kReading,      // request sent, response not complete yet
  };

  Connection(const ResolvedTarget* t, uint32_t i, uint64_t seed) : target(t), index(i), rng(seed) {}

  const ResolvedTarget* target;
  uint32_t index;           // in the worker's list; goes into the epoll data with `generation`
  uint32_t generation = 0;  // bumped at every close so stale epoll events are recognised
  int fd = -1;
  SSL* ssl = nullptr;  // with --tls, from the TCP connect to the close
  State state = State::kIdle;
  bool ever_connected = false;
  bool read_pending = false;  // EPOLLIN seen while still writing
  int64_t deadline_ns = 0;
  int64_t sent_ns = 0;
  Op op = Op::kGet;
  uint64_t key = 0;  // of the request in flight
  std::string out;
  size_t out_offset = 0;
  net::ResponseParser parser;
  std::string metadata;  // last causal-metadata seen, raw JSON string content
  Rng rng;
};

// One event loop: an epoll instance, its connections, its Stats. Run() is called on the
// loop's own thread, one phase at a time; everything else only between phases.
class Worker {
 public:
  // `slot_ns`: the gap between this loop's send slots under --rate; 0 = unpaced.
  // `key_set`: the keys load phases draw from (empty = all); the Engine's, read-only here.
  Worker(const Options& options, const RequestBuilder& builder, const TlsClientContext* tls,
         int64_t slot_ns, const std::vector<uint64_t>& key_set)
      : options_(options),
        builder_(builder),
        tls_(tls),
        timeout_ns_(static_cast<int64_t>(options.timeout_ms) * kNanosPerMilli),
        backoff_ns_(std::min(kMaxBackoffNs, timeout_ns_)),
        slot_ns_(slot_ns),
        key_set_(key_set),
        read_buffer_(new char[kReadBufferSize]) {}

  ~Worker() {
    for (Connection& c : connections_) Close(c);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
  }

  bool Init(std::string& error) {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) error = std::string("epoll_create1: ") + std::strerror(errno);
    return epoll_fd_ >= 0;
  }

  void AddConnection(const ResolvedTarget* target, uint64_t seed) {
    connections_.emplace_back(target, static_cast<uint32_t>(connections_.size()), seed);
  }

  void Run(PhaseControl& phase);

  const Stats& stats() const { return stats_; }
  const std::vector<KeyShard>& shards() const { return shards_; }
  int64_t finished_ns() const { return finished_ns_; }
  uint64_t done() const { return done_.load(std::memory_order_relaxed); }
  uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }

 private:
  bool Active() const { return !phase_->stop.load(std::memory_order_relaxed); }
  void StartPhase();
  void ScanTimers(int64_t now);
  void HandleEvent(Connection& c, uint32_t events);
  void Connect(Connection& c);
  // TCP connected: starts TLS (with --tls) or goes straight to OnReady.
  void OnConnected(Connection& c);
  void StartTls(Connection& c);
  void Handshake(Connection& c);
  void OnReady(Connection& c);
  // With TLS, on a connection with nothing in flight: true while the server has sent nothing
  // but TLS housekeeping (session tickets), false once it closed or sent something else.
  bool TlsIdleIntact(Connection& c);
  // send/recv through TLS when on: > 0 bytes; 0 = would block (or, for Receive, end of
  // stream when `eof` is set); -1 = failed.
  ssize_t Send(Connection& c, const char* data, size_t size);
  ssize_t Receive(Connection& c, char* data, size_t size, bool& eof);
  void ConnectFailed(Connection& c, TransportError error);
  // Sends the next request if the phase wants one (in a paced phase, once a send slot is
  // free: until then `c` waits, kReady, in waiting_); else leaves `c` kReady.
  void TryIssue(Connection& c);
  // Sends the next request now if the phase wants one.
  void Issue(Connection& c);
  // Paced phase: gives the send slots that are due to the waiting connections, in order.
  void ReleaseWaiting(int64_t now);
  // Claims the next send slot (due by `now`), moving the schedule on by one slot.
  void TakeSlot(int64_t now) {
    next_slot_ns_ = std::max(next_slot_ns_, now - kCatchUpSlots * slot_ns_) + slot_ns_;
  }
  // epoll_wait for at most `wait_ns`; at nanosecond resolution when pacing.
  int Wait(epoll_event* events, int64_t wait_ns);
  bool TakeTicket(Op& op, uint64_t& key);
  void Write(Connection& c);
  void Read(Connection& c);
  // A complete response; `out_of_step` = the connection cannot carry another request.
  void OnResponse(Connection& c, bool out_of_step);
  void RequestFailed(Connection& c, TransportError error);
  void Close(Connection& c);
  // After a close: connect again now if the phase still sends, else at the next phase.
  void Reconnect(Connection& c);
  void CountError(TransportError error) {
    ++stats_.transport[static_cast<int>(error)];
    errors_.fetch_add(1, std::memory_order_relaxed);
  }

  const Options& options_;
  const RequestBuilder& builder_;
  const TlsClientContext* const tls_;  // null without --tls
  const int64_t timeout_ns_;
  const int64_t backoff_ns_;
  const int64_t slot_ns_;
  const std::vector<uint64_t>& key_set_;
  std::unique_ptr<char[]> read_buffer_;
  int epoll_fd_ = -1;
  std::vector<Connection> connections_;  // never resized after the first phase starts
  PhaseControl* phase_ = nullptr;
  Stats stats_;
  int in_flight_ = 0;
  int64_t finished_ns_ = 0;
  // Pacing of the current phase (load phases with --rate): the next send slot, and the ready
  // connections waiting for one as (index, generation), first come first served. An entry
  // whose connection was closed since (generation moved on) is skipped.
  bool paced_ = false;
  int64_t next_slot_ns_ = 0;
  std::deque<std::pair<uint32_t, uint32_t>> waiting_;
  bool nanosecond_wait_ = true;  // epoll_pwait2 works (Linux >= 5.11)
  // --only-shard: the shard-id of each key this loop preloaded (kept after the preload).
  std::vector<KeyShard> shards_;
  // Read by the progress reporter while the loop runs.
  alignas(64) std::atomic<uint64_t> done_{0};
  std::atomic<uint64_t> errors_{0};
};

void Worker::Run(PhaseControl& phase) {
  phase_ = &phase;
  stats_.Reset();
  done_.store(0, std::memory_order_relaxed);
  errors_.store(0, std::memory_order_relaxed);
  in_flight_ = 0;
  paced_ = slot_ns_ > 0 && phase.spec.kind == PhaseSpec::Kind::kLoad;
  // A timed wait ends up to the thread's timer slack (50 us by default) after its timeout:
  // at 50k req/s that is 2-3 slots, and a loop late by more than kCatchUpSlots loses the
  // rest, so a paced run fell short of its rate whenever the answers came slower than the
  // slots (forwarded GETs at 54k asked: 40k sent). Paced phases wait with 1 ns of slack.
  prctl(PR_SET_TIMERSLACK, paced_ ? 1UL : 0UL, 0UL, 0UL, 0UL);  // 0 = the default again
  next_slot_ns_ = NowNs();
  waiting_.clear();
  if (phase.spec.kind == PhaseSpec::Kind::kPreload) shards_.clear();
  StartPhase();

  epoll_event events[kMaxEvents];
  int64_t next_scan = NowNs() + kScanPeriodNs;
  while (true) {
    int64_t now = NowNs();
    if (Active() && phase.end_ns != 0 && now >= phase.end_ns) {
      phase.stop.store(true, std::memory_order_relaxed);
    }
    if (!Active() && in_flight_ == 0) break;
    if (now >= next_scan) {
      ScanTimers(now);
      next_scan = now + kScanPeriodNs;
      continue;  // a timed-out request may have been the last in flight
    }
    if (!waiting_.empty() && Active() && now >= next_slot_ns_) {
      ReleaseWaiting(now);
      continue;
    }
    int64_t wake_ns = next_scan;
    if (Active() && phase.end_ns != 0) wake_ns = std::min(wake_ns, phase.end_ns);
    if (Active() && !waiting_.empty()) wake_ns = std::min(wake_ns, next_slot_ns_);
    const int n = Wait(events, wake_ns - now);
    for (int i = 0; i < n; ++i) {
      const uint64_t data = events[i].data.u64;
      Connection& c = connections_[static_cast<uint32_t>(data >> 32)];
      if (static_cast<uint32_t>(data) != c.generation || c.fd < 0) continue;  // stale
      HandleEvent(c, events[i].events);
    }
  }
  finished_ns_ = NowNs();
  phase_ = nullptr;
}

int Worker::Wait(epoll_event* events, int64_t wait_ns) {
  wait_ns = std::max<int64_t>(wait_ns, 0);
  // Slots can be far closer than a millisecond: epoll_wait's timeout would round each wait up
  // to the next millisecond and cap the rate at what the catch-up allows.
  if (paced_ && nanosecond_wait_) {
    const timespec timeout{static_cast<time_t>(wait_ns / 1'000'000'000),
                           static_cast<long>(wait_ns % 1'000'000'000)};
    const int n = epoll_pwait2(epoll_fd_, events, kMaxEvents, &timeout, nullptr);
    if (n >= 0 || errno != ENOSYS) return n;
    nanosecond_wait_ = false;  // an older kernel: milliseconds it is
  }
  return epoll_wait(epoll_fd_, events, kMaxEvents,
                    static_cast<int>((wait_ns + kNanosPerMilli - 1) / kNanosPerMilli));
}

void Worker::StartPhase() {
  for (Connection& c : connections_) {
    if (c.state == Connection::State::kReady) {
      // The server may have closed the idle connection between phases: find out before
      // sending on it, so that is a reconnect and not a failed request.
      char byte;
      const ssize_t n = c.ssl != nullptr ? (TlsIdleIntact(c) ? -1 : 0)
                                         : ::recv(c.fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n == 0 || (n < 0 && c.ssl == nullptr && errno != EAGAIN && errno != EWOULDBLOCK)) {
        Close(c);
        Connect(c);
        continue;
      }
      TryIssue(c);
    } else if (c.state == Connection::State::kIdle) {
      Connect(c);
    }
  }
}

void Worker::ScanTimers(int64_t now) {
  bool alive = false;
  for (Connection& c : connections_) {
    switch (c.state) {
      case Connection::State::kConnecting:
      case Connection::State::kHandshaking:
        if (now >= c.deadline_ns) ConnectFailed(c, TransportError::kConnectTimeout);
        break;
      case Connection::State::kBackoff:
        if (now >= c.deadline_ns) {
          c.state = Connection::State::kIdle;
          if (Active()) Connect(c);
        }
        break;
      case Connection::State::kWriting:
      case Connection::State::kReading:
        if (now >= c.deadline_ns) RequestFailed(c, TransportError::kTimeout);
        break;
      case Connection::State::kReady:
      case Connection::State::kIdle:
        break;
    }
    alive = alive || c.state == Connection::State::kReady ||
            c.state == Connection::State::kWriting || c.state == Connection::State::kReading;
  }
  if (alive) {
    phase_->last_alive_ns.store(now, std::memory_order_relaxed);
  } else if (phase_->end_ns == 0 && Active() &&
             now - phase_->last_alive_ns.load(std::memory_order_relaxed) > timeout_ns_) {
    // Without a time limit nothing else would end this phase: give up.
    phase_->stalled.store(true, std::memory_order_relaxed);
    phase_->stop.store(true, std::memory_order_relaxed);
  }
}

void Worker::HandleEvent(Connection& c, uint32_t events) {
  switch (c.state) {
    case Connection::State::kConnecting: {
      if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
      int error = 0;
      socklen_t length = sizeof(error);
      if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
      if (error != 0) {
        ConnectFailed(c, TransportError::kConnect);
      } else {
        OnConnected(c);
      }
      return;
    }
    case Connection::State::kHandshaking:
      Handshake(c);
      return;
    case Connection::State::kWriting:
      if (events & (EPOLLIN | EPOLLRDHUP)) c.read_pending = true;
      Write(c);
      return;
    case Connection::State::kReading:
      if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) Read(c);
      return;
    case Connection::State::kReady:
      if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        // TLS 1.3 servers send session tickets after the handshake: not a close.
        if (c.ssl != nullptr && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) == 0 &&
            TlsIdleIntact(c)) {
          return;
        }
        // Closed (or, against the protocol, talked to) while idle: start afresh.
        Close(c);
        Reconnect(c);
      }
      return;
    case Connection::State::kIdle:
    case Connection::State::kBackoff:
      return;
  }
}

void Worker::Connect(Connection& c) {
  const ResolvedTarget& target = *c.target;
  c.fd = ::socket(target.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    ConnectFailed(c, TransportError::kConnect);
    return;
  }
  const int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  epoll_event event{};
  event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  event.data.u64 = (static_cast<uint64_t>(c.index) << 32) | c.generation;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c.fd, &event) != 0) {
    ConnectFailed(c, TransportError::kConnect);
    return;
  }
  const int rc =
      ::connect(c.fd, reinterpret_cast<const sockaddr*>(&target.address), target.address_length);
  if (rc == 0) {
    OnConnected(c);
  } else if (errno == EINPROGRESS) {
    c.state = Connection::State::kConnecting;
    c.deadline_ns = NowNs() + timeout_ns_;
  } else {
    ConnectFailed(c, TransportError::kConnect);
  }
}

void Worker::OnConnected(Connection& c) {
  if (tls_ != nullptr) {
    StartTls(c);
  } else {
    OnReady(c);
  }
}

void Worker::StartTls(Connection& c) {
  ERR_clear_error();
  c.ssl = SSL_new(tls_->get());
  if (c.ssl == nullptr || SSL_set_fd(c.ssl, c.fd) != 1) {
    if (stats_.tls_error.empty()) stats_.tls_error = OpenSslErrors("cannot start TLS");
    ConnectFailed(c, TransportError::kTls);
    return;
  }
  const ResolvedTarget& target = *c.target;
  if (!target.host_is_address) SSL_set_tlsext_host_name(c.ssl, target.host.c_str());
  if (options_.tls_verify_name) {
    X509_VERIFY_PARAM* param = SSL_get0_param(c.ssl);
    if (target.host_is_address) {
      X509_VERIFY_PARAM_set1_ip_asc(param, target.host.c_str());
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      SSL_set1_host(c.ssl, target.host.c_str());
    }
  }
  SSL_set_connect_state(c.ssl);
  if (c.state != Connection::State::kConnecting) c.deadline_ns = NowNs() + timeout_ns_;
  c.state = Connection::State::kHandshaking;
  Handshake(c);
}

void Worker::Handshake(Connection& c) {
  ERR_clear_error();
  const int rc = SSL_do_handshake(c.ssl);
  if (rc == 1) {
    OnReady(c);
    return;
  }
  const int error = SSL_get_error(c.ssl, rc);
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return;  // epoll calls again
  if (stats_.tls_error.empty()) {
    const long verify = SSL_get_verify_result(c.ssl);
    stats_.tls_error =
        verify != X509_V_OK
            ? std::string("certificate rejected: ") + X509_verify_cert_error_string(verify)
            : OpenSslErrors(error == SSL_ERROR_SYSCALL || error == SSL_ERROR_ZERO_RETURN
                                ? "the server closed the connection in the handshake"
                                : "handshake failed");
  }
  ConnectFailed(c, TransportError::kTls);
}

bool Worker::TlsIdleIntact(Connection& c) {
  ERR_clear_error();
  const int n = SSL_read(c.ssl, read_buffer_.get(), 1);
  if (n > 0) return false;  // a response nobody asked for: out of step
  const int error = SSL_get_error(c.ssl, n);
  return error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE;
}

ssize_t Worker::Send(Connection& c, const char* data, size_t size) {
  if (c.ssl == nullptr) {
    while (true) {
      const ssize_t n = ::send(c.fd, data, size, MSG_NOSIGNAL);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
  }
  ERR_clear_error();
  const int n = SSL_write(c.ssl, data, static_cast<int>(std::min<size_t>(size, 1 << 30)));
  if (n > 0) return n;
  const int error = SSL_get_error(c.ssl, n);
  return error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ ? 0 : -1;
}

ssize_t Worker::Receive(Connection& c, char* data, size_t size, bool& eof) {
  eof = false;
  if (c.ssl == nullptr) {
    while (true) {
      const ssize_t n = ::recv(c.fd, data, size, 0);
      if (n > 0) return n;
      if (n == 0) {
        eof = true;
        return 0;
      }
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
  }
  ERR_clear_error();
  const int n = SSL_read(c.ssl, data, static_cast<int>(std::min<size_t>(size, 1 << 30)));
  if (n > 0) return n;
  const int error = SSL_get_error(c.ssl, n);
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return 0;
  if (error == SSL_ERROR_ZERO_RETURN) {  // close_notify, or a bare EOF (IGNORE_UNEXPECTED_EOF)
    eof = true;
    return 0;
  }
  return -1;
}

void Worker::OnReady(Connection& c) {
  if (c.ever_connected) ++stats_.reconnects;
  c.ever_connected = true;
  c.state = Connection::State::kReady;
  TryIssue(c);
}

void Worker::ConnectFailed(Connection& c, TransportError error) {
  CountError(error);
  Close(c);
  c.state = Connection::State::kBackoff;
  c.deadline_ns = NowNs() + backoff_ns_;
}

bool Worker::TakeTicket(Op& op, uint64_t& key) {
  PhaseControl& phase = *phase_;
  if (!Active()) return false;
  op = Op::kGet;  // raw: always GET --path; a kLoad of kvs/etcd draws from the mix instead
  key = 0;
  if (phase.ticket_limit == 0) return true;
  const uint64_t ticket = phase.tickets.fetch_add(1, std::memory_order_relaxed);
  // Taking the last ticket ends the phase at once, so nothing reconnects for nothing.
  if (ticket + 1 >= phase.ticket_limit) phase.stop.store(true, std::memory_order_relaxed);
  if (ticket >= phase.ticket_limit) return false;
  if (phase.spec.kind == PhaseSpec::Kind::kPreload) {
    op = Op::kPut;
    key = ticket;
  }
  return true;
}

void Worker::TryIssue(Connection& c) {
  if (!Active()) return;
  if (paced_) {
    const int64_t now = NowNs();
    // Behind others already waiting, or before the next slot: wait (the loop's epoll timeout
    // wakes it for the slot; ReleaseWaiting sends).
    if (!waiting_.empty() || now < next_slot_ns_) {
      waiting_.emplace_back(c.index, c.generation);
      return;
    }
    TakeSlot(now);
  }
  Issue(c);
}

void Worker::ReleaseWaiting(int64_t now) {
  while (!waiting_.empty() && now >= next_slot_ns_ && Active()) {
    const auto [index, generation] = waiting_.front();
    waiting_.pop_front();
    Connection& c = connections_[index];
    // Closed since it queued (a reconnect queues it again under its new generation).
    if (c.generation != generation || c.state != Connection::State::kReady) continue;
    TakeSlot(now);
    Issue(c);
  }
}

void Worker::Issue(Connection& c) {
  Op op;
  uint64_t key;
  if (!TakeTicket(op, key)) return;
  if (phase_->spec.kind == PhaseSpec::Kind::kLoad && options_.protocol != Protocol::kRaw) {
    const Mix& mix = options_.mix;
    const int pick = static_cast<int>(c.rng.Below(static_cast<uint64_t>(mix.Total())));
    op = pick < mix.get ? Op::kGet : pick < mix.get + mix.put ? Op::kPut : Op::kDelete;
    key = key_set_.empty() ? c.rng.Below(options_.keys) : key_set_[c.rng.Below(key_set_.size())];
  }
  c.op = op;
  c.key = key;
  builder_.Build(op, key, c.target->host_header, c.metadata, c.out);
  // --only-shard reads the shard-id out of the preload's answers.
  c.parser.Reset(builder_.WantsBody(op) ||
                 (options_.only_shard >= 0 && phase_->spec.kind == PhaseSpec::Kind::kPreload));
  c.out_offset = 0;
  c.read_pending = false;
  c.state = Connection::State::kWriting;
  c.sent_ns = NowNs();
  c.deadline_ns = c.sent_ns + timeout_ns_;
  ++in_flight_;
  Write(c);
}

void Worker::Write(Connection& c) {
  while (c.out_offset < c.out.size()) {
    const ssize_t n = Send(c, c.out.data() + c.out_offset, c.out.size() - c.out_offset);
    if (n > 0) {
      c.out_offset += static_cast<size_t>(n);
      stats_.bytes_sent += static_cast<uint64_t>(n);
    } else if (n == 0) {
      return;  // EPOLLOUT (or, for TLS, EPOLLIN) will call again
    } else {
      RequestFailed(c, TransportError::kReset);
      return;
    }
  }
  c.state = Connection::State::kReading;
  if (c.read_pending) {
    c.read_pending = false;
    Read(c);
  }
}

void Worker::Read(Connection& c) {
  while (true) {
    bool eof = false;
    const ssize_t n = Receive(c, read_buffer_.get(), kReadBufferSize, eof);
    if (n > 0) {
      stats_.bytes_received += static_cast<uint64_t>(n);
      size_t consumed = 0;
      const auto result =
          c.parser.Feed(std::string_view(read_buffer_.get(), static_cast<size_t>(n)), consumed);
      if (result == net::ResponseParser::Result::kError) {
        RequestFailed(c, TransportError::kProtocol);
        return;
      }
      if (result == net::ResponseParser::Result::kComplete) {
        // Bytes past the response cannot belong to anything (one request in flight): the
        // connection is out of step, so it is replaced after this response.
        OnResponse(c, /*out_of_step=*/consumed != static_cast<size_t>(n) ||
                          (c.ssl != nullptr && SSL_pending(c.ssl) > 0));
        return;
      }
    } else if (eof) {
      if (c.parser.FinishOnEof() == net::ResponseParser::Result::kComplete) {
        OnResponse(c, /*out_of_step=*/true);  // a body delimited by the close
      } else {
        RequestFailed(c, TransportError::kClosed);
      }
      return;
    } else if (n == 0) {
      return;  // would block: epoll calls again
    } else {
      RequestFailed(c, TransportError::kReset);
      return;
    }
  }
}

void Worker::OnResponse(Connection& c, bool out_of_step) {
  const int64_t now = NowNs();
  const int64_t micros = (now - c.sent_ns + 500) / 1000;
  const int op = static_cast<int>(c.op);
  stats_.latency.Record(micros);
  stats_.op_latency[op].Record(micros);
  ++stats_.op_responses[op];
  const int status = c.parser.status();
  ++stats_.status[status < Stats::kMaxStatus ? status : 0];
  switch (Classify(options_.protocol, c.op, status, c.parser.body())) {
    case Outcome::kOk:
      ++stats_.ok;
      break;
    case Outcome::kNotFound:
      ++stats_.not_found;
      break;
    case Outcome::kHttpError:
      ++stats_.http_errors;
      errors_.fetch_add(1, std::memory_order_relaxed);
      break;
  }
  if (options_.causal) {
    if (const auto metadata = ExtractCausalMetadata(c.parser.body())) {
      c.metadata.assign(metadata->data(), metadata->size());
    }
  }
  if (options_.only_shard >= 0 && phase_->spec.kind == PhaseSpec::Kind::kPreload &&
      (status == 200 || status == 201)) {
    if (const auto shard = ExtractShardId(c.parser.body())) shards_.push_back({c.key, *shard});
  }
  --in_flight_;
  done_.fetch_add(1, std::memory_order_relaxed);
  if (out_of_step || !c.parser.keep_alive()) {
    Close(c);
    Reconnect(c);
    return;
  }
  c.state = Connection::State::kReady;
  TryIssue(c);
}

void Worker::RequestFailed(Connection& c, TransportError error) {
  CountError(error);
  --in_flight_;
  done_.fetch_add(1, std::memory_order_relaxed);
  Close(c);
  Reconnect(c);
}

void Worker::Close(Connection& c) {
  // No close_notify: the close ends the stream for kvs as for any server that, like kvs,
  // accepts a bare EOF (nothing would wait for the server's reply to it anyway).
  if (c.ssl != nullptr) SSL_free(c.ssl);
  c.ssl = nullptr;
  if (c.fd >= 0) ::close(c.fd);  // also takes it out of the epoll set
  c.fd = -1;
  ++c.generation;
  c.read_pending = false;
  c.state = Connection::State::kIdle;
}

void Worker::Reconnect(Connection& c) {
  if (Active()) Connect(c);
}

Engine::Engine(const Options& options) : options_(options), builder_(options_) {}

Engine::~Engine() = default;

std::unique_ptr<Engine> Engine::Create(const Options& options, std::string& error) {
  std::unique_ptr<Engine> engine(new Engine(options));
  for (const Target& target : options.targets) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(target.port);
    const int rc = getaddrinfo(target.host.c_str(), port.c_str(), &hints, &found);
    if (rc != 0 || found == nullptr) {
      error = "cannot resolve " + target.host + ": " + gai_strerror(rc);
      return nullptr;
    }
    ResolvedTarget resolved;
    std::memcpy(&resolved.address, found->ai_addr, found->ai_addrlen);
    resolved.address_length = found->ai_addrlen;
    resolved.family = found->ai_family;
    resolved.host_header = target.ToString();
    resolved.host = target.host;
    in6_addr parsed;
    resolved.host_is_address = ::inet_pton(AF_INET, target.host.c_str(), &parsed) == 1 ||
                               ::inet_pton(AF_INET6, target.host.c_str(), &parsed) == 1;
    freeaddrinfo(found);
    engine->targets_.push_back(std::move(resolved));
  }
  if (options.tls) {
    engine->tls_ = TlsClientContext::Create(options, error);
    if (engine->tls_ == nullptr) return nullptr;
    // SSL_write on a socket the server closed would raise SIGPIPE (OpenSSL's socket BIO has
    // no MSG_NOSIGNAL); a load generator must see that as a failed request, not die of it.
    std::signal(SIGPIPE, SIG_IGN);
  }
  const int threads = std::min(options.threads, options.connections);
  // --rate: each loop sends rate / threads per second, one slot every threads / rate seconds.
  const int64_t slot_ns =
      options.rate > 0 ? std::max<int64_t>(1, std::llround(threads * 1e9 / options.rate)) : 0;
  for (int i = 0; i < threads; ++i) {
    engine->workers_.push_back(std::make_unique<Worker>(
        engine->options_, engine->builder_, engine->tls_.get(), slot_ns, engine->key_set_));
    if (!engine->workers_.back()->Init(error)) return nullptr;
  }
  for (int i = 0; i < options.connections; ++i) {
    const ResolvedTarget* target = &engine->targets_[i % engine->targets_.size()];
    const uint64_t seed = options.seed ^ (0xD1B54A32D192ED03ull * (static_cast<uint64_t>(i) + 1));
    engine->workers_[i % threads]->AddConnection(target, seed);
  }
  return engine;
}

std::vector<KeyShard> Engine::PreloadShards() const {
  std::vector<KeyShard> all;
  for (const auto& worker : workers_) {
    all.insert(all.end(), worker->shards().begin(), worker->shards().end());
  }
  return all;
}

std::vector<uint64_t> KeysOfShard(const std::vector<KeyShard>& shards, int shard) {
  std::vector<uint64_t> keys;
  for (const KeyShard& entry : shards) {
    if (entry.shard == shard) keys.push_back(entry.key);
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

PhaseResult Engine::RunPhase(const PhaseSpec& spec, std::ostream* progress) {
  PhaseControl phase;
  phase.spec = spec;
  phase.start_ns = NowNs();
  phase.last_alive_ns.store(phase.start_ns);
  if (spec.duration_s > 0) {
    phase.end_ns = phase.start_ns + static_cast<int64_t>(spec.duration_s * 1e9);
  }
  phase.ticket_limit = spec.kind == PhaseSpec::Kind::kPreload ? options_.keys : spec.max_requests;

  std::mutex mutex;
  std::condition_variable all_done;
  size_t finished = 0;
  std::vector<std::thread> threads;
  for (auto& worker : workers_) {
    threads.emplace_back([&, w = worker.get()] {
      w->Run(phase);
      std::lock_guard lock(mutex);
      ++finished;
      all_done.notify_one();
    });
  }

  // Progress: one line per second until every loop has stopped.
  {
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    auto next = start + std::chrono::seconds(1);
    uint64_t last_done = 0;
    auto last_time = start;
    std::unique_lock lock(mutex);
    while (!all_done.wait_until(lock, next, [&] { return finished == workers_.size(); })) {
      uint64_t done = 0;
      uint64_t errors = 0;
      for (const auto& worker : workers_) {
        done += worker->done();
        errors += worker->errors();
      }
      const auto now = Clock::now();
      const double interval = std::chrono::duration<double>(now - last_time).count();
      if (progress != nullptr) {
        char line[160];
        std::snprintf(line, sizeof(line), "%-8s %6.1f s %10.0f req/s   errors %llu\n",
                      spec.name.c_str(), std::chrono::duration<double>(now - start).count(),
                      interval > 0 ? static_cast<double>(done - last_done) / interval : 0.0,
                      static_cast<unsigned long long>(errors));
        *progress << line << std::flush;
      }
      last_done = done;
      last_time = now;
      next += std::chrono::seconds(1);
    }
  }
  for (auto& thread : threads) thread.join();

  PhaseResult result;
  int64_t end_ns = phase.start_ns;
  for (const auto& worker : workers_) {
    result.stats.Merge(worker->stats());
    end_ns = std::max(end_ns, worker->finished_ns());
  }
  result.elapsed_s = static_cast<double>(end_ns - phase.start_ns) / 1e9;
  result.stalled = phase.stalled.load();
  return result;
}

}  // namespace kvs::bench
