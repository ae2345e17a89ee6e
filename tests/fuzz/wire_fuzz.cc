// libFuzzer target: the replication messages peers send each other under /internal/ (bytes
// from the network): update batches (KVB1), sync requests (JSON) and sync replies (KVS1). Every
// input goes to all three decoders (each rejects the others' forms at once).
// Oracles:
//  - no crash, leak or uncaught exception, and a rejection always names its reason;
//  - no single allocation while decoding is larger than a small multiple of the message: a
//    count read from a message must not size an allocation beyond what the message's bytes can
//    hold (a peer's 256 MiB body could otherwise make the node allocate tens of GiB);
//  - a message a decoder accepts re-encodes to a message that decodes to an equal value
//    (compared field by field: the types have no operator==), and the re-encoding is stable:
//    Encode(Decode(Encode(x))) == Encode(x). The input itself need not equal its re-encoding:
//    the decoders accept non-canonical spellings (leading zeros in netstring lengths and
//    numbers, JSON whitespace, member order, numbers written as strings), so only the decoded
//    values are compared.
#include <sanitizer/allocator_interface.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "kvs/replication/wire.h"

namespace {

using kvs::replication::Update;

void Check(bool condition) {
  if (!condition) std::abort();
}

// The largest single allocation made while a Decoder below runs (the decoders start no
// threads, and the fuzzer runs inputs on one thread).
bool tracking = false;
size_t largest_allocation = 0;

void OnMalloc(const volatile void*, size_t size) {
  if (tracking && size > largest_allocation) largest_allocation = size;
}
void OnFree(const volatile void*) {}

// Runs `decode(input, error)` and checks that no allocation it made exceeded kBytesPerByte
// bytes per input byte (plus a constant for small inputs). An Update is about 150 bytes and
// takes at least 24 bytes of a message; text and JSON strings are copied a few times at most.
template <typename Decoder>
auto TrackedDecode(Decoder decode, std::string_view input, std::string& error) {
  constexpr size_t kBytesPerByte = 8;
  constexpr size_t kSlack = 64 * 1024;
  largest_allocation = 0;
  tracking = true;
  auto result = decode(input, error);
  tracking = false;
  Check(largest_allocation <= kBytesPerByte * input.size() + kSlack);
  return result;
}

bool SameUpdate(const Update& a, const Update& b) {
  return a.key == b.key && a.entry.value == b.entry.value &&
         a.entry.tombstone == b.entry.tombstone && a.entry.version.hlc == b.entry.version.hlc &&
         a.entry.version.origin == b.entry.version.origin &&
         a.entry.version.seq == b.entry.version.seq && a.entry.meta == b.entry.meta;
}

bool SameUpdates(const std::vector<Update>& a, const std::vector<Update>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!SameUpdate(a[i], b[i])) return false;
  }
  return true;
}

std::string EncodeBatch(const kvs::replication::ReplicateBatch& batch) {
  std::vector<const Update*> pointers;
  for (const Update& u : batch.updates) pointers.push_back(&u);
  return kvs::replication::EncodeBatch(batch.from, pointers);
}

// Decodes `input`; if that succeeds, encoding the result and decoding that must give the same
// value (`same`), and encoding again the same bytes. A rejection must say why.
template <typename Decoder, typename Encoder, typename Same>
void RoundTrip(std::string_view input, Decoder decode, Encoder encode, Same same) {
  std::string error;
  const auto value = TrackedDecode(decode, input, error);
  if (!value) {
    Check(!error.empty());
    return;
  }
  const std::string encoded = encode(*value);
  const auto again = TrackedDecode(decode, encoded, error);
  Check(again.has_value() && same(*again, *value));
  Check(encode(*again) == encoded);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (__sanitizer_install_malloc_and_free_hooks(OnMalloc, OnFree) == 0) std::abort();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  namespace wire = kvs::replication;
  RoundTrip(input, wire::DecodeBatch, EncodeBatch,
            [](const wire::ReplicateBatch& a, const wire::ReplicateBatch& b) {
              return a.from == b.from && SameUpdates(a.updates, b.updates);
            });
  RoundTrip(input, wire::DecodeSyncRequest, wire::EncodeSyncRequest,
            [](const wire::SyncRequest& a, const wire::SyncRequest& b) {
              return a.from == b.from && a.vv == b.vv && a.full == b.full && a.cursor == b.cursor &&
                     a.max_bytes == b.max_bytes && a.range == b.range;
            });
  RoundTrip(input, wire::DecodeStagingProgress, wire::EncodeStagingProgress,
            [](const wire::StagingProgress& a, const wire::StagingProgress& b) { return a == b; });
  RoundTrip(input, wire::DecodeConfigAnswer, wire::EncodeConfigAnswer,
            [](const wire::ConfigAnswer& a, const wire::ConfigAnswer& b) { return a == b; });
  RoundTrip(input, wire::DecodeSyncReply, wire::EncodeSyncReply,
            [](const wire::SyncReply& a, const wire::SyncReply& b) {
              return a.vv == b.vv && SameUpdates(a.updates, b.updates) &&
                     a.next_cursor == b.next_cursor;
            });
  return 0;
}
