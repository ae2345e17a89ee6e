#include "raw_connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>
#include <utility>

#include "server_process.h"

namespace kvs::http_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

int Remaining(steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

// `what`, then OpenSSL's queued errors (cleared) and a failed certificate check's reason.
std::string TlsError(const std::string& what, SSL* ssl) {
  std::string out = what;
  while (const unsigned long e = ERR_get_error()) {
    char reason[256];
    ERR_error_string_n(e, reason, sizeof reason);
    out += std::string(": ") + reason;
  }
  if (ssl != nullptr && SSL_get_verify_result(ssl) != X509_V_OK) {
    out += std::string(" (") + X509_verify_cert_error_string(SSL_get_verify_result(ssl)) + ")";
  }
  return out;
}

// The client side of the secure suite: servers must present a certificate of its CA. Made once
// per process, on first use.
struct ClientContext {
  explicit ClientContext(const std::string& ca) {
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == nullptr) {
      error = TlsError("SSL_CTX_new", nullptr);
      return;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr) != 1) {
      error = TlsError("loading the CA " + ca, nullptr);
    }
  }
  ~ClientContext() { SSL_CTX_free(ctx); }

  SSL_CTX* ctx = nullptr;
  std::string error;
};

const ClientContext& SuiteClientContext() {
  static const ClientContext context(SecureSuiteCa());
  return context;
}

}  // namespace

std::string RawResponse::Describe() const {
  return "status " + std::to_string(status) + (closed ? ", closed" : "") +
         (timed_out ? ", timed out" : "") + (error.empty() ? "" : ", " + error) + ", body " +
         body.substr(0, 200);
}

void RawConnection::SslFree::operator()(SSL* ssl) const { SSL_free(ssl); }

RawConnection::RawConnection(uint16_t port, const char* source_ip) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    error_ = std::string("socket: ") + std::strerror(errno);
    return;
  }
  if (source_ip != nullptr) {
    sockaddr_in source{};
    source.sin_family = AF_INET;
    source.sin_port = 0;
    ::inet_pton(AF_INET, source_ip, &source.sin_addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&source), sizeof source) != 0) {
      error_ = std::string("bind to ") + source_ip + ": " + std::strerror(errno);
      return;
    }
  }
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(port);
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&server), sizeof server) != 0) {
    if (errno != EINPROGRESS) {
      error_ = std::string("connect: ") + std::strerror(errno);
      return;
    }
    pollfd p{fd_, POLLOUT, 0};
    int so_error = 0;
    socklen_t len = sizeof so_error;
    if (::poll(&p, 1, static_cast<int>(kIoTimeout.count())) != 1 ||
        ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0 || so_error != 0) {
      error_ = std::string("connect: ") + (so_error != 0 ? std::strerror(so_error) : "timeout");
      return;
    }
  }
  connected_ = true;
  if (!SecureSuiteCa().empty()) StartTls();
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

void RawConnection::StartTls() {
  const ClientContext& context = SuiteClientContext();
  if (!context.error.empty()) {
    connected_ = false;
    error_ = context.error;
    return;
  }
  ssl_.reset(SSL_new(context.ctx));
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  if (ssl_ == nullptr || in == nullptr || out == nullptr) {
    BIO_free(in);
    BIO_free(out);
    connected_ = false;
    error_ = TlsError("SSL_new", nullptr);
    return;
  }
  SSL_set_bio(ssl_.get(), in, out);  // ssl_ owns both
  SSL_set_connect_state(ssl_.get());
  // The node's certificate names IP 127.0.0.1 (server_process.cc: MakeTestPki).
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), "127.0.0.1");

  const auto deadline = steady_clock::now() + kIoTimeout;
  while (true) {
    ERR_clear_error();
    const int r = SSL_connect(ssl_.get());
    const int result = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_.get(), r);
    if (result != SSL_ERROR_NONE && result != SSL_ERROR_WANT_READ) {
      // A TLS failure (an untrusted certificate, an alert from the server): a setup error.
      connected_ = false;
      error_ = TlsError("TLS handshake", ssl_.get());
      return;
    }
    // Whatever OpenSSL wrote (a ClientHello, a Finished) goes out before the next wait.
    if (!FlushTls(deadline)) {
      error_ = "TLS handshake: the server closed the connection";
      return;
    }
    if (result == SSL_ERROR_NONE) return;
    std::string ciphertext;
    std::string why;
    switch (ReceiveRaw(deadline, &ciphertext, &why)) {
      case ReceiveResult::kData:
        BIO_write(SSL_get_rbio(ssl_.get()), ciphertext.data(), static_cast<int>(ciphertext.size()));
        break;
      case ReceiveResult::kClosed:
        // E.g. a connection refused at the limit: the server closed it before any TLS byte.
        closed_ = true;
        error_ =
            "TLS handshake: the server closed the connection" + (why.empty() ? "" : ": " + why);
        return;
      case ReceiveResult::kTimeout:
        closed_ = true;
        error_ = "TLS handshake: timed out";
        return;
    }
  }
}

