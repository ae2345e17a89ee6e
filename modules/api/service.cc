#include "kvs/api/service.h"

#include <Poco/Exception.h>
#include <Poco/Logger.h>
#include <Poco/URI.h>

#include <charconv>
#include <cstdio>
#include <exception>
#include <thread>
#include <variant>

#include "kvs/api/request_body.h"
#include "kvs/causal/metadata.h"
#include "kvs/json/json_writer.h"

namespace kvs::api {
using json::JsonObject;

namespace {

constexpr std::string_view kKeyPrefix = "/key-value-store/";
constexpr std::string_view kKeyRoot = "/key-value-store";
constexpr std::string_view kViewPath = "/key-value-store-view";
constexpr std::string_view kShardPrefix = "/key-value-store-shard/";
constexpr std::string_view kReadyPath = "/health/ready";

// Internal status of a response that TryHandle could not give without waiting.
constexpr int kWouldBlock = -1;

Response WouldBlock() {
  Response response;
  response.status = kWouldBlock;
  return response;
}

Response Json(int status, std::string body) {
  Response response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

Response Message(int status, std::string_view message) {
  return Json(status, JsonObject().Str("message", message).Finish());
}

// Characters, not bytes: UTF-8 continuation bytes do not start a character.
size_t CharacterCount(std::string_view text) {
  size_t count = 0;
  for (char c : text) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return count;
}

std::optional<int> ParseShardId(std::string_view text) {
  int id = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || id < 0) {
    return std::nullopt;
  }
  return id;
}

std::vector<std::string> AddressStrings(const std::vector<cluster::Address>& addresses) {
  std::vector<std::string> out;
  out.reserve(addresses.size());
  for (const cluster::Address& a : addresses) out.push_back(a.ToString());
  return out;
}

// Reads {"socket-address": "ip:port"} from a view or add-member body. On failure `error`
// holds the client-facing reason and nullopt is returned.
std::optional<cluster::Address> SocketAddressFromBody(std::string_view text, std::string& error) {
  auto parsed = RequestBody::Parse(text);
  if (auto* message = std::get_if<std::string>(&parsed)) {
    error = *message;
    return std::nullopt;
  }
  std::string address_text;
  switch (std::get<RequestBody>(parsed).GetString("socket-address", address_text)) {
    case RequestBody::Field::kMissing:
    case RequestBody::Field::kNull:
      error = "socket-address is missing";
      return std::nullopt;
    case RequestBody::Field::kString:
      break;
    default:
      error = "socket-address must be a string";
      return std::nullopt;
  }
  auto address = cluster::Address::Parse(address_text);
  if (!address) error = "Invalid socket-address";
  return address;
}

// A key request the shard could not serve in time (its causal dependencies did not arrive):
// 503, logged with the request's id (kvs_causal_dependency_timeouts_total counts them).
Response Unavailable(const Request& request, const std::string& reason) {
  Poco::Logger::get("kvs.api").warning("%s %s answered 503: %s", std::string(request.method),
                                       std::string(request.target), reason);
  return ErrorResponse(503, reason, request.method);
}

}  // namespace

Response ErrorResponse(int status, std::string_view error, std::string_view method) {
  std::string message = "Error in ";
  message += method;
  return Json(status, JsonObject().Str("error", error).Str("message", message).Finish());
}

Response MethodNotAllowed(std::string_view method, std::string_view allow) {
  Response response = ErrorResponse(405, "Method not allowed", method);
  response.allow = allow;
  return response;
}

Service::Service(store::Store& store, cluster::ClusterState& cluster,
                 cluster::FailureDetector& detector, replication::Replicator& replicator,
                 replication::Coordinator& coordinator, replication::Reconfigurator& reconfigurator,
                 net::PeerClient& peers, Metrics& metrics, Limits limits, storage::Journal* journal,
                 Security security)
    : store_(store),
      cluster_(cluster),
      detector_(detector),
      replicator_(replicator),
      coordinator_(coordinator),
      reconfigurator_(reconfigurator),
      peers_(peers),
      metrics_(metrics),
      limits_(limits),
      journal_(journal),
      security_(std::move(security)) {}

Response Service::RecoveringResponse(std::string_view method) {
  return ErrorResponse(503, "Node is recovering its data from disk; try again shortly", method);
}

Response Service::StorageFailure(std::string_view method) const {
  const std::string detail = journal_ != nullptr ? journal_->last_error() : std::string();
  return ErrorResponse(507,
                       "Insufficient storage: the write-ahead log cannot be written" +
                           (detail.empty() ? std::string() : " (" + detail + ")") +
                           "; the write may or may not have taken effect",
                       method);
}

Response Service::AfterWrite(Response response, const replication::OpResult& result, bool may_block,
                             std::string_view method) {
  if (result.lsn == 0 || journal_ == nullptr || !journal_->AckWaits()) return response;
  if (!may_block) {
    response.durable_lsn = result.lsn;
    return response;
  }
  switch (journal_->Wait(result.lsn, kDurableWait)) {
    case storage::Wal::State::kDurable:
      return response;
    case storage::Wal::State::kFailed:
      return StorageFailure(method);
    case storage::Wal::State::kPending:
      break;
  }
  return DurabilityTimeout(method);
}

Response Service::DurabilityTimeout(std::string_view method) {
  return ErrorResponse(503,
                       "The write-ahead log did not sync in time; the write may or may "
                       "not have taken effect",
                       method);
}

Response Service::Handle(const Request& request) { return *Run(request, /*may_block=*/true); }

std::optional<Response> Service::TryHandle(const Request& request) {
  return Run(request, /*may_block=*/false);
}

std::optional<Response> Service::CheckCredentials(const Request& request) {
  const std::string_view path = request.target.substr(0, request.target.find('?'));
  const std::string_view method = request.method;
  std::string_view reason;
  Response refusal;
  if (path.starts_with("/internal/")) {
    if (security_.cluster == nullptr || !security_.cluster->enabled()) return std::nullopt;
    const auth::Failure failure = security_.cluster->Verify(
        method, request.target, request.body, request.cluster_proof, auth::UnixMillis());
    if (failure == auth::Failure::kNone) return std::nullopt;
    metrics_.CountAuthFailure(AuthScope::kCluster, failure);
    reason = auth::FailureName(failure);
    refusal = ErrorResponse(
        401,
        "Node-to-node call without valid proof of the cluster secret (" + std::string(reason) + ")",
        method);
  } else {
    if (security_.admin_token.empty()) return std::nullopt;
    const bool admin = (path == kViewPath && (method == "PUT" || method == "DELETE")) ||
                       (method == "PUT" && path.starts_with(kShardPrefix) &&
                        (path.substr(kShardPrefix.size()).starts_with("add-member/") ||
                         path.substr(kShardPrefix.size()) == "reshard"));
    if (!admin || auth::BearerMatches(request.authorization, security_.admin_token)) {
      return std::nullopt;
    }
    const auth::Failure failure =
        request.authorization.empty() ? auth::Failure::kMissing : auth::Failure::kBadSignature;
    metrics_.CountAuthFailure(AuthScope::kAdmin, failure);
    reason = failure == auth::Failure::kMissing ? "missing" : "wrong token";
    refusal = ErrorResponse(401, "Admin token required (" + std::string(reason) + ")", method);
    refusal.AddHeader("WWW-Authenticate", "Bearer");
  }
  // Logged at most every 10 s (a flood of refusals, or a misconfigured peer's heartbeats, must
  // not flood the log; kvs_auth_failures_total counts them all), never with the credential.
  const int64_t now = auth::UnixMillis();
  int64_t last = last_auth_log_ms_.load(std::memory_order_relaxed);
  if (now - last >= 10000 && last_auth_log_ms_.compare_exchange_strong(last, now)) {
    Poco::Logger::get("kvs.api").warning(
        "refused %s %s: %s (401; kvs_auth_failures_total counts all)", std::string(method),
        std::string(path), std::string(reason));
  }
  return refusal;
}

std::optional<Response> Service::Run(const Request& request, bool may_block) {
  // One clock read at dispatch, one at the answer (none more per request).
  const auto start = std::chrono::steady_clock::now();
  if (request.id.empty()) request.id = RequestId::FromHeader(request.request_id_header);
  // Every log line written while serving it (here, forwarding, dependency waits) carries it.
  const ScopedRequestId scoped_id(request.id);
  const uint64_t pulls_before = replication::ThreadDependencyPulls();
  Response response;
  try {
    if (!request.authenticated) {
      if (std::optional<Response> refusal = CheckCredentials(request)) {
        metrics_.Count(request.method, refusal->status);
        refusal->request_id = request.id;
        if (request_log_ != RequestLogMode::kOff) {
          LogRequest(request, *refusal,
                     std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::steady_clock::now() - start)
                         .count());
        }
        return refusal;
      }
      request.authenticated = true;
    }
    response = Route(request, may_block);
  } catch (const Poco::Exception& e) {
    Poco::Logger::get("kvs.api").error("%s %s failed: %s", std::string(request.method),
                                       std::string(request.target), e.displayText());
    response = ErrorResponse(500, "Internal error: " + e.displayText(), request.method);
  } catch (const std::exception& e) {
    Poco::Logger::get("kvs.api").error("%s %s failed: %s", std::string(request.method),
                                       std::string(request.target), std::string(e.what()));
    response = ErrorResponse(500, std::string("Internal error: ") + e.what(), request.method);
  }
  if (response.status == kWouldBlock) {
    if (request.forward != nullptr && request.forward->shard >= 0) request.forward->start = start;
    return std::nullopt;
  }
  Record(request, response, start, pulls_before);
  return response;
}

