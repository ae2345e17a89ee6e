// kvsctl: the operators' command line for kvs (README "Operating kvs"). This file is the
// socket half: an HTTP(S) client with a timeout on every call, the commands, and the progress
// display of long operations. Parsing, the session file and the tables live in modules/ctl.
// Single-threaded but for the long operations, whose request runs on a second thread while
// the main thread polls the node's /status.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "Poco/Exception.h"
#include "Poco/JSON/Array.h"
#include "Poco/JSON/Object.h"
#include "Poco/Net/Context.h"
#include "Poco/Net/HTTPClientSession.h"
#include "Poco/Net/HTTPRequest.h"
#include "Poco/Net/HTTPResponse.h"
#include "Poco/Net/HTTPSClientSession.h"
#include "Poco/Net/NetException.h"
#include "Poco/Net/SSLException.h"
#include "Poco/Net/SSLManager.h"
#include "Poco/StreamCopier.h"
#include "kvs/ctl/args.h"
#include "kvs/ctl/json.h"
#include "kvs/ctl/session.h"
#include "kvs/ctl/status.h"
#include "kvs/ctl/table.h"
#include "kvs/json/json_writer.h"

namespace {

using kvs::ctl::Options;
using Clock = std::chrono::steady_clock;

struct Reply {
  int status = 0;  // 0: no answer (see error)
  std::string body;
  std::string error;  // transport failure
};

// One request per connection; every call bounded by its timeout (connect, send, receive).
class Client {
 public:
  explicit Client(const Options& options) : options_(options) {
    if (options.tls()) {
      Poco::Net::initializeSSL();
      Poco::Net::Context::Params params;
      params.caLocation = options.cacert;
      params.certificateFile = options.cert;
      params.privateKeyFile = options.key;
      // The node is always verified: against --cacert, or the system's CAs without one.
      params.verificationMode = Poco::Net::Context::VERIFY_RELAXED;
      params.loadDefaultCAs = options.cacert.empty();
      context_ = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params);
    }
  }

  Reply Send(const std::string& method, const std::string& target,
             const std::optional<std::string>& body, int64_t timeout_ms) const {
    Reply reply;
    try {
      std::unique_ptr<Poco::Net::HTTPClientSession> session;
      if (context_.isNull()) {
        session = std::make_unique<Poco::Net::HTTPClientSession>(options_.host, options_.port);
      } else {
        session =
            std::make_unique<Poco::Net::HTTPSClientSession>(options_.host, options_.port, context_);
      }
      const Poco::Timespan timeout(timeout_ms * 1000);
      session->setTimeout(timeout, timeout, timeout);
      Poco::Net::HTTPRequest request(method, target, Poco::Net::HTTPMessage::HTTP_1_1);
      request.setKeepAlive(false);
      request.set("User-Agent", "kvsctl");
      if (!options_.token.empty()) request.set("Authorization", "Bearer " + options_.token);
      if (body) {
        request.setContentType("application/json");
        request.setContentLength(static_cast<std::streamsize>(body->size()));
      }
      std::ostream& out = session->sendRequest(request);
      if (body) out << *body;
      Poco::Net::HTTPResponse response;
      std::istream& in = session->receiveResponse(response);
      Poco::StreamCopier::copyToString(in, reply.body);
      reply.status = static_cast<int>(response.getStatus());
    } catch (const Poco::TimeoutException&) {
      reply.error = "timed out after " + std::to_string(timeout_ms) + " ms";
    } catch (const Poco::Net::ConnectionRefusedException&) {
      reply.error = "connection refused";
    } catch (const Poco::Net::SSLException& e) {
      reply.error = "TLS failed: " + e.displayText();
    } catch (const Poco::Exception& e) {
      reply.error = e.displayText();
    } catch (const std::exception& e) {
      reply.error = e.what();
    }
    if (reply.status == 0 && reply.error.empty()) reply.error = "no answer";
    return reply;
  }

 private:
  const Options& options_;
  Poco::Net::Context::Ptr context_;
};

// The answer as a JSON object, null when it is none (the callers then show what they can).
Poco::JSON::Object::Ptr ParseObject(const std::string& body) {
  std::string ignored;
  return kvs::ctl::ParseJsonObject(body, &ignored);
}

