#include "host_network.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "Poco/Exception.h"
#include "Poco/JSON/Array.h"
#include "Poco/JSON/Parser.h"
#include "host_command.h"
#include "polling.h"

namespace kvs::cluster_test {
namespace {

using std::chrono::milliseconds;

constexpr char kOwnerPrefix[] = "kvsct-";  // Namespace names and link aliases.
constexpr char kBridgePrefix[] = "kvsbr";  // kvsbr<N>
constexpr char kVethPrefix[] = "kvsv";     // kvsv<N>n<i>
constexpr char kClaimPrefix[] = "kvst";    // kvst<pid>: a bridge before it is renamed.

// A zombie (killed, not yet reaped by its new parent) counts as dead.
bool ProcessAlive(pid_t pid) {
  if (pid <= 0 || (::kill(pid, 0) != 0 && errno == ESRCH)) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const size_t paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'Z';
}

// Parses `ip -j ...` output (a JSON array of objects); empty on any failure.
std::vector<Poco::JSON::Object::Ptr> ParseJsonArray(const std::string& text) {
  std::vector<Poco::JSON::Object::Ptr> out;
  try {
    Poco::JSON::Parser parser;
    const Poco::Dynamic::Var parsed = parser.parse(text);
    if (parsed.type() != typeid(Poco::JSON::Array::Ptr)) return out;
    const auto array = parsed.extract<Poco::JSON::Array::Ptr>();
    for (size_t i = 0; i < array->size(); ++i) {
      if (auto object = array->getObject(static_cast<unsigned>(i)); !object.isNull()) {
        out.push_back(object);
      }
    }
  } catch (const Poco::Exception&) {
  }
  return out;
}

std::string StringField(const Poco::JSON::Object::Ptr& object, const std::string& name) {
  if (!object->has(name)) return "";
  const Poco::Dynamic::Var value = object->get(name);
  return value.isString() ? value.extract<std::string>() : "";
}

struct LinkInfo {
  std::string name;
  std::string alias;
};

std::vector<LinkInfo> ListTestLinks() {
  std::vector<LinkInfo> links;
  const CommandResult result = RunCommand({"ip", "-j", "link", "show"});
  for (const auto& object : ParseJsonArray(result.output)) {
    LinkInfo link{StringField(object, "ifname"), StringField(object, "ifalias")};
    if (link.name.starts_with(kBridgePrefix) || link.name.starts_with(kVethPrefix) ||
        link.name.starts_with(kClaimPrefix)) {
      links.push_back(std::move(link));
    }
  }
  return links;
}

// The pid in "kvsct-<pid>..." (or "kvst<pid>"), or 0.
pid_t PidAfter(const std::string& text, const std::string& prefix) {
  if (!text.starts_with(prefix)) return 0;
  pid_t pid = 0;
  for (size_t i = prefix.size();
       i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
    pid = pid * 10 + (text[i] - '0');
  }
  return pid;
}

// Kills every process inside namespace `name` (they are not ours: wait for them to vanish,
// bounded), then deletes the namespace.
std::string DeleteForeignNamespace(const std::string& name) {
  const CommandResult pids = RunCommand({"ip", "netns", "pids", name});
  std::vector<pid_t> victims;
  std::istringstream in(pids.output);
  for (pid_t pid; in >> pid;) victims.push_back(pid);
  for (pid_t pid : victims) ::kill(pid, SIGKILL);
  Eventually(
      [&] {
        return std::none_of(victims.begin(), victims.end(), [](pid_t pid) {
          return std::filesystem::exists("/proc/" + std::to_string(pid));
        });
      },
      milliseconds(5000), milliseconds(20));
  return Must({"ip", "netns", "del", name});
}

}  // namespace

std::string OwnerTag(pid_t pid) { return kOwnerPrefix + std::to_string(pid); }
std::string OwnerTag() { return OwnerTag(::getpid()); }

std::string NamespaceName(int index, int node) {
  return OwnerTag() + "-" + std::to_string(index) + "-" + std::to_string(node);
}

std::string BridgeName(int index) { return kBridgePrefix + std::to_string(index); }

std::string HostVethName(int index, int node) {
  return kVethPrefix + std::to_string(index) + "n" + std::to_string(node);
}

std::string ClaimName() { return kClaimPrefix + std::to_string(::getpid()); }

// Runs an `ip`/`iptables` command; "" on success, else a description.
std::string Must(const std::vector<std::string>& argv) {
  const CommandResult result = RunCommand(argv);
  return result.ok() ? "" : DescribeCommand(argv, result);
}

std::vector<std::string> ListNamespaces() {
  std::vector<std::string> names;
  const CommandResult result = RunCommand({"ip", "-j", "netns", "list"});
  for (const auto& object : ParseJsonArray(result.output)) {
    names.push_back(StringField(object, "name"));
  }
  return names;
}

bool LinkExists(const std::string& name) {
  return RunCommand({"ip", "link", "show", "dev", name}).ok();
}

std::vector<std::string> ForwardRule(const std::string& bridge, const char* action) {
  return {"iptables", "-w", "5", action, "FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"};
}

int DeleteForwardRules(const std::string& bridge) {
  int deleted = 0;
  while (deleted < 16 && RunCommand(ForwardRule(bridge, "-D")).ok()) ++deleted;
  return deleted;
}

// Bridges named in FORWARD rules "-A FORWARD -i kvsbrX -o kvsbrX -j ACCEPT".
std::vector<std::string> BridgesWithForwardRules() {
  std::vector<std::string> bridges;
  const CommandResult result = RunCommand({"iptables", "-w", "5", "-S", "FORWARD"});
  std::istringstream lines(result.output);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::vector<std::string> w{std::istream_iterator<std::string>(words), {}};
    if (w.size() == 8 && w[0] == "-A" && w[2] == "-i" && w[3].starts_with(kBridgePrefix) &&
        w[4] == "-o" && w[5] == w[3] && w[6] == "-j" && w[7] == "ACCEPT") {
      bridges.push_back(w[3]);
    }
  }
  return bridges;
}