bool RawConnection::Send(std::string_view bytes) {
  const auto deadline = steady_clock::now() + kIoTimeout;
  if (ssl_ == nullptr) {
    if (!held_.empty() && !SendRaw(std::exchange(held_, {}), deadline)) return false;
    return SendRaw(bytes, deadline);
  }
  if (closed_) return false;
  if (!bytes.empty()) {
    // The write BIO is memory: the whole of `bytes` is taken at once (records of 16 KiB at most).
    ERR_clear_error();
    if (SSL_write(ssl_.get(), bytes.data(), static_cast<int>(bytes.size())) <= 0) {
      closed_ = true;
      error_ = TlsError("TLS write", ssl_.get());
      return false;
    }
  }
  return FlushTls(deadline);
}

bool RawConnection::SendStart(std::string_view bytes, size_t wire_bytes) {
  const auto deadline = steady_clock::now() + kIoTimeout;
  if (!held_.empty()) return false;  // one partial send at a time
  if (ssl_ == nullptr) {
    wire_bytes = std::min(wire_bytes, bytes.size());
    held_ = std::string(bytes.substr(wire_bytes));
    return SendRaw(bytes.substr(0, wire_bytes), deadline);
  }
  if (closed_ || !FlushTls(deadline)) return false;
  ERR_clear_error();
  if (SSL_write(ssl_.get(), bytes.data(), static_cast<int>(bytes.size())) <= 0) {
    closed_ = true;
    error_ = TlsError("TLS write", ssl_.get());
    return false;
  }
  char chunk[4096];
  int n = 0;
  std::string wire;
  while ((n = BIO_read(SSL_get_wbio(ssl_.get()), chunk, sizeof chunk)) > 0) {
    wire.append(chunk, static_cast<size_t>(n));
  }
  wire_bytes = std::min(wire_bytes, wire.size());
  held_ = wire.substr(wire_bytes);
  wire.resize(wire_bytes);
  if (!SendRaw(wire, deadline)) {
    closed_ = true;
    return false;
  }
  return true;
}

bool RawConnection::SendRest() { return Send({}); }

bool RawConnection::FlushTls(steady_clock::time_point deadline) {
  std::string wire = std::exchange(held_, {});
  char chunk[4096];
  int n = 0;
  while ((n = BIO_read(SSL_get_wbio(ssl_.get()), chunk, sizeof chunk)) > 0) {
    wire.append(chunk, static_cast<size_t>(n));
  }
  if (!wire.empty() && !SendRaw(wire, deadline)) {
    closed_ = true;
    return false;
  }
  return true;
}

bool RawConnection::SendRaw(std::string_view bytes, steady_clock::time_point deadline) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, Remaining(deadline)) != 1) return false;
      continue;
    }
    return false;
  }
  return true;
}

RawResponse RawConnection::Read(milliseconds timeout) {
  RawResponse out;
  const auto deadline = steady_clock::now() + timeout;
  while (true) {
    const size_t head_end = buffer_.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      const std::string head = buffer_.substr(0, head_end);
      const size_t length_at = head.find("Content-Length: ");
      const size_t length = length_at == std::string::npos
                                ? 0
                                : std::strtoul(head.c_str() + length_at + 16, nullptr, 10);
      if (buffer_.size() >= head_end + 4 + length) {
        out.status = std::atoi(head.c_str() + head.find(' ') + 1);
        out.body = buffer_.substr(head_end + 4, length);
        buffer_.erase(0, head_end + 4 + length);
        return out;
      }
    }
    switch (Receive(deadline, &out.error)) {
      case ReceiveResult::kData:
        break;
      case ReceiveResult::kClosed:
        out.closed = true;
        return out;
      case ReceiveResult::kTimeout:
        out.timed_out = true;
        return out;
    }
  }
}

