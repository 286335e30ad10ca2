#pragma once
/// Env kinds the bridge can make ("kind" in a make request): "prune" (PruneEnv from a config) and
/// "toy" (ToyEnv, for testing agents and clients). Add your own with
/// PRUNEGYM_REGISTER(EnvKindRegistry, ...), in the program that runs the server or in a plugin.

#include <prunegym/core/log.h>
#include <prunegym/core/registry.h>
#include <prunegym/env/env.h>
#include <prunegym/networks/data.h>
#include <prunegym/server/work_limits.h>

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace prunegym {

/// What the server offers an env-kind factory: the operator's settings and data shared between
/// sessions.
class EnvKindContext {
 public:
  EnvKindContext(std::vector<std::string> data_roots, std::string cache_dir, LogFn log, WorkLimits limits = {})
      : data_roots_(std::move(data_roots)), cache_dir_(std::move(cache_dir)), log_(std::move(log)), limits_(limits) {}

  /// Throws ProtocolError(bad_argument) naming `key` when `path` is outside every data root.
  void check_data_path(const std::string& path, const std::string& key = "data.path") const;
  /// The data `options` describe, loaded once and shared by every session that uses it.
  std::shared_ptr<const DataSplits> shared_data(const DataOptions& options);
  /// The dense-model cache folder the server chose ("" = the default location).
  const std::string& cache_dir() const { return cache_dir_; }
  const LogFn& log() const { return log_; }
  /// What one make request may ask for; factories refuse more with ProtocolError(limit).
  const WorkLimits& limits() const { return limits_; }

 private:
  std::vector<std::string> data_roots_;
  std::string cache_dir_;
  LogFn log_;
  WorkLimits limits_;
  std::mutex data_mu_;
  std::map<std::string, std::weak_ptr<const DataSplits>> data_cache_;
};

/// Env kinds by name; a factory reads its own fields of the make request.
using EnvKindRegistry = Registry<Env, const nlohmann::json&, EnvKindContext&>;
template <>
EnvKindRegistry& EnvKindRegistry::instance();

}  // namespace prunegym
