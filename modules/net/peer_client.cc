#include "kvs/net/peer_client.h"

#include <Poco/Exception.h>
#include <Poco/Logger.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SSLException.h>
#include <Poco/StreamCopier.h>

#include <algorithm>
#include <charconv>

#include "kvs/auth/cluster_auth.h"
#include "kvs/net/tls.h"

namespace kvs::net {

struct PeerClient::Session {
  std::unique_ptr<Poco::Net::HTTPClientSession> http;
};

PeerClient::PeerClient(std::chrono::milliseconds connect_timeout, size_t max_idle_per_peer,
                       const auth::ClusterAuth* auth, const Tls* tls)
    : connect_timeout_(connect_timeout),
      max_idle_per_peer_(max_idle_per_peer),
      auth_(auth),
      tls_(tls != nullptr && tls->options().enabled() ? tls : nullptr) {}

PeerClient::~PeerClient() = default;

std::unique_ptr<PeerClient::Session> PeerClient::Acquire(const std::string& peer) {
  {
    std::lock_guard lock(mu_);
    auto it = idle_.find(peer);
    if (it != idle_.end() && !it->second.empty()) {
      auto session = std::move(it->second.back());
      it->second.pop_back();
      return session;
    }
  }
  auto session = std::make_unique<Session>();
  const size_t colon = peer.rfind(':');
  unsigned port = 0;
  std::from_chars(peer.data() + colon + 1, peer.data() + peer.size(), port);
  // Each new connection resolves the name again: a peer that came back under the same name
  // with another address (a rescheduled pod) is reached at the new one.
  if (tls_ != nullptr) {
    session->http = std::make_unique<Poco::Net::HTTPSClientSession>(
        peer.substr(0, colon), static_cast<Poco::UInt16>(port), tls_->client());
  } else {
    session->http = std::make_unique<Poco::Net::HTTPClientSession>(peer.substr(0, colon),
                                                                   static_cast<Poco::UInt16>(port));
  }
  session->http->setKeepAlive(true);
  return session;
}

void PeerClient::Release(const std::string& peer, std::unique_ptr<Session> session) {
  std::lock_guard lock(mu_);
  auto& pool = idle_[peer];
  if (pool.size() < max_idle_per_peer_) pool.push_back(std::move(session));
}

void PeerClient::Forget(const std::string& peer) {
  std::lock_guard lock(mu_);
  idle_.erase(peer);
}

void PeerClient::WarnRefused(const std::string& peer, const CallResult& result) {
  // A peer with another secret (or with one while we have none) refuses every call: say so,
  // at most every 10 s, since heartbeats alone would repeat it every second.
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  int64_t last = last_refusal_log_ms_.load(std::memory_order_relaxed);
  if (last != 0 && now - last < 10000) return;
  if (!last_refusal_log_ms_.compare_exchange_strong(last, now)) return;
  if (result.status == 0) {
    Poco::Logger::get("kvs.net").warning(
        "TLS with %s failed (%s): do both nodes trust the same kvs.tls.ca, and does its "
        "certificate name the address it is reached under (kvs.tls.verify_peer_name)?",
        peer, result.error);
    return;
  }
  Poco::Logger::get("kvs.net").warning(
      "%s refused a node-to-node call (%s): do both nodes have the same kvs.cluster.secret "
      "(and clocks within kvs.cluster.auth_window_ms)?",
      peer, result.Describe());
}

std::string_view CallFailureName(CallFailure failure) {
  switch (failure) {
    case CallFailure::kNone:
      return "none";
    case CallFailure::kTimeout:
      return "timeout";
    case CallFailure::kRefused:
      return "refused";
    case CallFailure::kTls:
      return "tls";
    case CallFailure::kOther:
      return "other";
  }
  return "other";
}

CallResult PeerClient::Call(const std::string& peer, std::string_view method,
                            const std::string& path, std::string_view body,
                            std::chrono::milliseconds timeout, const Headers& headers) {
  CallResult result;
  if (peer.rfind(':') == std::string::npos) {
    result.error = "bad peer address " + peer;
    result.failure = CallFailure::kOther;
    return result;
  }
  // A pooled connection may have been closed by the peer meanwhile: one retry on a fresh one.
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<Session> session = Acquire(peer);
    const bool reused = session->http->connected();
    try {
      const Poco::Timespan io(timeout.count() * 1000);
      session->http->setTimeout(Poco::Timespan(connect_timeout_.count() * 1000), io, io);
      Poco::Net::HTTPRequest request(std::string(method), path, Poco::Net::HTTPMessage::HTTP_1_1);
      request.setKeepAlive(true);
      request.setContentType("application/json");
      request.setContentLength(static_cast<std::streamsize>(body.size()));
      for (const auto& [name, value] : headers) request.set(name, value);
      if (auth_ != nullptr && auth_->enabled()) {
        request.set(auth::kAuthHeader, auth_->Sign(method, path, body));
      }
      std::ostream& out = session->http->sendRequest(request);
      out.write(body.data(), static_cast<std::streamsize>(body.size()));
      Poco::Net::HTTPResponse response;
      std::istream& in = session->http->receiveResponse(response);
      result.body.clear();
      if (response.hasContentLength() && response.getContentLength64() > 0) {
        // Read straight into a buffer of the announced size (a sync chunk is MiBs: growing a
        // string by doubling copies it and faults in fresh pages again and again). Capped, so
        // that a bogus length costs nothing; a shorter body is cut to what arrived.
        constexpr int64_t kReserveCap = 64ll << 20;
        const auto length =
            static_cast<size_t>(std::min(response.getContentLength64(), kReserveCap));
        result.body.resize(length);
        in.read(result.body.data(), static_cast<std::streamsize>(length));
        result.body.resize(static_cast<size_t>(in.gcount()));
        if (in.good()) Poco::StreamCopier::copyToString(in, result.body);
      } else {
        Poco::StreamCopier::copyToString(in, result.body);
      }
      result.status = static_cast<int>(response.getStatus());
      result.error.clear();
      result.failure = CallFailure::kNone;
      if (result.status == 401 && path.starts_with("/internal/")) WarnRefused(peer, result);
      if (response.getKeepAlive()) Release(peer, std::move(session));
      return result;
    } catch (const Poco::Net::SSLException& e) {
      // Not a dead peer: a certificate that does not verify (another CA, another name) or a
      // handshake the peer refused (it wants a client certificate). Said in the log.
      result.error = "TLS: " + e.displayText();
      result.failure = CallFailure::kTls;
      // On a pooled connection this is most often the peer having closed it while idle (an
      // EOF without close_notify): the retry below says whether TLS itself fails.
      if (!reused) WarnRefused(peer, result);
    } catch (const Poco::TimeoutException& e) {
      result.error = e.displayText();
      result.failure = CallFailure::kTimeout;
    } catch (const Poco::Net::ConnectionRefusedException& e) {
      result.error = e.displayText();
      result.failure = CallFailure::kRefused;
    } catch (const Poco::Exception& e) {
      result.error = e.displayText();
      result.failure = CallFailure::kOther;
    } catch (const std::exception& e) {
      result.error = e.what();
      result.failure = CallFailure::kOther;
    }
    if (!reused) break;  // a fresh connection failed: the peer really is unreachable
    // The usual cause is a keep-alive connection the peer had just closed (the request never
    // reached it). Logged, because a request that did reach it is now sent a second time.
    Poco::Logger::get("kvs.net").information(
        "call %s %s to %s failed on a reused connection (%s); "
        "retrying on a fresh one",
        std::string(method), path, peer, result.error);
    // The other idle connections to it are as old: the retry must not take one of them.
    Forget(peer);
  }
  return result;
}

}  // namespace kvs::net
