#include <prunegym/core/json_reader.h>
#include <prunegym/env/prune_env.h>
#include <prunegym/env/toy_env.h>
#include <prunegym/networks/data_source.h>
#include <prunegym/server/env_kinds.h>
#include <prunegym/server/protocol.h>

#include <cmath>
#include <filesystem>
#include <sstream>

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

// ---------------------------------------------------------------------------------------------
// Work limits

std::vector<std::string> WorkLimits::keys() {
  return {"pretrain_epochs", "retrain_epochs", "samples",     "graph_nodes", "features",
          "action_values",   "network_width",  "layer_width", "layers",      "rounds"};
}

void WorkLimits::set(const std::string& key, double value) {
  if (!(value > 0) || !std::isfinite(value))
    throw ConfigError("--limit " + key + ": the value must be a positive number");
  auto whole = [&](int64_t& field) {
    if (value != std::floor(value) || value > 9e15)
      throw ConfigError("--limit " + key + ": the value must be a whole number");
    field = static_cast<int64_t>(value);
  };
  if (key == "pretrain_epochs") return whole(pretrain_epochs);
  if (key == "retrain_epochs") return whole(retrain_epochs);
  if (key == "samples") return whole(samples);
  if (key == "graph_nodes") return whole(graph_nodes);
  if (key == "features") return whole(features);
  if (key == "action_values") return whole(action_values);
  if (key == "layer_width") return whole(layer_width);
  if (key == "layers") return whole(layers);
  if (key == "rounds") return whole(rounds);
  if (key == "network_width") {
    network_width = value;
    return;
  }
  std::string known;
  for (const auto& k : keys()) known += (known.empty() ? "" : ", ") + k;
  throw ConfigError("--limit: unknown limit '" + key + "' (known: " + known + ")");
}

void WorkLimits::set(const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos) throw ConfigError("--limit takes KEY=VALUE, e.g. --limit pretrain_epochs=200");
  const std::string value = assignment.substr(eq + 1);
  char* end = nullptr;
  const double v = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0') throw ConfigError("--limit " + assignment + ": '" + value + "' is not a number");
  set(assignment.substr(0, eq), v);
}

double WorkLimits::get(const std::string& key) const {
  const json all = to_json();
  if (!all.contains(key)) throw ConfigError("unknown work limit '" + key + "' (known: " + all.dump() + ")");
  return all.at(key).get<double>();
}

json WorkLimits::to_json() const {
  return {{"pretrain_epochs", pretrain_epochs},
          {"retrain_epochs", retrain_epochs},
          {"samples", samples},
          {"graph_nodes", graph_nodes},
          {"features", features},
          {"action_values", action_values},
          {"network_width", network_width},
          {"layer_width", layer_width},
          {"layers", layers},
          {"rounds", rounds}};
}

namespace {

/// ProtocolError(limit) naming the config key, its value, the server's limit and the way out.
void within(double value, double limit, const std::string& key, const std::string& limit_key) {
  if (value <= limit) return;
  std::ostringstream os;
  os << key << " = " << value << " exceeds this server's limit of " << limit << " (" << limit_key
     << "); ask for less, or run your own server with --limit " << limit_key << "=N";
  throw ProtocolError(codes::limit, os.str());
}

/// Refuses a remote config that asks for more work than the operator allows, before anything is
/// allocated or trained.
void check_work(const Config& c, const WorkLimits& l) {
  within(static_cast<double>(c.pretrain.epochs), static_cast<double>(l.pretrain_epochs), "network.pretrain.epochs",
         "pretrain_epochs");
  within(static_cast<double>(c.env.retrain.epochs), static_cast<double>(l.retrain_epochs), "env.retrain.epochs",
         "retrain_epochs");
  within(static_cast<double>(c.lottery.train.epochs), static_cast<double>(l.retrain_epochs), "lottery.train.epochs",
         "retrain_epochs");
  within(static_cast<double>(c.env.retrain.samples), static_cast<double>(l.samples), "env.retrain.samples", "samples");
  // What the data source asks (generated sets: samples, input size, graph nodes).
  for (const auto& w : DataSourceRegistry::instance().make(c.data.source)->work(c.data))
    within(w.value, l.get(w.limit), w.key, w.limit);
  const auto& a = c.env.actions;
  if (a.type == "discrete" && a.values.empty() && a.step) {
    const double span = a.high.value_or(2.2) - a.low.value_or(0.0);
    within(std::floor(span / *a.step) + 1, static_cast<double>(l.action_values), "the action grid (env.actions)",
           "action_values");
  }
  within(static_cast<double>(a.values.size()), static_cast<double>(l.action_values), "env.actions.values",
         "action_values");
  // What the network kind asks (a stack's layers and their widths, a residual network's width).
  for (const auto& w : network_work(c.network)) within(w.value, l.get(w.limit), w.key, w.limit);
  within(static_cast<double>(c.lottery.rounds), static_cast<double>(l.rounds), "lottery.rounds", "rounds");
  within(static_cast<double>(c.env.max_steps), static_cast<double>(l.rounds), "env.max_steps", "rounds");
}

std::unique_ptr<Env> make_prune(const json& req, EnvKindContext& context) {
  const json& doc = require_field(req, "config", json::value_t::object);
  if (doc.contains("cache_dir") && !(doc["cache_dir"].is_string() && doc["cache_dir"].get<std::string>().empty()))
    throw ProtocolError(codes::bad_argument, "config key 'cache_dir' is chosen by the server; leave it out");
  Config config = Config::from_json(doc);
  check_work(config, context.limits());
  config.cache_dir = context.cache_dir();
  if (source_reads_files(config.data.source)) context.check_data_path(config.data.path);
  for (const auto& [key, path] : network_files(config.network)) context.check_data_path(path, key);  // model files too
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
