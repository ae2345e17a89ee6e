#include "kvs/bench/options.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kvs::bench {
namespace {

ParsedOptions Parse(std::vector<std::string_view> args) { return ParseOptions(args); }

TEST(OptionsTest, DefaultsNeedOnlyTargets) {
  const ParsedOptions parsed = Parse({"--targets=127.0.0.1:9301"});
  ASSERT_TRUE(parsed.ok()) << parsed.error;
  const Options& o = parsed.options;
  ASSERT_EQ(o.targets.size(), 1u);
  EXPECT_EQ(o.targets[0].host, "127.0.0.1");
  EXPECT_EQ(o.targets[0].port, 9301);
  EXPECT_EQ(o.threads, 2);
  EXPECT_EQ(o.connections, 16);
  EXPECT_EQ(o.duration_s, 10);
  EXPECT_EQ(o.requests, 0u);
  EXPECT_EQ(o.warmup_s, 1);
  EXPECT_EQ(o.keys, 10000u);
  EXPECT_EQ(o.value_size, 100u);
  EXPECT_EQ(o.mix.get, 80);
  EXPECT_EQ(o.mix.put, 20);
  EXPECT_EQ(o.mix.del, 0);
  EXPECT_FALSE(o.preload);
  EXPECT_FALSE(o.causal);
  EXPECT_EQ(o.protocol, Protocol::kKvs);
  EXPECT_EQ(o.timeout_ms, 5000);
  EXPECT_EQ(o.path, "/");
}

TEST(OptionsTest, ParsesEveryOption) {
  const ParsedOptions parsed = Parse({"--targets=a:1,localhost:65535",
                                      "--threads=4",
                                      "--connections=64",
                                      "--duration=2.5",
                                      "--requests=1000",
                                      "--warmup=0",
                                      "--keys=50",
                                      "--value-size=0",
                                      "--mix=get:50,put:30,delete:20",
                                      "--seed=99",
                                      "--preload",
                                      "--causal=on",
                                      "--protocol=kvs",
                                      "--timeout=250",
                                      "--json=out.json",
                                      "--csv=out.csv",
                                      "--label=a, label",
                                      "--quiet",
                                      "--sweep=connections:1,2,4",
                                      "--plot=x.png"});
  ASSERT_TRUE(parsed.ok()) << parsed.error;
  const Options& o = parsed.options;
  ASSERT_EQ(o.targets.size(), 2u);
  EXPECT_EQ(o.targets[1].ToString(), "localhost:65535");
  EXPECT_EQ(o.threads, 4);
  EXPECT_EQ(o.connections, 64);
  EXPECT_EQ(o.duration_s, 2.5);
  EXPECT_EQ(o.requests, 1000u);  // both given: stop at the first reached
  EXPECT_EQ(o.warmup_s, 0);
  EXPECT_EQ(o.keys, 50u);
  EXPECT_EQ(o.value_size, 0u);
  EXPECT_EQ(o.mix.ToString(), "get:50,put:30,delete:20");
  EXPECT_EQ(o.seed, 99u);
  EXPECT_TRUE(o.preload);
  EXPECT_TRUE(o.causal);
  EXPECT_EQ(o.timeout_ms, 250);
  EXPECT_EQ(o.json_file, "out.json");
  EXPECT_EQ(o.csv_file, "out.csv");
  EXPECT_EQ(o.label, "a, label");
  EXPECT_TRUE(o.quiet);
  EXPECT_EQ(o.sweep_param, "connections");
  EXPECT_EQ(o.sweep_values, (std::vector<int>{1, 2, 4}));
  EXPECT_EQ(o.plot_file, "x.png");
}

TEST(OptionsTest, Ipv6TargetsInBrackets) {
  const ParsedOptions parsed = Parse({"--targets=[::1]:8080,127.0.0.2:80"});
  ASSERT_TRUE(parsed.ok()) << parsed.error;
  EXPECT_EQ(parsed.options.targets[0].host, "::1");
  EXPECT_EQ(parsed.options.targets[0].ToString(), "[::1]:8080");
  EXPECT_EQ(parsed.options.targets[1].ToString(), "127.0.0.2:80");
}

TEST(OptionsTest, RequestsAloneHasNoTimeLimit) {
  const ParsedOptions parsed = Parse({"--targets=h:1", "--requests=5"});
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed.options.duration_s, 0);
  EXPECT_EQ(parsed.options.requests, 5u);
}

