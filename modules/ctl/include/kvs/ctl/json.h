// Reading JSON answers and files in kvsctl: one parse, never a throw.
#ifndef KVS_CTL_JSON_H_
#define KVS_CTL_JSON_H_

#include <string>
#include <string_view>

#include "Poco/JSON/Object.h"

namespace kvs::ctl {

// `text` parsed as a JSON object; null with `error` set ("not JSON: ...", "not a JSON object")
// otherwise.
Poco::JSON::Object::Ptr ParseJsonObject(std::string_view text, std::string* error);

}  // namespace kvs::ctl

#endif  // KVS_CTL_JSON_H_
