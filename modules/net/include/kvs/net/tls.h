// TLS for client and node-to-node traffic (kvs.tls.*): one server context (the epoll front end
// drives OpenSSL on it directly; the POCO front end wraps it in a SecureServerSocket) and one
// client context (node-to-node calls through POCO's HTTPSClientSession). Both trust only the
// configured CA; the client presents the node's own certificate, so that a server set to
// require client certificates (mutual TLS) accepts its peers.
// Thread-safe once created (OpenSSL contexts are shared read-only by every connection).
#pragma once

#include <Poco/Net/Context.h>

#include <memory>
#include <string>

namespace kvs::net {

struct TlsOptions {
  std::string cert;  // PEM certificate (chain) of this node; empty = TLS off
  std::string key;   // PEM private key of `cert`
  std::string ca;    // PEM CA certificate(s) that peers' (and clients') certificates chain to
  // Server: a client without a certificate signed by `ca` is refused (mutual TLS).
  bool require_client_cert = false;
  // Client: a peer's certificate must name the host it was reached under (DNS or IP SAN).
  bool verify_peer_name = true;

  bool enabled() const { return !cert.empty(); }
};

class Tls {
 public:
  // Loads the files; nullptr with `error` (one line, naming the file) when one is unusable.
  static std::unique_ptr<Tls> Create(const TlsOptions& options, std::string& error);

  const TlsOptions& options() const { return options_; }
  const Poco::Net::Context::Ptr& server() const { return server_; }
  const Poco::Net::Context::Ptr& client() const { return client_; }

 private:
  Tls() = default;
  TlsOptions options_;
  Poco::Net::Context::Ptr server_;
  Poco::Net::Context::Ptr client_;
};

}  // namespace kvs::net
