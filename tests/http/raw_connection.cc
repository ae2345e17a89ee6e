#include "raw_connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace kvs::http_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

int Remaining(steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

}  // namespace

std::string RawResponse::Describe() const {
  return "status " + std::to_string(status) + (closed ? ", closed" : "") +
         (timed_out ? ", timed out" : "") + (error.empty() ? "" : ", " + error) + ", body " +
         body.substr(0, 200);
}

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
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConnection::Send(std::string_view bytes) {
  const auto deadline = steady_clock::now() + kIoTimeout;
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

bool RawConnection::WaitClosed(milliseconds timeout) {
  std::string ignored;
  const auto deadline = steady_clock::now() + timeout;
  const size_t before = buffer_.size();
  const ReceiveResult r = Receive(deadline, &ignored);
  return r == ReceiveResult::kClosed && buffer_.size() == before;
}

RawConnection::ReceiveResult RawConnection::Receive(steady_clock::time_point deadline,
                                                    std::string* error) {
  while (true) {
    char chunk[4096];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
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