std::string RemoveStaleResources() {
  std::string removed;
  const pid_t self = ::getpid();
  // Links first: deleting a veth is synchronous, deleting its namespace is not.
  const std::vector<LinkInfo> links = ListTestLinks();
  for (const LinkInfo& link : links) {
    pid_t owner = PidAfter(link.alias, kOwnerPrefix);
    if (link.name.starts_with(kClaimPrefix)) owner = PidAfter(link.name, kClaimPrefix);
    // A kvsbr link gets its alias before its name. A kvsv<N>n<i> link gets its alias just after
    // it is created: until then it belongs to whoever owns bridge kvsbr<N>.
    if (owner == 0 && link.name.starts_with(kVethPrefix)) {
      constexpr size_t kAt = sizeof(kVethPrefix) - 1;
      const std::string bridge =
          kBridgePrefix + link.name.substr(kAt, link.name.find('n', kAt) - kAt);
      for (const LinkInfo& other : links) {
        if (other.name == bridge) owner = PidAfter(other.alias, kOwnerPrefix);
      }
    }
    if (owner == self || (owner != 0 && ProcessAlive(owner))) continue;
    const std::string failed = Must({"ip", "link", "del", link.name});
    removed += "link " + link.name + " (alias \"" + link.alias + "\")" +
               (failed.empty() ? "" : " (failed: " + failed + ")") + "\n";
  }
  for (const std::string& name : ListNamespaces()) {
    const pid_t owner = PidAfter(name, kOwnerPrefix);
    if (owner == 0 || owner == self || ProcessAlive(owner)) continue;
    const std::string failed = DeleteForeignNamespace(name);
    removed += "namespace " + name + (failed.empty() ? "" : " (failed: " + failed + ")") + "\n";
  }
  for (const std::string& bridge : BridgesWithForwardRules()) {
    if (LinkExists(bridge)) continue;
    removed +=
        "FORWARD rule for " + bridge + " (x" + std::to_string(DeleteForwardRules(bridge)) + ")\n";
  }
  return removed;
}

std::string LeftoverResources() {
  std::string left;
  const std::string owner = OwnerTag();
  for (const std::string& name : ListNamespaces()) {
    if (name.starts_with(owner + "-")) left += "namespace " + name + "\n";
  }
  const std::string claim = ClaimName();
  for (const LinkInfo& link : ListTestLinks()) {
    if (link.alias == owner || link.name == claim) left += "link " + link.name + "\n";
  }
  for (const std::string& bridge : BridgesWithForwardRules()) {
    if (!LinkExists(bridge)) left += "FORWARD rule for missing bridge " + bridge + "\n";
  }
  int status = 0;
  const pid_t child = ::waitpid(-1, &status, WNOHANG);
  if (child > 0) {
    left += "child process " + std::to_string(child) + " had exited unreaped\n";
  } else if (child == 0) {
    left += "child processes still running\n";
  }
  return left;
}

}  // namespace kvs::cluster_test