std::string Member(const Poco::JSON::Object::Ptr& object, const std::string& name) {
  if (object.isNull() || !object->has(name)) return "";
  const Poco::Dynamic::Var v = object->get(name);
  if (v.isEmpty()) return "";
  try {
    return v.convert<std::string>();
  } catch (const std::exception&) {
    return "";
  }
}

// One line, no control characters: server text goes to a terminal.
std::string OneLine(std::string text) {
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  if (text.size() > 1000) text = text.substr(0, 1000) + "...";
  return text;
}

class Ctl {
 public:
  explicit Ctl(const Options& options) : options_(options), client_(options) {}

  int Run() {
    const std::string& c = options_.command;
    if (c == "get" || c == "put" || c == "delete") return KeyValue();
    if (c == "view") return View();
    if (c == "shards") return Shards();
    if (c == "shard-id") return ShardId();
    if (c == "add-member" || c == "reshard") return LongOperation();
    if (c == "status") return Status();
    if (c == "health") return Health();
    if (c == "metrics") return Metrics();
    return Fail(kvs::ctl::kExitUsage, "unknown command " + c);
  }

 private:
  int Fail(int code, const std::string& reason) const {
    std::cerr << "kvsctl: " << options_.node << ": " << OneLine(reason) << std::endl;
    return code;
  }

  // The error line and exit code for a reply that is not 2xx. With --json the server's own
  // answer goes to stdout as well, for scripts.
  int FailReply(const Reply& reply, const std::string& what, const std::string& hint = "") const {
    if (reply.status == 0) return Fail(kvs::ctl::kExitUnreachable, what + ": " + reply.error);
    if (options_.json && !reply.body.empty()) std::cout << reply.body << std::endl;
    const auto object = ParseObject(reply.body);
    std::string reason = Member(object, "error");
    if (reason.empty()) reason = Member(object, "message");
    if (reason.empty()) reason = reply.body.empty() ? "no body" : reply.body;
    std::string prefix = what + ": " + std::to_string(reply.status);
    if (reply.status == 401 || reply.status == 403) {
      prefix += options_.token.empty() ? " (no --token given)" : " (token refused)";
    }
    return Fail(kvs::ctl::ExitCodeForStatus(reply.status), prefix + " " + reason + hint);
  }

  Reply Call(const std::string& method, const std::string& target,
             const std::optional<std::string>& body = std::nullopt) const {
    return client_.Send(method, target, body, options_.timeout_ms);
  }

  // The node's view, or nullopt (reply filled) when it could not be had.
  std::optional<std::vector<std::string>> FetchView(Reply* reply) const {
    *reply = Call("GET", "/key-value-store-view");
    if (reply->status != 200) return std::nullopt;
    return kvs::ctl::SplitView(Member(ParseObject(reply->body), "view"));
  }

