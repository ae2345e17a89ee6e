#include "settings.h"

#include <Poco/AutoPtr.h>
#include <Poco/TemporaryFile.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <map>

namespace kvs::app {
namespace {

TEST(SettingsTest, EnvNameMapping) {
  EXPECT_EQ(EnvNameFor("kvs.limits.max_body_bytes"), "KVS_LIMITS_MAX_BODY_BYTES");
}

TEST(SettingsTest, ParsesCommandLine) {
  std::string error;
  auto cl = ParseCommandLine({"--config=/tmp/x", "--SOCKET_ADDRESS=1.2.3.4:5", "--view=a:1",
                              "--http.threads=3", "--kvs.limits.max_value_bytes=9"},
                             error);
  ASSERT_TRUE(cl.has_value()) << error;
  EXPECT_EQ(cl->config_file, "/tmp/x");
  EXPECT_EQ(cl->values.at("socket_address"), "1.2.3.4:5");
  EXPECT_EQ(cl->values.at("view"), "a:1");
  EXPECT_EQ(cl->values.at("kvs.http.threads"), "3");
  EXPECT_EQ(cl->values.at("kvs.limits.max_value_bytes"), "9");
}

TEST(SettingsTest, LogTunablesDefaultToTodaysBehaviour) {
  std::map<std::string_view, std::string_view> defaults;
  for (const Tunable& t : Tunables()) defaults[t.key] = t.default_value;
  EXPECT_EQ(defaults.at("kvs.log.format"), "text");
  EXPECT_EQ(defaults.at("kvs.log.requests"), "off");
  std::string error;
  auto cl = ParseCommandLine({"--log.format=json", "--kvs.log.requests=all"}, error);
  ASSERT_TRUE(cl.has_value()) << error;
  EXPECT_EQ(cl->values.at("kvs.log.format"), "json");
  EXPECT_EQ(cl->values.at("kvs.log.requests"), "all");
}

TEST(SettingsTest, RejectsUnknownOptions) {
  std::string error;
  EXPECT_FALSE(ParseCommandLine({"--bogus=1"}, error).has_value());
  EXPECT_NE(error.find("bogus"), std::string::npos);
  EXPECT_FALSE(ParseCommandLine({"positional"}, error).has_value());
}

// File < environment < command line, defaults under all three.
TEST(SettingsTest, LayersInPrecedenceOrder) {
  Poco::TemporaryFile file;
  {
    std::ofstream out(file.path());
    out << "kvs.http.threads = 5\nkvs.http.backlog = 77\nkvs.limits.max_value_bytes = 10\n";
  }
  setenv("KVS_HTTP_BACKLOG", "88", 1);
  setenv("KVS_LIMITS_MAX_VALUE_BYTES", "20", 1);
  std::string error;
  auto cl = ParseCommandLine({"--config=" + file.path(), "--kvs.limits.max_value_bytes=30"}, error);
  ASSERT_TRUE(cl.has_value());
  Poco::AutoPtr<Poco::Util::LayeredConfiguration> config(new Poco::Util::LayeredConfiguration);
  EXPECT_EQ(LayerConfiguration(*config, *cl, "/nonexistent/bin"), file.path());
  unsetenv("KVS_HTTP_BACKLOG");
  unsetenv("KVS_LIMITS_MAX_VALUE_BYTES");
  EXPECT_EQ(config->getString("kvs.http.threads"), "5");             // file
  EXPECT_EQ(config->getString("kvs.http.backlog"), "88");            // env over file
  EXPECT_EQ(config->getString("kvs.limits.max_value_bytes"), "30");  // command line over env
  EXPECT_EQ(config->getString("kvs.http.bind"), "0.0.0.0");          // default
  std::string count_error;
  EXPECT_EQ(ReadCount(*config, "kvs.http.threads", count_error), 5);
  EXPECT_FALSE(ReadCount(*config, "kvs.http.bind", count_error).has_value());
  EXPECT_NE(count_error.find("KVS_HTTP_BIND"), std::string::npos);
}

TEST(SettingsTest, MissingExplicitConfigFileIsAnError) {
  std::string error;
  auto cl = ParseCommandLine({"--config=/nonexistent/kvs.properties"}, error);
  Poco::AutoPtr<Poco::Util::LayeredConfiguration> config(new Poco::Util::LayeredConfiguration);
  EXPECT_THROW(LayerConfiguration(*config, *cl, "/"), std::runtime_error);
}

}  // namespace
}  // namespace kvs::app
