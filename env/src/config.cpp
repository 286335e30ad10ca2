#include <prunegym/env/config.h>
#include <prunegym/env/rewards.h>
#include <prunegym/networks/errors.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace prunegym {

namespace {

using nlohmann::json;

std::string type_name(const json& v) {
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  return std::string("a ") + v.type_name();
}

/// Reads one JSON object key by key; finish() rejects the keys nobody asked for.
class ObjectReader {
 public:
  ObjectReader(const json& j, std::string path) : j_(j), path_(std::move(path)) {
    if (!j_.is_object()) throw ConfigError(where() + "expected an object, got " + type_name(j_));
  }

  std::string key_path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  const json* find(const std::string& key) {
    known_.insert(key);
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }

  void get(const std::string& key, std::string& out) {
    if (const json* v = find(key)) {
      if (!v->is_string()) fail(key, "a string", *v);
      out = v->get<std::string>();
    }
  }
  void get(const std::string& key, double& out) {
    if (const json* v = find(key)) {
      if (!v->is_number()) fail(key, "a number", *v);
      out = v->get<double>();
    }
  }
  void get(const std::string& key, std::optional<double>& out) {
    if (const json* v = find(key)) {
      if (!v->is_number()) fail(key, "a number", *v);
      out = v->get<double>();
    }
  }
  void get(const std::string& key, int64_t& out) {
    if (const json* v = find(key)) {
      if (!v->is_number_integer()) fail(key, "an integer", *v);
      out = v->get<int64_t>();
    }
  }
  void get(const std::string& key, uint64_t& out) {
    if (const json* v = find(key)) {
      if (!v->is_number_integer() || v->get<int64_t>() < 0) fail(key, "a non-negative integer", *v);
      out = v->get<uint64_t>();
    }
  }
  void get(const std::string& key, bool& out) {
    if (const json* v = find(key)) {
      if (!v->is_boolean()) fail(key, "true or false", *v);
      out = v->get<bool>();
    }
  }
  void get(const std::string& key, std::vector<std::string>& out) {
    if (const json* v = find(key)) {
      if (!v->is_array()) fail(key, "a list of strings", *v);
      out.clear();
      for (const auto& e : *v) {
        if (!e.is_string()) fail(key, "a list of strings", *v);
        out.push_back(e.get<std::string>());
      }
    }
  }
  void get(const std::string& key, std::vector<double>& out) {
    if (const json* v = find(key)) {
      if (!v->is_array()) fail(key, "a list of numbers", *v);
      out.clear();
      for (const auto& e : *v) {
        if (!e.is_number()) fail(key, "a list of numbers", *v);
        out.push_back(e.get<double>());
      }
    }
  }
  /// A nested object; absent keys read as an empty object.
  ObjectReader child(const std::string& key) {
    static const json empty = json::object();
    const json* v = find(key);
    return ObjectReader(v ? *v : empty, key_path(key));
  }
  /// The keys not read so far, as an object (for user-defined parameters).
  json rest() const {
    json out = json::object();
    for (auto it = j_.begin(); it != j_.end(); ++it)
      if (!known_.count(it.key())) out[it.key()] = it.value();
    return out;
  }
  void finish() const {
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (!known_.count(it.key())) {
        std::string list;
        for (const auto& k : known_) list += (list.empty() ? "" : ", ") + k;
        throw ConfigError("unknown config key '" + key_path(it.key()) + "' (known keys here: " + list + ")");
      }
    }
  }

 private:
  std::string where() const { return path_.empty() ? "config: " : path_ + ": "; }
  [[noreturn]] void fail(const std::string& key, const std::string& expected, const json& got) const {
    throw ConfigError("config key '" + key_path(key) + "' must be " + expected + ", got " + type_name(got) + " (" +
                      got.dump() + ")");
  }

  const json& j_;
  std::string path_;
  std::set<std::string> known_;
};

void read_train(ObjectReader r, TrainOptions& t, bool allow_samples) {
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
    throw ConfigError("config key '" + p + "optimizer': unknown optimizer '" + t.optimizer + "' (known: adam, sgd, adagrad)");
  if (!(t.lr > 0)) throw ConfigError("config key '" + p + "lr' must be positive");
  if (t.batch_size <= 0) throw ConfigError("config key '" + p + "batch_size' must be positive");
  if (t.epochs < 0) throw ConfigError("config key '" + p + "epochs' must be >= 0");
  if (t.samples < 0) throw ConfigError("config key '" + p + "samples' must be >= 0");
}

json train_json(const TrainOptions& t, bool with_samples) {
  json j{{"optimizer", t.optimizer}, {"lr", t.lr},         {"momentum", t.momentum},
         {"weight_decay", t.weight_decay}, {"batch_size", t.batch_size}, {"epochs", t.epochs}};
  if (with_samples) j["samples"] = t.samples;
  return j;
}

void require_one_of(const std::string& key, const std::string& value, std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) {
    if (value == a) return;
    list += (list.empty() ? "" : ", ") + std::string(a);
  }
  throw ConfigError("config key '" + key + "': unknown value '" + value + "' (known: " + list + ")");
}

}  // namespace

