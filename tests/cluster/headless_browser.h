// A headless Chromium driven over the DevTools protocol (a WebSocket, POCO's client), for tests
// of pages kvs serves: load a URL, evaluate JavaScript in it, take a screenshot, and collect
// every console error, uncaught exception and browser-logged error (a failed resource load
// included) the page produced. Chromium runs in its own process group with a throwaway profile
// directory; the destructor kills the group and removes the directory, also when a test fails.
// Not thread-safe: one test thread owns a HeadlessBrowser.
#ifndef KVS_TESTS_CLUSTER_HEADLESS_BROWSER_H_
#define KVS_TESTS_CLUSTER_HEADLESS_BROWSER_H_

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "Poco/Dynamic/Var.h"
#include "Poco/JSON/Object.h"

namespace Poco::Net {
class HTTPClientSession;
class WebSocket;
}  // namespace Poco::Net

namespace kvs::cluster_test {

class HeadlessBrowser {
 public:
  // The Chromium binary: $KVS_CHROMIUM, else chromium on PATH; "" when there is none.
  static std::string FindChromium();

  // Starts Chromium (headless, no sandbox: tests run as root) and attaches to its page.
  // nullptr with `error` set when it cannot (no binary, no DevTools port within 30 s, ...).
  static std::unique_ptr<HeadlessBrowser> Start(std::string* error);
  ~HeadlessBrowser();
  HeadlessBrowser(const HeadlessBrowser&) = delete;
  HeadlessBrowser& operator=(const HeadlessBrowser&) = delete;

  // Navigates and waits for the load event (bounded).
  bool Navigate(const std::string& url, std::string* error);

  // Runs `expression` in the page; its value (returnByValue: JSON-able values only), or nullopt
  // with `error` set on an exception or a timeout.
  std::optional<Poco::Dynamic::Var> Evaluate(const std::string& expression, std::string* error);

  // Writes a PNG of the viewport to `path`.
  bool Screenshot(const std::filesystem::path& path, std::string* error);

  // Every error the page has shown so far, one line each (console.error/assert, uncaught
  // exceptions, browser log entries of level error such as a failed load).
  const std::vector<std::string>& errors() const { return errors_; }

  // What Chromium wrote to stderr (for failure messages).
  std::string Log() const;

 private:
  HeadlessBrowser() = default;
  // Sends a DevTools command and reads messages until its answer (events are recorded on the
  // way); the answer's "result", or null with `error` set.
  Poco::JSON::Object::Ptr Call(const std::string& method, Poco::JSON::Object::Ptr params,
                               std::chrono::milliseconds timeout, std::string* error);
  // Reads one whole message (a WebSocket message may come in several frames).
  bool ReadMessage(std::chrono::milliseconds timeout, std::string* message, std::string* error);
  void RecordEvent(const Poco::JSON::Object::Ptr& message);

  pid_t pid_ = -1;
  std::filesystem::path profile_dir_;
  std::unique_ptr<Poco::Net::HTTPClientSession> session_;
  std::unique_ptr<Poco::Net::WebSocket> socket_;
  int next_id_ = 1;
  std::vector<std::string> errors_;
  bool loaded_ = false;  // Page.loadEventFired seen since the last Navigate
};

}  // namespace kvs::cluster_test

#endif  // KVS_TESTS_CLUSTER_HEADLESS_BROWSER_H_
