#pragma once
// EnvServer's private parts, shared by env_server.cpp (requests: dispatch, sessions, make) and
// server_loop.cpp (transport: sockets, CURVE, routing to workers, shutdown).

#include <prunegym/core/cancel.h>
#include <prunegym/server/env_kinds.h>
#include <prunegym/server/env_server.h>
#include <prunegym/server/protocol.h>

#include <boost/asio.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

namespace prunegym {

using json = nlohmann::json;
using ServerClock = std::chrono::steady_clock;

inline int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(ServerClock::now().time_since_epoch()).count();
}

inline const char* const kServerName = "prunegym 0.1.0";

struct Session {
  Session(std::string session_id, std::unique_ptr<Env> environment, boost::asio::thread_pool& pool)
      : id(std::move(session_id)), env(std::move(environment)), strand(boost::asio::make_strand(pool)) {
    last_used_ms = now_ms();
  }
  std::string id;
  std::unique_ptr<Env> env;
  ObservationEncoding encoding = ObservationEncoding::json;
  boost::asio::strand<boost::asio::thread_pool::executor_type> strand;
  std::mutex mu;  ///< held while the env is used
  std::atomic<int64_t> last_used_ms{0};
  std::atomic<int> pending{0};
  std::atomic<bool> closing{false};  ///< set when the session is closed or expires: its work stops
  std::string owner;                 ///< the client that made it (per-client quota)
  std::map<std::string, std::shared_ptr<const EnvState>> snapshots;
  int64_t next_snapshot = 1;
};

struct EnvServer::Impl {
  explicit Impl(ServerOptions o)
      : opts(std::move(o)), pool(static_cast<size_t>(std::max(1, opts.workers))), rng(std::random_device{}()) {}

  ServerOptions opts;
  zmq::context_t ctx{1};
  std::unique_ptr<zmq::socket_t> router, pull, push, zap;
  std::vector<std::string> allowed_keys;  ///< 32-byte binary client keys (CURVE allow-list)
  std::mutex push_mu;
  std::string reply_endpoint;
  std::string bound;
  boost::asio::thread_pool pool;
  boost::asio::io_context io;
  std::atomic<bool> stopping{false};

  mutable std::mutex mu;  ///< guards sessions, reserved, rng
  std::map<std::string, std::shared_ptr<Session>> sessions;
  int64_t reserved = 0;
  std::map<std::string, int64_t> reserved_by;  ///< makes in flight per client
  std::mt19937_64 rng;

  EnvKindContext kinds{opts.data_roots, opts.cache_dir, opts.log, opts.limits};

  void log(const std::string& line) const {
    if (opts.log) opts.log(line);
  }

  std::shared_ptr<Session> find(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = sessions.find(id);
    return it == sessions.end() ? nullptr : it->second;
  }

  std::shared_ptr<Session> require_session(const json& req) {
    const std::string id = require_field(req, "session", json::value_t::string).get<std::string>();
    auto s = find(id);
    if (!s)
      throw ProtocolError(codes::no_session,
                          "no session '" + id + "' (closed, expired or never made); call make first");
    s->last_used_ms = now_ms();
    return s;
  }

  /// Runs `work` so that a stopping server, a closing session (when given) or the per-request
  /// work budget cancel it between training batches (Cancelled).
  template <typename Fn>
  auto cancellable(Session* session, Fn&& work) {
    std::vector<CancelScope::Flag> flags{{&stopping, "the server is shutting down"}};
    if (session) flags.push_back({&session->closing, "the session was closed"});
    const auto budget = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(opts.max_work_seconds));
    CancelScope scope(std::move(flags), std::chrono::steady_clock::now() + budget,
                      "the request ran past this server's work budget of " + std::to_string(opts.max_work_seconds) +
                          " s (--max-work-seconds)");
    return work();
  }
  /// Ends a session: its pending work is cancelled, and it is gone for new requests.
  void drop_session(const std::string& id);

  /// `client` identifies the requester for per-client quotas ("" = no quota: direct handle() calls).
  json dispatch(const std::string& cmd, const json& req, const std::string& client);
  /// reset, step, snapshot and restore on a session whose lock the caller holds.
  json session_command(Session& s, const std::string& cmd, const json& req);
  json make(const json& req, const std::string& client);
  void sweep_idle();
  // Transport (server_loop.cpp).
  void configure_curve();
  /// A worker's reply (identity, delimiter flag, payload) out through the ROUTER socket.
  void forward(std::vector<zmq::message_t>& parts);
  /// A reply sent from the serving thread itself.
  void send_direct(const std::string& identity, bool delimiter, const std::string& reply);
  /// Answers cheap requests at once; make goes to the pool, session commands to the session's strand.
  void route(EnvServer& server, const std::string& identity, bool delimiter, std::string payload,
             const std::string& client);
  void read_requests(EnvServer& server);
  void answer_zap();
  void drain_replies();
  void send_reply(const std::string& identity, bool delimiter, const std::string& payload);
};

}  // namespace prunegym