RawResponse RawConnection::Exchange(std::string_view request, milliseconds timeout) {
  if (!Send(request)) {
    // A refused connection may already be reset when the request is written; what follows
    // says whether anything was answered.
    RawResponse answer = Read(milliseconds(0));
    if (answer.status == 0 && !answer.closed) answer.error = "send failed";
    if (answer.status == 0) answer.closed = true;
    return answer;
  }
  return Read(timeout);
}

bool RawConnection::WaitPeerHasReadAll(milliseconds timeout) {
  sockaddr_in local{}, peer{};
  socklen_t local_size = sizeof local, peer_size = sizeof peer;
  if (fd_ < 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &local_size) != 0 ||
      ::getpeername(fd_, reinterpret_cast<sockaddr*>(&peer), &peer_size) != 0) {
    return false;
  }
  const unsigned client_port = ntohs(local.sin_port), server_port = ntohs(peer.sin_port);
  const auto deadline = steady_clock::now() + timeout;
  while (true) {
    // "sl: local rem st tx_queue:rx_queue ..." with addresses as hex "ADDR:PORT": the server's
    // socket is the one whose local port is the server's and remote port is ours.
    std::ifstream tcp("/proc/net/tcp");
    std::string line;
    std::getline(tcp, line);  // header
    while (std::getline(tcp, line)) {
      unsigned local_port = 0, remote_port = 0, state = 0, tx = 0, rx = 0;
      if (std::sscanf(line.c_str(), " %*u: %*8X:%4X %*8X:%4X %2X %8X:%8X", &local_port,
                      &remote_port, &state, &tx, &rx) == 5 &&
          local_port == server_port && remote_port == client_port) {
        if (rx == 0) return true;
      }
    }
    if (steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
}

bool RawConnection::WaitClosed(milliseconds timeout) {
  std::string ignored;
  const auto deadline = steady_clock::now() + timeout;
  const size_t before = buffer_.size();
  const ReceiveResult r = Receive(deadline, &ignored);
  return r == ReceiveResult::kClosed && buffer_.size() == before;
}

RawConnection::ReceiveResult RawConnection::Receive(steady_clock::time_point deadline,
                                                    std::string* error) {
  if (ssl_ == nullptr) return ReceiveRaw(deadline, &buffer_, error);
  while (true) {
    if (closed_) {
      if (error->empty()) *error = error_;
      return ReceiveResult::kClosed;
    }
    // Plaintext OpenSSL already holds comes first: the socket is waited on only when a whole
    // record is missing.
    char chunk[4096];
    ERR_clear_error();
    const int n = SSL_read(ssl_.get(), chunk, sizeof chunk);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      return ReceiveResult::kData;
    }
    switch (SSL_get_error(ssl_.get(), n)) {
      case SSL_ERROR_WANT_READ:
        break;
      case SSL_ERROR_ZERO_RETURN:  // close_notify
        closed_ = true;
        continue;
      default:
        closed_ = true;
        error_ = TlsError("TLS read", ssl_.get());
        continue;
    }
    // A record may have asked for an answer (a key update): it goes out first.
    if (!FlushTls(deadline)) continue;
    std::string ciphertext;
    const ReceiveResult r = ReceiveRaw(deadline, &ciphertext, error);
    if (r == ReceiveResult::kTimeout) return r;
    if (r == ReceiveResult::kClosed) {
      // Without close_notify (the server closes evicted and refused connections at once): the
      // same "closed" as a plain connection's end of stream.
      closed_ = true;
      return r;
    }
    BIO_write(SSL_get_rbio(ssl_.get()), ciphertext.data(), static_cast<int>(ciphertext.size()));
  }
}

RawConnection::ReceiveResult RawConnection::ReceiveRaw(steady_clock::time_point deadline,
                                                       std::string* into, std::string* error) {
  while (true) {
    char chunk[4096];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      into->append(chunk, static_cast<size_t>(n));
      return ReceiveResult::kData;
    }
    if (n == 0) return ReceiveResult::kClosed;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      *error = std::strerror(errno);  // e.g. a reset
      return ReceiveResult::kClosed;
    }
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, Remaining(deadline));
    if (ready == 0) return ReceiveResult::kTimeout;
    if (ready < 0 && errno != EINTR) {
      *error = std::string("poll: ") + std::strerror(errno);
      return ReceiveResult::kClosed;
    }
  }
}

}  // namespace kvs::http_test
