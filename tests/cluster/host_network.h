// The host-side resources of the cluster harness (network namespaces, bridge and veth links, the
// iptables FORWARD rule): their names, who owns them, listing and removing them. Ownership is
// recorded in the names and link aliases as kvsct-<pid> of the test process, so that what a
// crashed run left behind can be told apart from what a live run is using.
// Thread-safe: functions only run host commands and share no state.
#ifndef KVS_TESTS_CLUSTER_HOST_NETWORK_H_
#define KVS_TESTS_CLUSTER_HOST_NETWORK_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace kvs::cluster_test {

// "kvsct-<pid>": namespace name prefix and link alias of process `pid`'s resources.
std::string OwnerTag(pid_t pid);
// Of this process.
std::string OwnerTag();
// Namespace of node `node` of cluster `index`: kvsct-<pid>-<index>-<node>.
std::string NamespaceName(int index, int node);
// Bridge of cluster `index`: kvsbr<index>.
std::string BridgeName(int index);
// Host end of node `node`'s veth pair: kvsv<index>n<node> (interface names are <= 15 bytes).
std::string HostVethName(int index, int node);
// This process's bridge before it is renamed to a BridgeName: kvst<pid>.
std::string ClaimName();

// Runs an `ip`/`iptables` command; "" on success, else a description of the failure.
std::string Must(const std::vector<std::string>& argv);

std::vector<std::string> ListNamespaces();
bool LinkExists(const std::string& name);

// The iptables command that inserts ("-I") or deletes ("-D") the FORWARD ACCEPT rule for
// traffic between ports of `bridge`.
std::vector<std::string> ForwardRule(const std::string& bridge, const char* action);
// Deletes every copy of that rule (bounded); returns how many there were.
int DeleteForwardRules(const std::string& bridge);
// Bridges that have such a rule.
std::vector<std::string> BridgesWithForwardRules();

// Removes what runs whose process is gone left behind: their links, their namespaces (and any
// process still inside), and FORWARD rules of bridges that no longer exist. Never touches a live
// process's resources. Returns a description of what was removed ("" if nothing).
std::string RemoveStaleResources();

// Namespaces, links and FORWARD rules of this process, and child processes not yet reaped; ""
// if none are left.
std::string LeftoverResources();

}  // namespace kvs::cluster_test

#endif  // KVS_TESTS_CLUSTER_HOST_NETWORK_H_
