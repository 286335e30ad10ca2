#pragma once
/// `prunegym bench`: grids of MDP variants (named patches over a base config), their resolved
/// runs, and the statistics of the results. The process management lives in bench.cpp.

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace prunegym::bench {

struct Variant {
  std::string name;
  std::string description;
  std::string agent;
  nlohmann::json config;  ///< the resolved config document (base + patch, validated)
};

struct Grid {
  std::string path;
  std::string agent = "dqn";
  int64_t seeds = 3;
  std::optional<int64_t> episodes;   ///< overrides the config's episode budget
  std::vector<std::string> plugins;  ///< shared libraries registering user rewards (absolute paths)
  std::vector<Variant> variants;
};

/// Reads a grid file: {"base": path-or-object, "agent", "seeds", "episodes", "plugins",
/// "variants": [{"name", "description", "agent", "patch"}]}. Every variant's config is validated
/// (config keys and agent keys); errors name the variant and the key. Paths are relative to the
/// grid file.
Grid load_grid(const std::string& path);
Grid parse_grid(const nlohmann::json& doc, const std::string& base_dir, const std::string& path = "grid");

/// One run of the grid and the folder its results live in (named by a hash of everything that
/// decides the result, so a changed variant never reuses an old run).
struct RunSpec {
  size_t variant = 0;
  uint64_t seed = 0;
  std::string key;  ///< 16 hex digits
  std::string dir;  ///< relative to the bench folder: runs/<variant>-s<seed>-<key>
};
std::vector<RunSpec> plan_runs(const Grid& grid, int64_t seeds);

/// Mean and standard error (sample standard deviation / sqrt(n)); se is 0 for n < 2.
struct MeanSe {
  double mean = 0.0;
  double se = 0.0;
  int64_t n = 0;
};
MeanSe mean_se(const std::vector<double>& values);

/// The figures of one finished run, read from its summary.json and episodes.csv.
struct RunResult {
  std::string dir;  ///< the run's folder
  std::string variant;
  uint64_t seed = 0;
  double test_accuracy = 0.0;  ///< after fine-tuning
  double test_before_finetune = 0.0;
  double validation_accuracy = 0.0;  ///< after fine-tuning
  double sparsity = 0.0;
  /// Remaining over dense MACs per sample of the final network (summary.json "cost"); none when
  /// the summary predates it or the network cannot count its MACs.
  std::optional<double> macs_fraction;
  std::optional<int64_t> episodes_to_target;  ///< first episode meeting both targets
  int64_t episodes = 0;
  double seconds = 0.0;
  std::vector<double> episode_rewards;
  std::vector<double> episode_accuracy;
  std::vector<double> episode_sparsity;
};
RunResult read_run(const std::string& dir, const std::string& variant, uint64_t seed);

/// Indices of the points not dominated in (accuracy, sparsity), both to maximise.
std::vector<size_t> pareto_front(const std::vector<std::pair<double, double>>& points);

}  // namespace prunegym::bench