  int KeyValue() {
    const std::string& key = options_.operands[0];
    kvs::ctl::Session session;
    std::string path;
    bool use_session = options_.use_session;
    if (use_session) {
      path = options_.session_file.empty() ? kvs::ctl::DefaultSessionFile() : options_.session_file;
      if (path.empty()) {
        std::cerr << "kvsctl: note: HOME is not set; no causal session (use --session FILE)\n";
        use_session = false;
      }
    }
    std::vector<std::string> fetched_view;
    if (use_session) {
      std::string error;
      auto loaded = kvs::ctl::LoadSession(path, &error);
      if (!loaded) return Fail(kvs::ctl::kExitUsage, error);
      session = std::move(*loaded);
      if (kvs::ctl::CheckSession(session, options_.node) == kvs::ctl::SessionCheck::kNeedView) {
        Reply reply;
        const auto view = FetchView(&reply);
        if (!view) return FailReply(reply, "GET /key-value-store-view");
        fetched_view = *view;
        if (!kvs::ctl::SameCluster(session, *view)) {
          std::cerr << "kvsctl: note: " << options_.node << " is not of the cluster session "
                    << path << " came from; starting a new session\n";
          session = {};
        }
      }
    }
    kvs::json::JsonObject body;
    if (options_.command == "put") body.Str("value", options_.operands[1]);
    if (!session.metadata.empty()) body.Str("causal-metadata", session.metadata);
    const std::string method = options_.command == "get"   ? "GET"
                               : options_.command == "put" ? "PUT"
                                                           : "DELETE";
    const std::string target = "/key-value-store/" + Escape(key);
    const Reply reply = Call(method, target, body.Finish());
    if (reply.status == 503 && !session.metadata.empty()) {
      // The metadata may name writes this cluster never saw (a cluster rebuilt at the same
      // addresses): the node waited for them in vain. Say how to get out.
      return FailReply(reply, method + " " + key,
                       " (if the cluster was rebuilt since session " + path +
                           " was written, remove that file; --no-session skips it)");
    }
    if (reply.status < 200 || reply.status >= 300) return FailReply(reply, method + " " + key);
    const auto object = ParseObject(reply.body);
    if (object.isNull())
      return Fail(kvs::ctl::kExitRefused, method + " " + key + ": answer is not JSON");
    if (use_session && object->has("causal-metadata")) {
      if (session.view.empty() && fetched_view.empty()) {
        Reply view_reply;
        if (const auto view = FetchView(&view_reply)) fetched_view = *view;
      }
      kvs::ctl::RecordExchange(&session, options_.node, Member(object, "causal-metadata"),
                               fetched_view);
      std::string error;
      if (!kvs::ctl::SaveSession(path, session, &error)) {
        std::cerr << "kvsctl: warning: " << error << "\n";
      }
    }
    if (options_.json) {
      std::cout << reply.body << std::endl;
    } else if (options_.command == "get") {
      std::cout << Member(object, "value") << std::endl;
    } else {
      std::cout << Member(object, "message") << " (shard " << Member(object, "shard-id") << ")"
                << std::endl;
    }
    return kvs::ctl::kExitOk;
  }

