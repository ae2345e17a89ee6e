// The request router and handlers of the public contract (SPEC §2–§5), independent of any
// socket: takes a method, a request target and a body; returns status, headers and JSON.
// Thread-safe: Handle() is called concurrently from every HTTP worker thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "kvs/api/metrics.h"
#include "kvs/api/request_log.h"
#include "kvs/api/request_stats.h"
#include "kvs/api/status.h"
#include "kvs/auth/cluster_auth.h"
#include "kvs/cluster/cluster_state.h"
#include "kvs/cluster/failure_detector.h"
#include "kvs/net/peer_client.h"
#include "kvs/replication/coordinator.h"
#include "kvs/replication/reconfigurator.h"
#include "kvs/replication/replicator.h"
#include "kvs/storage/journal.h"
#include "kvs/store/store.h"

namespace kvs::api {

struct ForwardPlan;

struct Request {
  std::string_view method;
  std::string_view target;  // path plus optional query, still URL-encoded
  std::string_view body;
  int hops = 0;                         // how many nodes forwarded it already (header X-Kvs-Hops)
  uint64_t sender_epoch = 0;            // layout epoch of the node that forwarded it (X-Kvs-Epoch)
  std::string_view authorization = {};  // the Authorization header (admin token), "" if absent
  std::string_view cluster_proof = {};  // the X-Kvs-Auth header (node-to-node calls), "" if absent
  // The X-Request-Id header, "" if absent (validated by Service: a bad one is replaced).
  std::string_view request_id_header = {};
  // Set by TryHandle once it checked the request's credentials but left the request to
  // Handle (which then does not check again: a signed call's nonce is accepted only once).
  mutable bool authenticated = false;
  // The request's id, settled by the first TryHandle/Handle (kept when Handle follows).
  mutable RequestId id = {};
  // Set by a front end that relays requests to other nodes itself (the epoll loops): TryHandle
  // then answers a request for another shard by filling it in (and returning nullopt) instead
  // of leaving the request to Handle, which would forward it with a blocking call.
  ForwardPlan* forward = nullptr;
};

// A request to relay to another node (Request::forward): where to, in which order, and what to
// add to it. The front end sends the request unchanged plus `headers`, takes the first member's
// answer, and on a transport failure (refused, reset, timed out after kForwardTimeout) tries
// the next member; then hands the outcome to Service::Relayed or Service::RelayFailed.
struct ForwardPlan {
  int shard = -1;                    // -1: nothing to forward
  std::vector<std::string> members;  // "host:port": live members first (PlanForward)
  // X-Kvs-Hops, X-Kvs-Epoch and X-Request-Id as sent by Service::Forward.
  std::vector<std::pair<std::string_view, std::string>> headers;
  std::chrono::steady_clock::time_point start;  // when TryHandle took the request
  // How long to wait for the answer; 0: the front end's default (kForwardTimeout).
  std::chrono::milliseconds answer_timeout{0};
};

// Who may do what (issue 12). Both off by default, as in the SPEC.
struct Security {
  // Node-to-node proof required on every /internal/ path when set and enabled; not owned.
  auth::ClusterAuth* cluster = nullptr;
  // When not empty: view PUT/DELETE, add-member and reshard need "Authorization: Bearer <it>".
  std::string admin_token;
};

// Headers carrying Request::hops and Request::sender_epoch between nodes.
inline constexpr char kHopsHeader[] = "X-Kvs-Hops";
inline constexpr char kEpochHeader[] = "X-Kvs-Epoch";

// A response header beyond the fixed ones (the value holds no CR or LF).
struct ExtraHeader {
  std::string_view name;
  std::string value;
};

struct Response {
  int status = 200;
  std::string body;
  std::string_view content_type = "application/json";
  std::string_view allow;  // for 405: the methods the path accepts
  // Extra headers, e.g. a reshard's report (empty for almost every answer: no allocation).
  std::vector<ExtraHeader> headers;
  // The request's id, sent back as X-Request-Id (front ends add it when not empty).
  RequestId request_id;
  // Non-zero: the answer acknowledges a write that must be durable first; the front end holds
  // it until Service::journal() reports this log position durable (or answers
  // StorageFailure() if the log failed).
  uint64_t durable_lsn = 0;
  // Relayed from another node (Service::Forward): the `path` label of the latency histogram.
  bool forwarded = false;
  // For the access log: the node that answered a forwarded request, "shard N: none answered"
  // when forwarding failed, "" when served here.
  std::string forwarded_to;