TEST(OptionsTest, PartialMixAndOtherProtocols) {
  ParsedOptions parsed = Parse({"--targets=h:1", "--mix=put:100"});
  ASSERT_TRUE(parsed.ok()) << parsed.error;
  EXPECT_EQ(parsed.options.mix.ToString(), "get:0,put:100,delete:0");
  parsed = Parse({"--targets=h:1", "--protocol=raw", "--path=/index.html"});
  ASSERT_TRUE(parsed.ok()) << parsed.error;
  EXPECT_EQ(parsed.options.protocol, Protocol::kRaw);
  EXPECT_EQ(parsed.options.path, "/index.html");
  parsed = Parse({"--targets=h:1", "--protocol=etcd", "--preload", "--sweep=threads:1,2"});
  ASSERT_TRUE(parsed.ok()) << parsed.error;
  EXPECT_EQ(parsed.options.protocol, Protocol::kEtcd);
  EXPECT_EQ(parsed.options.sweep_param, "threads");
}

TEST(OptionsTest, RateAndOnlyShard) {
  ParsedOptions parsed = Parse({"--targets=h:1"});
  ASSERT_TRUE(parsed.ok()) << parsed.error;
  EXPECT_EQ(parsed.options.rate, 0);  // unthrottled
  EXPECT_EQ(parsed.options.only_shard, -1);

  parsed = Parse({"--targets=h:1", "--rate=200", "--preload", "--only-shard=1"});
  ASSERT_TRUE(parsed.ok()) << parsed.error;
  EXPECT_EQ(parsed.options.rate, 200);
  EXPECT_EQ(parsed.options.only_shard, 1);

  parsed = Parse({"--targets=h:1", "--rate=0.5", "--only-shard=0", "--preload"});
  ASSERT_TRUE(parsed.ok()) << parsed.error;
  EXPECT_EQ(parsed.options.rate, 0.5);
  EXPECT_EQ(parsed.options.only_shard, 0);

  parsed = Parse({"--targets=h:1", "--rate=0", "--protocol=raw"});
  ASSERT_TRUE(parsed.ok()) << parsed.error;
  EXPECT_EQ(parsed.options.rate, 0);
}

TEST(OptionsTest, TlsIsOffByDefaultAndImpliedByItsFiles) {
  const ParsedOptions plain = Parse({"--targets=h:1"});
  ASSERT_TRUE(plain.ok()) << plain.error;
  EXPECT_FALSE(plain.options.tls);
  EXPECT_TRUE(plain.options.tls_verify_name);

  const ParsedOptions bare = Parse({"--targets=h:1", "--tls"});
  ASSERT_TRUE(bare.ok()) << bare.error;
  EXPECT_TRUE(bare.options.tls);
  EXPECT_TRUE(bare.options.ca_file.empty());

  const ParsedOptions full = Parse(
      {"--targets=h:1", "--cacert=ca.pem", "--cert=c.pem", "--key=k.pem", "--tls-verify-name=off"});
  ASSERT_TRUE(full.ok()) << full.error;
  EXPECT_TRUE(full.options.tls);
  EXPECT_EQ(full.options.ca_file, "ca.pem");
  EXPECT_EQ(full.options.cert_file, "c.pem");
  EXPECT_EQ(full.options.key_file, "k.pem");
  EXPECT_FALSE(full.options.tls_verify_name);
  EXPECT_TRUE(Parse({"--targets=h:1", "--cert=c.pem", "--key=k.pem"}).options.tls);
}

TEST(OptionsTest, HelpNeedsNothingElse) {
  const ParsedOptions parsed = Parse({"--bogus", "--help"});
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed.options.help);
  for (const char* name :
       {"--targets=", "--threads=",   "--connections=", "--duration=", "--requests=",
        "--warmup=",  "--keys=",      "--value-size=",  "--mix=",      "--preload",
        "--causal=",  "--protocol=",  "--json=",        "--csv=",      "--label=",
        "--quiet",    "--timeout=",   "--sweep=",       "--plot=",     "--seed=",
        "--rate=",    "--only-shard="}) {
    EXPECT_NE(HelpText().find(name), std::string::npos) << name;
  }
}

struct BadCase {
  std::vector<std::string_view> args;
  std::string expected;  // a part of the one-line error
};