  // Percent-encodes what a URL path segment cannot hold as it is.
  static std::string Escape(const std::string& text) {
    static const char* const kHex = "0123456789ABCDEF";
    std::string out;
    for (const char ch : text) {
      const auto c = static_cast<unsigned char>(ch);
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
        out += ch;
      } else {
        out += '%';
        out += kHex[c >> 4];
        out += kHex[c & 15];
      }
    }
    return out;
  }

  int View() {
    if (options_.operands.empty()) {
      Reply reply;
      const auto view = FetchView(&reply);
      if (!view) return FailReply(reply, "GET /key-value-store-view");
      if (options_.json) {
        std::cout << reply.body << std::endl;
      } else {
        for (const std::string& member : *view) std::cout << member << "\n";
      }
      return kvs::ctl::kExitOk;
    }
    const std::string method = options_.operands[0] == "add" ? "PUT" : "DELETE";
    kvs::json::JsonObject body;
    body.Str("socket-address", options_.operands[1]);
    const Reply reply = Call(method, "/key-value-store-view", body.Finish());
    if (reply.status < 200 || reply.status >= 300) {
      return FailReply(reply, "view " + options_.operands[0] + " " + options_.operands[1]);
    }
    PrintMessage(reply);
    return kvs::ctl::kExitOk;
  }

  void PrintMessage(const Reply& reply) const {
    if (options_.json) {
      std::cout << reply.body << std::endl;
    } else {
      std::cout << Member(ParseObject(reply.body), "message") << std::endl;
    }
  }

  struct ShardInfo {
    int64_t id = 0;
    std::vector<std::string> members;
    int64_t keys = -1;
  };

  // Every shard with members and key count; nullopt with the exit code in *code on failure.
  std::optional<std::vector<ShardInfo>> FetchShards(int* code) const {
    const Reply ids = Call("GET", "/key-value-store-shard/shard-ids");
    if (ids.status != 200) {
      *code = FailReply(ids, "GET shard-ids");
      return std::nullopt;
    }
    std::vector<ShardInfo> shards;
    const auto object = ParseObject(ids.body);
    Poco::JSON::Array::Ptr array = object.isNull() ? nullptr : object->getArray("shard-ids");
    if (array.isNull()) {
      *code = Fail(kvs::ctl::kExitRefused, "GET shard-ids: no shard-ids array in the answer");
      return std::nullopt;
    }
    for (size_t i = 0; i < array->size(); ++i) {
      ShardInfo shard;
      try {
        shard.id = array->get(static_cast<unsigned>(i)).convert<int64_t>();
      } catch (const std::exception&) {
        continue;
      }
      const std::string id = std::to_string(shard.id);
      const Reply members = Call("GET", "/key-value-store-shard/shard-id-members/" + id);
      if (members.status != 200) {
        *code = FailReply(members, "GET shard-id-members/" + id);
        return std::nullopt;
      }
      const auto m = ParseObject(members.body);
      if (auto list = m.isNull() ? nullptr : m->getArray("shard-id-members"); !list.isNull()) {
        for (size_t j = 0; j < list->size(); ++j) {
          shard.members.push_back(list->get(static_cast<unsigned>(j)).convert<std::string>());
        }
      }
      const Reply count = Call("GET", "/key-value-store-shard/shard-id-key-count/" + id);
      if (count.status != 200) {
        *code = FailReply(count, "GET shard-id-key-count/" + id);
        return std::nullopt;
      }
      try {
        shard.keys = std::stoll(Member(ParseObject(count.body), "shard-id-key-count"));
      } catch (const std::exception&) {
        shard.keys = -1;
      }
      shards.push_back(std::move(shard));
    }
    return shards;
  }

  // The node's shard: a number, "none" (in no shard), or nullopt with *code set on failure.
  std::optional<std::string> FetchNodeShard(int* code) const {
    const Reply reply = Call("GET", "/key-value-store-shard/node-shard-id");
    if (reply.status == 200) return Member(ParseObject(reply.body), "shard-id");
    if (reply.status == 404) return std::string("none");
    *code = FailReply(reply, "GET node-shard-id");
    return std::nullopt;
  }

  int Shards() {
    int code = kvs::ctl::kExitOk;
    const auto own = FetchNodeShard(&code);
    if (!own) return code;
    const auto shards = FetchShards(&code);
    if (!shards) return code;
    if (options_.json) {
      std::string list = "[";
      for (const ShardInfo& shard : *shards) {
        kvs::json::JsonObject item;
        item.Int("shard-id", shard.id)
            .StrArray("members", shard.members)
            .Int("key-count", shard.keys);
        if (list.size() > 1) list += ",";
        list += item.Finish();
      }
      list += "]";
      kvs::json::JsonObject out;
      out.Str("node", options_.node);
      if (*own == "none") {
        out.Null("node-shard-id");
      } else {
        out.RawJson("node-shard-id", *own);
      }
      out.RawJson("shards", list);
      std::cout << out.Finish() << std::endl;
      return kvs::ctl::kExitOk;
    }
    kvs::ctl::Table table({"SHARD", "KEYS", "MEMBERS"});
    for (const ShardInfo& shard : *shards) {
      std::string members;
      for (const std::string& m : shard.members) members += (members.empty() ? "" : ", ") + m;
      std::string id = std::to_string(shard.id);
      if (id == *own) id += " *";
      table.AddRow({id, shard.keys < 0 ? "?" : std::to_string(shard.keys), members});
    }
    std::cout << table.Render();
    std::cout << "* shard of " << options_.node
              << (*own == "none" ? std::string(" (none: it is in no shard)") : std::string())
              << std::endl;
    return kvs::ctl::kExitOk;
  }

  int ShardId() {
    const Reply reply = Call("GET", "/key-value-store-shard/node-shard-id");
    if (reply.status != 200) return FailReply(reply, "GET node-shard-id");
    if (options_.json) {
      std::cout << reply.body << std::endl;
    } else {
      std::cout << Member(ParseObject(reply.body), "shard-id") << std::endl;
    }
    return kvs::ctl::kExitOk;
  }

  int Status() {
    const Reply reply = Call("GET", "/status?scope=cluster");
    if (reply.status == 404) {
      return Fail(kvs::ctl::kExitRefused, "GET /status: 404 (this kvs-server has no /status)");
    }
    if (reply.status != 200) return FailReply(reply, "GET /status");
    if (options_.json) {
      std::cout << reply.body << std::endl;
      return kvs::ctl::kExitOk;
    }
    std::string error;
    const auto cluster = kvs::ctl::ParseClusterStatus(reply.body, &error);
    if (!cluster) return Fail(kvs::ctl::kExitRefused, "GET /status: " + error);
    std::cout << kvs::ctl::RenderStatus(*cluster);
    return kvs::ctl::kExitOk;
  }

  int Health() {
    const std::string target = options_.operands.empty() ? "/health" : "/health/ready";
    const Reply reply = Call("GET", target);
    if (reply.status != 200) return FailReply(reply, "GET " + target);
    if (options_.json) {
      std::cout << reply.body << std::endl;
      return kvs::ctl::kExitOk;
    }
    const auto object = ParseObject(reply.body);
    if (object.isNull()) return Fail(kvs::ctl::kExitRefused, "GET /health: answer is not JSON");
    std::vector<std::string> names;
    object->getNames(names);
    for (const std::string& name : names) {
      std::cout << name << ": " << Member(object, name) << "\n";
    }
    std::cout.flush();
    return kvs::ctl::kExitOk;
  }

  int Metrics() {
    const Reply reply = Call("GET", "/metrics");
    if (reply.status != 200) return FailReply(reply, "GET /metrics");
    if (options_.json) {
      std::cout << kvs::ctl::PrometheusToJson(reply.body) << std::endl;
    } else {
      std::cout << reply.body << std::flush;
    }
    return kvs::ctl::kExitOk;
  }

  // reshard N / add-member SHARD ADDR: the request runs on its own thread (it returns when the
  // operation is done); meanwhile the node's /status is polled for its "operation".
  int LongOperation() {
    const bool reshard = options_.command == "reshard";
    std::string method_target, body;
    if (reshard) {
      method_target = "/key-value-store-shard/reshard";
      body = "{\"shard-count\":" + options_.operands[0] + "}";
    } else {
      method_target = "/key-value-store-shard/add-member/" + options_.operands[0];
      kvs::json::JsonObject object;
      object.Str("socket-address", options_.operands[1]);
      body = object.Finish();
    }
    // The operation's own call: as long as it runs (bounded at 1 h), never shorter than --timeout.
    const int64_t op_timeout = std::max<int64_t>(options_.timeout_ms, 3600LL * 1000);
    const auto start = Clock::now();
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Reply reply;
    std::thread worker([&] {
      Reply r = client_.Send("PUT", method_target, body, op_timeout);
      std::lock_guard lock(mu);
      reply = std::move(r);
      done = true;
      cv.notify_all();
    });
    const bool tty = ::isatty(2) == 1;
    Progress progress(tty, options_.json);
    bool status_available = true;
    while (true) {
      {
        std::unique_lock lock(mu);
        if (cv.wait_for(lock, std::chrono::milliseconds(tty ? 200 : 500), [&] { return done; })) {
          break;
        }
      }
      const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
      kvs::ctl::Operation op{options_.command, "waiting", 0, 0, 0};
      if (status_available) {
        const Reply status = Call("GET", "/status");
        if (status.status == 404) status_available = false;
        std::string error;
        if (status.status == 200) {
          if (const auto node = kvs::ctl::ParseNodeStatus(status.body, &error);
              node && node->operation) {
            op = *node->operation;
          }
        }
      }
      progress.Show(op, elapsed);
    }
    worker.join();
    progress.Clear();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const std::string what =
        reshard ? "reshard " + options_.operands[0]
                : "add-member " + options_.operands[0] + " " + options_.operands[1];
    if (reply.status < 200 || reply.status >= 300) return FailReply(reply, what);
    return Summary(reshard, seconds);
  }

  // Progress on stderr: a bar redrawn in place on a terminal, plain lines otherwise (a line
  // when the phase or count changes, at most one per second). Nothing with --json... but
  // lines still go to stderr, which scripts keep apart.
  class Progress {
   public:
    Progress(bool tty, bool json) : tty_(tty), json_(json) {}
    void Show(const kvs::ctl::Operation& op, double elapsed) {
      if (tty_) {
        std::cerr << "\r" << kvs::ctl::RenderProgress(op, elapsed, 30) << "\033[K" << std::flush;
        drawn_ = true;
        return;
      }
      const std::string key =
          op.kind + op.phase + std::to_string(op.done) + "/" + std::to_string(op.total);
      if (key == last_key_ || elapsed - last_time_ < 1.0) return;
      if (json_ && op.phase == "waiting") return;
      last_key_ = key;
      last_time_ = elapsed;
      std::cerr << "kvsctl: " << kvs::ctl::RenderProgress(op, elapsed, 0) << std::endl;
    }
    void Clear() {
      if (drawn_) std::cerr << "\r\033[K" << std::flush;
    }

   private:
    bool tty_, json_;
    bool drawn_ = false;
    std::string last_key_;
    double last_time_ = -10;
  };

  int Summary(bool reshard, double seconds) {
    char took[32];
    std::snprintf(took, sizeof took, "%.1f", seconds);
    int code = kvs::ctl::kExitOk;
    Reply view_reply;
    const auto view = FetchView(&view_reply);
    const auto shards = FetchShards(&code);
    if (!shards) return code;
    std::string counts;
    for (const ShardInfo& shard : *shards) {
      counts += (counts.empty() ? "" : "/") + std::to_string(shard.keys);
    }
    if (options_.json) {
      kvs::json::JsonObject out;
      out.Str("operation", options_.command);
      out.RawJson("seconds", took);
      out.Int("nodes", view ? static_cast<int64_t>(view->size()) : -1);
      out.Int("shards", static_cast<int64_t>(shards->size()));
      std::vector<int64_t> keys;
      for (const ShardInfo& shard : *shards) keys.push_back(shard.keys);
      out.IntArray("keys-per-shard", keys);
      if (!reshard) {
        out.Int("shard-id", std::stoll(options_.operands[0]));
        out.Str("socket-address", options_.operands[1]);
      }
      std::cout << out.Finish() << std::endl;
      return kvs::ctl::kExitOk;
    }
    if (reshard) {
      std::cout << "reshard to " << options_.operands[0]
                << (options_.operands[0] == "1" ? " shard" : " shards") << " done in " << took
                << " s: " << (view ? std::to_string(view->size()) : std::string("?"))
                << (view && view->size() == 1 ? " node" : " nodes") << ", keys per shard " << counts
                << std::endl;
    } else {
      size_t members = 0;
      int64_t keys = -1;
      for (const ShardInfo& shard : *shards) {
        if (std::to_string(shard.id) == options_.operands[0]) {
          members = shard.members.size();
          keys = shard.keys;
        }
      }
      std::cout << "add-member " << options_.operands[1] << " to shard " << options_.operands[0]
                << " done in " << took << " s: the shard has " << members << " members and " << keys
                << " keys" << std::endl;
    }
    return kvs::ctl::kExitOk;
  }

  const Options& options_;
  Client client_;
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  const auto parsed =
      kvs::ctl::ParseArgs(args, [](const std::string& name) -> std::optional<std::string> {
        const char* value = std::getenv(name.c_str());
        if (value == nullptr) return std::nullopt;
        return std::string(value);
      });
  if (!parsed.options) {
    std::cerr << "kvsctl: " << parsed.error << std::endl;
    return kvs::ctl::kExitUsage;
  }
  if (parsed.options->help) {
    std::cout << kvs::ctl::HelpText();
    return kvs::ctl::kExitOk;
  }
  try {
    int code = kvs::ctl::kExitOk;
    {
      std::unique_ptr<Ctl> ctl;
      try {
        ctl = std::make_unique<Ctl>(*parsed.options);
      } catch (const Poco::Exception& e) {
        // Local files: --cacert / --cert / --key.
        std::cerr << "kvsctl: TLS set-up failed: " << e.displayText() << std::endl;
        return kvs::ctl::kExitUsage;
      }
      code = ctl->Run();
    }
    if (parsed.options->tls()) Poco::Net::uninitializeSSL();
    return code;
  } catch (const Poco::Exception& e) {
    std::cerr << "kvsctl: " << parsed.options->node << ": " << e.displayText() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "kvsctl: " << parsed.options->node << ": " << e.what() << std::endl;
  }
  return kvs::ctl::kExitUnreachable;
}
