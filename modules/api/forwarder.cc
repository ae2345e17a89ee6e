#include "forwarder.h"

#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "kvs/cluster/address.h"
#include "kvs/net/resolver.h"
#include "kvs/net/tls.h"

namespace kvs::api {
namespace {

// Connections a loop keeps to one member before reads are pipelined. More only help while
// requests wait at the member (a dependency pull, a barrier): the member serves a connection's
// requests in order.
constexpr size_t kMaxConnectionsPerPeer = 4;
// A write is never queued behind another request (up to this many connections): held up at the
// member behind a read that waits, it could take effect long after its client gave up on it
// and moved on to later writes of the same key (a stale write resurrected). Sent on a
// connection of its own, it is applied (or waits for its dependencies) at once, as it was
// with the workers' client.
constexpr size_t kMaxConnectionsForWrites = 64;
// Reads queued for one member in one event batch share a connection (and so one send, and one
// read of the answers), up to this many on it: the member serves them in order, so one of them
// that waits there (a dependency pull) holds the others up, as pipelined reads always are.
constexpr size_t kMaxCoalescedReads = 8;
constexpr size_t kReadBufferBytes = 64 * 1024;
// At least this long for a TLS handshake once the connection is made.
constexpr std::chrono::milliseconds kHandshakeTime{1000};
// A named member's address is taken from the resolver's cache again after this long.
constexpr std::chrono::milliseconds kRecheckNamedMember{1000};

std::string ErrnoText(int error) { return std::strerror(error); }

net::CallFailure FailureOfErrno(int error) {
  return error == ECONNREFUSED ? net::CallFailure::kRefused : net::CallFailure::kOther;
}

// OpenSSL's reasons for the last failure on this thread (and the certificate check's verdict),
// for the 503 and the log.
std::string TlsErrorText(SSL* ssl) {
  std::string text;
  char line[256];
  while (const unsigned long code = ERR_get_error()) {
    ERR_error_string_n(code, line, sizeof line);
    if (!text.empty()) text += "; ";
    text += line;
  }
  const long verify = ssl != nullptr ? SSL_get_verify_result(ssl) : X509_V_OK;
  if (verify != X509_V_OK) {
    if (!text.empty()) text += "; ";
    text += "certificate: ";
    text += X509_verify_cert_error_string(verify);
  }
  return text.empty() ? "connection closed during the handshake" : text;
}

}  // namespace

struct Forwarder::Job {
  uint64_t token = 0;
  std::string line;  // "METHOD target HTTP/1.1\r\n"
  std::string rest;  // the other headers, the blank line and the body
  std::vector<std::string> members;
  bool is_read = false;  // GET: may be pipelined behind other requests
  std::chrono::milliseconds answer_timeout{0};
  size_t next = 0;           // index of the member being tried
  bool fresh_tried = false;  // the stale keep-alive retry was used on this member
  std::string last_error = "no member";
  net::CallFailure failure = net::CallFailure::kOther;
  Clock::time_point deadline;
};

struct Forwarder::PeerConn {
  ~PeerConn() {
    if (ssl != nullptr) SSL_free(ssl);
  }
  int fd = -1;  // -1 once closed (the object lives on until the next Flush)
  // With kvs.tls.*: every byte goes through `ssl`, once the handshake is done (`secured`).
  SSL* ssl = nullptr;
  bool secured = false;
  Member* member = nullptr;
  std::string name;
  uint64_t generation = 0;  // the member's address generation it was opened to
  bool connected = false;
  bool reused = false;  // answered before: a failure may just be the member closing it as idle
  std::string out;
  size_t out_sent = 0;
  bool dirty = false;
  std::deque<std::unique_ptr<Job>> jobs;  // sent or queued, answers come in this order
  net::ResponseParser parser;
  Clock::time_point connect_deadline;
  Clock::time_point idle_since;
};

Forwarder::Forwarder(int epoll_fd, ForwarderOptions options, Done done)
    : epoll_fd_(epoll_fd),
      options_(options),
      done_(std::move(done)),
      ssl_ctx_(options.tls != nullptr && options.tls->options().enabled()
                   ? options.tls->client()->sslContext()
                   : nullptr),
      read_buffer_(std::make_unique<char[]>(kReadBufferBytes)) {}

Forwarder::~Forwarder() {
  for (auto& [name, member] : members_) {
    for (auto& conn : member.conns) {
      if (conn->fd >= 0) ::close(conn->fd);
    }
  }
  for (auto& conn : graveyard_) {
    if (conn->fd >= 0) ::close(conn->fd);
  }
}

bool Forwarder::Addressable(const std::string& member) const {
  sockaddr_in address{};
  if (net::Resolver::ParseNumeric(member, address)) return true;
  if (options_.resolver == nullptr || !cluster::Address::Parse(member)) return false;
  options_.resolver->Lookup(member);  // resolving starts now, before the first request
  return true;
}

Forwarder::Member* Forwarder::MemberOf(const std::string& name, std::string* why) {
  auto it = members_.find(name);
  if (it != members_.end() && !it->second.named) return &it->second;
  if (it == members_.end()) {
    Member member;
    if (net::Resolver::ParseNumeric(name, member.address)) {
      member.host = name.substr(0, name.rfind(':'));
      return &members_.emplace(name, std::move(member)).first->second;
    }
    if (options_.resolver == nullptr) {
      if (why != nullptr) *why = "not a numeric IPv4 address";
      return nullptr;
    }
  }
  // A host name: its address comes from the resolver (rechecked every kRecheckNamedMember).
  const Clock::time_point now = Clock::now();
  if (it != members_.end() && it->second.address.sin_family == AF_INET &&
      now - it->second.checked < kRecheckNamedMember) {
    return &it->second;
  }
  const net::Resolver::Result result = options_.resolver->Lookup(name);
  if (it == members_.end()) {
    if (result.state != net::Resolver::State::kResolved) {
      if (why != nullptr) {
        *why = result.state == net::Resolver::State::kPending ? "its name is being resolved"
                                                              : result.error;
      }
      return nullptr;
    }
    Member member;
    member.host = name.substr(0, name.rfind(':'));
    member.named = true;
    it = members_.emplace(name, std::move(member)).first;
  }
  Member& member = it->second;
  member.checked = now;
  if (result.state != net::Resolver::State::kResolved) {
    // Forgotten until the name resolves again; its connections are closed as they idle.
    if (member.address.sin_family == AF_INET) ++member.generation;
    member.address = sockaddr_in{};
    if (why != nullptr) *why = result.error;
    return nullptr;
  }
  if (member.address.sin_addr.s_addr != result.address.sin_addr.s_addr ||
      member.address.sin_port != result.address.sin_port || member.address.sin_family != AF_INET) {
    member.address = result.address;
    ++member.generation;  // connections to the old address are no longer reused
  }
  return &member;
}

bool Forwarder::Reachable(const ForwardPlan& plan) {
  // Every member is looked at (not just up to the first without an address), so that every
  // name of the plan starts resolving at once.
  bool all = true;
  for (const std::string& member : plan.members) all = MemberOf(member) != nullptr && all;
  return all;
}

bool Forwarder::Resolving(const std::string& member) {
  if (options_.resolver == nullptr || MemberOf(member) != nullptr) return false;
  return options_.resolver->Lookup(member).state == net::Resolver::State::kPending;
}

void Forwarder::Start(uint64_t token, const Request& request, const ForwardPlan& plan) {
  auto job = std::make_unique<Job>();
  job->token = token;
  job->answer_timeout = options_.answer_timeout;
  job->line.reserve(request.method.size() + request.target.size() + 12);
  job->line.append(request.method).append(" ").append(request.target).append(" HTTP/1.1\r\n");
  job->rest.reserve(160 + request.body.size());
  job->rest.append("Content-Type: application/json\r\nContent-Length: ")
      .append(std::to_string(request.body.size()))
      .append("\r\n");
  for (const auto& [name, value] : plan.headers) {
    job->rest.append(name).append(": ").append(value).append("\r\n");
  }
  job->rest.append("\r\n").append(request.body);
  job->members = plan.members;
  job->is_read = request.method == "GET";
  if (plan.answer_timeout.count() > 0) job->answer_timeout = plan.answer_timeout;
  ++in_flight_;
  // Never answered from here: the caller is in the middle of handling its connection.
  Dispatch(std::move(job), /*fresh_connection=*/false);
}

void Forwarder::Dispatch(std::unique_ptr<Job> job, bool fresh_connection) {
  while (job->next < job->members.size()) {
    const std::string& name = job->members[job->next];
    std::string why;
    Member* member = MemberOf(name, &why);
    if (member == nullptr) {
      job->last_error = name + ": " + why;
      job->failure = net::CallFailure::kOther;
      ++job->next;
      continue;
    }
    PeerConn* conn = nullptr;
    if (!fresh_connection && job->is_read) {
      // A read joins the reads already queued for this member in this event batch (not yet
      // written): they leave in one write and their answers come back together.
      for (auto& c : member->conns) {
        if (c->dirty && c->connected && c->generation == member->generation &&
            c->jobs.size() < kMaxCoalescedReads &&
            std::all_of(c->jobs.begin(), c->jobs.end(), [](const auto& j) { return j->is_read; })) {
          conn = c.get();
          break;
        }
      }
    }
    if (!fresh_connection && conn == nullptr) {
      // An idle connection, else a new one, else the one with the fewest requests in flight.
      for (auto& c : member->conns) {
        if (c->connected && c->jobs.empty() && c->generation == member->generation) {
          conn = c.get();
          break;
        }
      }
      const size_t cap = job->is_read ? kMaxConnectionsPerPeer : kMaxConnectionsForWrites;
      if (conn == nullptr && member->conns.size() >= cap) {
        // The one with the fewest requests in flight, among those to the current address.
        for (auto& c : member->conns) {
          if (c->generation == member->generation &&
              (conn == nullptr || c->jobs.size() < conn->jobs.size())) {
            conn = c.get();
          }
        }
      }
    }
    if (conn == nullptr) conn = Open(*member, name, *job);
    if (conn != nullptr) {
      Queue(*conn, std::move(job));
      return;
    }
    ++job->next;  // Open said why in job->last_error
    fresh_connection = false;
    job->fresh_tried = false;
  }
  finished_.emplace_back(job->token, Outcome{0, {}, {}, std::move(job->last_error), job->failure});
  --in_flight_;
}

Forwarder::PeerConn* Forwarder::Open(Member& member, const std::string& name, Job& job) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    job.last_error = name + ": cannot open a socket: " + ErrnoText(errno);
    job.failure = net::CallFailure::kOther;
    return nullptr;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  bool connected = true;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&member.address), sizeof member.address) !=
      0) {
    if (errno != EINPROGRESS) {
      const int error = errno;
      ::close(fd);
      job.last_error = name + ": " + ErrnoText(error);
      job.failure = FailureOfErrno(error);
      if (member.named) options_.resolver->Refresh(name);  // it may have moved
      return nullptr;
    }
    connected = false;
  }
  auto conn = std::make_unique<PeerConn>();
  conn->fd = fd;
  conn->member = &member;
  conn->name = name;
  conn->generation = member.generation;
  conn->connected = connected;
  conn->connect_deadline = Clock::now() + options_.connect_timeout;
  conn->parser.Reset(/*capture_body=*/true);
  if (ssl_ctx_ != nullptr) {
    conn->ssl = SSL_new(ssl_ctx_);
    if (conn->ssl == nullptr || SSL_set_fd(conn->ssl, fd) != 1) {
      ::close(fd);
      job.last_error = name + ": TLS set-up failed: " + TlsErrorText(conn->ssl);
      job.failure = net::CallFailure::kTls;
      return nullptr;
    }
    SSL_set_connect_state(conn->ssl);
    // A member that closes without close_notify ends the stream, as on plain HTTP.
    SSL_set_options(conn->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
    // The chain must lead to kvs.tls.ca (loaded into the context); OpenSSL's own check, so a
    // failure ends the handshake. The certificate must name the address the member is reached
    // under (kvs.tls.verify_peer_name), as the workers' client requires: its IP address, or
    // for a named member its host name (also sent as SNI, as the workers' client does).
    SSL_set_verify(conn->ssl, SSL_VERIFY_PEER, nullptr);
    if (member.named) SSL_set_tlsext_host_name(conn->ssl, member.host.c_str());
    if (options_.tls->options().verify_peer_name) {
      if (member.named) {
        SSL_set1_host(conn->ssl, member.host.c_str());
      } else {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(conn->ssl), member.host.c_str());
      }
    }
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = reinterpret_cast<uint64_t>(conn.get()) | kTagBit;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    const int error = errno;
    ::close(fd);
    job.last_error = name + ": cannot watch the socket: " + ErrnoText(error);
    job.failure = net::CallFailure::kOther;
    return nullptr;
  }
  member.conns.push_back(std::move(conn));
  return member.conns.back().get();
}

