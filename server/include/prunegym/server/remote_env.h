#pragma once
/// RemoteEnv: the Env interface over the ZeroMQ bridge. Every agent runs unchanged against it.
/// Every receive has a timeout: a dead or stuck server raises TimeoutError, never hangs.

#include <prunegym/env/env.h>
#include <prunegym/server/protocol.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace prunegym {

struct RemoteEnvOptions {
  int timeout_ms = 60000;        ///< reset/step/snapshot replies
  int make_timeout_ms = 900000;  ///< make may pretrain the dense model first
  std::string curve_server_key;  ///< Z85 server public key: enables CURVE
  std::string curve_public_key;  ///< this client's Z85 key pair (generated when empty)
  std::string curve_secret_key;
  /// Observation encoding asked for at `make`: "f32" (base64 float32, lossless and cheaper) or "json".
  std::string encoding = "f32";
  /// Busy-poll this long for a reply before blocking: trades a little CPU for ~20 us less wake-up
  /// latency per round trip. Worth it for fast envs; keep 0 when steps take milliseconds.
  int spin_us = 0;
  RemoteEnvOptions& set_encoding(std::string v) {
    encoding = std::move(v);
    return *this;
  }
  RemoteEnvOptions& set_spin_us(int v) {
    spin_us = v;
    return *this;
  }
  RemoteEnvOptions& set_timeout_ms(int v) {
    timeout_ms = v;
    return *this;
  }
  RemoteEnvOptions& set_make_timeout_ms(int v) {
    make_timeout_ms = v;
    return *this;
  }
};

class RemoteEnv : public Env {
 public:
  /// Connects, checks the protocol version and makes a session from `make_request`'s fields
  /// ({"config": {...}} for a PruneEnv, {"kind": "toy", "toy": {...}} for the toy env).
  RemoteEnv(const std::string& endpoint, const nlohmann::json& make_request, RemoteEnvOptions options = {});
  /// Convenience: a PruneEnv session from a config document.
  static std::unique_ptr<RemoteEnv> from_config(const std::string& endpoint, const nlohmann::json& config,
                                                RemoteEnvOptions options = {});
  ~RemoteEnv() override;

  ResetResult reset(const ResetOptions& options = {}) override;
  StepResult step(const Action& action) override;
  const Space& action_space() const override { return action_space_; }
  const Space& observation_space() const override { return observation_space_; }

  /// Server-side snapshot; returns its name for restore().
  std::string snapshot();
  void restore(const std::string& name, bool drop = false);
  /// Closes the session (also done by the destructor, best effort).
  void close();

  const std::string& session() const { return session_; }
  const nlohmann::json& make_info() const { return make_info_; }
  /// One raw request/reply exchange (throws ProtocolError for error replies).
  nlohmann::json call(nlohmann::json request, int timeout_ms);
  /// The two halves of call(), so several envs can have requests in flight at once.
  int64_t send_request(nlohmann::json request);
  nlohmann::json receive_reply(int64_t id, int timeout_ms, const std::string& what);
  int timeout_ms() const { return options_.timeout_ms; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string session_;
  Space action_space_, observation_space_;
  nlohmann::json make_info_;
  RemoteEnvOptions options_;
};

/// One server of a fleet, as an endpoints file lists it.
struct FleetEndpoint {
  std::string endpoint;          ///< e.g. tcp://node17:40211
  std::string curve_server_key;  ///< the server's Z85 public key ("" = no CURVE)
};

/// Reads an endpoints file (written by `prunegym serve --endpoint-file` and scripts/slurm-serve):
/// one server per line, "ENDPOINT" or "ENDPOINT curve=PUBLICKEY"; blank lines and lines starting
/// with "#" are skipped. ConfigError naming the file and line for anything else, or for no servers.
std::vector<FleetEndpoint> read_endpoints_file(const std::string& path);

/// One learner, N environments (on N servers or one): every request goes out before any reply is
/// awaited, so the servers step in parallel. Ended sub-environments are not reset automatically.
class RemoteVectorEnv {
 public:
  RemoteVectorEnv(const std::vector<std::string>& endpoints, const nlohmann::json& make_request,
                  RemoteEnvOptions options = {});
  /// One session per server of an endpoints file (read_endpoints_file), each with its own CURVE key.
  RemoteVectorEnv(const std::vector<FleetEndpoint>& fleet, const nlohmann::json& make_request,
                  RemoteEnvOptions options = {});
  size_t size() const { return envs_.size(); }
  RemoteEnv& at(size_t i) { return *envs_.at(i); }
  /// Resets every env; env i gets seed `seed + i` when a seed is given.
  std::vector<ResetResult> reset(std::optional<uint64_t> seed = std::nullopt);
  /// Steps env i with actions[i], all in parallel.
  std::vector<StepResult> step(const std::vector<Action>& actions);

 private:
  std::vector<std::unique_ptr<RemoteEnv>> envs_;
};

}  // namespace prunegym