  void AddHeader(std::string_view name, std::string value) {
    headers.push_back(ExtraHeader{name, std::move(value)});
  }
};

struct Limits {
  size_t max_body_bytes = 2 * 1024 * 1024;
  size_t max_value_bytes = 1024 * 1024;
  // Node-to-node batches carry many values (escaped), so /internal/ gets more room.
  size_t max_internal_body_bytes = 256 * 1024 * 1024;

  size_t BodyLimitFor(std::string_view target) const {
    return target.starts_with("/internal/") ? max_internal_body_bytes : max_body_bytes;
  }
};

// The contract's fixed key-length limit (SPEC §4), in characters.
inline constexpr size_t kMaxKeyLength = 50;

// {"error":error,"message":"Error in <method>"}
Response ErrorResponse(int status, std::string_view error, std::string_view method);
// 405 with the Allow header: `allow` lists the methods the path accepts.
Response MethodNotAllowed(std::string_view method, std::string_view allow);

class Service {
 public:
  // Time a client write waits for a reshard barrier to lift before 503.
  static constexpr std::chrono::milliseconds kWriteBarrierWait{15000};
  // Time allowed to the owning shard to answer a forwarded request (it may be waiting for
  // dependencies or a barrier itself).
  static constexpr std::chrono::milliseconds kForwardTimeout{25000};
  // A node forwarded a request under a newer layout than ours: time we wait to adopt it
  // (it is being committed, or comes with the next heartbeat) before routing.
  static constexpr std::chrono::milliseconds kLayoutCatchUpWait{3000};
  // Time a client request waits for the node's recovery from disk to end before 503.
  static constexpr std::chrono::milliseconds kRecoveryWait{2000};
  // Time a write's answer waits for its log record's fsync before 503.
  static constexpr std::chrono::milliseconds kDurableWait{10000};

  Service(store::Store& store, cluster::ClusterState& cluster, cluster::FailureDetector& detector,
          replication::Replicator& replicator, replication::Coordinator& coordinator,
          replication::Reconfigurator& reconfigurator, net::PeerClient& peers, Metrics& metrics,
          Limits limits, storage::Journal* journal = nullptr, Security security = {});

  // Serves the request; may block (forwarding, dependency and barrier waits, node-to-node
  // work).
  Response Handle(const Request& request);
  // Serves the request only if that needs no waiting: a key-value request for a key this
  // node's shard owns, with its dependencies applied and no reshard barrier up. nullopt
  // (with nothing done) otherwise: the caller then runs Handle() where blocking is fine.
  std::optional<Response> TryHandle(const Request& request);
  // The answer to a request relayed per `plan` (TryHandle filled it): `member` answered
  // `status` with `body`. Counts and logs it as Handle would have.
  Response Relayed(const Request& request, const ForwardPlan& plan, int status, std::string body,
                   const std::string& member);
  // No member of the plan answered: the 503 Handle would have given (counted and logged).
  // `last_error` names the last member tried and what went wrong.
  Response RelayFailed(const Request& request, const ForwardPlan& plan,
                       const std::string& last_error, net::CallFailure failure);
  const Limits& limits() const { return limits_; }
  // The node's journal, or null (memory mode): front ends release answers with durable_lsn set
  // once it reports them durable.
  storage::Journal* journal() const { return journal_; }
  // What a front end that sends the replication broadcasts itself needs: the replicator (to
  // drive its senders) and the cluster credential its calls are signed with (null: none).
  replication::Replicator& replicator() const { return replicator_; }
  const auth::ClusterAuth* cluster_auth() const {
    return security_.cluster != nullptr && security_.cluster->enabled() ? security_.cluster
                                                                        : nullptr;
  }
  // While true (recovery from disk), /health and /metrics are served; node-to-node calls get
  // 503 with a JSON reason, and client requests wait up to kRecoveryWait, then 503.
  void SetRecovering(bool recovering) { recovering_.store(recovering, std::memory_order_release); }
  // The answer to a write whose log record was not durable within kDurableWait (503, JSON).
  static Response DurabilityTimeout(std::string_view method);
  // The answer to a write whose log record could not be written (507, JSON).
  Response StorageFailure(std::string_view method) const;
  // Each peer's answer to GET /status?scope=cluster is bounded by this.
  static constexpr std::chrono::milliseconds kStatusPeerTimeout{1000};
  // This node's /status figures (GET /status renders them).
  NodeStatus Status() const;
  // Requests timed so far (the /status traffic window, the latency histogram).
  const RequestStats& request_stats() const { return stats_; }
  // kvs.log.requests: which client requests get an access-log line (kvs.access). Set before
  // serving.
  void SetRequestLog(RequestLogMode mode) { request_log_ = mode; }

