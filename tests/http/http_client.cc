#include "http_client.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sstream>

#include "Poco/Exception.h"
#include "Poco/JSON/Parser.h"
#include "Poco/Net/HTTPRequest.h"
#include "Poco/Net/HTTPResponse.h"
#include "Poco/Net/HTTPSClientSession.h"
#include "Poco/Net/NetException.h"
#include "Poco/Net/SSLManager.h"
#include "Poco/Net/SecureStreamSocket.h"
#include "Poco/Net/SocketAddress.h"
#include "Poco/Net/StreamSocket.h"
#include "Poco/StreamCopier.h"
#include "Poco/Timespan.h"
#include "kvs/json/json_writer.h"
#include "server_process.h"

namespace kvs::http_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr size_t kMaxShownBody = 600;

Poco::Timespan ToTimespan(milliseconds timeout) {
  return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(timeout.count()) * 1000);
}

std::string ToLower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string Trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return "";
  const auto last = text.find_last_not_of(" \t");
  return std::string(text.substr(first, last - first + 1));
}

bool IsJsonMediaType(const std::string& content_type) {
  return ToLower(Trim(std::string_view(content_type).substr(0, content_type.find(';')))) ==
         "application/json";
}

// Re-serializes a parsed object with members in name order.
std::string Canonical(const Poco::JSON::Object::Ptr& object) {
  std::ostringstream out;
  object->stringify(out);
  return out.str();
}

// Parses the status line and headers in `head` (without the blank line) into `response`.
bool ParseHead(std::string_view head, HttpResponse* response) {
  const auto line_end = head.find("\r\n");
  const std::string_view status_line = head.substr(0, line_end);
  int status = 0;
  if (std::sscanf(std::string(status_line).c_str(), "HTTP/%*d.%*d %d", &status) != 1) {
    return false;
  }
  response->status = status;
  size_t pos = line_end == std::string_view::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    auto next = head.find("\r\n", pos);
    if (next == std::string_view::npos) next = head.size();
    const std::string_view line = head.substr(pos, next - pos);
    const auto colon = line.find(':');
    if (colon != std::string_view::npos) {
      response->headers[ToLower(std::string(line.substr(0, colon)))] = Trim(line.substr(colon + 1));
    }
    pos = next + 2;
  }
  return true;
}

// Decodes a chunked body. Returns true once the last chunk has arrived.
bool Dechunk(std::string_view data, std::string* body) {
  body->clear();
  size_t pos = 0;
  while (true) {
    const auto line_end = data.find("\r\n", pos);
    if (line_end == std::string_view::npos) return false;
    const size_t size =
        std::strtoul(std::string(data.substr(pos, line_end - pos)).c_str(), nullptr, 16);
    pos = line_end + 2;
    if (size == 0) return true;  // Trailers, if any, are not needed.
    if (data.size() < pos + size + 2) return false;
    body->append(data.substr(pos, size));
    pos += size + 2;
  }
}