Response Service::Relayed(const Request& request, const ForwardPlan& plan, int status,
                          std::string body, const std::string& member) {
  const ScopedRequestId scoped_id(request.id);
  Response relayed = Json(status, std::move(body));
  relayed.forwarded = true;
  relayed.forwarded_to = member;
  Record(request, relayed, plan.start, replication::ThreadDependencyPulls());
  return relayed;
}

Response Service::RelayFailed(const Request& request, const ForwardPlan& plan,
                              const std::string& last_error, net::CallFailure failure) {
  const ScopedRequestId scoped_id(request.id);
  Response failed = ForwardFailure(request, plan.shard, last_error, failure);
  Record(request, failed, plan.start, replication::ThreadDependencyPulls());
  return failed;
}

void Service::Record(const Request& request, Response& response,
                     std::chrono::steady_clock::time_point start, uint64_t pulls_before) {
  response.request_id = request.id;
  metrics_.Count(request.method, response.status);
  const auto end = std::chrono::steady_clock::now();
  const ApiRoute route = RouteOf(request.target.substr(0, request.target.find('?')));
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(end - start).count();
  const RequestPath path = response.forwarded ? RequestPath::kForwarded
                           : replication::ThreadDependencyPulls() != pulls_before
                               ? RequestPath::kPulled
                               : RequestPath::kLocal;
  stats_.Record(route, path, static_cast<uint64_t>(micros),
                std::chrono::duration_cast<std::chrono::seconds>(end.time_since_epoch()).count());
  if (request_log_ != RequestLogMode::kOff) LogRequest(request, response, micros);
}

