#pragma once
// A bridge server for tests: on a free loopback port, served from a background thread.

#include "helpers.h"

#include <prunegym/server/env_server.h>

#include <memory>
#include <string>
#include <thread>

namespace prunegym::test {

struct TestServer {
  explicit TestServer(ServerOptions o = {}) {
    o.bind = "tcp://127.0.0.1:*";
    o.handle_signals = false;
    o.cache_dir = scratch_dir("server-cache");
    server = std::make_unique<EnvServer>(o);
    endpoint = server->bind();
    thread = std::thread([this] { server->run(); });
  }
  ~TestServer() {
    server->stop();
    thread.join();
  }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;
  std::unique_ptr<EnvServer> server;
  std::string endpoint;
  std::thread thread;
};

}  // namespace prunegym::test
