// kvsctl's command line: defaults from the environment, options, operands, and exit codes.
#include "kvs/ctl/args.h"

#include <map>

#include "gtest/gtest.h"

namespace kvs::ctl {
namespace {

ParseResult Parse(const std::vector<std::string>& args,
                  const std::map<std::string, std::string>& env = {}) {
  return ParseArgs(args, [&](const std::string& name) -> std::optional<std::string> {
    const auto found = env.find(name);
    if (found == env.end()) return std::nullopt;
    return found->second;
  });
}

TEST(ArgsTest, NodeDefaultsToKvsNodeThenLocalhost8082) {
  const ParseResult plain = Parse({"view"});
  ASSERT_TRUE(plain.options) << plain.error;
  EXPECT_EQ(plain.options->node, "localhost:8082");
  EXPECT_EQ(plain.options->host, "localhost");
  EXPECT_EQ(plain.options->port, 8082);

  const ParseResult from_env = Parse({"view"}, {{"KVS_NODE", "10.10.0.3:8080"}});
  ASSERT_TRUE(from_env.options) << from_env.error;
  EXPECT_EQ(from_env.options->host, "10.10.0.3");
  EXPECT_EQ(from_env.options->port, 8080);

  const ParseResult flag = Parse({"--node", "h:1", "view"}, {{"KVS_NODE", "10.10.0.3:8080"}});
  ASSERT_TRUE(flag.options) << flag.error;
  EXPECT_EQ(flag.options->node, "h:1");
}

TEST(ArgsTest, OptionsInEitherFormAndAnywhere) {
  const ParseResult r = Parse({"--json", "put", "--token=t0k", "k", "v", "--timeout", "250",
                               "--no-session", "--cacert", "ca.pem", "--session=/tmp/s"});
  ASSERT_TRUE(r.options) << r.error;
  EXPECT_TRUE(r.options->json);
  EXPECT_FALSE(r.options->use_session);
  EXPECT_EQ(r.options->token, "t0k");
  EXPECT_EQ(r.options->timeout_ms, 250);
  EXPECT_EQ(r.options->cacert, "ca.pem");
  EXPECT_TRUE(r.options->tls());
  EXPECT_EQ(r.options->session_file, "/tmp/s");
  EXPECT_EQ(r.options->command, "put");
  EXPECT_EQ(r.options->operands, (std::vector<std::string>{"k", "v"}));
}

TEST(ArgsTest, TokenFromEnvironmentAndDoubleDashEndsOptions) {
  const ParseResult r = Parse({"put", "--", "k", "--json"}, {{"KVS_TOKEN", "env-token"}});
  ASSERT_TRUE(r.options) << r.error;
  EXPECT_EQ(r.options->token, "env-token");
  EXPECT_FALSE(r.options->json);
  EXPECT_EQ(r.options->operands, (std::vector<std::string>{"k", "--json"}));
  // A value that starts with one dash is an operand.
  const ParseResult negative = Parse({"put", "k", "-5"});
  ASSERT_TRUE(negative.options) << negative.error;
  EXPECT_EQ(negative.options->operands[1], "-5");
}

TEST(ArgsTest, UsageErrorsAreOneLine) {
  const std::vector<std::vector<std::string>> bad = {
      {},
      {"frobnicate"},
      {"get"},
      {"get", "a", "b"},
      {"put", "k"},
      {"reshard", "0"},
      {"reshard", "two"},
      {"add-member", "x", "1.2.3.4:5"},
      {"add-member", "0", "nowhere"},
      {"view", "add"},
      {"view", "remove", "1.2.3.4:5"},
      {"view", "add", "1.2.3.4:99999"},
      {"--timeout", "0", "view"},
      {"--timeout", "abc", "view"},
      {"--node", "no-port", "view"},
      {"--bogus", "view"},
      {"--node"},
      {"--json=yes", "view"},
      {"--cert", "c.pem", "view"},
      {"get", ""},
      {"health", "live"},
      {"metrics", "x"},
  };
  for (const auto& args : bad) {
    const ParseResult r = Parse(args);
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_FALSE(r.options) << joined;
    EXPECT_FALSE(r.error.empty()) << joined;
    EXPECT_EQ(r.error.find('\n'), std::string::npos) << r.error;
  }
}

TEST(ArgsTest, EveryCommandParses) {
  const std::vector<std::vector<std::string>> good = {
      {"get", "k"},
      {"put", "k", "v"},
      {"delete", "k"},
      {"view"},
      {"view", "add", "10.0.0.1:8080"},
      {"view", "delete", "10.0.0.1:8080"},
      {"shards"},
      {"shard-id"},
      {"add-member", "1", "10.0.0.1:8080"},
      {"reshard", "3"},
      {"status"},
      {"health"},
      {"health", "ready"},
      {"metrics"},
  };
  for (const auto& args : good) {
    const ParseResult r = Parse(args);
    EXPECT_TRUE(r.options) << args[0] << ": " << r.error;
  }
  const ParseResult help = Parse({"--help"});
  ASSERT_TRUE(help.options);
  EXPECT_TRUE(help.options->help);
}

TEST(ArgsTest, HelpDocumentsEveryCommandAndExitCode) {
  const std::string help = HelpText();
  for (const char* word :
       {"get KEY",        "put KEY VALUE", "delete KEY", "view add",     "view delete",
        "shards",         "shard-id",      "add-member", "reshard N",    "status",
        "health [ready]", "metrics",       "--json",     "--no-session", "--session",
        "--timeout",      "--cacert",      "--token",    "KVS_NODE",     "localhost:8082"}) {
    EXPECT_NE(help.find(word), std::string::npos) << word;
  }
  for (int code : {kExitOk, kExitRefused, kExitUsage, kExitUnreachable, kExitAuth}) {
    EXPECT_NE(help.find("  " + std::to_string(code) + "  "), std::string::npos) << code;
  }
}

TEST(ArgsTest, ExitCodeMapping) {
  EXPECT_EQ(ExitCodeForStatus(200), kExitOk);
  EXPECT_EQ(ExitCodeForStatus(201), kExitOk);
  EXPECT_EQ(ExitCodeForStatus(400), kExitRefused);
  EXPECT_EQ(ExitCodeForStatus(404), kExitRefused);
  EXPECT_EQ(ExitCodeForStatus(503), kExitRefused);
  EXPECT_EQ(ExitCodeForStatus(401), kExitAuth);
  EXPECT_EQ(ExitCodeForStatus(403), kExitAuth);
  EXPECT_EQ(ExitCodeForStatus(0), kExitUnreachable);
  // The codes are distinct.
  EXPECT_NE(kExitRefused, kExitUsage);
  EXPECT_NE(kExitUnreachable, kExitAuth);
}

TEST(ArgsTest, SplitHostPort) {
  std::string host;
  uint16_t port = 0;
  ASSERT_TRUE(SplitHostPort("https://example.org:8443/", &host, &port));
  EXPECT_EQ(host, "example.org");
  EXPECT_EQ(port, 8443);
  EXPECT_FALSE(SplitHostPort(":80", &host, &port));
  EXPECT_FALSE(SplitHostPort("h:0", &host, &port));
  EXPECT_FALSE(SplitHostPort("h:", &host, &port));
  EXPECT_FALSE(SplitHostPort("a/b:80", &host, &port));
}

}  // namespace
}  // namespace kvs::ctl