void Forwarder::Queue(PeerConn& conn, std::unique_ptr<Job> job) {
  job->deadline = Clock::now() + job->answer_timeout;
  conn.out.append(job->line).append("Host: ").append(conn.name).append("\r\n").append(job->rest);
  conn.jobs.push_back(std::move(job));
  if (!conn.dirty) {
    conn.dirty = true;
    dirty_.push_back(&conn);
  }
}

void Forwarder::Flush() {
  do {
    // Fail() may queue requests on other connections (and so add to dirty_) meanwhile.
    for (size_t i = 0; i < dirty_.size(); ++i) {
      PeerConn& conn = *dirty_[i];
      conn.dirty = false;
      if (conn.fd >= 0 && conn.connected) Write(conn);
    }
    dirty_.clear();
    Deliver();  // the answers' handlers may forward more
  } while (!dirty_.empty());
  // No event of the last batch can name them any more.
  graveyard_.clear();
}

bool Forwarder::Handshake(PeerConn& conn) {
  ERR_clear_error();
  const int r = SSL_do_handshake(conn.ssl);
  if (r == 1) {
    conn.secured = true;
    return true;
  }
  const int error = SSL_get_error(conn.ssl, r);
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return true;
  const int saved_errno = errno;
  std::string why = TlsErrorText(conn.ssl);
  if (error == SSL_ERROR_SYSCALL && saved_errno != 0) why += " (" + ErrnoText(saved_errno) + ")";
  Fail(conn, "TLS handshake failed: " + why, net::CallFailure::kTls);
  return false;
}

