#include <prunegym/core/json_reader.h>
#include <prunegym/env/prune_env.h>
#include <prunegym/env/toy_env.h>
#include <prunegym/server/env_kinds.h>
#include <prunegym/server/protocol.h>

#include <filesystem>

namespace fs = std::filesystem;

namespace prunegym {

using json = nlohmann::json;

void EnvKindContext::check_data_path(const std::string& data_path, const std::string& key) const {
  std::error_code ec;
  const fs::path path = fs::weakly_canonical(data_path, ec);
  std::string roots;
  for (const auto& root : data_roots_) {
    const fs::path r = fs::weakly_canonical(root, ec);
    const auto rel = path.lexically_relative(r);
    if (!rel.empty() && *rel.begin() != "..") return;
    roots += (roots.empty() ? "" : ", ") + r.string();
  }
  throw ProtocolError(codes::bad_argument, key + " " + path.string() + " is outside the server's data roots (" + roots +
                                               "); start the server with --data-root to allow it");
}

std::shared_ptr<const DataSplits> EnvKindContext::shared_data(const DataOptions& options) {
  std::lock_guard<std::mutex> lock(data_mu_);
  const std::string key = data_fingerprint(options);
  auto data = data_cache_[key].lock();
  if (!data) {
    data = std::make_shared<const DataSplits>(load_data(options));
    data_cache_[key] = data;
  }
  return data;
}

namespace {

std::unique_ptr<Env> make_prune(const json& req, EnvKindContext& context) {
  const json& doc = require_field(req, "config", json::value_t::object);
  if (doc.contains("cache_dir") && !(doc["cache_dir"].is_string() && doc["cache_dir"].get<std::string>().empty()))
    throw ProtocolError(codes::bad_argument, "config key 'cache_dir' is chosen by the server; leave it out");
  Config config = Config::from_json(doc);
  config.cache_dir = context.cache_dir();
  if (source_reads_files(config.data.source)) context.check_data_path(config.data.path);
  if (!config.network.path.empty()) context.check_data_path(config.network.path, "network.path");  // model files too
  return std::make_unique<PruneEnv>(config, PruneEnvHooks{context.log(), context.shared_data(config.data)});
}

std::unique_ptr<Env> make_toy(const json& req, EnvKindContext&) {
  ToyEnvOptions o;
  static const json empty = json::object();
  ObjectReader r(req.contains("toy") ? require_field(req, "toy", json::value_t::object) : empty, "toy");
  r.get("steps", o.steps);
  r.get("actions", o.actions);
  r.get("sparse", o.sparse);
  r.get("observation_size", o.observation_size);
  r.finish();
  if (o.observation_size > 1 << 16 || o.steps > 1 << 20 || o.actions > 1 << 16)
    throw ProtocolError(codes::limit, "toy env sizes are capped (observation_size 65536, steps 2^20, actions 65536)");
  return std::make_unique<ToyEnv>(o);
}

}  // namespace

template <>
EnvKindRegistry& EnvKindRegistry::instance() {
  static EnvKindRegistry registry = [] {
    EnvKindRegistry r("env kind", "kind");
    r.add("prune", make_prune, "PruneEnv from the request's \"config\"");
    r.add("toy", make_toy, "ToyEnv (request field \"toy\": steps, actions, sparse, observation_size)");
    return r;
  }();
  return registry;
}

}  // namespace prunegym
