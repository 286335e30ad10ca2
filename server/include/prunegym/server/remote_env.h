#pragma once
/// RemoteEnv: the Env interface over the ZeroMQ bridge. Every agent runs unchanged against it.
/// Every receive has a timeout: a dead or stuck server raises TimeoutError, never hangs.

#include <prunegym/env/env.h>
#include <prunegym/server/protocol.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

namespace prunegym {

struct RemoteEnvOptions {
  int timeout_ms = 60000;        ///< reset/step/snapshot replies
  int make_timeout_ms = 900000;  ///< make may pretrain the dense model first
  std::string curve_server_key;  ///< Z85 server public key: enables CURVE (client keys generated)
  RemoteEnvOptions& set_timeout_ms(int v) { timeout_ms = v; return *this; }
  RemoteEnvOptions& set_make_timeout_ms(int v) { make_timeout_ms = v; return *this; }
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

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string session_;
  Space action_space_, observation_space_;
  nlohmann::json make_info_;
  RemoteEnvOptions options_;
};

}  // namespace prunegym
