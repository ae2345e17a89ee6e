// HTTP helpers for black-box tests of kvs-server: requests with bounded timeouts (over POCO or
// a raw socket) and assertions on status, Content-Type and JSON bodies (member order ignored).
// An HttpClient is used by one thread at a time; the free functions are thread-safe.
#ifndef KVS_TESTS_HTTP_HTTP_CLIENT_H_
#define KVS_TESTS_HTTP_HTTP_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "Poco/JSON/Object.h"
#include "Poco/Net/HTTPClientSession.h"
#include "Poco/Net/StreamSocket.h"
#include "gtest/gtest.h"

namespace kvs::http_test {

inline constexpr std::chrono::milliseconds kIoTimeout{5000};

struct HttpResponse {
  int status = 0;                              // 0: no HTTP response arrived (see `error`).
  std::map<std::string, std::string> headers;  // Names lower-cased.
  std::string body;
  std::string error;       // Transport or parse failure, if any.
  bool timed_out = false;  // Nothing more arrived within the timeout.

  // The header's value, or "" if absent.
  std::string Header(const std::string& lower_case_name) const;
};

// TLS for every client of the harness (HttpClient, SendRequest, RawExchange): with a CA set,
// they speak HTTPS and verify the server against it; with a certificate and key too, they
// present it (mutual TLS). Not thread-safe: set it before any request (a test's SetUp, or the
// secure-suite environment: SecureSuiteEnv() sets it). Empty `ca` turns TLS off again.
// `check_name` false: any certificate of the CA is accepted, whatever host it names.
void SetClientTls(const std::string& ca, const std::string& cert = "", const std::string& key = "",
                  bool check_name = true);
bool ClientTlsOn();
// How many of the harness' HTTPS connections so far resumed an earlier TLS session (the clients
// keep the last session per host:port and offer it on their next connection there).
int ResumedTlsSessions();

// A connected socket to 127.0.0.1:`port` for raw tests: TLS when ClientTlsOn(). Throws
// Poco::Exception when it cannot connect.
Poco::Net::StreamSocket ConnectRaw(uint16_t port, std::chrono::milliseconds timeout = kIoTimeout);

// A session to host:port: HTTPS when ClientTlsOn().
std::unique_ptr<Poco::Net::HTTPClientSession> MakeSession(const std::string& host, uint16_t port);

// A keep-alive connection to 127.0.0.1:`port`.
class HttpClient {
 public:
  explicit HttpClient(uint16_t port, std::chrono::milliseconds timeout = kIoTimeout);

  // Sends `method target` with `body` (if any; also for GET and DELETE) and reads the whole
  // answer. Never throws: failures are reported in HttpResponse::error.
  HttpResponse Send(std::string_view method, std::string_view target,
                    const std::optional<std::string>& body = std::nullopt);

 private:
  std::unique_ptr<Poco::Net::HTTPClientSession> session_;
};

// Sends one request on `session` (keep-alive as the session says) and reads the whole answer.
// Never throws: failures are reported in HttpResponse::error with status 0.
HttpResponse Exchange(Poco::Net::HTTPClientSession& session, std::string_view method,
                      std::string_view target, const std::optional<std::string>& body);

// One request on a fresh connection.
HttpResponse SendRequest(uint16_t port, std::string_view method, std::string_view target,
                         const std::optional<std::string>& body = std::nullopt,
                         std::chrono::milliseconds timeout = kIoTimeout);

// Writes `bytes` verbatim on a fresh connection, then reads one HTTP response (until its
// Content-Length, its last chunk, or the peer closing). status is 0 if the peer closed or
// reset the connection without answering, or if no answer came within `timeout` (then
// timed_out is set).
HttpResponse RawExchange(uint16_t port, std::string_view bytes,
                         std::chrono::milliseconds timeout = kIoTimeout);

// A JSON string literal for `text` (quotes included).
std::string JsonQuote(std::string_view text);

// {"value":<value>,"causal-metadata":<metadata>}; the metadata member is left out when
// `metadata` is nullopt.
std::string PutBody(std::string_view value, std::optional<std::string_view> metadata = "");

// {"causal-metadata":<metadata>}.
std::string MetadataBody(std::string_view metadata);

// {"socket-address":<address>}.
std::string AddressBody(std::string_view address);

// The body parsed as a JSON object, or nullptr if it is not one.
Poco::JSON::Object::Ptr ParseObject(const std::string& body);

// One line for failure messages: status, headers of interest and body.
std::string Describe(const HttpResponse& response);

// The value of Prometheus metric `name` in a /metrics body, summed over its label sets (or of
// one series, when `name` includes its labels: `kvs_x{on="loop"}`); nullopt if absent.
std::optional<double> MetricValue(std::string_view metrics_text, std::string_view name);

// Status is `status`, Content-Type is application/json, and the body is a JSON object with
// exactly the members of `expected_json` (any order).
::testing::AssertionResult IsJson(const HttpResponse& response, int status,
                                  std::string_view expected_json);

// As IsJson, but the body must also hold "causal-metadata" as a non-empty string, which is
// stored in *metadata and left out of the comparison.
::testing::AssertionResult IsJsonWithMetadata(const HttpResponse& response, int status,
                                              std::string_view expected_json,
                                              std::string* metadata);

// Status is `status`, Content-Type is application/json, and the body is exactly
// {"error":E,"message":`message`} where E is a string starting with `error_prefix`.
::testing::AssertionResult IsError(const HttpResponse& response, int status,
                                   std::string_view message, std::string_view error_prefix);

}  // namespace kvs::http_test

#endif  // KVS_TESTS_HTTP_HTTP_CLIENT_H_