::testing::AssertionResult CheckEnvelope(const HttpResponse& response, int status,
                                         Poco::JSON::Object::Ptr* object) {
  if (!response.error.empty() || response.status != status) {
    return ::testing::AssertionFailure()
           << "expected status " << status << ", got " << Describe(response);
  }
  if (!IsJsonMediaType(response.Header("content-type"))) {
    return ::testing::AssertionFailure()
           << "Content-Type is not application/json: " << Describe(response);
  }
  *object = ParseObject(response.body);
  if (object->isNull()) {
    return ::testing::AssertionFailure() << "body is not a JSON object: " << Describe(response);
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult CompareMembers(const Poco::JSON::Object::Ptr& actual,
                                          std::string_view expected_json,
                                          const HttpResponse& response) {
  const Poco::JSON::Object::Ptr expected = ParseObject(std::string(expected_json));
  if (expected.isNull()) {
    return ::testing::AssertionFailure()
           << "test bug: expected JSON does not parse: " << expected_json;
  }
  const std::string want = Canonical(expected);
  const std::string got = Canonical(actual);
  if (want != got) {
    return ::testing::AssertionFailure()
           << "body members differ\n  expected: " << want << "\n  actual:   " << got
           << "\n  response: " << Describe(response);
  }
  return ::testing::AssertionSuccess();
}

}  // namespace

std::string HttpResponse::Header(const std::string& lower_case_name) const {
  const auto it = headers.find(lower_case_name);
  return it == headers.end() ? "" : it->second;
}

namespace {
Poco::Net::Context::Ptr& ClientContext() {
  static Poco::Net::Context::Ptr context;
  return context;
}

// TLS sessions to resume, by "host:port": a fresh connection per request (the cluster tests'
// client) then costs a resumed handshake, not a full one with the certificate checked again
// (about 1 ms less per request here). Belongs to ClientContext(): cleared when it changes.
struct SessionCache {
  std::mutex mu;
  std::map<std::string, Poco::Net::Session::Ptr> sessions;
  int resumed = 0;
};
SessionCache& Sessions() {
  static SessionCache cache;
  return cache;
}
std::string SessionKey(const std::string& host, uint16_t port) {
  return host + ":" + std::to_string(port);
}
}  // namespace

void SetClientTls(const std::string& ca, const std::string& cert, const std::string& key,
                  bool check_name) {
  static std::once_flag init;
  std::call_once(init, [] { Poco::Net::initializeSSL(); });
  {
    std::lock_guard lock(Sessions().mu);
    Sessions().sessions.clear();
  }
  if (ca.empty()) {
    ClientContext() = nullptr;
    return;
  }
  Poco::Net::Context::Params params;
  params.caLocation = ca;
  params.certificateFile = cert;
  params.privateKeyFile = key;
  params.verificationMode = Poco::Net::Context::VERIFY_RELAXED;
  params.loadDefaultCAs = false;
  ClientContext() = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params);
  ClientContext()->enableExtendedCertificateVerification(check_name);
  ClientContext()->enableSessionCache(true);
}

int ResumedTlsSessions() {
  std::lock_guard lock(Sessions().mu);
  return Sessions().resumed;
}

bool ClientTlsOn() {
  SecureSuiteEnv();  // a secure suite with TLS sets the client up on first use
  return !ClientContext().isNull();
}

Poco::Net::StreamSocket ConnectRaw(uint16_t port, milliseconds timeout) {
  Poco::Net::StreamSocket socket;
  if (ClientTlsOn()) socket = Poco::Net::SecureStreamSocket(ClientContext());
  socket.connect(Poco::Net::SocketAddress("127.0.0.1", port), ToTimespan(timeout));
  return socket;
}

std::unique_ptr<Poco::Net::HTTPClientSession> MakeSession(const std::string& host, uint16_t port) {
  if (ClientTlsOn()) {
    Poco::Net::Session::Ptr resume;
    {
      std::lock_guard lock(Sessions().mu);
      const auto found = Sessions().sessions.find(SessionKey(host, port));
      if (found != Sessions().sessions.end()) resume = found->second;
    }
    return std::make_unique<Poco::Net::HTTPSClientSession>(host, port, ClientContext(), resume);
  }
  return std::make_unique<Poco::Net::HTTPClientSession>(host, port);
}

HttpClient::HttpClient(uint16_t port, milliseconds timeout) {
  session_ = MakeSession("127.0.0.1", port);
  session_->setTimeout(ToTimespan(timeout), ToTimespan(timeout), ToTimespan(timeout));
  session_->setKeepAlive(true);
}