void Service::LogRequest(const Request& request, const Response& response, int64_t micros) const {
  // Client requests only: node-to-node calls (heartbeats, replication) would drown them.
  if (request.target.starts_with("/internal/")) return;
  if (request_log_ == RequestLogMode::kErrors && response.status < 400) return;
  std::string where;
  if (!response.forwarded_to.empty()) {
    where = "forwarded to " + response.forwarded_to;
  } else if (request.hops > 0) {
    where = "local (forwarded here, hop " + std::to_string(request.hops) + ")";
  } else {
    where = "local";
  }
  char duration[32];
  std::snprintf(duration, sizeof duration, "%.3f", static_cast<double>(micros) / 1000.0);
  // The id is the line's request_id (the formatter adds it), not repeated here.
  Poco::Logger::get("kvs.access")
      .information("%s %s %d %s ms %s", std::string(request.method), std::string(request.target),
                   response.status, std::string(duration), where);
}

Response Service::Route(const Request& request, bool may_block) {
  std::string_view path = request.target.substr(0, request.target.find('?'));
  const std::string_view method = request.method;
  if (recovering_.load(std::memory_order_acquire) && path != "/health" && path != "/metrics" &&
      path != kReadyPath && path != "/") {
    // Peers retry on their own; a client's request waits a little for the recovery to end.
    if (path.starts_with("/internal/")) return RecoveringResponse(method);
    if (!may_block) return WouldBlock();
    const auto deadline = std::chrono::steady_clock::now() + kRecoveryWait;
    while (recovering_.load(std::memory_order_acquire)) {
      if (std::chrono::steady_clock::now() >= deadline) return RecoveringResponse(method);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  if (path.starts_with(kKeyPrefix)) {
    return HandleKeyValue(request, path.substr(kKeyPrefix.size()), may_block);
  }
  if (path == "/") return HandleStatusPage(method);
  if (!may_block) {
    // Broadcast batches from shard peers are CPU work only: applied here unless another
    // thread holds the apply buffer.
    if (path == "/internal/replicate" && method == "POST") {
      return HandleReplicate(request.body, /*may_block=*/false);
    }
    // Reads of this node's own view of the cluster answer at once: served here too (the key
    // counts only while they are a counter, not a walk of the store during a reshard).
    const bool cheap_count = !replicator_.staging();
    const bool local_read =
        method == "GET" && (path == kViewPath || (path.starts_with(kShardPrefix) && cheap_count) ||
                            ((path == "/health" || path == kReadyPath) && cheap_count));
    // Everything else is rare or may wait on other nodes: it runs where blocking is fine.
    if (!local_read) return WouldBlock();
  }
  if (path == kKeyRoot) return HandleKeyValue(request, "", may_block);
  if (path == kViewPath) return HandleView(method, request.body);
  if (path.starts_with(kShardPrefix)) {
    return HandleShard(request, path.substr(kShardPrefix.size()), may_block);
  }
  if (path == "/health") {
    return method == "GET" ? HandleHealth() : MethodNotAllowed(method, "GET");
  }
  if (path == kReadyPath) {
    // For readiness probes (Kubernetes, Compose): /health's body, 503 until the node serves
    // its shard's data (recovered from disk and caught up with its peers).
    if (method != "GET") return MethodNotAllowed(method, "GET");
    Response health = HandleHealth();
    if (recovering_.load(std::memory_order_acquire) || !replicator_.ready()) health.status = 503;
    return health;
  }
  if (path == "/status") return HandleStatus(method, request.target);
  if (path.starts_with("/internal/")) {
    const size_t q = request.target.find('?');
    const std::string_view query =
        q == std::string_view::npos ? std::string_view() : request.target.substr(q + 1);
    return HandleInternal(method, path, query, request.body);
  }
  if (path == "/metrics") {
    if (method != "GET") return MethodNotAllowed(method, "GET");
    Response response;
    response.body = metrics_.Render(replicator_.OwnedLiveCount()) + stats_.RenderMetrics() +
                    replicator_.MetricsText() + reconfigurator_.MetricsText();
    if (journal_ != nullptr) response.body += journal_->MetricsText();
    response.content_type = "text/plain; version=0.0.4";
    return response;
  }
  return ErrorResponse(404, "Path not found", method);
}

Response Service::HandleKeyValue(const Request& request, std::string_view encoded_key,
                                 bool may_block) {
  const std::string_view method = request.method;
  const std::string_view body = request.body;
  const bool is_put = method == "PUT";
  if (!is_put && method != "GET" && method != "DELETE") {
    return MethodNotAllowed(method, "GET, PUT, DELETE");
  }
  if (encoded_key.empty()) return ErrorResponse(400, "Key is missing", method);
  std::string key;
  try {
    Poco::URI::decode(std::string(encoded_key), key);
  } catch (const Poco::Exception&) {
    return ErrorResponse(400, "Key is not validly URL-encoded", method);
  }
  if (is_put && CharacterCount(key) > kMaxKeyLength) {
    return ErrorResponse(400, "Key is too long", method);
  }

  auto parsed = RequestBody::Parse(body);
  if (auto* error = std::get_if<std::string>(&parsed)) return ErrorResponse(400, *error, method);
  const RequestBody& fields = std::get<RequestBody>(parsed);

  std::string value;
  if (is_put) {
    switch (fields.GetString("value", value)) {
      case RequestBody::Field::kMissing:
        return ErrorResponse(400, "Value is missing", method);
      case RequestBody::Field::kString:
        break;
      default:
        return ErrorResponse(400, "Value must be a string", method);
    }
    if (value.size() > limits_.max_value_bytes) {
      return ErrorResponse(413, "Request body too large", method);
    }
  }

  // The metadata is checked and its newest layout read in place here; it is decoded into a
  // map only if this node serves the request (a forwarded one is decoded by its owner).
  std::string wire;
  uint64_t layout_wanted = request.sender_epoch;
  switch (fields.GetString("causal-metadata", wire)) {
    case RequestBody::Field::kMissing:
    case RequestBody::Field::kNull:
      break;
    case RequestBody::Field::kString: {
      uint64_t epoch = 0;
      const std::optional<causal::DecodeError> error =
          causal::ScanEntries(wire, epoch, [&](std::string_view origin, uint64_t) {
            layout_wanted = std::max(layout_wanted, causal::OriginEpoch(origin));
          });
      if (error) return ErrorResponse(400, "Invalid causal-metadata: " + error->reason, method);
      break;
    }
    default:
      return ErrorResponse(400, "Invalid causal-metadata: must be a string", method);
  }

  // Route: the owning shard serves the key; any other node forwards. A write waits while a
  // reshard barrier is up and is routed again afterwards (the key may have moved).
  std::optional<replication::Coordinator::WriteTicket> ticket;
  std::optional<int> shard;
  // Routing with an older layout than the sender's would send the request back to it; and a
  // client whose metadata names a write of a newer layout (a reshard that committed at other
  // nodes first) must not be served from this node's old copy of a key that moved.
  if (layout_wanted > cluster_.Config()->epoch) {
    if (!may_block) return WouldBlock();
    const auto deadline = std::chrono::steady_clock::now() + kLayoutCatchUpWait;
    while (cluster_.Config()->epoch < layout_wanted &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (cluster_.Config()->epoch < layout_wanted) {
      return ErrorResponse(503, "Node has not caught up with the cluster layout yet", method);
    }
  }
  const uint64_t layout_seen = cluster_.layout_version();
  for (int attempt = 0;; ++attempt) {
    const std::optional<int> owner = cluster_.ShardForKey(key);
    if (!owner) return ErrorResponse(503, "Node does not know the cluster layout yet", method);
    shard = cluster_.MyShard();
    if (shard != owner) {
      return may_block ? Forward(*owner, request) : Defer(*owner, request);
    }
    // A replica still loading its shard's data could answer a wrong 404 (or stale value):
    // a ready replica serves a client's request instead. Only a client's own request is
    // passed on, so two loading replicas never bounce it between them; a forwarded one waits
    // here for the load (and gets a 503 with the reason if it does not end in time).
    if (!replicator_.ready() && request.hops == 0 && replicator_.has_peers()) {
      return may_block ? Forward(*owner, request) : Defer(*owner, request);
    }
    if (method == "GET") break;
    ticket = coordinator_.EnterWrite(may_block ? kWriteBarrierWait : std::chrono::milliseconds(0));
    if (!ticket && !may_block) return WouldBlock();
    if (!ticket) return ErrorResponse(503, "Resharding in progress; try again", method);
    if (cluster_.ShardForKey(key) == owner && cluster_.MyShard() == owner) break;
    ticket.reset();
    if (attempt > 3) return ErrorResponse(503, "Cluster layout keeps changing; try again", method);
  }

  causal::Metadata metadata;
  if (!wire.empty()) metadata = std::move(std::get<causal::Metadata>(causal::Decode(wire)));
  // A missing dependency is pulled from peers (a wait): leave that to a worker.
  if (!may_block && !replicator_.DependenciesPresent(metadata)) return WouldBlock();
  const replication::ClientContext client{wire, metadata};
  using Kind = replication::OpResult::Kind;
  if (method == "GET") {
    replication::OpResult result = coordinator_.Get(key, client);
    if (cluster_.layout_version() != layout_seen) {
      // A reshard committed while this read ran: the key may have moved away and been dropped
      // here (a wrong 404, or an old copy). Route it again under the new layout.
      if (!may_block) return WouldBlock();
      return HandleKeyValue(request, encoded_key, may_block);
    }
    if (result.kind == Kind::kUnavailable) return Unavailable(request, result.error);
    if (result.kind == Kind::kNotFound) {
      return Json(404, JsonObject()
                           .Bool("doesExist", false)
                           .Str("error", "Key does not exist")
                           .Str("message", "Error in GET")
                           .Finish());
    }
    return Json(200, JsonObject()
                         .Str("message", "Retrieved successfully")
                         .Str("causal-metadata", result.metadata)
                         .Str("value", result.value)
                         .Finish());
  }
  if (is_put) {
    replication::OpResult result = coordinator_.Put(key, std::move(value), client);
    if (result.storage_failed) return StorageFailure(method);
    if (result.kind == Kind::kUnavailable) return Unavailable(request, result.error);
    const bool created = result.kind == Kind::kCreated;
    return AfterWrite(
        Json(created ? 201 : 200,
             JsonObject()
                 .Str("message", created ? "Added successfully" : "Updated successfully")
                 .Str("causal-metadata", result.metadata)
                 .Int("shard-id", *shard)
                 .Finish()),
        result, may_block, method);
  }
  replication::OpResult result = coordinator_.Delete(key, client);
  if (result.storage_failed) return StorageFailure(method);
  if (result.kind == Kind::kUnavailable) return Unavailable(request, result.error);
  if (result.kind == Kind::kNotFound) {
    return Json(404, JsonObject()
                         .Bool("doesExist", false)
                         .Str("error", "Key does not exist")
                         .Str("message", "Error in DELETE")
                         .Finish());
  }
  return AfterWrite(Json(200, JsonObject()
                                  .Str("message", "Deleted successfully")
                                  .Str("causal-metadata", result.metadata)
                                  .Int("shard-id", *shard)
                                  .Finish()),
                    result, may_block, method);
}

Response Service::HandleView(std::string_view method, std::string_view body) {
  if (method == "GET") {
    return Json(200, JsonObject()
                         .Str("message", "View retrieved successfully")
                         .Str("view", cluster::JoinAddresses(cluster_.View()))
                         .Finish());
  }
  if (method != "PUT" && method != "DELETE") return MethodNotAllowed(method, "GET, PUT, DELETE");
  std::string error;
  auto address = SocketAddressFromBody(body, error);
  if (!address) return ErrorResponse(400, error, method);
  if (method == "PUT") {
    if (!detector_.ClientAdd(*address)) {
      return ErrorResponse(404, "Socket address already exists in the view", method);
    }
    return Message(201, "Replica added successfully to the view");
  }
  if (!detector_.ClientRemove(*address)) {
    return ErrorResponse(404, "Socket address does not exist in the view", method);
  }
  return Message(200, "Replica deleted successfully from the view");
}

std::variant<ForwardPlan, Response> Service::PlanForward(int shard, const Request& request) {
  if (request.hops >= 6) {
    return ErrorResponse(503, "Request forwarded too many times (layout changing)", request.method);
  }
  const std::shared_ptr<const cluster::ClusterConfig> config = cluster_.Config();
  if (shard < 0 || shard >= config->shard_count()) {
    return ErrorResponse(503, "Shard " + std::to_string(shard) + " is unknown here",
                         request.method);
  }
  ForwardPlan plan;
  plan.shard = shard;
  const auto& members = config->shards[static_cast<size_t>(shard)];
  const size_t start = members.empty() ? 0 : cluster_.ForwardStart(shard) % members.size();
  // Live members first (in the rotated order), then the rest.
  plan.members.reserve(members.size());
  size_t live = 0;
  for (size_t i = 0; i < members.size(); ++i) {
    const cluster::Address& m = members[(start + i) % members.size()];
    if (m == cluster_.self()) continue;
    if (cluster_.InView(m)) {
      plan.members.insert(plan.members.begin() + static_cast<std::ptrdiff_t>(live++), m.ToString());
    } else {
      plan.members.push_back(m.ToString());
    }
  }
  // The id travels along (a log label only: the owner validates it as a client's).
  plan.headers = {{kHopsHeader, std::to_string(request.hops + 1)},
                  {kEpochHeader, std::to_string(config->epoch)},
                  {kRequestIdHeader, std::string(request.id.view())}};
  return plan;
}

Response Service::Defer(int shard, const Request& request) {
  if (request.forward == nullptr) return WouldBlock();
  std::variant<ForwardPlan, Response> planned = PlanForward(shard, request);
  if (auto* refusal = std::get_if<Response>(&planned)) return std::move(*refusal);
  *request.forward = std::move(std::get<ForwardPlan>(planned));
  return WouldBlock();
}

Response Service::Forward(int shard, const Request& request) {
  std::variant<ForwardPlan, Response> planned = PlanForward(shard, request);
  if (auto* refusal = std::get_if<Response>(&planned)) return std::move(*refusal);
  const ForwardPlan& plan = std::get<ForwardPlan>(planned);
  net::PeerClient::Headers headers;
  for (const auto& [name, value] : plan.headers) headers.emplace_back(name, value);
  std::string last_error = "no member";
  net::CallFailure failure = net::CallFailure::kOther;
  for (const std::string& member : plan.members) {
    net::CallResult result = peers_.Call(member, request.method, std::string(request.target),
                                         request.body, kForwardTimeout, headers);
    if (result.status != 0) {
      Response relayed = Json(result.status, std::move(result.body));
      relayed.forwarded = true;
      relayed.forwarded_to = member;
      return relayed;
    }
    Poco::Logger::get("kvs.api").debug("forwarding %s %s to %s (shard %d) failed: %s",
                                       std::string(request.method), std::string(request.target),
                                       member, shard, result.error);
    last_error = member + ": " + result.error;
    failure = result.failure;
  }
  return ForwardFailure(request, shard, last_error, failure);
}

Response Service::ForwardFailure(const Request& request, int shard, const std::string& last_error,
                                 net::CallFailure failure) {
  metrics_.CountForwardingFailure(failure);
  Poco::Logger::get("kvs.api").warning("cannot forward %s %s: shard %d is unreachable (%s)",
                                       std::string(request.method), std::string(request.target),
                                       shard, last_error);
  Response failed =
      ErrorResponse(503, "Shard " + std::to_string(shard) + " is unreachable (" + last_error + ")",
                    request.method);
  failed.forwarded_to = "shard " + std::to_string(shard) + ": none answered";
  return failed;
}

Response Service::HandleShard(const Request& request, std::string_view rest, bool may_block) {
  const std::string_view method = request.method;
  const std::string_view body = request.body;
  const size_t slash = rest.find('/');
  const std::string_view op = rest.substr(0, slash);
  const bool has_id = slash != std::string_view::npos;
  const std::string_view id_text = has_id ? rest.substr(slash + 1) : std::string_view();

  const bool read_op = (op == "shard-ids" || op == "node-shard-id") && !has_id;
  const bool id_read_op = (op == "shard-id-members" || op == "shard-id-key-count") && has_id;
  const bool write_op = (op == "add-member" && has_id) || (op == "reshard" && !has_id);
  if (!read_op && !id_read_op && !write_op) return ErrorResponse(404, "Path not found", method);
  if (write_op) {
    if (method != "PUT") return MethodNotAllowed(method, "PUT");
    return op == "reshard" ? HandleReshard(body) : HandleAddMember(id_text, body);
  }
  if (method != "GET") return MethodNotAllowed(method, "GET");

  const std::shared_ptr<const cluster::ClusterConfig> config = cluster_.Config();
  if (op == "shard-ids") {
    std::vector<int64_t> ids;
    for (int id = 0; id < config->shard_count(); ++id) ids.push_back(id);
    return Json(200, JsonObject()
                         .Str("message", "Shard IDs retrieved successfully")
                         .IntArray("shard-ids", ids)
                         .Finish());
  }
  if (op == "node-shard-id") {
    const std::optional<int> mine = config->ShardOf(cluster_.self());
    if (!mine) return ErrorResponse(404, "Node is not a member of any shard", method);
    return Json(200, JsonObject()
                         .Str("message", "Shard ID of the node retrieved successfully")
                         .Int("shard-id", *mine)
                         .Finish());
  }
  const std::optional<int> id = ParseShardId(id_text);
  if (!id || *id >= config->shard_count()) {
    return ErrorResponse(404, "Shard ID does not exist", method);
  }
  if (op == "shard-id-members") {
    return Json(200,
                JsonObject()
                    .Str("message", "Members of shard ID retrieved successfully")
                    .StrArray("shard-id-members", AddressStrings(cluster_.LiveMembers(*id).value_or(
                                                      std::vector<cluster::Address>())))
                    .Finish());
  }
  if (config->ShardOf(cluster_.self()) != id) {
    return may_block ? Forward(*id, request) : Defer(*id, request);
  }
  return Json(200, JsonObject()
                       .Str("message", "Key count of shard ID retrieved successfully")
                       .Int("shard-id-key-count", replicator_.OwnedLiveCount())
                       .Finish());
}

Response Service::HandleAddMember(std::string_view id_text, std::string_view body) {
  constexpr std::string_view kMethod = "PUT";
  std::string error;
  auto address = SocketAddressFromBody(body, error);
  if (!address) return ErrorResponse(400, error, kMethod);
  const std::shared_ptr<const cluster::ClusterConfig> config = cluster_.Config();
  const std::optional<int> id = ParseShardId(id_text);
  if (!id || *id >= config->shard_count()) {
    return ErrorResponse(404, "Shard ID does not exist", kMethod);
  }
  if (!cluster_.InView(*address)) {
    return ErrorResponse(404, "Socket address does not exist in the view", kMethod);
  }
  const replication::ChangeOutcome outcome = reconfigurator_.AddMember(*id, *address);
  if (outcome.status != 200) return ErrorResponse(outcome.status, outcome.error, kMethod);
  return Message(200, "Node added to shard successfully");
}

Response Service::HandleReshard(std::string_view body) {
  constexpr std::string_view kMethod = "PUT";
  auto parsed = RequestBody::Parse(body);
  if (auto* error = std::get_if<std::string>(&parsed)) return ErrorResponse(400, *error, kMethod);
  int64_t count = 0;
  switch (std::get<RequestBody>(parsed).GetInteger("shard-count", count)) {
    case RequestBody::Field::kMissing:
    case RequestBody::Field::kNull:
      return ErrorResponse(400, "shard-count is missing", kMethod);
    case RequestBody::Field::kInteger:
      break;
    default:
      return ErrorResponse(400, "shard-count must be an integer", kMethod);
  }
  if (count < 1) return ErrorResponse(400, "shard-count must be a positive integer", kMethod);
  if (count > static_cast<int64_t>(cluster_.View().size()) / 2) {  // fewer than 2N nodes
    return Message(400, "Not enough nodes to provide fault-tolerance with the given shard count!");
  }
  const replication::ChangeOutcome outcome = reconfigurator_.ReshardTo(static_cast<int>(count));
  if (outcome.status != 200) return ErrorResponse(outcome.status, outcome.error, kMethod);
  // The SPEC's body, byte for byte; how each shard's data moved rides in a header.
  Response response = Message(200, "Resharding done successfully");
  response.AddHeader("Kvs-Reshard", outcome.report);
  return response;
}

Response Service::HandleHealth() const {
  const std::optional<int> shard = cluster_.MyShard();
  JsonObject body;
  body.Str("status", "ok").Str("address", cluster_.self().ToString());
  if (shard) {
    body.Int("shard-id", *shard);
  } else {
    body.Null("shard-id");
  }
  body.Int("keys", replicator_.OwnedLiveCount())
      .Str("origin", coordinator_.origin())
      .Bool("ready", replicator_.ready());
  if (journal_ != nullptr) body.RawJson("storage", journal_->HealthJson());
  return Json(200, body.Finish());
}

}  // namespace kvs::api

namespace kvs::api {

Response Service::HandleReplicate(std::string_view body, bool may_block) {
  std::string error;
  auto batch = replication::DecodeBatch(body, error);
  if (!batch) return ErrorResponse(400, "Bad replicate batch: " + error, "POST");
  // Nothing is applied that the log cannot keep: the sender retries, anti-entropy repairs.
  if (journal_ != nullptr && !journal_->Writable()) return StorageFailure("POST");
  const std::optional<size_t> changed =
      may_block ? replicator_.ApplyBatch(*batch) : replicator_.TryApplyBatch(*batch);
  if (!changed) return WouldBlock();
  return Json(200, JsonObject().Int("applied", static_cast<int64_t>(*changed)).Finish());
}

Response Service::HandleInternal(std::string_view method, std::string_view path,
                                 std::string_view query, std::string_view body) {
  std::string error;
  if (path == "/internal/replicate" && method == "POST") {
    return HandleReplicate(body, /*may_block=*/true);
  }
  if (path == "/internal/sync" && method == "POST") {
    auto request = replication::DecodeSyncRequest(body, error);
    if (!request) return ErrorResponse(400, "Bad sync request: " + error, method);
    // A reshard stages from replicas that hold their shard's data, never from one loading it.
    if (request->range && !replicator_.ready()) {
      return ErrorResponse(503, "Replica is still loading its data", method);
    }
    return Json(200, replication::EncodeSyncReply(replicator_.AnswerSync(*request, /*wire=*/true)));
  }
  if (path == "/internal/handoff" && method == "POST") {
    auto batch = replication::DecodeBatch(body, error);
    if (!batch) return ErrorResponse(400, "Bad hand-off batch: " + error, method);
    if (journal_ != nullptr && !journal_->Writable()) return StorageFailure(method);
    const std::optional<size_t> applied = replicator_.ApplyHandoff(batch->updates);
    if (!applied) return StorageFailure(method);
    return Json(200, JsonObject().Int("applied", static_cast<int64_t>(*applied)).Finish());
  }
  if (path == "/internal/heartbeat" && method == "GET") {
    if (query.starts_with("from=")) {
      if (auto from = cluster::Address::Parse(query.substr(5))) detector_.OnHeartbeatFrom(*from);
    }
    const auto config = cluster_.Config();
    return Json(200, JsonObject()
                         .Str("address", cluster_.self().ToString())
                         .Int("epoch", static_cast<int64_t>(config->epoch))
                         .Int("shards", config->shard_count())
                         .Finish());
  }
  if (path == "/internal/view" && method == "POST") {
    auto parsed = RequestBody::Parse(body);
    if (auto* message = std::get_if<std::string>(&parsed))
      return ErrorResponse(400, *message, method);
    const RequestBody& fields = std::get<RequestBody>(parsed);
    std::string address_text, up_text, forget_text;
    fields.GetString("address", address_text);
    fields.GetString("change", up_text);
    auto address = cluster::Address::Parse(address_text);
    if (!address || (up_text != "up" && up_text != "down" && up_text != "forget")) {
      return ErrorResponse(400, "Bad view notice", method);
    }
    detector_.OnNotice(*address, up_text == "up", up_text == "forget");
    return Json(200, "{}");
  }
  if (path == "/internal/config" && method == "GET") {
    return Json(200, replication::EncodeConfig(*cluster_.Config()));
  }
  if (path == "/internal/config" && method == "POST") {
    auto config = replication::DecodeConfig(body, error);
    if (!config) return ErrorResponse(400, "Bad configuration: " + error, method);
    uint64_t held_ms = 0;
    const bool adopted = reconfigurator_.Adopt(*config, &held_ms);
    return Json(200, replication::EncodeConfigAnswer({adopted, held_ms}));
  }
  if (path == "/internal/reshard/stage" && method == "POST") {
    auto config = replication::DecodeConfig(body, error);
    if (!config) return ErrorResponse(400, "Bad configuration: " + error, method);
    reconfigurator_.Stage(*config);
    return Json(200, "{}");
  }
  if (path == "/internal/reshard/progress" && method == "GET") {
    uint64_t epoch = 0;
    const std::string_view text = query.starts_with("epoch=") ? query.substr(6) : "";
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), epoch);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
      return ErrorResponse(400, "Bad reshard step", method);
    }
    return Json(200, replication::EncodeStagingProgress(reconfigurator_.Progress(epoch)));
  }
  if (path == "/internal/catch-up" && method == "POST") {
    if (!replicator_.CatchUp()) return ErrorResponse(503, "No shard peer answered", method);
    return Json(200, JsonObject().Int("keys", store_.live_count()).Finish());
  }
  if ((path == "/internal/reshard/prepare" || path == "/internal/reshard/abort" ||
       path == "/internal/reshard/finish") &&
      method == "POST") {
    auto parsed = RequestBody::Parse(body);
    int64_t epoch = 0;
    if (std::holds_alternative<std::string>(parsed) ||
        std::get<RequestBody>(parsed).GetInteger("epoch", epoch) != RequestBody::Field::kInteger) {
      return ErrorResponse(400, "Bad reshard step", method);
    }
    if (path == "/internal/reshard/abort") {
      reconfigurator_.Abort(static_cast<uint64_t>(epoch));
      return Json(200, "{}");
    }
    if (path == "/internal/reshard/finish") {
      replication::StagingProgress progress;
      const std::string failed = reconfigurator_.Finish(static_cast<uint64_t>(epoch), progress);
      if (!failed.empty()) return ErrorResponse(503, failed, method);
      return Json(200, replication::EncodeStagingProgress(progress));
    }
    if (!reconfigurator_.Prepare(static_cast<uint64_t>(epoch))) {
      return ErrorResponse(503, "Writes still in progress", method);
    }
    return Json(200, "{}");
  }
  return ErrorResponse(404, "Path not found", method);
}

}  // namespace kvs::api
