// kvs-server's POCO ServerApplication: layers the configuration, validates start-up input
// (SPEC §1), builds the node's parts, serves until SIGTERM/SIGINT, then stops gracefully.
// Runs on the main thread; the parts it owns are shared with the HTTP worker threads.
#pragma once

#include <Poco/Util/ServerApplication.h>

#include <string>

#include "settings.h"

namespace kvs::app {

class ServerApp : public Poco::Util::ServerApplication {
 public:
  explicit ServerApp(CommandLine command_line) : command_line_(std::move(command_line)) {}

 protected:
  void initialize(Poco::Util::Application& self) override;
  int main(const std::vector<std::string>& args) override;

 private:
  CommandLine command_line_;
  std::string config_file_;
  std::string config_error_;  // set by initialize(); reported by main() as one stderr line
};

}  // namespace kvs::app
