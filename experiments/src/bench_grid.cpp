#include <prunegym/core/plugin.h>
#include <prunegym/experiments/bench_grid.h>
#include <prunegym/experiments/run_summary.h>

#include <prunegym/agents/factory.h>
#include <prunegym/core/errors.h>
#include <prunegym/core/json_file.h>
#include <prunegym/core/json_reader.h>
#include <prunegym/env/config.h>
#include <prunegym/env/pretrain.h>
#include <prunegym/env/spaces.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

namespace fs = std::filesystem;

namespace prunegym::bench {

namespace {

std::string resolve_path(const std::string& p, const std::string& base_dir) {
  const fs::path path(p);
  return (path.is_absolute() ? path : fs::path(base_dir) / path).lexically_normal().string();
}

/// Builds the agent once on placeholder spaces: its factory rejects unknown or bad keys (the train
/// section was checked when the config loaded).
void check_agent(const std::string& agent, const Config& config) {
  AgentRegistry::instance().check(agent);
  make_agent(agent, config.agents, Space::discrete(Space::grid(0.0, 1.0, 0.5)),
             Space::box({0.0, 0.0, 0.0}, {1.0, 1.0, 1.0}), 0, config.env.reward.target_sparsity);
}

}  // namespace

Grid parse_grid(const nlohmann::json& doc, const std::string& base_dir, const std::string& path) {
  Grid g;
  g.path = path;
  ObjectReader r(doc, "");
  const nlohmann::json* base = r.find("base");
  if (!base) throw ConfigError(path + ": a grid needs \"base\": a config file path or a config object");
  nlohmann::json base_doc;
  if (base->is_string()) {
    base_doc = read_json_file(resolve_path(base->get<std::string>(), base_dir));
  } else if (base->is_object()) {
    base_doc = *base;
  } else {
    throw ConfigError(path + ": \"base\" must be a config file path or a config object");
  }
  r.get("agent", g.agent);
  r.get("seeds", g.seeds);
  int64_t episodes = 0;
  r.get("episodes", episodes);
  if (episodes < 0) throw ConfigError(path + ": \"episodes\" must be >= 1");
  if (episodes > 0) g.episodes = episodes;
  std::vector<std::string> plugins;
  r.get("plugins", plugins);
  for (const auto& p : plugins) {
    g.plugins.push_back(resolve_path(p, base_dir));
    load_plugin(g.plugins.back());  // the variants below may name the rewards it adds
  }
  const nlohmann::json* variants = r.find("variants");
  r.finish();
  if (g.seeds < 1) throw ConfigError(path + ": \"seeds\" must be >= 1");
  if (!variants || !variants->is_array() || variants->empty())
    throw ConfigError(path + ": \"variants\" must be a non-empty list of {\"name\", \"patch\"}");

  std::set<std::string> seen;
  for (size_t i = 0; i < variants->size(); ++i) {
    const auto& v = (*variants)[i];
    if (!v.is_object()) throw ConfigError(path + ": variant " + std::to_string(i + 1) + " is not an object");
    Variant out;
    ObjectReader vr(v, "variants[" + std::to_string(i) + "]");
    vr.get("name", out.name);
    if (out.name.empty()) throw ConfigError(path + ": variant " + std::to_string(i + 1) + " has no \"name\"");
    if (out.name.find_first_of("/\\ \t") != std::string::npos)
      throw ConfigError(path + ": variant name '" + out.name +
                        "' must not contain spaces or slashes (it names folders)");
    if (!seen.insert(out.name).second) throw ConfigError(path + ": two variants are named '" + out.name + "'");
    vr.get("description", out.description);
    out.agent = g.agent;
    vr.get("agent", out.agent);
    nlohmann::json patch = nlohmann::json::object();
    if (const nlohmann::json* p = vr.find("patch")) {
      if (!p->is_object()) throw ConfigError(path + ": variant '" + out.name + "': \"patch\" must be an object");
      patch = *p;
    }
    vr.finish();
    nlohmann::json resolved = base_doc;
    resolved.merge_patch(patch);
    try {
      const Config config = Config::from_json(resolved);
      check_agent(out.agent, config);
      out.config = config.to_json();
    } catch (const ConfigError& e) {
      throw ConfigError(path + ": variant '" + out.name + "': " + e.what());
    }
    out.config.erase("cache_dir");
    out.config.erase("threads");
    g.variants.push_back(std::move(out));
  }
  return g;
}

Grid load_grid(const std::string& path) {
  const auto doc = read_json_file(path);
  return parse_grid(doc, fs::path(path).parent_path().string(), path);
}

std::vector<RunSpec> plan_runs(const Grid& grid, int64_t seeds) {
  std::vector<RunSpec> runs;
  for (size_t v = 0; v < grid.variants.size(); ++v) {
    for (int64_t s = 0; s < seeds; ++s) {
      const auto& var = grid.variants[v];
      nlohmann::json key{{"config", var.config},
                         {"agent", var.agent},
                         {"seed", s},
                         {"episodes", grid.episodes ? *grid.episodes : 0},
                         {"plugins", grid.plugins}};
      RunSpec r;
      r.variant = v;
      r.seed = static_cast<uint64_t>(s);
      r.key = hash_hex(key.dump());
      r.dir = "runs/" + var.name + "-s" + std::to_string(s) + "-" + r.key.substr(0, 8);
      runs.push_back(r);
    }
  }
  return runs;
}

MeanSe mean_se(const std::vector<double>& values) {
  MeanSe m;
  m.n = static_cast<int64_t>(values.size());
  if (values.empty()) return m;
  double sum = 0.0;
  for (double v : values) sum += v;
  m.mean = sum / static_cast<double>(m.n);
  if (m.n < 2) return m;
  double ss = 0.0;
  for (double v : values) ss += (v - m.mean) * (v - m.mean);
  m.se = std::sqrt(ss / static_cast<double>(m.n - 1)) / std::sqrt(static_cast<double>(m.n));
  return m;
}

RunResult read_run(const std::string& dir, const std::string& variant, uint64_t seed) {
  RunResult r;
  r.dir = dir;
  r.variant = variant;
  r.seed = seed;
  const auto summary = read_json_file((fs::path(dir) / "summary.json").string());
  const auto run = read_json_file((fs::path(dir) / "run.json").string());
  try {
    const RunSummary s = RunSummary::from_json(summary);
    r.test_accuracy = s.after_finetune.test;
    r.validation_accuracy = s.after_finetune.validation;
    r.test_before_finetune = s.before_finetune.test;
    r.sparsity = s.sparsity;
    if (s.cost.is_object() && s.cost.value("macs", int64_t{0}) > 0 && s.cost.value("unknown_layers", int64_t{0}) == 0)
      r.macs_fraction = s.cost.at("remaining_macs").get<double>() / s.cost.at("macs").get<double>();
    r.seconds = s.seconds.total;
    for (const auto& e : run.at("records").get<std::vector<EpisodeRecord>>()) {
      r.episode_rewards.push_back(e.total_reward);
      r.episode_accuracy.push_back(e.accuracy);
      r.episode_sparsity.push_back(e.sparsity);
      if (!r.episodes_to_target && e.accuracy >= s.target_accuracy && e.sparsity >= s.target_sparsity)
        r.episodes_to_target = static_cast<int64_t>(r.episode_rewards.size());
    }
    r.episodes = static_cast<int64_t>(r.episode_rewards.size());
  } catch (const nlohmann::json::exception& e) {
    throw DataError("the run in " + dir + " has an unexpected summary.json/run.json (" + e.what() +
                    "); delete the folder to recompute it");
  }
  return r;
}

std::vector<size_t> pareto_front(const std::vector<std::pair<double, double>>& points) {
  std::vector<size_t> front;
  for (size_t i = 0; i < points.size(); ++i) {
    bool dominated = false;
    for (size_t j = 0; j < points.size() && !dominated; ++j) {
      if (i == j) continue;
      const auto& a = points[j];
      const auto& b = points[i];
      dominated = a.first >= b.first && a.second >= b.second && (a.first > b.first || a.second > b.second);
    }
    if (!dominated) front.push_back(i);
  }
  return front;
}

}  // namespace prunegym::bench