Config Config::from_json(const json& j) {
  Config c;
  ObjectReader root(j, "");
  root.get("seed", c.seed);
  root.get("device", c.device);
  root.get("threads", c.threads);
  root.get("cache_dir", c.cache_dir);
  if (c.threads < 0) throw ConfigError("config key 'threads' must be >= 0 (0 = one per core)");

  {
    auto d = root.child("data");
    d.get("source", c.data.source);
    d.get("path", c.data.path);
    d.get("validation", c.data.validation);
    d.get("train_limit", c.data.train_limit);
    d.get("test_limit", c.data.test_limit);
    d.get("normalize", c.data.normalize);
    d.get("split_seed", c.data.split_seed);
    auto s = d.child("synthetic");
    auto& so = c.data.synthetic;
    s.get("train", so.train);
    s.get("test", so.test);
    s.get("classes", so.classes);
    s.get("channels", so.shape.channels);
    s.get("height", so.shape.height);
    s.get("width", so.shape.width);
    s.get("signal", so.signal);
    s.get("seed", so.seed);
    s.finish();
    d.finish();
    require_one_of("data.source", c.data.source, {"idx", "synthetic"});
    if (c.data.validation < 0) throw ConfigError("config key 'data.validation' must be >= 0");
    if (so.shape.channels <= 0 || so.shape.height <= 0 || so.shape.width <= 0)
      throw ConfigError("config keys 'data.synthetic.channels/height/width' must be positive");
  }
  {
    auto n = root.child("network");
    n.get("name", c.network.name);
    n.get("layers", c.network.layers);
    n.get("init_seed", c.network.init_seed);
    read_train(n.child("pretrain"), c.pretrain, false);
    n.finish();
    network_specs(c.network);  // validates the name and layer strings now, not at first use
  }
  {
    auto e = root.child("env");
    auto& o = c.env;
    e.get("episode", o.episode);
    e.get("timing", o.timing);
    e.get("criterion", o.criterion);
    e.get("observation", o.observation);
    e.get("early_stop_accuracy", o.early_stop_accuracy);
    e.get("max_steps", o.max_steps);
    e.get("layers", o.layers);
    require_one_of("env.episode", o.episode, {"layerwise"});
    require_one_of("env.timing", o.timing, {"dense", "sparse"});
    require_one_of("env.criterion", o.criterion, {"std_threshold", "magnitude_target", "global_magnitude"});
    require_one_of("env.observation", o.observation, {"compact", "per_layer"});
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
    r.get("name", o.reward.name);
    r.get("beta", o.reward.beta);
    r.get("target_accuracy", o.reward.target_accuracy);
    r.get("target_accuracy_drop", o.reward.target_accuracy_drop);
    r.get("target_sparsity", o.reward.target_sparsity);
    o.reward.params = r.rest();  // the reward's own keys, checked by its factory
    try {
      RewardRegistry::instance().make(o.reward.name, o.reward.params);
    } catch (const ConfigError& err) {
      throw ConfigError(std::string(err.what()));
    }
    if (o.reward.target_accuracy && !(*o.reward.target_accuracy > 0 && *o.reward.target_accuracy <= 1))
      throw ConfigError("config key 'env.reward.target_accuracy' must be in (0, 1]");
    if (!(o.reward.target_sparsity > 0 && o.reward.target_sparsity <= 1))
      throw ConfigError("config key 'env.reward.target_sparsity' must be in (0, 1]");

    read_train(e.child("retrain"), o.retrain, true);
    auto v = e.child("evaluation");
    v.get("split", o.evaluation.split);
    v.get("samples", o.evaluation.samples);
    v.get("batch_size", o.evaluation.batch_size);
    v.finish();
    require_one_of("env.evaluation.split", o.evaluation.split, {"validation", "test"});
    if (o.evaluation.samples < 0 || o.evaluation.batch_size <= 0)
      throw ConfigError("config keys 'env.evaluation.samples' (>= 0) and 'batch_size' (> 0) are out of range");
    e.finish();
  }
  root.finish();
  if (c.env.evaluation.split == "validation" && c.data.validation == 0)
    throw ConfigError("env.evaluation.split is 'validation' but data.validation is 0: hold out samples or evaluate on 'test'");
  return c;
}

json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot open config file " + path + ": " + std::strerror(errno));
  try {
    return json::parse(in, nullptr, true, /*ignore_comments=*/true);
  } catch (const json::parse_error& e) {
    throw ConfigError(path + ": invalid JSON: " + e.what());
  }
}

Config Config::load(const std::string& path) {
  const json j = read_json_file(path);
  try {
    return from_json(j);
  } catch (const ConfigError& e) {
    throw ConfigError(path + ": " + e.what());
  }
}

json Config::to_json() const {
  json ej{{"episode", env.episode},
           {"timing", env.timing},
           {"criterion", env.criterion},
           {"observation", env.observation},
           {"early_stop_accuracy", env.early_stop_accuracy},
           {"max_steps", env.max_steps},
           {"layers", env.layers},
           {"retrain", train_json(env.retrain, true)},
           {"evaluation",
            {{"split", env.evaluation.split}, {"samples", env.evaluation.samples}, {"batch_size", env.evaluation.batch_size}}}};
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
  const auto& s = data.synthetic;
  return json{{"seed", seed},
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
                {"synthetic",
                 {{"train", s.train}, {"test", s.test}, {"classes", s.classes}, {"channels", s.shape.channels},
                  {"height", s.shape.height}, {"width", s.shape.width}, {"signal", s.signal}, {"seed", s.seed}}}}},
              {"network",
               {{"name", network.name}, {"layers", network.layers}, {"init_seed", network.init_seed},
                {"pretrain", train_json(pretrain, false)}}},
              {"env", ej}};
}

std::string Config::resolved_cache_dir() const {
  if (!cache_dir.empty()) return cache_dir;
  if (const char* p = std::getenv("PRUNEGYM_CACHE"); p && *p) return p;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/prunegym";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/prunegym";
  return ".prunegym-cache";
}

}  // namespace prunegym
