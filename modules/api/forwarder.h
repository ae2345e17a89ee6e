// The event loops' client for forwarded requests (issue 14): relays a request for another
// shard to one of its members over non-blocking keep-alive connections that the loop owns, with
// no thread hand-off. One Forwarder per event loop, used only by that loop's thread.
//
// - Connections per member are pooled; a read joins reads queued for the same member in the
//   same event batch (up to kMaxCoalescedReads on one connection), else a request goes to an
//   idle connection, else a new one (up to 4 per member and loop for reads, 64 for writes),
//   else it is pipelined behind the fewest requests in flight (answers come back in order).
//   Writes are not pipelined: see kMaxConnectionsForWrites. Requests queued in one event batch
//   leave in one write per connection (Flush, called before the loop waits for events).
// - Every attempt has a deadline (connect: connect_timeout; the answer: answer_timeout); Sweep
//   enforces them. On a transport failure (refused, reset, closed, timed out, malformed answer)
//   the request moves to the plan's next member, as the blocking path does; a reused keep-alive
//   connection that fails before any byte of its answer (the member closed it as idle) is first
//   retried once on a fresh connection to the same member.
// - Pooled connections idle for idle_timeout are closed (before the member's own keep-alive
//   timeout would race a request with its close).
// Members named by numeric IPv4 addresses are reached at once. A member named by a host name
// is reached here once options.resolver has its address (net::Resolver: a thread of its own
// resolves, the loop only reads the cache); until then, or when the name cannot be resolved,
// Reachable says no and the request keeps the worker path. Pooled connections follow a
// member's new address (idle ones to the old one are closed), and a connection to a named
// member that cannot be made asks the resolver to look the name up again. With kvs.tls.* the
// connections speak TLS (non-blocking OpenSSL handshakes, reads and writes on the loop; a
// named member's certificate must name its host name, an addressed one's its IP address).
#pragma once

#include <netinet/in.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kvs/api/service.h"
#include "kvs/net/http_response_parser.h"
#include "kvs/net/peer_client.h"

typedef struct ssl_ctx_st SSL_CTX;  // <openssl/ssl.h>

namespace kvs::net {
class Resolver;
class Tls;
}  // namespace kvs::net

namespace kvs::api {

struct ForwarderOptions {
  // With kvs.tls.* on (not owned): HTTPS to the members, with the node's client context (its
  // certificate presented, members checked against kvs.tls.ca and, with
  // kvs.tls.verify_peer_name, for their IP address), as the workers' client does.
  const net::Tls* tls = nullptr;
  std::chrono::milliseconds connect_timeout{500};
  std::chrono::milliseconds answer_timeout = Service::kForwardTimeout;
  std::chrono::milliseconds idle_timeout{2000};
  // Resolves members named by host names (not owned; shared by the loops). Null: only numeric
  // IPv4 members are reached.
  net::Resolver* resolver = nullptr;
};

class Forwarder {
 public:
  using Clock = std::chrono::steady_clock;
  // How a forwarded request ended: an answer (status != 0) from `member`, or, when every member
  // failed, status 0 with the last failure.
  struct Outcome {
    int status = 0;
    std::string body;
    std::string member;
    std::string error;  // "<member>: <what went wrong>" of the last attempt, when status == 0
    net::CallFailure failure = net::CallFailure::kNone;
  };
  // Called on the loop thread for every request started, once, from OnEvent, Sweep or
  // StartForward (never while the Forwarder is mid-update: it may start new requests).
  using Done = std::function<void(uint64_t token, Outcome outcome)>;
  // epoll user data of a peer connection has this bit set (the loop's own tags never do).
  static constexpr uint64_t kTagBit = 1;

  Forwarder(int epoll_fd, ForwarderOptions options, Done done);
  ~Forwarder();
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // Whether every member of `plan` can be reached without blocking (numeric IPv4 host:port,
  // or a name the resolver has an address for).
  bool Reachable(const ForwardPlan& plan);
  // Whether `member` is a numeric IPv4 "a.b.c.d:port", or (with a resolver) a "host:port"
  // that Start will be able to reach once the name is resolved (its lookup starts now).
  // Thread-safe.
  bool Addressable(const std::string& member) const;
  // Whether `member` is a name whose first lookup has yet to end (Start would fail it now).
  bool Resolving(const std::string& member);
  // Sends `request` (method, target, body: copied) with the plan's headers to its first member.
  // `token` comes back with the outcome.
  void Start(uint64_t token, const Request& request, const ForwardPlan& plan);
  // An epoll event whose user data has kTagBit set.
  void OnEvent(uint64_t tag, uint32_t events, Clock::time_point now);
  // Writes what was queued since the last call (one write per connection).
  void Flush();
  // Deadlines and idle connections.
  void Sweep(Clock::time_point now);
  // Requests in flight (not yet answered or failed).
  size_t in_flight() const { return in_flight_; }

 private:
  struct Job;
  struct PeerConn;
  struct Member {
    std::string host;
    sockaddr_in address{};
    std::vector<std::unique_ptr<PeerConn>> conns;
    bool named = false;           // a host name, resolved by options_.resolver
    Clock::time_point checked{};  // named: when the resolver was last asked
    uint64_t generation = 0;      // named: bumped when the address changes
  };

  // The member, with a current address; nullptr (and why, in `why`) if it has none now.
  Member* MemberOf(const std::string& member, std::string* why = nullptr);
  // Sends `job` to its current member (or fails it when none is left).
  void Dispatch(std::unique_ptr<Job> job, bool fresh_connection);
  // A new connection to `member`; nullptr (the reason in job.last_error) if it cannot be made.
  PeerConn* Open(Member& member, const std::string& name, Job& job);
  void Queue(PeerConn& conn, std::unique_ptr<Job> job);
  // Drives a TLS handshake; false when it failed (the connection is then failed too).
  bool Handshake(PeerConn& conn);
  bool Write(PeerConn& conn);
  // Reads into read_buffer_: bytes read, 0 at the end of the stream, kWouldBlock, or kFailed
  // (the connection was failed).
  static constexpr ssize_t kWouldBlock = -1;
  static constexpr ssize_t kFailed = -2;
  ssize_t Receive(PeerConn& conn);
  void Read(PeerConn& conn);
  // The answer at the front of the connection's pipeline is complete: hands it to its request.
  void Answered(PeerConn& conn);
  // The member ended the connection: closed, and any request still on it goes elsewhere.
  void ClosedByMember(PeerConn& conn);
  // Closes `conn`; its requests go to their next member (or a fresh connection, see above).
  void Fail(PeerConn& conn, std::string_view what, net::CallFailure failure);
  void Remove(PeerConn& conn);
  void Deliver();

  const int epoll_fd_;
  const ForwarderOptions options_;
  const Done done_;
  SSL_CTX* const ssl_ctx_;  // null: plain HTTP
  std::unordered_map<std::string, Member> members_;
  std::vector<PeerConn*> dirty_;  // with output queued since the last Flush
  // Closed since the last Flush: an event of the current batch may still name them.
  std::vector<std::unique_ptr<PeerConn>> graveyard_;
  std::vector<std::pair<uint64_t, Outcome>> finished_;
  bool delivering_ = false;
  size_t in_flight_ = 0;
  std::unique_ptr<char[]> read_buffer_;
};

}  // namespace kvs::api