HttpResponse Exchange(Poco::Net::HTTPClientSession& session, std::string_view method,
                      std::string_view target, const std::optional<std::string>& body) {
  HttpResponse result;
  try {
    Poco::Net::HTTPRequest request(std::string(method), std::string(target),
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    request.setKeepAlive(session.getKeepAlive());
    // The suites also run with kvs.admin.token set (tests/http/CMakeLists.txt: secure.*): the
    // client then sends it, as an operator's client would.
    if (const std::string token = SecureSuiteAdminToken(); !token.empty()) {
      request.set("Authorization", "Bearer " + token);
    }
    if (body) {
      request.setContentType("application/json");
      request.setContentLength(static_cast<std::streamsize>(body->size()));
    } else if (method == "PUT" || method == "POST" || method == "PATCH" || method == "DELETE") {
      request.setContentLength(0);
    }
    std::ostream& out = session.sendRequest(request);
    if (body) out.write(body->data(), static_cast<std::streamsize>(body->size()));
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    result.status = static_cast<int>(response.getStatus());
    for (const auto& [name, value] : response) result.headers[ToLower(name)] = value;
    Poco::StreamCopier::copyToString(in, result.body);
    if (auto* https = dynamic_cast<Poco::Net::HTTPSClientSession*>(&session)) {
      // Taken now, not at connect: TLS 1.3 tickets arrive after the handshake.
      Poco::Net::SecureStreamSocket socket(https->socket());
      Poco::Net::Session::Ptr ticket = socket.currentSession();
      std::lock_guard lock(Sessions().mu);
      if (socket.sessionWasReused()) ++Sessions().resumed;
      if (!ticket.isNull()) {
        Sessions().sessions[SessionKey(https->getHost(), https->getPort())] = ticket;
      }
    }
  } catch (const Poco::TimeoutException& e) {
    result.status = 0;
    result.error = e.displayText();
    result.timed_out = true;
  } catch (const Poco::Exception& e) {
    result.status = 0;
    result.error = e.displayText();
  } catch (const std::exception& e) {
    result.status = 0;
    result.error = e.what();
  }
  return result;
}

HttpResponse HttpClient::Send(std::string_view method, std::string_view target,
                              const std::optional<std::string>& body) {
  HttpResponse result = Exchange(*session_, method, target, body);
  if (!result.error.empty()) session_->reset();
  return result;
}

HttpResponse SendRequest(uint16_t port, std::string_view method, std::string_view target,
                         const std::optional<std::string>& body, milliseconds timeout) {
  HttpClient client(port, timeout);
  return client.Send(method, target, body);
}

HttpResponse RawExchange(uint16_t port, std::string_view bytes, milliseconds timeout) {
  HttpResponse result;
  Poco::Net::StreamSocket socket;
  try {
    socket = ConnectRaw(port, timeout);
    socket.setSendTimeout(ToTimespan(timeout));
    socket.setReceiveTimeout(ToTimespan(timeout));
  } catch (const Poco::Exception& e) {
    result.error = "connect: " + e.displayText();
    return result;
  }
  try {
    size_t sent = 0;
    while (sent < bytes.size()) {
      const int n = socket.sendBytes(
          bytes.data() + sent, static_cast<int>(std::min<size_t>(bytes.size() - sent, 65536)));
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
  } catch (const Poco::Exception& e) {
    // The server may answer and close before reading everything; still read its answer.
    result.error = "send: " + e.displayText() + "; ";
  }

  const auto give_up = steady_clock::now() + timeout;
  std::string data;
  size_t head_end = std::string::npos;
  bool complete = false;
  char buffer[16384];
  try {
    while (!complete) {
      if (steady_clock::now() >= give_up) {
        result.timed_out = true;
        break;
      }
      const int n = socket.receiveBytes(buffer, sizeof(buffer));
      if (n <= 0) break;  // Peer closed.
      data.append(buffer, static_cast<size_t>(n));
      if (head_end == std::string::npos) {
        head_end = data.find("\r\n\r\n");
        if (head_end == std::string::npos) continue;
        if (!ParseHead(std::string_view(data).substr(0, head_end), &result)) {
          result.error += "malformed response head";
          result.status = 0;
          return result;
        }
      }
      const std::string_view rest = std::string_view(data).substr(head_end + 4);
      if (ToLower(result.Header("transfer-encoding")).find("chunked") != std::string::npos) {
        complete = Dechunk(rest, &result.body);
      } else if (const std::string length = result.Header("content-length"); !length.empty()) {
        const size_t want = std::stoul(length);
        complete = rest.size() >= want;
        result.body = std::string(rest.substr(0, want));
      } else {
        result.body = std::string(rest);
      }
    }
  } catch (const Poco::TimeoutException& e) {
    result.error += "receive: " + e.displayText();
    result.timed_out = true;
  } catch (const Poco::Exception& e) {
    result.error += "receive: " + e.displayText();
  }
  const bool read_to_close =
      result.Header("content-length").empty() && result.Header("transfer-encoding").empty();
  if (head_end == std::string::npos) {
    result.status = 0;
    if (!data.empty()) result.error += " partial answer: " + data.substr(0, 200);
  } else if (complete || (read_to_close && !result.timed_out)) {
    result.error.clear();  // A whole answer arrived; earlier send errors do not matter.
  } else {
    result.error += " incomplete body";
  }
  return result;
}

std::string JsonQuote(std::string_view text) {
  std::string out;
  json::AppendJsonString(out, text);
  return out;
}

std::string PutBody(std::string_view value, std::optional<std::string_view> metadata) {
  std::string body = "{\"value\":" + JsonQuote(value);
  if (metadata) body += ",\"causal-metadata\":" + JsonQuote(*metadata);
  return body + "}";
}

std::string MetadataBody(std::string_view metadata) {
  return "{\"causal-metadata\":" + JsonQuote(metadata) + "}";
}

std::string AddressBody(std::string_view address) {
  return "{\"socket-address\":" + JsonQuote(address) + "}";
}

Poco::JSON::Object::Ptr ParseObject(const std::string& body) {
  try {
    Poco::JSON::Parser parser;
    const Poco::Dynamic::Var parsed = parser.parse(body);
    if (parsed.type() == typeid(Poco::JSON::Object::Ptr)) {
      return parsed.extract<Poco::JSON::Object::Ptr>();
    }
  } catch (const Poco::Exception&) {
  }
  return nullptr;
}

std::optional<double> MetricValue(std::string_view metrics_text, std::string_view name) {
  std::optional<double> total;
  size_t pos = 0;
  while (pos < metrics_text.size()) {
    size_t end = metrics_text.find('\n', pos);
    if (end == std::string_view::npos) end = metrics_text.size();
    const std::string_view line = metrics_text.substr(pos, end - pos);
    pos = end + 1;
    if (!line.starts_with(name) || line.size() == name.size()) continue;
    const char next = line[name.size()];
    if (next != ' ' && next != '{') continue;
    const size_t space = line.rfind(' ');
    if (space == std::string_view::npos) continue;
    const std::string number(line.substr(space + 1));
    char* parse_end = nullptr;
    const double value = std::strtod(number.c_str(), &parse_end);
    if (parse_end == number.c_str()) continue;
    total = total.value_or(0) + value;
  }
  return total;
}

std::string Describe(const HttpResponse& response) {
  std::ostringstream out;
  out << "[status " << response.status;
  if (response.timed_out) out << ", timed out";
  if (!response.error.empty()) out << ", transport error: " << response.error;
  out << ", Content-Type: \"" << response.Header("content-type") << "\", body ("
      << response.body.size() << " bytes): " << response.body.substr(0, kMaxShownBody)
      << (response.body.size() > kMaxShownBody ? "..." : "") << "]";
  return out.str();
}

::testing::AssertionResult IsJson(const HttpResponse& response, int status,
                                  std::string_view expected_json) {
  Poco::JSON::Object::Ptr actual;
  if (auto envelope = CheckEnvelope(response, status, &actual); !envelope) return envelope;
  return CompareMembers(actual, expected_json, response);
}

::testing::AssertionResult IsJsonWithMetadata(const HttpResponse& response, int status,
                                              std::string_view expected_json,
                                              std::string* metadata) {
  Poco::JSON::Object::Ptr actual;
  if (auto envelope = CheckEnvelope(response, status, &actual); !envelope) return envelope;
  const Poco::Dynamic::Var value = actual->get("causal-metadata");
  if (!actual->has("causal-metadata") || !value.isString() ||
      value.extract<std::string>().empty()) {
    return ::testing::AssertionFailure()
           << "\"causal-metadata\" is not a non-empty string: " << Describe(response);
  }
  *metadata = value.extract<std::string>();
  actual->remove("causal-metadata");
  return CompareMembers(actual, expected_json, response);
}

::testing::AssertionResult IsError(const HttpResponse& response, int status,
                                   std::string_view message, std::string_view error_prefix) {
  Poco::JSON::Object::Ptr actual;
  if (auto envelope = CheckEnvelope(response, status, &actual); !envelope) return envelope;
  const Poco::Dynamic::Var error = actual->get("error");
  const Poco::Dynamic::Var got_message = actual->get("message");
  if (actual->size() != 2 || !error.isString() || !got_message.isString()) {
    return ::testing::AssertionFailure()
           << "body is not {\"error\":string,\"message\":string}: " << Describe(response);
  }
  if (got_message.extract<std::string>() != message) {
    return ::testing::AssertionFailure()
           << "message should be \"" << message << "\": " << Describe(response);
  }
  if (!error.extract<std::string>().starts_with(error_prefix)) {
    return ::testing::AssertionFailure()
           << "error should start with \"" << error_prefix << "\": " << Describe(response);
  }
  return ::testing::AssertionSuccess();
}

}  // namespace kvs::http_test