 private:
  std::optional<Response> Run(const Request& request, bool may_block);
  // Counts, times and logs an answered request (the end of Run, Relayed and RelayFailed).
  void Record(const Request& request, Response& response,
              std::chrono::steady_clock::time_point start, uint64_t pulls_before);
  // Where a request for `shard` goes: its members other than this node, live ones first, each
  // group rotated to start at this node's member of that shard (ClusterState::ForwardStart);
  // an error answer instead when the request was forwarded too often or the shard is unknown.
  std::variant<ForwardPlan, Response> PlanForward(int shard, const Request& request);
  // The answer when no member of `shard` answered (logged, counted by failure kind).
  Response ForwardFailure(const Request& request, int shard, const std::string& last_error,
                          net::CallFailure failure);
  // Without `may_block`: hands the request to the front end's forwarding (Request::forward) if
  // it has one, else leaves it to Handle (would-block).
  Response Defer(int shard, const Request& request);
  // The kvs.log.requests line for an answered client request (it applies the mode: none for
  // node-to-node calls, none for a success with "errors").
  void LogRequest(const Request& request, const Response& response, int64_t micros) const;
  // The 401 answer when the request lacks a credential its path needs (node-to-node proof on
  // /internal/, the admin token on view changes, add-member and reshard); nullopt otherwise.
  std::optional<Response> CheckCredentials(const Request& request);
  Response Route(const Request& request, bool may_block);
  Response HandleKeyValue(const Request& request, std::string_view encoded_key, bool may_block);
  // Sends the request, unchanged, to a member of `shard` (live ones first, then the others)
  // and relays its answer; 503 when none answers.
  Response Forward(int shard, const Request& request);
  Response HandleView(std::string_view method, std::string_view body);
  Response HandleShard(const Request& request, std::string_view rest, bool may_block);
  Response HandleAddMember(std::string_view id_text, std::string_view body);
  Response HandleReshard(std::string_view body);
  Response HandleHealth() const;
  // GET /status (this node) and GET /status?scope=cluster (every node, asked concurrently).
  // GET /: the status page (status_page.h), static; any other method 405.
  Response HandleStatusPage(std::string_view method) const;
  Response HandleStatus(std::string_view method, std::string_view target);
  Response ClusterStatus();
  static Response RecoveringResponse(std::string_view method);
  // With fsync=always a write's answer waits for its log record: here (`may_block`), or on the
  // front end (durable_lsn set on the response).
  Response AfterWrite(Response response, const replication::OpResult& result, bool may_block,
                      std::string_view method);
  // POST /internal/replicate: applies a peer's broadcast batch; without `may_block`, only if
  // the apply buffer is free at once (else the would-block answer).
  Response HandleReplicate(std::string_view body, bool may_block);
  // Node-to-node endpoints under /internal/ (not part of the public contract).
  Response HandleInternal(std::string_view method, std::string_view path, std::string_view query,
                          std::string_view body);

  store::Store& store_;
  cluster::ClusterState& cluster_;
  cluster::FailureDetector& detector_;
  replication::Replicator& replicator_;
  replication::Coordinator& coordinator_;
  replication::Reconfigurator& reconfigurator_;
  net::PeerClient& peers_;
  Metrics& metrics_;
  const Limits limits_;
  storage::Journal* const journal_;
  const Security security_;
  std::atomic<bool> recovering_{false};
  std::atomic<int64_t> last_auth_log_ms_{0};  // refusals are logged at most every 10 s
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  RequestStats stats_;
  RequestLogMode request_log_ = RequestLogMode::kOff;
};

}  // namespace kvs::api