bool Forwarder::Write(PeerConn& conn) {
  if (conn.ssl != nullptr && !conn.secured) {
    if (!Handshake(conn)) return false;
    if (!conn.secured) return true;  // the handshake goes on with the next events
  }
  while (conn.ssl != nullptr && conn.out_sent < conn.out.size()) {
    ERR_clear_error();
    const int n =
        SSL_write(conn.ssl, conn.out.data() + conn.out_sent,
                  static_cast<int>(std::min<size_t>(conn.out.size() - conn.out_sent, 1u << 30)));
    if (n > 0) {
      conn.out_sent += static_cast<size_t>(n);
      continue;
    }
    const int error = SSL_get_error(conn.ssl, n);
    if (error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ) return true;
    Fail(conn, "TLS write failed: " + TlsErrorText(conn.ssl), net::CallFailure::kTls);
    return false;
  }
  while (conn.out_sent < conn.out.size()) {
    const ssize_t n = ::send(conn.fd, conn.out.data() + conn.out_sent,
                             conn.out.size() - conn.out_sent, MSG_NOSIGNAL);
    if (n > 0) {
      conn.out_sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;  // EPOLLOUT follows
    const int error = errno;
    Fail(conn, "send failed: " + ErrnoText(error), FailureOfErrno(error));
    return false;
  }
  conn.out.clear();
  conn.out_sent = 0;
  return true;
}

void Forwarder::OnEvent(uint64_t tag, uint32_t events, Clock::time_point now) {
  PeerConn& conn = *reinterpret_cast<PeerConn*>(tag & ~kTagBit);
  if (conn.fd < 0) return;  // closed earlier in this batch
  if (!conn.connected) {
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
    int error = 0;
    socklen_t size = sizeof error;
    ::getsockopt(conn.fd, SOL_SOCKET, SO_ERROR, &error, &size);
    if (error != 0) {
      Fail(conn, "connect failed: " + ErrnoText(error), FailureOfErrno(error));
      Deliver();
      return;
    }
    conn.connected = true;
    // The handshake gets a deadline of its own (the member may be busy, not gone).
    conn.connect_deadline =
        now + std::max<Clock::duration>(options_.connect_timeout, kHandshakeTime);
  }
  if (conn.ssl != nullptr && !conn.secured) {
    if (!Handshake(conn)) {
      Deliver();
      return;
    }
    if (!conn.secured) return;  // waits for the member's next handshake bytes
  }
  if (conn.out_sent < conn.out.size() && !Write(conn)) {
    Deliver();
    return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) Read(conn);
  if (conn.fd >= 0 && conn.jobs.empty()) conn.idle_since = now;
  Deliver();
}

ssize_t Forwarder::Receive(PeerConn& conn) {
  if (conn.ssl == nullptr) {
    while (true) {
      const ssize_t n = ::recv(conn.fd, read_buffer_.get(), kReadBufferBytes, 0);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return kWouldBlock;
      const int error = errno;
      Fail(conn, "receive failed: " + ErrnoText(error), FailureOfErrno(error));
      return kFailed;
    }
  }
  ERR_clear_error();
  const int n = SSL_read(conn.ssl, read_buffer_.get(), static_cast<int>(kReadBufferBytes));
  if (n > 0) return n;
  const int error = SSL_get_error(conn.ssl, n);
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return kWouldBlock;
  // close_notify, or the connection closed without one: the end of the stream either way
  // (HTTP's framing tells a whole answer from a cut one).
  if (error == SSL_ERROR_ZERO_RETURN || (error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
    return 0;
  }
  Fail(conn, "TLS read failed: " + TlsErrorText(conn.ssl), net::CallFailure::kTls);
  return kFailed;
}

void Forwarder::Read(PeerConn& conn) {
  while (conn.fd >= 0) {
    const ssize_t n = Receive(conn);
    if (n == kWouldBlock || n == kFailed) return;
    if (n == 0) {
      if (conn.parser.FinishOnEof() == net::ResponseParser::Result::kComplete &&
          !conn.jobs.empty()) {
        Answered(conn);
      }
      ClosedByMember(conn);
      return;
    }
    std::string_view data(read_buffer_.get(), static_cast<size_t>(n));
    while (!data.empty()) {
      if (conn.jobs.empty()) {
        Fail(conn, "answer to no request", net::CallFailure::kOther);
        return;
      }
      size_t consumed = 0;
      const net::ResponseParser::Result result = conn.parser.Feed(data, consumed);
      data.remove_prefix(consumed);
      if (result == net::ResponseParser::Result::kError) {
        Fail(conn, "malformed answer: " + std::string(conn.parser.error()),
             net::CallFailure::kOther);
        return;
      }
      if (result != net::ResponseParser::Result::kComplete) break;
      const bool keep_alive = conn.parser.keep_alive();
      Answered(conn);
      if (!keep_alive) {
        ClosedByMember(conn);
        return;
      }
    }
    // A short plain read emptied the socket: the next arrival raises a new edge, so asking
    // again would only return EAGAIN (a system call per answer saved). OpenSSL returns one
    // record at a time, so with TLS the loop goes on until it would block.
    if (conn.ssl == nullptr && static_cast<size_t>(n) < kReadBufferBytes) return;
  }
}

void Forwarder::Answered(PeerConn& conn) {
  std::unique_ptr<Job> job = std::move(conn.jobs.front());
  conn.jobs.pop_front();
  finished_.emplace_back(job->token, Outcome{conn.parser.status(),
                                             std::string(conn.parser.body()),
                                             conn.name,
                                             {},
                                             net::CallFailure::kNone});
  --in_flight_;
  conn.reused = true;
  conn.parser.Reset(/*capture_body=*/true);
}

void Forwarder::ClosedByMember(PeerConn& conn) {
  if (conn.jobs.empty()) {
    Remove(conn);
  } else {
    Fail(conn, "connection closed by the member", net::CallFailure::kOther);
  }
}

void Forwarder::Fail(PeerConn& conn, std::string_view what, net::CallFailure failure) {
  std::deque<std::unique_ptr<Job>> jobs = std::move(conn.jobs);
  conn.jobs.clear();
  const bool answer_started = conn.parser.started();
  const bool reused = conn.reused;
  const std::string name = conn.name;
  if (!conn.connected && conn.member->named && options_.resolver != nullptr) {
    // A named member that cannot be reached may have come back under another address.
    options_.resolver->Refresh(name);
    conn.member->checked = {};
  }
  Remove(conn);
  for (size_t i = 0; i < jobs.size(); ++i) {
    std::unique_ptr<Job>& job = jobs[i];
    // A keep-alive connection the member closed while idle fails the requests written into it
    // before any byte of an answer: they go again on a fresh connection to the same member.
    const bool nothing_answered = !(i == 0 && answer_started);
    if (reused && nothing_answered && !job->fresh_tried && failure != net::CallFailure::kTimeout) {
      job->fresh_tried = true;
      Dispatch(std::move(job), /*fresh_connection=*/true);
      continue;
    }
    job->last_error = name + ": " + std::string(what);
    job->failure = failure;
    ++job->next;
    job->fresh_tried = false;
    Dispatch(std::move(job), /*fresh_connection=*/false);
  }
}

void Forwarder::Remove(PeerConn& conn) {
  if (conn.fd < 0) return;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, conn.fd, nullptr);
  ::close(conn.fd);
  conn.fd = -1;
  auto& conns = conn.member->conns;
  for (auto it = conns.begin(); it != conns.end(); ++it) {
    if (it->get() == &conn) {
      graveyard_.push_back(std::move(*it));
      conns.erase(it);
      break;
    }
  }
}

void Forwarder::Sweep(Clock::time_point now) {
  std::vector<std::pair<PeerConn*, bool>> expired;  // (connection, timed out with requests)
  for (auto& [name, member] : members_) {
    for (auto& conn : member.conns) {
      const bool setting_up = !conn->connected || (conn->ssl != nullptr && !conn->secured);
      if (setting_up && now >= conn->connect_deadline) {
        expired.emplace_back(conn.get(), true);
      } else if (!conn->jobs.empty() && now >= conn->jobs.front()->deadline) {
        expired.emplace_back(conn.get(), true);
      } else if (conn->jobs.empty() && (now - conn->idle_since >= options_.idle_timeout ||
                                        conn->generation != member.generation)) {
        expired.emplace_back(conn.get(), false);
      }
    }
  }
  for (auto& [conn, timed_out] : expired) {
    if (conn->fd < 0) continue;
    if (timed_out) {
      Fail(*conn,
           !conn->connected                         ? "connect timed out"
           : conn->ssl != nullptr && !conn->secured ? "TLS handshake timed out"
                                                    : "timed out",
           net::CallFailure::kTimeout);
    } else {
      Remove(*conn);
    }
  }
  Deliver();
}

void Forwarder::Deliver() {
  if (delivering_) return;
  delivering_ = true;
  while (!finished_.empty()) {
    std::vector<std::pair<uint64_t, Outcome>> batch;
    batch.swap(finished_);
    for (auto& [token, outcome] : batch) done_(token, std::move(outcome));
  }
  delivering_ = false;
}

}  // namespace kvs::api
