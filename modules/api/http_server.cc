#include "kvs/api/http_server.h"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>

#include <algorithm>
#include <charconv>
#include <istream>
#include <thread>

#include "kvs/net/tls.h"

namespace kvs::api {
namespace {

// Reads the whole body unless it exceeds `limit`. Returns false (and stops reading) when it
// does, so an oversized or endless body is refused without being buffered.
bool ReadBody(Poco::Net::HTTPServerRequest& request, size_t limit, std::string& body) {
  // RFC 9112 §6.3: with neither Content-Length nor chunked coding a request has no body
  // (POCO would otherwise read until the client closes, i.e. hang until the timeout).
  if (!request.hasContentLength() && !request.getChunkedTransferEncoding()) return true;
  if (request.hasContentLength()) {
    const auto declared = request.getContentLength64();
    if (declared < 0 || static_cast<uint64_t>(declared) > limit) return false;
    body.reserve(static_cast<size_t>(declared));
  }
  std::istream& in = request.stream();
  char buffer[16 * 1024];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    body.append(buffer, static_cast<size_t>(in.gcount()));
    if (body.size() > limit) return false;
  }
  return true;
}

// A non-negative number from a node-to-node header; 0 when absent or malformed.
uint64_t HeaderNumber(const Poco::Net::HTTPServerRequest& request, const char* name) {
  if (!request.has(name)) return 0;
  const std::string& text = request.get(name);
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size() ? value : 0;
}

class Handler final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit Handler(Service& service) : service_(service) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    const std::string& method = request.getMethod();
    Response answer;
    std::string body;
    if (!ReadBody(request, service_.limits().BodyLimitFor(request.getURI()), body)) {
      answer = ErrorResponse(413, "Request body too large", method);
      // The rest of the body is unread: the connection cannot carry another request.
      response.setKeepAlive(false);
    } else {
      const std::string authorization = request.get("Authorization", "");
      const std::string cluster_proof = request.get(auth::kAuthHeader, "");
      const std::string request_id = request.get(kRequestIdHeader, "");
      answer = service_.Handle(Request{
          method, request.getURI(), body, static_cast<int>(HeaderNumber(request, kHopsHeader)),
          HeaderNumber(request, kEpochHeader), authorization, cluster_proof, request_id});
    }
    response.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(answer.status));
    response.setContentType(std::string(answer.content_type));
    if (!answer.allow.empty()) response.set("Allow", std::string(answer.allow));
    for (const ExtraHeader& header : answer.headers) {
      response.set(std::string(header.name), header.value);
    }
    if (!answer.request_id.empty()) {
      response.set(kRequestIdHeader, std::string(answer.request_id.view()));
    }
    response.sendBuffer(answer.body.data(), answer.body.size());
  }

 private:
  Service& service_;
};

class HandlerFactory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit HandlerFactory(Service& service) : service_(service) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new Handler(service_);
  }

 private:
  Service& service_;
};

}  // namespace

HttpServer::HttpServer(Service& service, const HttpOptions& options)
    : service_(service), options_(options) {}

HttpServer::~HttpServer() { Stop(std::chrono::milliseconds(0)); }

void HttpServer::Start() {
  // With TLS, the handshake runs on the connection's thread; a plain-HTTP client's first bytes
  // fail it and the connection closes without an answer (the epoll front end answers 400).
  Poco::Net::ServerSocket socket = options_.tls != nullptr
                                       ? Poco::Net::SecureServerSocket(options_.tls->server())
                                       : Poco::Net::ServerSocket();
  socket.bind(Poco::Net::SocketAddress(options_.bind_host, options_.port), /*reuseAddress=*/true,
              /*reusePort=*/false);
  socket.listen(options_.backlog);

  auto* params = new Poco::Net::HTTPServerParams;  // reference-counted; the server owns it
  params->setMaxThreads(options_.threads);
  params->setMaxQueued(options_.max_queued);
  params->setKeepAlive(true);
  params->setKeepAliveTimeout(Poco::Timespan(options_.keepalive_timeout.count() * 1000));
  params->setTimeout(Poco::Timespan(options_.receive_timeout.count() * 1000));
  params->setMaxKeepAliveRequests(options_.max_keepalive_requests);
  params->setServerName("kvs");

  pool_ =
      std::make_unique<Poco::ThreadPool>("http", std::min(2, options_.threads), options_.threads);
  server_ =
      std::make_unique<Poco::Net::HTTPServer>(new HandlerFactory(service_), *pool_, socket, params);
  server_->start();
}

void HttpServer::Stop(std::chrono::milliseconds grace) {
  if (!server_) return;
  server_->stopAll(/*abortCurrent=*/false);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (server_->currentConnections() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  server_->stopAll(/*abortCurrent=*/true);
  pool_->joinAll();
  server_.reset();
  pool_.reset();
}

}  // namespace kvs::api
