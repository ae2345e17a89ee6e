#include "kvs/replication/wire.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <variant>

#include "kvs/json/json_writer.h"

namespace kvs::replication {
namespace {

using json::AppendJsonString;
using Poco::JSON::Array;
using Poco::JSON::Object;

void AppendVersionVector(std::string& out, const causal::VersionVector& vv) {
  out.push_back('{');
  bool first = true;
  for (const auto& [origin, seq] : vv) {
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(out, origin);
    out.push_back(':');
    out += std::to_string(seq);
  }
  out.push_back('}');
}

// Updates travel as netstrings ("<length>:<bytes>,"): values are arbitrary bytes, and a
// length-prefixed form is encoded and decoded in one pass with no escaping (the replication
// and reshard paths move every write through here).
void AppendNetstring(std::string& out, std::string_view bytes) {
  char length[24];
  out.append(length, std::to_chars(length, length + sizeof length, bytes.size()).ptr);
  out.push_back(':');
  out.append(bytes);
  out.push_back(',');
}

// Reads one netstring at `pos`; false when malformed.
bool ReadNetstring(std::string_view in, size_t& pos, std::string_view& bytes) {
  size_t length = 0;
  const auto [end, ec] = std::from_chars(in.data() + pos, in.data() + in.size(), length);
  if (ec != std::errc() || end == in.data() + in.size() || *end != ':') return false;
  const size_t start = static_cast<size_t>(end - in.data()) + 1;
  if (length > in.size() - start || start + length >= in.size() || in[start + length] != ',') {
    return false;
  }
  bytes = in.substr(start, length);
  pos = start + length + 1;
  return true;
}

// A decimal u64 and nothing else (no sign, no space, no overflow).
bool ParseDecimal(std::string_view text, uint64_t& value) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

bool ReadNumber(std::string_view in, size_t& pos, uint64_t& value) {
  std::string_view text;
  return ReadNetstring(in, pos, text) && ParseDecimal(text, value);
}

void AppendNumber(std::string& out, uint64_t value) {
  char digits[24];
  AppendNetstring(
      out, std::string_view(digits, std::to_chars(digits, digits + sizeof digits, value).ptr));
}

void AppendFields(std::string& out, std::string_view key, std::string_view value, bool tombstone,
                  uint64_t hlc, std::string_view origin, uint64_t seq, std::string_view meta) {
  AppendNetstring(out, key);
  AppendNetstring(out, value);
  AppendNetstring(out, tombstone ? "t" : "v");
  AppendNumber(out, hlc);
  AppendNetstring(out, origin);
  AppendNumber(out, seq);
  AppendNetstring(out, meta);
}

void AppendUpdateBinary(std::string& out, const Update& u) {
  AppendFields(out, u.key, u.entry.value, u.entry.tombstone, u.entry.version.hlc,
               u.entry.version.origin, u.entry.version.seq, u.entry.meta);
}

bool ReadUpdateBinary(std::string_view in, size_t& pos, Update& u) {
  std::string_view key, value, flag, origin, meta;
  if (!ReadNetstring(in, pos, key) || !ReadNetstring(in, pos, value) ||
      !ReadNetstring(in, pos, flag) || (flag != "t" && flag != "v") ||
      !ReadNumber(in, pos, u.entry.version.hlc) || !ReadNetstring(in, pos, origin) ||
      !ReadNumber(in, pos, u.entry.version.seq) || !ReadNetstring(in, pos, meta)) {
    return false;
  }
  u.key.assign(key);
  u.entry.value.assign(value);
  u.entry.tombstone = flag == "t";
  u.entry.version.origin.assign(origin);
  u.entry.meta.assign(meta);
  return true;
}

// Fewest bytes an update takes: four empty netstrings ("0:,") and three of one byte ("1:t,").
constexpr size_t kMinUpdateBytes = 4 * 3 + 3 * 4;

// "<magic><netstring head><netstring count><updates...>"
bool ReadUpdatesBinary(std::string_view in, size_t& pos, std::vector<Update>& out,
                       std::string& error) {
  uint64_t count = 0;
  // The count sizes `out` before the updates are read: it must fit in the bytes left, or a
  // message could make the node allocate ~150 bytes per byte it sent (a 256 MiB internal body
  // claiming one update per byte: ~40 GiB).
  if (!ReadNumber(in, pos, count) || count > (in.size() - pos) / kMinUpdateBytes) {
    error = "bad update count";
    return false;
  }
  out.resize(static_cast<size_t>(count));
  for (Update& u : out) {
    if (!ReadUpdateBinary(in, pos, u)) {
      error = "malformed update";
      return false;
    }
  }
  if (pos != in.size()) {
    error = "trailing bytes";
    return false;
  }
  return true;
}

constexpr std::string_view kBatchMagic = "KVB1";
constexpr std::string_view kSyncReplyMagic = "KVS1";
constexpr std::string_view kSyncChunkMagic = "KVS2";
// A sync range's ring is built per request (1024 points a shard): bound it.
constexpr int kMaxShards = 256;

// ParseDecimal for a JSON member: throws (caught by Guarded) when it is not one.
uint64_t ParseU64(const std::string& text) {
  uint64_t value = 0;
  if (!ParseDecimal(text, value)) {
    throw Poco::DataFormatException("not an unsigned 64-bit number: " + text);
  }
  return value;
}

Object::Ptr ParseObject(std::string_view text) {
  Poco::JSON::Parser parser;
  auto parsed = parser.parse(std::string(text));
  if (parsed.type() != typeid(Object::Ptr)) throw Poco::DataFormatException("not an object");
  return parsed.extract<Object::Ptr>();
}

causal::VersionVector ReadVersionVector(const Object::Ptr& object) {
  causal::VersionVector vv;
  if (object.isNull()) return vv;
  for (const auto& [origin, seq] : *object) vv[origin] = seq.convert<uint64_t>();
  return vv;
}

template <typename Fn>
auto Guarded(std::string& error, Fn&& fn) -> decltype(std::optional(fn())) {
  try {
    return fn();
  } catch (const Poco::Exception& e) {
    error = e.displayText();
  } catch (const std::exception& e) {
    error = e.what();
  }
  return std::nullopt;
}

}  // namespace

std::string EncodeBatch(const std::string& from, const std::vector<const Update*>& updates) {
  std::string out(kBatchMagic);
  AppendNetstring(out, from);
  AppendNumber(out, updates.size());
  for (const Update* u : updates) AppendUpdateBinary(out, *u);
  return out;
}

std::optional<ReplicateBatch> DecodeBatch(std::string_view text, std::string& error) {
  if (!text.starts_with(kBatchMagic)) {
    error = "not a replicate batch";
    return std::nullopt;
  }
  size_t pos = kBatchMagic.size();
  ReplicateBatch batch;
  std::string_view from;
  if (!ReadNetstring(text, pos, from)) {
    error = "bad sender";
    return std::nullopt;
  }
  batch.from.assign(from);
  if (!ReadUpdatesBinary(text, pos, batch.updates, error)) return std::nullopt;
  return batch;
}

std::string EncodeSyncRequest(const SyncRequest& request) {
  std::string out = "{\"from\":";
  AppendJsonString(out, request.from);
  out += ",\"vv\":";
  AppendVersionVector(out, request.vv);
  if (request.full) out += ",\"full\":true";
  if (request.cursor != 0) out += ",\"cursor\":\"" + std::to_string(request.cursor) + "\"";
  if (request.max_bytes != 0) out += ",\"max_bytes\":" + std::to_string(request.max_bytes);
  if (request.range) {
    out += ",\"range\":{\"shards\":" + std::to_string(request.range->shards) +
           ",\"shard\":" + std::to_string(request.range->shard) + "}";
  }
  out += "}";
  return out;
}

std::optional<SyncRequest> DecodeSyncRequest(std::string_view text, std::string& error) {
  return Guarded(error, [&] {
    Object::Ptr object = ParseObject(text);
    SyncRequest request{object->getValue<std::string>("from"),
                        ReadVersionVector(object->getObject("vv")),
                        object->has("full") && object->getValue<bool>("full")};
    if (object->has("cursor")) request.cursor = ParseU64(object->getValue<std::string>("cursor"));
    if (object->has("max_bytes")) {
      request.max_bytes = ParseU64(object->get("max_bytes").convert<std::string>());
    }
    if (object->has("range")) {
      Object::Ptr range = object->getObject("range");
      if (range.isNull()) throw Poco::DataFormatException("range is not an object");
      KeyRange r{range->getValue<int>("shards"), range->getValue<int>("shard")};
      if (r.shards < 1 || r.shards > kMaxShards || r.shard < 0 || r.shard >= r.shards) {
        throw Poco::DataFormatException("range out of bounds");
      }
      request.range = r;
    }
    return request;
  });
}

void AppendEntryWire(std::string& out, std::string_view key, const store::EntryView& entry) {
  AppendFields(out, key, entry.value, entry.tombstone, entry.version.hlc, entry.version.origin,
               entry.version.seq, entry.meta);
}

std::string EncodeSyncReply(const SyncReply& reply) {
  // Sized once: a chunk is MiBs, and growing it by doubling copied it over and over.
  size_t size = 64 + reply.vv.size() * 64 + reply.wire_updates.size();
  for (const Update& u : reply.updates) {
    size += u.key.size() + u.entry.value.size() + u.entry.version.origin.size() +
            u.entry.meta.size() + 7 * 22;
  }
  std::string out;
  out.reserve(size);
  out += reply.next_cursor ? kSyncChunkMagic : kSyncReplyMagic;
  AppendNetstring(out, causal::Encode(causal::Metadata{0, reply.vv}));
  if (reply.next_cursor) AppendNumber(out, *reply.next_cursor);
  AppendNumber(out, reply.updates.size() + reply.wire_count);
  for (const Update& u : reply.updates) AppendUpdateBinary(out, u);
  out += reply.wire_updates;
  return out;
}

std::optional<SyncReply> DecodeSyncReply(std::string_view text, std::string& error) {
  const bool chunk = text.starts_with(kSyncChunkMagic);
  if (!chunk && !text.starts_with(kSyncReplyMagic)) {
    error = "not a sync reply";
    return std::nullopt;
  }
  size_t pos = kSyncReplyMagic.size();
  std::string_view vv_text;
  if (!ReadNetstring(text, pos, vv_text)) {
    error = "bad version vector";
    return std::nullopt;
  }
  auto vv = causal::Decode(vv_text);
  if (auto* bad = std::get_if<causal::DecodeError>(&vv)) {
    error = "bad version vector: " + bad->reason;
    return std::nullopt;
  }
  SyncReply reply;
  reply.vv = std::move(std::get<causal::Metadata>(vv).vv);
  if (chunk) {
    uint64_t next = 0;
    if (!ReadNumber(text, pos, next)) {
      error = "bad next cursor";
      return std::nullopt;
    }
    reply.next_cursor = next;
  }
  if (!ReadUpdatesBinary(text, pos, reply.updates, error)) return std::nullopt;
  return reply;
}

std::string EncodeConfig(const cluster::ClusterConfig& config) {
  std::string out = "{\"epoch\":" + std::to_string(config.epoch) +
                    ",\"barrier_epoch\":" + std::to_string(config.barrier_epoch) + ",\"shards\":[";
  for (size_t s = 0; s < config.shards.size(); ++s) {
    if (s > 0) out.push_back(',');
    out.push_back('[');
    for (size_t m = 0; m < config.shards[s].size(); ++m) {
      if (m > 0) out.push_back(',');
      AppendJsonString(out, config.shards[s][m].ToString());
    }
    out.push_back(']');
  }
  out += "]}";
  return out;
}

namespace {
constexpr std::array<std::string_view, 5> kPhaseNames = {"idle", "streaming", "catching-up",
                                                         "caught-up", "failed"};
}  // namespace

std::string_view ToString(StagingProgress::Phase phase) {
  return kPhaseNames.at(static_cast<size_t>(phase));
}

std::string EncodeStagingProgress(const StagingProgress& p) {
  std::string out = "{\"epoch\":" + std::to_string(p.epoch) +
                    ",\"shard\":" + std::to_string(p.shard) + ",\"phase\":\"" +
                    std::string(ToString(p.phase)) + "\",\"entries\":" + std::to_string(p.entries) +
                    ",\"bytes\":" + std::to_string(p.bytes) +
                    ",\"last_delta\":" + std::to_string(p.last_delta) + ",\"error\":";
  AppendJsonString(out, p.error);
  out += "}";
  return out;
}

std::optional<StagingProgress> DecodeStagingProgress(std::string_view text, std::string& error) {
  return Guarded(error, [&]() -> StagingProgress {
    Object::Ptr object = ParseObject(text);
    StagingProgress p;
    p.epoch = object->getValue<uint64_t>("epoch");
    p.shard = object->getValue<int>("shard");
    if (p.shard < -1) throw Poco::DataFormatException("bad shard");
    const std::string phase = object->getValue<std::string>("phase");
    const auto it = std::find(kPhaseNames.begin(), kPhaseNames.end(), phase);
    if (it == kPhaseNames.end()) throw Poco::DataFormatException("unknown phase " + phase);
    p.phase = static_cast<StagingProgress::Phase>(it - kPhaseNames.begin());
    p.entries = object->getValue<uint64_t>("entries");
    p.bytes = object->getValue<uint64_t>("bytes");
    p.last_delta = object->getValue<uint64_t>("last_delta");
    p.error = object->getValue<std::string>("error");
    return p;
  });
}

std::string EncodeConfigAnswer(const ConfigAnswer& answer) {
  return std::string("{\"adopted\":") + (answer.adopted ? "true" : "false") +
         ",\"held_ms\":" + std::to_string(answer.held_ms) + "}";
}

std::optional<ConfigAnswer> DecodeConfigAnswer(std::string_view text, std::string& error) {
  return Guarded(error, [&]() -> ConfigAnswer {
    Object::Ptr object = ParseObject(text);
    ConfigAnswer answer;
    answer.adopted = object->getValue<bool>("adopted");
    if (object->has("held_ms")) answer.held_ms = object->getValue<uint64_t>("held_ms");
    return answer;
  });
}

std::optional<cluster::ClusterConfig> DecodeConfig(std::string_view text, std::string& error) {
  return Guarded(error, [&]() -> cluster::ClusterConfig {
    Object::Ptr object = ParseObject(text);
    cluster::ClusterConfig config;
    config.epoch = object->getValue<uint64_t>("epoch");
    if (object->has("barrier_epoch"))
      config.barrier_epoch = object->getValue<uint64_t>("barrier_epoch");
    Array::Ptr shards = object->getArray("shards");
    if (shards.isNull()) throw Poco::DataFormatException("shards missing");
    for (size_t s = 0; s < shards->size(); ++s) {
      Array::Ptr members = shards->getArray(static_cast<unsigned>(s));
      if (members.isNull()) throw Poco::DataFormatException("shard is not an array");
      std::vector<cluster::Address> list;
      for (size_t m = 0; m < members->size(); ++m) {
        auto address =
            cluster::Address::Parse(members->getElement<std::string>(static_cast<unsigned>(m)));
        if (!address) throw Poco::DataFormatException("bad member address");
        list.push_back(*address);
      }
      config.shards.push_back(std::move(list));
    }
    return config;
  });
}

}  // namespace kvs::replication
