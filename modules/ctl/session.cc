#include "kvs/ctl/session.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "Poco/Exception.h"
#include "Poco/JSON/Array.h"
#include "Poco/JSON/Object.h"
#include "kvs/ctl/json.h"
#include "kvs/json/json_writer.h"

namespace kvs::ctl {
namespace {

bool Contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

bool ReadStringArray(const Poco::JSON::Object& object, const std::string& name,
                     std::vector<std::string>* out, std::string* error) {
  out->clear();
  if (!object.has(name)) return true;
  const Poco::JSON::Array::Ptr array = object.getArray(name);
  if (array.isNull()) {
    *error = "\"" + name + "\" is not an array";
    return false;
  }
  for (size_t i = 0; i < array->size(); ++i) {
    const Poco::Dynamic::Var item = array->get(static_cast<unsigned>(i));
    if (!item.isString()) {
      *error = "\"" + name + "\" holds a non-string";
      return false;
    }
    out->push_back(item.extract<std::string>());
  }
  return true;
}

}  // namespace

std::string EncodeSession(const Session& session) {
  json::JsonObject out;
  out.Str("causal-metadata", session.metadata);
  out.StrArray("view", session.view);
  out.StrArray("nodes", session.aliases);
  return out.Finish() + "\n";
}

std::optional<Session> DecodeSession(std::string_view text, std::string* error) {
  const Poco::JSON::Object::Ptr object = ParseJsonObject(text, error);
  if (object.isNull()) return std::nullopt;
  try {
    Session session;
    if (object->has("causal-metadata")) {
      const Poco::Dynamic::Var metadata = object->get("causal-metadata");
      if (!metadata.isString()) {
        *error = "\"causal-metadata\" is not a string";
        return std::nullopt;
      }
      session.metadata = metadata.extract<std::string>();
    }
    if (!ReadStringArray(*object, "view", &session.view, error) ||
        !ReadStringArray(*object, "nodes", &session.aliases, error)) {
      return std::nullopt;
    }
    return session;
  } catch (const Poco::Exception& e) {
    *error = "not JSON: " + e.displayText();
  } catch (const std::exception& e) {
    *error = std::string("not JSON: ") + e.what();
  }
  return std::nullopt;
}

SessionCheck CheckSession(const Session& session, const std::string& node) {
  if (session.empty()) return SessionCheck::kSend;
  if (Contains(session.view, node) || Contains(session.aliases, node)) return SessionCheck::kSend;
  return SessionCheck::kNeedView;
}

bool SameCluster(const Session& session, const std::vector<std::string>& node_view) {
  // A session that recorded no view cannot tell: treat it as foreign (start afresh is safe).
  return std::any_of(node_view.begin(), node_view.end(),
                     [&](const std::string& member) { return Contains(session.view, member); });
}

void RecordExchange(Session* session, const std::string& node, const std::string& metadata,
                    const std::vector<std::string>& node_view) {
  session->metadata = metadata;
  if (!node_view.empty()) session->view = node_view;
  if (!Contains(session->aliases, node)) session->aliases.push_back(node);
  // Bounded: the oldest names go first.
  constexpr size_t kMaxAliases = 64;
  if (session->aliases.size() > kMaxAliases) {
    session->aliases.erase(session->aliases.begin(),
                           session->aliases.end() - static_cast<std::ptrdiff_t>(kMaxAliases));
  }
}

std::string DefaultSessionFile() {
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') return "";
  return std::string(home) + "/.kvsctl/session.json";
}

std::optional<Session> LoadSession(const std::string& path, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT || !std::filesystem::exists(path)) return Session{};
    *error = "cannot read session file " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().find_first_not_of(" \t\r\n") == std::string::npos) return Session{};
  std::string why;
  auto session = DecodeSession(text.str(), &why);
  if (!session)
    *error = "session file " + path + " is corrupt (" + why + "); remove it or use --no-session";
  return session;
}

bool SaveSession(const std::string& path, const Session& session, std::string* error) {
  const std::filesystem::path file(path);
  const std::filesystem::path dir = file.has_parent_path() ? file.parent_path() : ".";
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      *error = "cannot create " + dir.string() + ": " + ec.message();
      return false;
    }
    ::chmod(dir.c_str(), 0700);
  }
  std::string temp = (dir / ("." + file.filename().string() + ".XXXXXX")).string();
  const int fd = ::mkstemp(temp.data());  // mode 0600
  if (fd < 0) {
    *error = "cannot write session file in " + dir.string() + ": " + std::strerror(errno);
    return false;
  }
  const std::string text = EncodeSession(session);
  size_t written = 0;
  bool ok = true;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    written += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok || ::rename(temp.c_str(), path.c_str()) != 0) {
    *error = "cannot write session file " + path + ": " + std::strerror(errno);
    ::unlink(temp.c_str());
    return false;
  }
  return true;
}

std::vector<std::string> SplitView(std::string_view view) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= view.size()) {
    size_t comma = view.find(',', start);
    if (comma == std::string_view::npos) comma = view.size();
    std::string_view item = view.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    start = comma + 1;
  }
  return out;
}

}  // namespace kvs::ctl
