// SPEC §2 view rows on a single node. 127.0.0.1:9 stands for a replica that is not running;
// a test that adds it removes it again at once, as failure detection may remove it anyway.
#include <set>
#include <sstream>
#include <string>

#include "contract_text.h"
#include "gtest/gtest.h"
#include "http_client.h"
#include "server_process.h"

namespace kvs::http_test {
namespace {

constexpr char kViewPath[] = "/key-value-store-view";
constexpr char kAbsentReplica[] = "127.0.0.1:9";

std::string ViewJson(const std::string& view) {
  return R"({"message":"View retrieved successfully","view":)" + JsonQuote(view) + "}";
}

// The members of the comma-joined "view" string of a GET answer.
std::set<std::string> ViewMembers(const HttpResponse& r) {
  std::set<std::string> members;
  const auto body = ParseObject(r.body);
  if (body.isNull()) return members;
  std::istringstream view(body->optValue<std::string>("view", ""));
  for (std::string member; std::getline(view, member, ',');) members.insert(member);
  return members;
}

class ViewTest : public SharedServerTest<ViewTest> {};

TEST_F(ViewTest, GetReturnsThisNode) {
  EXPECT_TRUE(IsJson(SendRequest(port(), "GET", kViewPath), 200, ViewJson(address())));
}

TEST_F(ViewTest, AddAndDeleteReplica) {
  EXPECT_TRUE(IsJson(SendRequest(port(), "PUT", kViewPath, AddressBody(kAbsentReplica)), 201,
                     R"({"message":"Replica added successfully to the view"})"));
  const HttpResponse view = SendRequest(port(), "GET", kViewPath);
  EXPECT_EQ(view.status, 200) << Describe(view);
  EXPECT_EQ(ViewMembers(view), (std::set<std::string>{address(), kAbsentReplica}))
      << Describe(view);
  EXPECT_TRUE(IsJson(SendRequest(port(), "PUT", kViewPath, AddressBody(kAbsentReplica)), 404,
                     ErrorJson("Socket address already exists in the view", "PUT")));

  EXPECT_TRUE(IsJson(SendRequest(port(), "DELETE", kViewPath, AddressBody(kAbsentReplica)), 200,
                     R"({"message":"Replica deleted successfully from the view"})"));
  EXPECT_TRUE(IsJson(SendRequest(port(), "DELETE", kViewPath, AddressBody(kAbsentReplica)), 404,
                     ErrorJson("Socket address does not exist in the view", "DELETE")));
  EXPECT_TRUE(IsJson(SendRequest(port(), "GET", kViewPath), 200, ViewJson(address())));
}

TEST_F(ViewTest, PutOwnAddressAlreadyExists) {
  EXPECT_TRUE(IsJson(SendRequest(port(), "PUT", kViewPath, AddressBody(address())), 404,
                     ErrorJson("Socket address already exists in the view", "PUT")));
}

TEST_F(ViewTest, DeleteUnknownAddressDoesNotExist) {
  EXPECT_TRUE(IsJson(SendRequest(port(), "DELETE", kViewPath, AddressBody("127.0.0.1:11")), 404,
                     ErrorJson("Socket address does not exist in the view", "DELETE")));
}

TEST_F(ViewTest, MissingSocketAddressIsRejected) {
  for (const std::string method : {"PUT", "DELETE"}) {
    SCOPED_TRACE(method);
    EXPECT_TRUE(IsJson(SendRequest(port(), method, kViewPath, "{}"), 400,
                       ErrorJson("socket-address is missing", method)));
  }
}

TEST_F(ViewTest, NonStringSocketAddressIsRejected) {
  for (const std::string value : {"5", R"(["127.0.0.1:9"])", "{}"}) {
    SCOPED_TRACE(value);
    EXPECT_TRUE(IsJson(SendRequest(port(), "PUT", kViewPath, R"({"socket-address":)" + value + "}"),
                       400, ErrorJson("socket-address must be a string", "PUT")));
  }
}

TEST_F(ViewTest, MalformedSocketAddressIsRejected) {
  for (const std::string value : {"nohost", "127.0.0.1:", "127.0.0.1:99999", "127.0.0.1:abc"}) {
    SCOPED_TRACE(value);
    EXPECT_TRUE(IsJson(SendRequest(port(), "PUT", kViewPath, AddressBody(value)), 400,
                       ErrorJson("Invalid socket-address", "PUT")));
  }
  EXPECT_TRUE(IsJson(SendRequest(port(), "GET", kViewPath), 200, ViewJson(address())));
}

TEST_F(ViewTest, BodyThatIsNotJsonIsRejected) {
  EXPECT_TRUE(IsJson(SendRequest(port(), "PUT", kViewPath, "socket-address=1.2.3.4:5"), 400,
                     ErrorJson("Body is not valid JSON", "PUT")));
}

}  // namespace
}  // namespace kvs::http_test
