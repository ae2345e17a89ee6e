// kvs-probe: the health check of the FROM-scratch kvs image, which has no shell and no curl.
//
//   kvs-probe [PATH] [IP:PORT]
//
// Sends `GET PATH` (default /health/ready: 200 once the node serves its shard's data, 503
// before) to IP:PORT and exits 0 if the answer's status is 200, 1 otherwise (no answer,
// refused, another status, or no complete status line within 3 s). Without IP:PORT it asks
// the server of its own container: the port of SOCKET_ADDRESS (default 8080) on KVS_HTTP_BIND,
// or 127.0.0.1 when that is unset or 0.0.0.0. Numeric addresses only: no name resolution.
// Used by docker/Dockerfile's HEALTHCHECK and docker/compose.yaml's healthcheck, e.g.
//   docker exec node1 /usr/local/bin/kvs-probe /health
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

constexpr int kTimeoutSeconds = 3;

int Fail(const std::string& what) {
  std::fprintf(stderr, "kvs-probe: %s\n", what.c_str());
  return 1;
}

// The address to probe: argv's IP:PORT, or this container's own server.
bool Target(int argc, char** argv, std::string* ip, int* port) {
  std::string address;
  if (argc > 2) {
    address = argv[2];
  } else {
    const char* bind = std::getenv("KVS_HTTP_BIND");
    *ip = (bind != nullptr && *bind != '\0' && std::strcmp(bind, "0.0.0.0") != 0) ? bind
                                                                                  : "127.0.0.1";
    const char* self = std::getenv("SOCKET_ADDRESS");
    std::string s = self != nullptr ? self : "";
    const size_t colon = s.rfind(':');
    address = *ip + ":" + (colon == std::string::npos ? std::string("8080") : s.substr(colon + 1));
  }
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return false;
  *ip = address.substr(0, colon);
  char* end = nullptr;
  const long p = std::strtol(address.c_str() + colon + 1, &end, 10);
  if (end == address.c_str() + colon + 1 || *end != '\0' || p < 1 || p > 65535) return false;
  *port = static_cast<int>(p);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // Whatever hangs (connect included), the probe ends: SIGALRM's default action kills it.
  alarm(kTimeoutSeconds);
  const std::string path = argc > 1 ? argv[1] : "/health/ready";
  std::string ip;
  int port = 0;
  if (!Target(argc, argv, &ip, &port)) return Fail("bad address (want IP:PORT)");

  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1)
    return Fail("not an IPv4 address: " + ip);

  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return Fail(std::string("socket: ") + std::strerror(errno));
  timeval tv{};
  tv.tv_sec = kTimeoutSeconds;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const std::string where = ip + ":" + std::to_string(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Fail("connect " + where + ": " + std::strerror(errno));
  }

  const std::string request =
      "GET " + path + " HTTP/1.1\r\nHost: " + where + "\r\nConnection: close\r\n\r\n";
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return Fail("send to " + where + ": " + std::strerror(errno));
    sent += static_cast<size_t>(n);
  }

  // Only the status line matters: "HTTP/1.1 200 OK".
  std::string head;
  char buf[512];
  while (head.find("\r\n") == std::string::npos && head.size() < 4096) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    head.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  const std::string line = head.substr(0, head.find("\r\n"));
  if (line.rfind("HTTP/1.", 0) != 0 || line.size() < 12) {
    return Fail("GET " + path + " at " + where + ": no status line");
  }
  if (line.compare(9, 3, "200") != 0) return Fail("GET " + path + " at " + where + ": " + line);
  return 0;
}
