#include "kvs/ctl/json.h"

#include <exception>

#include "Poco/JSON/Parser.h"

namespace kvs::ctl {

Poco::JSON::Object::Ptr ParseJsonObject(std::string_view text, std::string* error) {
  try {
    Poco::JSON::Parser parser;
    const Poco::Dynamic::Var parsed = parser.parse(std::string(text));
    if (parsed.type() == typeid(Poco::JSON::Object::Ptr)) {
      return parsed.extract<Poco::JSON::Object::Ptr>();
    }
    *error = "not a JSON object";
  } catch (const Poco::Exception& e) {
    *error = "not JSON: " + e.displayText();
  } catch (const std::exception& e) {
    *error = std::string("not JSON: ") + e.what();
  }
  return nullptr;
}

}  // namespace kvs::ctl
