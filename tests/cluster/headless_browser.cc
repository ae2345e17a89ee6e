#include "headless_browser.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "Poco/Base64Decoder.h"
#include "Poco/Buffer.h"
#include "Poco/Exception.h"
#include "Poco/JSON/Array.h"
#include "Poco/JSON/Parser.h"
#include "Poco/Net/HTTPClientSession.h"
#include "Poco/Net/HTTPRequest.h"
#include "Poco/Net/HTTPResponse.h"
#include "Poco/Net/WebSocket.h"
#include "Poco/StreamCopier.h"

namespace kvs::cluster_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr milliseconds kStartTimeout{30000};
constexpr milliseconds kCallTimeout{20000};
constexpr int kMaxMessageBytes = 64 * 1024 * 1024;  // a screenshot's base64 fits

Poco::Timespan ToTimespan(milliseconds timeout) {
  return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(timeout.count()) * 1000);
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string ToJson(const Poco::JSON::Object& object) {
  std::ostringstream out;
  object.stringify(out);
  return out.str();
}

}  // namespace

std::string HeadlessBrowser::FindChromium() {
  if (const char* configured = std::getenv("KVS_CHROMIUM"); configured != nullptr && *configured) {
    return configured;
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    for (const char* name : {"chromium", "chromium-browser"}) {
      const std::filesystem::path candidate = std::filesystem::path(dir) / name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    }
  }
  return "";
}