TEST(OptionsTest, BadOptionsGiveOneClearLine) {
  const std::vector<BadCase> cases = {
      {{}, "--targets"},
      {{"--threads=2"}, "--targets"},
      {{"--targets=nohost"}, "host:port"},
      {{"--targets=h:0"}, "host:port"},
      {{"--targets=h:70000"}, "host:port"},
      {{"--targets=h:1,"}, "host:port"},
      {{"--targets=h:1", "--threads=0"}, "--threads"},
      {{"--targets=h:1", "--threads=two"}, "--threads"},
      {{"--targets=h:1", "--connections=-1"}, "--connections"},
      {{"--targets=h:1", "--duration=0"}, "--duration"},
      {{"--targets=h:1", "--duration=abc"}, "--duration"},
      {{"--targets=h:1", "--requests=0"}, "--requests"},
      {{"--targets=h:1", "--warmup=-1"}, "--warmup"},
      {{"--targets=h:1", "--keys=0"}, "--keys"},
      {{"--targets=h:1", "--mix=get:80,read:20"}, "unknown operation 'read'"},
      {{"--targets=h:1", "--mix=get:0"}, "sum to 0"},
      {{"--targets=h:1", "--mix=get"}, "--mix"},
      {{"--targets=h:1", "--mix=get:101"}, "--mix"},
      {{"--targets=h:1", "--causal=yes"}, "--causal"},
      {{"--targets=h:1", "--protocol=grpc"}, "--protocol"},
      {{"--targets=h:1", "--protocol=raw", "--causal=on"}, "--causal=on needs --protocol=kvs"},
      {{"--targets=h:1", "--protocol=raw", "--preload"}, "--preload"},
      {{"--targets=h:1", "--path=nope"}, "--path"},
      {{"--targets=h:1", "--timeout=0"}, "--timeout"},
      {{"--targets=h:1", "--plot=x.png"}, "--plot needs --sweep"},
      {{"--targets=h:1", "--sweep=clients:1,2"}, "--sweep"},
      {{"--targets=h:1", "--sweep=connections:1,0"}, "--sweep"},
      {{"--targets=h:1", "--sweep=connections:"}, "--sweep"},
      {{"--targets=h:1", "--preload=yes"}, "takes no value"},
      {{"--targets=h:1", "--threads"}, "needs a value"},
      {{"--targets=h:1", "--frobnicate=1"}, "unknown option --frobnicate"},
      {{"--targets=h:1", "extra"}, "unexpected argument"},
      {{"--targets=h:1", "--tls=on"}, "takes no value"},
      {{"--targets=h:1", "--cacert="}, "--cacert"},
      {{"--targets=h:1", "--cert=c.pem"}, "--cert and --key go together"},
      {{"--targets=h:1", "--key=k.pem"}, "--cert and --key go together"},
      {{"--targets=h:1", "--tls-verify-name=no"}, "--tls-verify-name"},
      {{"--targets=h:1", "--rate=-1"}, "--rate"},
      {{"--targets=h:1", "--rate=fast"}, "--rate"},
      {{"--targets=h:1", "--rate=100/s"}, "--rate"},
      {{"--targets=h:1", "--rate=0.0001"}, "--rate"},
      {{"--targets=h:1", "--rate=2e9"}, "--rate"},
      {{"--targets=h:1", "--rate=inf"}, "--rate"},
      {{"--targets=h:1", "--rate"}, "needs a value"},
      {{"--targets=h:1", "--preload", "--only-shard=-1"}, "--only-shard"},
      {{"--targets=h:1", "--preload", "--only-shard=one"}, "--only-shard"},
      {{"--targets=h:1", "--preload", "--only-shard="}, "--only-shard"},
      {{"--targets=h:1", "--only-shard=1"}, "--only-shard needs --preload"},
      {{"--targets=h:1", "--protocol=etcd", "--preload", "--only-shard=1"},
       "--only-shard needs --protocol=kvs"},
  };
  for (const BadCase& c : cases) {
    const ParsedOptions parsed = Parse(c.args);
    std::string joined;
    for (auto a : c.args) joined += std::string(a) + " ";
    EXPECT_FALSE(parsed.ok()) << joined;
    EXPECT_NE(parsed.error.find(c.expected), std::string::npos) << joined << "-> " << parsed.error;
    EXPECT_EQ(parsed.error.find('\n'), std::string::npos);
  }
}

}  // namespace
}  // namespace kvs::bench
