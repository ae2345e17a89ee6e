#include "test_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace kvs::bench::testing {
namespace {

bool SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

size_t ContentLength(const std::string& head) {
  std::string lower = head;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const size_t at = lower.find("\r\ncontent-length:");
  if (at == std::string::npos) return 0;
  return std::stoul(lower.substr(at + 17));
}

}  // namespace

const std::string& TestHttpServer::OkResponse() {
  static const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  return kOk;
}

TestHttpServer::TestHttpServer(Mode mode, int close_every)
    : mode_(mode), close_every_(close_every) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      ::listen(listen_fd_, 128) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    throw std::runtime_error("test server cannot listen");
  }
  port_ = ntohs(address.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

TestHttpServer::~TestHttpServer() { Stop(); }

void TestHttpServer::Stop() {
  if (stopping_.exchange(true)) return;
  ::shutdown(listen_fd_, SHUT_RDWR);  // wakes accept()
  acceptor_.join();
  ::close(listen_fd_);
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);  // wakes recv() in Serve
    threads.swap(threads_);
  }
  for (auto& thread : threads) thread.join();
}

std::vector<std::string> TestHttpServer::Log() const {
  std::lock_guard lock(mutex_);
  return log_;
}

void TestHttpServer::AcceptLoop() {
  while (true) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_.load()) return;
      continue;
    }
    std::lock_guard lock(mutex_);
    if (stopping_.load()) {
      ::close(fd);
      return;
    }
    ++connections_;
    fds_.push_back(fd);
    threads_.emplace_back([this, fd] { Serve(fd); });
  }
}

void TestHttpServer::Serve(int fd) {
  std::string buffer;
  char chunk[16384];
  int answered = 0;
  std::string expected_metadata;  // what the client should echo: the last one we sent
  bool open = true;
  while (open) {
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) break;
    bytes_received_ += static_cast<uint64_t>(n);
    buffer.append(chunk, static_cast<size_t>(n));
    while (open) {
      const size_t head_end = buffer.find("\r\n\r\n");
      if (head_end == std::string::npos) break;
      const size_t body_length = ContentLength(buffer.substr(0, head_end + 2));
      if (buffer.size() < head_end + 4 + body_length) break;
      const std::string head = buffer.substr(0, head_end);
      const std::string body = buffer.substr(head_end + 4, body_length);
      buffer.erase(0, head_end + 4 + body_length);
      {
        std::lock_guard lock(mutex_);
        log_.push_back(head.substr(0, head.find(" HTTP/1.1")));
      }
      ++requests_;
      if (mode_ == Mode::kSilent) continue;
      ++answered;
      const bool close = close_every_ > 0 && answered % close_every_ == 0;
      std::string response;
      if (mode_ == Mode::kCausal) {
        if (body.find("\"causal-metadata\":\"" + expected_metadata + "\"") == std::string::npos) {
          ++metadata_mismatches_;
        }
        expected_metadata = "m\\\"" + std::to_string(answered);  // escaped quote inside
        const std::string answer =
            R"({"message":"ok","causal-metadata":")" + expected_metadata + R"(","value":"v"})";
        response = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                   std::to_string(answer.size()) + "\r\n\r\n" + answer;
      } else if (mode_ == Mode::kShards) {
        std::string answer = R"({"message":"ok"})";
        std::string status = "200 OK";
        if (head.starts_with("PUT ")) {
          const size_t digits = head.find("/key-value-store/key") + 20;
          const int shard = std::stoi(head.substr(digits)) % 2;
          answer = R"({"message":"Added successfully","causal-metadata":"","shard-id":)" +
                   std::to_string(shard) + "}";
          status = "201 Created";
        }
        response = "HTTP/1.1 " + status + "\r\nContent-Type: application/json\r\nContent-Length: " +
                   std::to_string(answer.size()) + "\r\n\r\n" + answer;
      } else if (close) {
        response = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
      } else {
        response = OkResponse();
      }
      if (!SendAll(fd, response)) open = false;
      bytes_sent_ += response.size();
      if (close) open = false;
    }
  }
  // Unlisted and closed under the lock: Stop() never shuts down a reused descriptor number.
  std::lock_guard lock(mutex_);
  fds_.erase(std::remove(fds_.begin(), fds_.end(), fd), fds_.end());
  ::close(fd);
}

}  // namespace kvs::bench::testing
