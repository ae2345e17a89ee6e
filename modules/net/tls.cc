#include "kvs/net/tls.h"

#include <Poco/Exception.h>
#include <Poco/Net/SSLManager.h>
#include <openssl/ssl.h>

#include <filesystem>
#include <mutex>

namespace kvs::net {
namespace {

// TLS 1.2 and 1.3 with forward secrecy and AEAD only (Mozilla's "intermediate" choices).
constexpr char kCiphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

Poco::Net::Context::Ptr MakeContext(Poco::Net::Context::Usage usage, const TlsOptions& options,
                                    Poco::Net::Context::VerificationMode mode) {
  Poco::Net::Context::Params params;
  params.privateKeyFile = options.key;
  params.certificateFile = options.cert;
  params.caLocation = options.ca;
  params.verificationMode = mode;
  params.loadDefaultCAs = false;
  params.cipherList = kCiphers;
  Poco::Net::Context::Ptr context = new Poco::Net::Context(usage, params);
  context->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
  SSL_CTX* ctx = context->sslContext();
  // The epoll front end writes from a buffer that may grow (and move) between the retries of a
  // write that would block, and it accepts partial writes.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_check_private_key(ctx) != 1) {
    throw Poco::Exception("the private key " + options.key + " does not match the certificate " +
                          options.cert);
  }
  return context;
}

}  // namespace

std::unique_ptr<Tls> Tls::Create(const TlsOptions& options, std::string& error) {
  static std::once_flag init;
  std::call_once(init, [] { Poco::Net::initializeSSL(); });
  for (const auto& [name, path] : {std::pair<const char*, const std::string&>{"cert", options.cert},
                                   {"key", options.key},
                                   {"ca", options.ca}}) {
    std::error_code ec;
    if (path.empty()) {
      error = std::string("kvs.tls.") + name + " must be set when kvs.tls.cert is";
      return nullptr;
    }
    if (!std::filesystem::is_regular_file(path, ec)) {
      error = std::string("kvs.tls.") + name + " '" + path + "' is not a readable file";
      return nullptr;
    }
  }
  std::unique_ptr<Tls> tls(new Tls());
  tls->options_ = options;
  try {
    tls->server_ = MakeContext(Poco::Net::Context::TLS_SERVER_USE, options,
                               options.require_client_cert ? Poco::Net::Context::VERIFY_STRICT
                                                           : Poco::Net::Context::VERIFY_NONE);
    // A client that sent its requests and closed without close_notify (as many HTTP clients
    // do) still gets its answers, as on plain HTTP: HTTP's own framing (Content-Length,
    // chunked) tells a cut request from a whole one.
    SSL_CTX_set_options(tls->server_->sslContext(), SSL_OP_IGNORE_UNEXPECTED_EOF);
    // Clients may resume their sessions (TLS 1.3 tickets, which OpenSSL issues by default; no
    // cache is kept here), a handshake without the certificates again. OpenSSL refuses that,
    // with an "internal error" alert, on a context that verifies clients and has no session id
    // context (kvs.tls.require_client_cert): give it one.
    static constexpr unsigned char kSessionIdContext[] = "kvs";
    SSL_CTX_set_session_id_context(tls->server_->sslContext(), kSessionIdContext,
                                   sizeof kSessionIdContext - 1);
    // VERIFY_STRICT on a client means VERIFY_RELAXED, except that POCO then checks the name of
    // a peer on a loopback address too (it skips that for RELAXED).
    tls->client_ = MakeContext(Poco::Net::Context::TLS_CLIENT_USE, options,
                               options.verify_peer_name ? Poco::Net::Context::VERIFY_STRICT
                                                        : Poco::Net::Context::VERIFY_RELAXED);
    tls->client_->enableExtendedCertificateVerification(options.verify_peer_name);
  } catch (const Poco::Exception& e) {
    error = "TLS set-up failed: " + e.displayText();
    return nullptr;
  }
  return tls;
}

}  // namespace kvs::net