std::unique_ptr<HeadlessBrowser> HeadlessBrowser::Start(std::string* error) {
  const std::string binary = FindChromium();
  if (binary.empty()) {
    *error = "no chromium on PATH (apt-get install chromium, or set KVS_CHROMIUM)";
    return nullptr;
  }
  std::unique_ptr<HeadlessBrowser> browser(new HeadlessBrowser());
  char dir[] = "/tmp/kvs-chromium-XXXXXX";
  if (::mkdtemp(dir) == nullptr) {
    *error = "mkdtemp failed";
    return nullptr;
  }
  browser->profile_dir_ = dir;
  const std::string log_path = (browser->profile_dir_ / "chromium.log").string();
  const std::vector<std::string> args = {binary,
                                         "--headless=new",
                                         "--no-sandbox",
                                         "--disable-gpu",
                                         "--disable-dev-shm-usage",
                                         "--no-first-run",
                                         "--no-default-browser-check",
                                         "--disable-extensions",
                                         "--disable-background-networking",
                                         "--disable-component-update",
                                         "--ignore-certificate-errors",  // secure runs: a test CA
                                         "--remote-debugging-address=127.0.0.1",
                                         "--remote-debugging-port=0",
                                         "--window-size=1280,1000",
                                         "--user-data-dir=" + browser->profile_dir_.string(),
                                         "about:blank"};
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    *error = "fork failed";
    return nullptr;
  }
  if (pid == 0) {
    ::setpgid(0, 0);  // its own group: the destructor kills Chromium's helpers with it
    const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int null = ::open("/dev/null", O_RDONLY);
    if (log >= 0) {
      ::dup2(log, 1);
      ::dup2(log, 2);
    }
    if (null >= 0) ::dup2(null, 0);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  browser->pid_ = pid;

  // Chromium writes the port it chose to <profile>/DevToolsActivePort.
  const std::filesystem::path port_file = browser->profile_dir_ / "DevToolsActivePort";
  const auto deadline = steady_clock::now() + kStartTimeout;
  int port = 0;
  while (port == 0) {
    std::ifstream in(port_file);
    if (in >> port && port > 0) break;
    port = 0;
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      browser->pid_ = -1;
      *error = "chromium exited at start: " + browser->Log();
      return nullptr;
    }
    if (steady_clock::now() >= deadline) {
      *error = "chromium opened no DevTools port within 30 s: " + browser->Log();
      return nullptr;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }

  try {
    // The page target Chromium opened (about:blank).
    Poco::Net::HTTPClientSession http("127.0.0.1", static_cast<Poco::UInt16>(port));
    http.setTimeout(ToTimespan(milliseconds(5000)));
    Poco::Net::HTTPRequest list(Poco::Net::HTTPRequest::HTTP_GET, "/json/list",
                                Poco::Net::HTTPMessage::HTTP_1_1);
    http.sendRequest(list);
    Poco::Net::HTTPResponse list_response;
    std::string body;
    Poco::StreamCopier::copyToString(http.receiveResponse(list_response), body);
    const auto targets = Poco::JSON::Parser().parse(body).extract<Poco::JSON::Array::Ptr>();
    std::string path;
    for (size_t i = 0; i < targets->size() && path.empty(); ++i) {
      const auto target = targets->getObject(static_cast<unsigned>(i));
      if (target->optValue<std::string>("type", "") != "page") continue;
      const std::string url = target->optValue<std::string>("webSocketDebuggerUrl", "");
      const size_t slash = url.find('/', url.find("//") + 2);
      if (slash != std::string::npos) path = url.substr(slash);
    }
    if (path.empty()) {
      *error = "no page target in /json/list: " + body;
      return nullptr;
    }
    browser->session_ = std::make_unique<Poco::Net::HTTPClientSession>(
        "127.0.0.1", static_cast<Poco::UInt16>(port));
    browser->session_->setTimeout(ToTimespan(milliseconds(5000)));
    Poco::Net::HTTPRequest upgrade(Poco::Net::HTTPRequest::HTTP_GET, path,
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    Poco::Net::HTTPResponse upgrade_response;
    browser->socket_ =
        std::make_unique<Poco::Net::WebSocket>(*browser->session_, upgrade, upgrade_response);
    browser->socket_->setMaxPayloadSize(kMaxMessageBytes);
  } catch (const Poco::Exception& e) {
    *error = "DevTools connection: " + e.displayText();
    return nullptr;
  }
  for (const char* domain : {"Runtime.enable", "Log.enable", "Page.enable"}) {
    if (browser->Call(domain, nullptr, kCallTimeout, error).isNull()) return nullptr;
  }
  return browser;
}

HeadlessBrowser::~HeadlessBrowser() {
  socket_.reset();
  session_.reset();
  if (pid_ > 0) {
    ::kill(-pid_, SIGTERM);
    const auto deadline = steady_clock::now() + milliseconds(5000);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (steady_clock::now() >= deadline) {
        ::kill(-pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    ::kill(-pid_, SIGKILL);  // helpers that outlived the main process
  }
  std::error_code ec;
  if (!profile_dir_.empty()) std::filesystem::remove_all(profile_dir_, ec);
}

std::string HeadlessBrowser::Log() const {
  std::string log = ReadFile(profile_dir_ / "chromium.log");
  if (log.size() > 4000) log = "..." + log.substr(log.size() - 4000);
  return log;
}

bool HeadlessBrowser::ReadMessage(milliseconds timeout, std::string* message, std::string* error) {
  try {
    socket_->setReceiveTimeout(ToTimespan(timeout));
    Poco::Buffer<char> buffer(0);
    while (true) {
      int flags = 0;
      const int n = socket_->receiveFrame(buffer, flags);
      if (n == 0 && flags == 0) {
        *error = "DevTools connection closed";
        return false;
      }
      const int opcode = flags & Poco::Net::WebSocket::FRAME_OP_BITMASK;
      if (opcode == Poco::Net::WebSocket::FRAME_OP_PING ||
          opcode == Poco::Net::WebSocket::FRAME_OP_PONG) {
        buffer.resize(0);
        continue;
      }
      if (flags & Poco::Net::WebSocket::FRAME_FLAG_FIN) break;
    }
    message->assign(buffer.begin(), buffer.size());
    return true;
  } catch (const Poco::Exception& e) {
    *error = "DevTools read: " + e.displayText();
    return false;
  }
}

void HeadlessBrowser::RecordEvent(const Poco::JSON::Object::Ptr& message) {
  const std::string method = message->optValue<std::string>("method", "");
  const Poco::JSON::Object::Ptr params = message->getObject("params");
  if (params.isNull()) return;
  if (method == "Page.loadEventFired") {
    loaded_ = true;
  } else if (method == "Runtime.consoleAPICalled") {
    const std::string type = params->optValue<std::string>("type", "");
    if (type != "error" && type != "assert") return;
    std::string text = "console." + type + ":";
    if (const auto args = params->getArray("args"); !args.isNull()) {
      for (size_t i = 0; i < args->size(); ++i) {
        const auto arg = args->getObject(static_cast<unsigned>(i));
        if (arg.isNull()) continue;
        text += " " + (arg->has("value") ? arg->get("value").toString()
                                         : arg->optValue<std::string>("description", "?"));
      }
    }
    errors_.push_back(text);
  } else if (method == "Runtime.exceptionThrown") {
    const auto details = params->getObject("exceptionDetails");
    std::string text = "uncaught exception";
    if (!details.isNull()) {
      const auto exception = details->getObject("exception");
      text += ": " + (!exception.isNull() ? exception->optValue<std::string>("description", "")
                                          : details->optValue<std::string>("text", ""));
    }
    errors_.push_back(text);
  } else if (method == "Log.entryAdded") {
    const auto entry = params->getObject("entry");
    if (entry.isNull() || entry->optValue<std::string>("level", "") != "error") return;
    errors_.push_back("log (" + entry->optValue<std::string>("source", "?") +
                      "): " + entry->optValue<std::string>("text", "") + " " +
                      entry->optValue<std::string>("url", ""));
  }
}

Poco::JSON::Object::Ptr HeadlessBrowser::Call(const std::string& method,
                                              Poco::JSON::Object::Ptr params, milliseconds timeout,
                                              std::string* error) {
  const int id = next_id_++;
  Poco::JSON::Object request;
  request.set("id", id);
  request.set("method", method);
  request.set("params",
              params.isNull() ? Poco::JSON::Object::Ptr(new Poco::JSON::Object()) : params);
  try {
    const std::string text = ToJson(request);
    socket_->sendFrame(text.data(), static_cast<int>(text.size()),
                       Poco::Net::WebSocket::FRAME_TEXT);
  } catch (const Poco::Exception& e) {
    *error = method + ": " + e.displayText();
    return nullptr;
  }
  const auto deadline = steady_clock::now() + timeout;
  while (true) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
    if (left.count() <= 0) {
      *error = method + ": no answer within " + std::to_string(timeout.count()) + " ms";
      return nullptr;
    }
    std::string text;
    if (!ReadMessage(left, &text, error)) return nullptr;
    Poco::JSON::Object::Ptr message;
    try {
      message = Poco::JSON::Parser().parse(text).extract<Poco::JSON::Object::Ptr>();
    } catch (const Poco::Exception& e) {
      *error = method + ": unparsable DevTools message: " + e.displayText();
      return nullptr;
    }
    if (!message->has("id")) {
      RecordEvent(message);
      continue;
    }
    if (message->getValue<int>("id") != id) continue;
    if (const auto failure = message->getObject("error"); !failure.isNull()) {
      *error = method + ": " + failure->optValue<std::string>("message", "failed");
      return nullptr;
    }
    const auto result = message->getObject("result");
    return result.isNull() ? Poco::JSON::Object::Ptr(new Poco::JSON::Object()) : result;
  }
}

bool HeadlessBrowser::Navigate(const std::string& url, std::string* error) {
  loaded_ = false;
  Poco::JSON::Object::Ptr params = new Poco::JSON::Object();
  params->set("url", url);
  const auto result = Call("Page.navigate", params, kCallTimeout, error);
  if (result.isNull()) return false;
  if (const std::string failed = result->optValue<std::string>("errorText", ""); !failed.empty()) {
    *error = "navigating to " + url + ": " + failed;
    return false;
  }
  // The load event arrives as an event: read messages until it did (bounded).
  const auto deadline = steady_clock::now() + kCallTimeout;
  while (!loaded_) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
    if (left.count() <= 0) {
      *error =
          url + " did not finish loading within " + std::to_string(kCallTimeout.count()) + " ms";
      return false;
    }
    std::string text;
    if (!ReadMessage(left, &text, error)) return false;
    try {
      const auto message = Poco::JSON::Parser().parse(text).extract<Poco::JSON::Object::Ptr>();
      if (!message->has("id")) RecordEvent(message);
    } catch (const Poco::Exception& e) {
      *error = "unparsable DevTools message: " + e.displayText();
      return false;
    }
  }
  return true;
}

std::optional<Poco::Dynamic::Var> HeadlessBrowser::Evaluate(const std::string& expression,
                                                            std::string* error) {
  Poco::JSON::Object::Ptr params = new Poco::JSON::Object();
  params->set("expression", expression);
  params->set("returnByValue", true);
  params->set("awaitPromise", true);
  const auto result = Call("Runtime.evaluate", params, kCallTimeout, error);
  if (result.isNull()) return std::nullopt;
  if (const auto details = result->getObject("exceptionDetails"); !details.isNull()) {
    *error = "evaluating `" + expression + "`: " + details->optValue<std::string>("text", "");
    return std::nullopt;
  }
  const auto value = result->getObject("result");
  if (value.isNull() || !value->has("value")) return Poco::Dynamic::Var();
  return value->get("value");
}

bool HeadlessBrowser::Screenshot(const std::filesystem::path& path, std::string* error) {
  Poco::JSON::Object::Ptr params = new Poco::JSON::Object();
  params->set("format", "png");
  params->set("captureBeyondViewport", true);
  const auto result = Call("Page.captureScreenshot", params, kCallTimeout, error);
  if (result.isNull()) return false;
  const std::string data = result->optValue<std::string>("data", "");
  std::istringstream encoded(data);
  Poco::Base64Decoder decoder(encoded);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  Poco::StreamCopier::copyStream(decoder, out);
  if (!out || data.empty()) {
    *error = "cannot write the screenshot to " + path.string();
    return false;
  }
  return true;
}

}  // namespace kvs::cluster_test
