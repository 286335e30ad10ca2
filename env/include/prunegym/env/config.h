#pragma once
/// The one JSON file that configures an environment: data, network, pretraining and the MDP.
/// Unknown keys and wrong types are errors that name the key.

#include <prunegym/core/json_file.h>
#include <prunegym/networks/data.h>
#include <prunegym/networks/model.h>
#include <prunegym/networks/train.h>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace prunegym {

struct RewardOptions {
  std::string name = "purl";
  double beta = 1.0;
  std::optional<double> target_accuracy;  ///< T_A; when absent: dense accuracy - target_accuracy_drop
  double target_accuracy_drop = 0.01;
  double target_sparsity = 0.9;                      ///< T_P
  nlohmann::json params = nlohmann::json::object();  ///< extra keys for user rewards
};

struct ActionOptions {
  std::string type = "discrete";          ///< "discrete" (a grid) or "box" (a continuous value)
  std::optional<double> low, high, step;  ///< defaults depend on the criterion
  std::vector<double> values;             ///< an explicit list instead of a grid
};

/// env.budget: AMC's resource constraint. With one, each layer-wise action is raised just enough
/// that the layers still to come, at the highest action, can bring the resource to `ratio` of the
/// dense network's (the action wall, env/budget.h); an episode never ends above it.
struct BudgetOptions {
  /// "macs", "params" (remaining prunable weights) or "latency" (predicted by the measured
  /// per-layer latency table, networks/latency.h); "" = no budget
  std::string resource;
  double ratio = 1.0;          ///< the share of the dense network's resource an episode may keep, in (0, 1]
  int64_t latency_batch = 1;   ///< "latency": the batch size the table is measured at
  int64_t latency_points = 8;  ///< "latency": grid points per channel dimension of each layer
  bool active() const { return !resource.empty(); }
};

struct EvaluationOptions {
  std::string split = "validation";  ///< "validation" or "test": the accuracy in state and reward
  int64_t samples = 0;               ///< evaluate on the first N samples (0 = whole split)
  int64_t batch_size = 5000;
  /// Once whole channels are removed, evaluate a compact copy without them (the same function):
  /// "auto" under a structured criterion where that is faster (not the batch-norm-folding residual
  /// networks), "always", "never".
  std::string compact = "auto";
};

/// Lottery-ticket rounds: how each round prunes, resets the survivors and retrains. Used by
/// `prunegym lottery` and by the environment's "rounds" episodes.
struct LotteryOptions {
  /// Strategies `prunegym lottery` compares: keep, rewind_init, rewind_iter, reinit, random_mask.
  std::vector<std::string> strategies{"rewind_init", "reinit", "keep"};
  std::string strategy = "rewind_init";  ///< the one a "rounds" episode uses
  std::string scope = "layerwise";       ///< "layerwise" (p% of each layer) or "global" (one threshold)
  double rate = 0.2;                     ///< fraction of the survivors pruned per round
  std::optional<double> output_rate;     ///< layerwise: rate of the output layer (LTH: rate / 2)
  std::optional<double> conv_rate;       ///< layerwise: rate of the convolution layers (LTH Conv-2/4: 0.1)
  int64_t rounds = 5;                    ///< rounds of the rate schedule
  std::vector<double> sparsities;        ///< explicit cumulative sparsities (replaces rate/rounds)
  std::optional<double> one_shot;        ///< a single round to this sparsity
  std::vector<std::string> layers;       ///< layers to prune (empty = all prunable layers)
  TrainOptions train = TrainOptions().set_optimizer("adam").set_lr(1.2e-3).set_batch_size(60).set_epochs(2);
  int64_t eval_every = 100;      ///< iterations between validation checks (early-stop iteration)
  int64_t rewind_iteration = 0;  ///< k of rewind_iter: survivors go back to their values at iteration k

  /// The cumulative target sparsity of every round, for the pruned layers (output layer aside).
  std::vector<double> schedule() const;
};

/// The three part slots (episode, criterion, observation) each take a registered name or
/// {"name": ..., options}; the options are kept as the part's parser returns them (canonical).
struct EnvOptions {
  std::string episode = "layerwise";  ///< one step per prunable layer, or "rounds" (one step per round)
  nlohmann::json episode_options = nlohmann::json::object();
  std::string timing = "dense";  ///< "dense": retrain+reward every step; "sparse": at the end
  std::string criterion = "std_threshold";
  nlohmann::json criterion_options = nlohmann::json::object();
  ActionOptions actions;
  std::string observation = "compact";  ///< "compact" (layer, accuracy, sparsity) or "per_layer"
  nlohmann::json observation_options = nlohmann::json::object();
  RewardOptions reward;
  BudgetOptions budget;
  TrainOptions retrain =
      TrainOptions().set_optimizer("adam").set_lr(1e-3).set_batch_size(100).set_epochs(1).set_samples(1000);
  /// env.retrain.compact: once whole channels are removed, every retraining of the episode
  /// (steps, lottery rounds, fine-tuning) runs on a compact copy without them (the same batches,
  /// function and updates; networks/groups.h train_compact). "auto": under a structured criterion,
  /// except on fully connected stacks, whose hand-written masked path is faster; "always" or "never".
  std::string retrain_compact = "auto";
  EvaluationOptions evaluation;
  double early_stop_accuracy = 0.001;  ///< terminate when accuracy falls below (PuRL: 0.1%)
  int64_t max_steps = 0;               ///< truncate after this many steps (0 = no limit)
  std::vector<std::string> layers;     ///< layers to prune, in order (empty = all)
};

struct Config {
  uint64_t seed = 0;
  std::string device = "cpu";
  int64_t threads = 0;    ///< 0 = one per core
  std::string cache_dir;  ///< "" = $PRUNEGYM_CACHE, else $XDG_CACHE_HOME/prunegym, else ~/.cache/prunegym
  DataOptions data;
  NetworkOptions network;
  TrainOptions pretrain = TrainOptions().set_optimizer("adam").set_lr(1e-3).set_batch_size(128).set_epochs(8);
  EnvOptions env;
  LotteryOptions lottery;
  /// Sections owned by the agents layer ("agents": per-agent options, "train": the training
  /// pipeline). Kept as JSON here and validated, key by key, by prunegym::agents.
  nlohmann::json agents = nlohmann::json::object();
  nlohmann::json train = nlohmann::json::object();

  /// Parses and validates; throws ConfigError naming the offending key.
  static Config from_json(const nlohmann::json& j);
  /// Reads a file; errors name the file, and the line for JSON syntax errors.
  static Config load(const std::string& path);
  nlohmann::json to_json() const;
  /// The cache folder this config resolves to.
  std::string resolved_cache_dir() const;
};

class ObjectReader;
/// Reads optimizer, lr, momentum, weight_decay, batch_size, epochs (and samples when allowed)
/// from `reader` into `options`, then rejects unknown keys and out-of-range values.
void read_train_options(ObjectReader reader, TrainOptions& options, bool allow_samples);

}  // namespace prunegym
