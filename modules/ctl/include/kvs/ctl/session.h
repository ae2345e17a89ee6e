// The causal session of kvsctl: the causal metadata of the last get/put/delete, with the view it
// was obtained in and the --node names it was used with, kept in a file between invocations.
// Pure functions plus file load/save; thread-compatible (one process owns its session file).
// Invariant: metadata from one cluster is never sent to another: a node that is neither in the
// stored view nor a name already used must first show a view overlapping the stored one.
#ifndef KVS_CTL_SESSION_H_
#define KVS_CTL_SESSION_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvs::ctl {

struct Session {
  std::string metadata;              // opaque causal metadata ("" none)
  std::vector<std::string> view;     // the view it was obtained in
  std::vector<std::string> aliases;  // --node names used with it (e.g. host-mapped ports)

  bool empty() const { return metadata.empty(); }
  bool operator==(const Session&) const = default;
};

// JSON text: {"causal-metadata":"...","view":[...],"nodes":[...]}.
std::string EncodeSession(const Session& session);
// nullopt with `error` set on anything but a well-formed session object.
std::optional<Session> DecodeSession(std::string_view text, std::string* error);

// What to do before sending the session's metadata to `node`.
enum class SessionCheck {
  kSend,      // empty session, or `node` is known to be of its cluster
  kNeedView,  // ask the node for its view and call SameCluster
};
SessionCheck CheckSession(const Session& session, const std::string& node);

// True when `node_view` (the view the node reports) overlaps the stored view.
bool SameCluster(const Session& session, const std::vector<std::string>& node_view);

// Records a successful exchange: the new metadata, the node's view when known (empty: keep
// the stored one), and `node` as a name of this cluster.
void RecordExchange(Session* session, const std::string& node, const std::string& metadata,
                    const std::vector<std::string>& node_view);

// ~/.kvsctl/session.json ($HOME; "" when HOME is unset).
std::string DefaultSessionFile();

// Reads the file: an absent file is an empty session; an unreadable or corrupt one is an error.
std::optional<Session> LoadSession(const std::string& path, std::string* error);
// Writes atomically (temp file + rename), file mode 0600, creating the directory with 0700.
bool SaveSession(const std::string& path, const Session& session, std::string* error);

// Splits a comma-joined view string ("a,b,c"), skipping empty items.
std::vector<std::string> SplitView(std::string_view view);

}  // namespace kvs::ctl

#endif  // KVS_CTL_SESSION_H_
