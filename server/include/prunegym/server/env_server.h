#pragma once
/// EnvServer: serves environments over a ZeroMQ ROUTER socket. Many clients, each with its own
/// sessions; slow steps run on a Boost.Asio thread pool (one strand per session) so they never
/// block another client; idle sessions expire; SIGINT/SIGTERM finish in-flight work and exit.

#include <prunegym/core/log.h>
#include <prunegym/env/env.h>
#include <prunegym/server/work_limits.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace prunegym {

struct ServerOptions {
  std::string bind = "tcp://127.0.0.1:5555";
  bool allow_remote = false;  ///< binding a non-loopback address needs this
  /// Folders a client config may read datasets from.
  std::vector<std::string> data_roots{"/usr/share/datasets"};
  std::string cache_dir;  ///< dense-model cache ("" = the default location)
  int64_t max_sessions = 16;
  int64_t max_sessions_per_client = 8;  ///< per CURVE client key, or per connection without an allow-list
  double idle_timeout = 600.0;          ///< seconds without a request before a session is closed
  int workers = 2;                      ///< threads running make/reset/step; 0 = inline on the
                                        ///< serving thread (lowest latency, no parallel sessions)
  size_t max_message_bytes = 1 << 20;
  int64_t max_snapshots = 16;        ///< per session
  double max_work_seconds = 3600.0;  ///< one request's work budget (make, reset, step): cancelled after
  bool handle_signals = true;        ///< stop on SIGINT/SIGTERM
  std::string curve_secret_key;      ///< Z85 secret key: enables CURVE encryption
  /// Z85 public keys of the clients allowed in (with CURVE); empty = any client that knows the
  /// server's public key.
  std::vector<std::string> curve_client_keys;
  WorkLimits limits;  ///< what one make request may ask for (--limit KEY=VALUE)
  LogFn log;
};

class EnvServer {
 public:
  explicit EnvServer(ServerOptions options);
  ~EnvServer();
  EnvServer(const EnvServer&) = delete;
  EnvServer& operator=(const EnvServer&) = delete;

  /// Binds (throws ConfigError on a bad or forbidden endpoint) and returns the bound endpoint,
  /// with the real port when the endpoint asked for tcp://host:* or port 0.
  std::string bind();
  /// Serves until stop() or a signal; in-flight requests are answered before it returns.
  void run();
  /// Thread-safe; run() returns soon after.
  void stop();

  /// Handles one request payload and returns the reply payload: the only place where an
  /// exception turns into an error reply. Thread-safe; used by run() and by tests directly.
  /// `client` names the requester for per-client session quotas ("" = none, e.g. in tests).
  std::string handle(const std::string& payload, const std::string& client = "");

  size_t session_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// True for tcp://127.x.x.x, tcp://localhost, tcp://[::1], ipc:// and inproc:// endpoints.
bool is_loopback_endpoint(const std::string& endpoint);

/// The size above which ZeroMQ drops a request and its connection: max(64 MiB, 4 x
/// max_message_bytes + 4 KiB). Requests between max_message_bytes and this get a "limit" reply
/// carrying their id.
int64_t hard_message_cap(size_t max_message_bytes);

/// The Z85 public key of a Z85 CURVE secret key (ConfigError for a malformed one).
std::string curve_public_key(const std::string& secret_z85);

/// A bound endpoint as other hosts reach it: a wildcard address (tcp://0.0.0.0:P, tcp://*:P)
/// becomes this host's name; anything else is returned as it is.
std::string advertised_endpoint(const std::string& bound);

}  // namespace prunegym
