#include <prunegym/core/errors.h>
#include <prunegym/core/json_reader.h>
#include <prunegym/env/config.h>
#include <prunegym/env/config_check.h>
#include <prunegym/networks/data_source.h>

#include <prunegym/env/criteria.h>
#include <prunegym/env/observation.h>
#include <prunegym/env/rewards.h>
#include <prunegym/env/schedule.h>
#include "config_sections.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>

namespace prunegym {

using config_detail::lottery_json;
using config_detail::read_lottery_section;
using config_detail::require_one_of;
using config_detail::train_json;
using nlohmann::json;

void read_train_options(ObjectReader r, TrainOptions& t, bool allow_samples) {
  r.get("optimizer", t.optimizer);
  r.get("lr", t.lr);
  r.get("momentum", t.momentum);
  r.get("weight_decay", t.weight_decay);
  r.get("batch_size", t.batch_size);
  r.get("epochs", t.epochs);
  if (allow_samples) r.get("samples", t.samples);
  r.finish();
  const std::string p = r.key_path("");
  if (t.optimizer != "adam" && t.optimizer != "sgd" && t.optimizer != "adagrad")
    throw ConfigError("config key '" + p + "optimizer': unknown optimizer '" + t.optimizer +
                      "' (known: adam, sgd, adagrad)");
  if (!(t.lr > 0)) throw ConfigError("config key '" + p + "lr' must be positive");
  if (t.batch_size <= 0) throw ConfigError("config key '" + p + "batch_size' must be positive");
  if (t.epochs < 0) throw ConfigError("config key '" + p + "epochs' must be >= 0");
  if (t.samples < 0) throw ConfigError("config key '" + p + "samples' must be >= 0");
}

namespace {

/// A config slot that names a registered part: "criterion": "x" or {"name": "x", ...options}.
/// The options are validated once, here, by the part's parser, and kept in canonical form (parts
/// without a parser get them unchanged and check them when built).
template <class R>
void read_part(ObjectReader& parent, const std::string& key, const R& registry, std::string& name, json& options) {
  const std::string path = parent.key_path(key);
  if (const json* v = parent.find(key)) {
    if (v->is_string()) {
      name = v->get<std::string>();
      options = json::object();
    } else if (v->is_object() && v->contains("name") && (*v)["name"].is_string()) {
      name = (*v)["name"].get<std::string>();
      options = *v;
      options.erase("name");
    } else {
      throw ConfigError("config key '" + path + "' must be a name or an object {\"name\": ..., options}, got " +
                        v->dump());
    }
  }
  registry.check(name);
  options = registry.parse(name, options, path);
}

/// The slot as written back: the bare name when the part has no options, else the object form.
json part_json(const std::string& name, const json& options) {
  if (options.empty()) return name;
  json j = options;
  j["name"] = name;
  return j;
}

/// The "data" section.
void read_data_section(ObjectReader& root, Config& c) {
  auto d = root.child("data");
  d.get("source", c.data.source);
  d.get("path", c.data.path);
  if (!d.find("path") && !default_data_path(c.data.source).empty()) c.data.path = default_data_path(c.data.source);
  d.get("validation", c.data.validation);
  d.get("train_limit", c.data.train_limit);
  d.get("test_limit", c.data.test_limit);
  d.get("normalize", c.data.normalize);
  d.get("split_seed", c.data.split_seed);
  d.get("test_count", c.data.test_count);
  d.get("coarse_labels", c.data.coarse_labels);
  // The generated sources' sections are read by their options (networks/data.h, graph.h).
  auto s = d.child("synthetic");
  c.data.synthetic.read(s);
  s.finish();
  auto g = d.child("graph");
  c.data.graph.read(g);
  g.finish();
  d.finish();
  DataSourceRegistry::instance().check(c.data.source);
  if (c.data.validation < 0) throw ConfigError("config key 'data.validation' must be >= 0");
}

/// The network keys beyond name, init_seed and pretrain belong to the network kinds that read them
/// (the "options" trait of their registry entry): a key set for a network that ignores it is an
/// error naming the networks that take it. The kind's parser then checks and completes them.
void check_network_keys(const std::string& name, const nlohmann::json& options) {
  const auto& registry = NetworkRegistry::instance();
  registry.check(name);
  const auto takes = [&](const std::string& network, const std::string& key) {
    const nlohmann::json keys = registry.traits(network).value("options", nlohmann::json::array());
    return std::find(keys.begin(), keys.end(), key) != keys.end();
  };
  for (const auto& [key, value] : options.items()) {
    if (takes(name, key)) continue;
    std::string which;
    for (const auto& other : registry.names())
      if (takes(other, key)) which += (which.empty() ? "" : ", ") + other;
    throw ConfigError("config key 'network." + key + "' does not apply to network '" + name + "' (it applies to " +
                      (which.empty() ? "no registered network" : which) + ")");
  }
}

/// The "network" section: name, init_seed and pretrain here; every other key is the kind's.
void read_network_section(ObjectReader& root, Config& c) {
  auto n = root.child("network");
  n.get("name", c.network.name);
  n.get("init_seed", c.network.init_seed);
  read_train_options(n.child("pretrain"), c.pretrain, false);
  nlohmann::json options = n.rest();
  // Documents written by to_json() carry "layers": [] for every network (see there).
  if (options.contains("layers") && options["layers"].is_array() && options["layers"].empty()) options.erase("layers");
  for (auto it = options.begin(); it != options.end();) it = it->is_null() ? options.erase(it) : std::next(it);
  check_network_keys(c.network.name, options);
  c.network.options = NetworkRegistry::instance().parse(c.network.name, options, "network");
  validate_network(c.network);  // the name and layer strings, now rather than at first use
}

/// env.budget: {"resource": "macs" | "params" | "latency", "ratio": (0, 1], latency_batch,
/// latency_points} (env/budget.h).
void read_budget(ObjectReader b, BudgetOptions& o) {
  b.get("resource", o.resource);
  b.get("ratio", o.ratio);
  b.get("latency_batch", o.latency_batch);
  b.get("latency_points", o.latency_points);
  b.finish();
  if (!o.active()) {
    for (const char* key : {"ratio", "latency_batch", "latency_points"})
      if (b.find(key))
        throw ConfigError(std::string("config key 'env.budget.") + key +
                          "' needs env.budget.resource (macs, params or latency)");
    return;
  }
  require_one_of("env.budget.resource", o.resource, {"macs", "params", "latency"});
  if (!(o.ratio > 0 && o.ratio <= 1))
    throw ConfigError("config key 'env.budget.ratio' must be in (0, 1]: the share of the dense network's " +
                      o.resource + " an episode may keep");
  if (o.resource != "latency" && (b.find("latency_batch") || b.find("latency_points")))
    throw ConfigError(
        "config keys 'env.budget.latency_batch' and 'latency_points' describe the latency table; "
        "env.budget.resource is \"" +
        o.resource + "\" (drop them, or budget \"latency\")");
  if (o.latency_batch < 1 || o.latency_batch > 4096)
    throw ConfigError(
        "config key 'env.budget.latency_batch' must be in 1..4096 (the batch size latency is "
        "measured at)");
  if (o.latency_points < 2 || o.latency_points > 32)
    throw ConfigError(
        "config key 'env.budget.latency_points' must be in 2..32 (grid points per channel "
        "dimension of the latency table)");
}

/// The "env" section.
void read_env_section(ObjectReader& root, Config& c) {
  auto e = root.child("env");
  auto& o = c.env;
  // Episode schedules, criteria and observations come from registries (plugins may add some);
  // each slot is a name or {"name", ...options}.
  const auto& criteria = CriterionRegistry::instance();
  const auto& observations = ObservationRegistry::instance();
  read_part(e, "episode", ScheduleRegistry::instance(), o.episode, o.episode_options);
  read_part(e, "criterion", criteria, o.criterion, o.criterion_options);
  read_part(e, "observation", observations, o.observation, o.observation_options);
  e.get("timing", o.timing);
  e.get("early_stop_accuracy", o.early_stop_accuracy);
  e.get("max_steps", o.max_steps);
  e.get("layers", o.layers);
  require_one_of("env.timing", o.timing, {"dense", "sparse"});
  // Parts without a parser check their options when built; both build without the network.
  if (!criteria.has_parser(o.criterion)) criteria.make(o.criterion, o.criterion_options);
  if (!observations.has_parser(o.observation)) observations.make(o.observation, o.observation_options);
  if (o.max_steps < 0) throw ConfigError("config key 'env.max_steps' must be >= 0 (0 = no limit)");

  auto a = e.child("actions");
  a.get("type", o.actions.type);
  a.get("low", o.actions.low);
  a.get("high", o.actions.high);
  a.get("step", o.actions.step);
  a.get("values", o.actions.values);
  a.finish();
  require_one_of("env.actions.type", o.actions.type, {"discrete", "box"});
  if (o.actions.step && !(*o.actions.step > 0)) throw ConfigError("config key 'env.actions.step' must be positive");
  if (o.actions.low && o.actions.high && *o.actions.low > *o.actions.high)
    throw ConfigError("config keys 'env.actions.low' and 'env.actions.high': low must not exceed high");
  if (!o.actions.values.empty() && (o.actions.low || o.actions.high || o.actions.step))
    throw ConfigError("config key 'env.actions.values' excludes low/high/step: give a list or a grid, not both");

  auto r = e.child("reward");
  // A schedule may name the reward that suits it (rounds: seed 000's lottery_q).
  if (!r.find("name"))
    o.reward.name = ScheduleRegistry::instance().traits(o.episode).value("default_reward", o.reward.name);
  r.get("name", o.reward.name);
  r.get("beta", o.reward.beta);
  r.get("target_accuracy", o.reward.target_accuracy);
  r.get("target_accuracy_drop", o.reward.target_accuracy_drop);
  r.get("target_sparsity", o.reward.target_sparsity);
  // The reward's own keys: canonical from its parser, or checked by building it.
  const auto& rewards = RewardRegistry::instance();
  o.reward.params = rewards.parse(o.reward.name, r.rest(), "env.reward");
  if (!rewards.has_parser(o.reward.name)) rewards.make(o.reward.name, o.reward.params);
  if (o.reward.target_accuracy && !(*o.reward.target_accuracy > 0 && *o.reward.target_accuracy <= 1))
    throw ConfigError("config key 'env.reward.target_accuracy' must be in (0, 1]");
  if (!(o.reward.target_sparsity > 0 && o.reward.target_sparsity <= 1))
    throw ConfigError("config key 'env.reward.target_sparsity' must be in (0, 1]");

  read_budget(e.child("budget"), o.budget);

  auto retrain = e.child("retrain");
  retrain.get("compact", o.retrain_compact);
  require_one_of("env.retrain.compact", o.retrain_compact, {"auto", "always", "never"});
  read_train_options(retrain, o.retrain, true);
  auto v = e.child("evaluation");
  v.get("split", o.evaluation.split);
  v.get("samples", o.evaluation.samples);
  v.get("batch_size", o.evaluation.batch_size);
  v.get("compact", o.evaluation.compact);
  v.finish();
  require_one_of("env.evaluation.split", o.evaluation.split, {"validation", "test"});
  require_one_of("env.evaluation.compact", o.evaluation.compact, {"auto", "always", "never"});
  if (o.evaluation.samples < 0 || o.evaluation.batch_size <= 0)
    throw ConfigError("config keys 'env.evaluation.samples' (>= 0) and 'batch_size' (> 0) are out of range");
  e.finish();
}

}  // namespace

namespace {

std::map<std::string, ConfigCheck>& config_checks() {
  static std::map<std::string, ConfigCheck> checks;
  return checks;
}

}  // namespace

bool register_config_check(const std::string& name, ConfigCheck check) {
  config_checks()[name] = std::move(check);
  return true;
}

Config Config::from_json(const json& j) {
  Config c;
  ObjectReader root(j, "");
  root.get("seed", c.seed);
  root.get("device", c.device);
  root.get("threads", c.threads);
  root.get("cache_dir", c.cache_dir);
  if (c.threads < 0) throw ConfigError("config key 'threads' must be >= 0 (0 = one per core)");

  read_data_section(root, c);
  read_network_section(root, c);
  read_env_section(root, c);
  read_lottery_section(root, c.lottery);
  for (const char* section : {"agents", "train"}) {
    if (const json* v = root.find(section)) {
      if (!v->is_object()) throw ConfigError(std::string("config key '") + section + "' must be an object");
      (std::string(section) == "agents" ? c.agents : c.train) = *v;
    }
  }
  root.finish();
  if (c.env.evaluation.split == "validation" && c.data.validation == 0)
    throw ConfigError(
        "env.evaluation.split is 'validation' but data.validation is 0: hold out samples or evaluate on 'test'");
  for (const auto& [name, check] : config_checks()) check(c);
  return c;
}

Config Config::load(const std::string& path) {
  const json j = read_json_file(path);
  try {
    return from_json(j);
  } catch (const ConfigError& e) {
    throw ConfigError(path + ": " + e.what());
  }
}

namespace {

json evaluation_json(const EvaluationOptions& o) {
  json j{{"split", o.split}, {"samples", o.samples}, {"batch_size", o.batch_size}};
  // A speed setting (the same function either way): recorded only when set, so run keys stay.
  if (o.compact != "auto") j["compact"] = o.compact;
  return j;
}

}  // namespace

json Config::to_json() const {
  json ej{{"episode", part_json(env.episode, env.episode_options)},
          {"timing", env.timing},
          {"criterion", part_json(env.criterion, env.criterion_options)},
          {"observation", part_json(env.observation, env.observation_options)},
          {"early_stop_accuracy", env.early_stop_accuracy},
          {"max_steps", env.max_steps},
          {"layers", env.layers},
          {"retrain", train_json(env.retrain, true)},
          {"evaluation", evaluation_json(env.evaluation)}};
  // A speed setting like evaluation.compact: recorded only when set, so run keys stay.
  if (env.retrain_compact != "auto") ej["retrain"]["compact"] = env.retrain_compact;
  // Written only when set, so configs without a budget keep their run keys.
  if (env.budget.active()) ej["budget"] = {{"resource", env.budget.resource}, {"ratio", env.budget.ratio}};
  if (env.budget.resource == "latency") {
    ej["budget"]["latency_batch"] = env.budget.latency_batch;
    ej["budget"]["latency_points"] = env.budget.latency_points;
  }
  json actions{{"type", env.actions.type}};
  if (env.actions.low) actions["low"] = *env.actions.low;
  if (env.actions.high) actions["high"] = *env.actions.high;
  if (env.actions.step) actions["step"] = *env.actions.step;
  if (!env.actions.values.empty()) actions["values"] = env.actions.values;
  ej["actions"] = actions;
  json reward = env.reward.params;
  reward["name"] = env.reward.name;
  reward["beta"] = env.reward.beta;
  reward["target_accuracy_drop"] = env.reward.target_accuracy_drop;
  reward["target_sparsity"] = env.reward.target_sparsity;
  if (env.reward.target_accuracy) reward["target_accuracy"] = *env.reward.target_accuracy;
  ej["reward"] = reward;
  json out{{"seed", seed},
           {"device", device},
           {"threads", threads},
           {"cache_dir", cache_dir},
           {"data",
            {{"source", data.source},
             {"path", data.path},
             {"validation", data.validation},
             {"train_limit", data.train_limit},
             {"test_limit", data.test_limit},
             {"normalize", data.normalize},
             {"split_seed", data.split_seed},
             {"test_count", data.test_count},
             {"synthetic", data.synthetic.to_json()},
             {"graph", data.graph.to_json()}}},
           {"network",
            {{"name", network.name},
             {"layers", json::array()},
             {"init_seed", network.init_seed},
             {"pretrain", train_json(pretrain, false)}}},
           {"env", ej},
           {"lottery", lottery_json(lottery)},
           {"agents", agents},
           {"train", train}};
  // The kind's canonical options (its parser leaves defaults out, so the documents and bench run
  // hashes of other networks stay as they were). "layers" is written for every network, [] unless
  // the kind has layers, as it was when the section had one shared struct: documents and run keys
  // made before the kinds owned their options stay byte for byte the same.
  for (const auto& [key, value] : network.options.items()) out["network"][key] = value;
  if (data.coarse_labels) out["data"]["coarse_labels"] = true;
  return out;
}

std::string Config::resolved_cache_dir() const {
  if (!cache_dir.empty()) return cache_dir;
  if (const char* p = std::getenv("PRUNEGYM_CACHE"); p && *p) return p;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/prunegym";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/prunegym";
  return ".prunegym-cache";
}

}  // namespace prunegym
