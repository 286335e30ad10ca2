#pragma once
/// Lottery-ticket building blocks: exact-count magnitude pruning (layer-wise or global), the
/// weight-reset strategies applied after each pruning round, and a training run that records the
/// early-stop iteration. `prunegym lottery` and the environment's "rounds" episodes use them.

#include <prunegym/env/config.h>
#include <prunegym/networks/data.h>
#include <prunegym/networks/model.h>
#include <prunegym/networks/train.h>

#include <torch/torch.h>

#include <functional>
#include <random>
#include <string>
#include <vector>

namespace prunegym {

/// What happens to the surviving weights after a pruning round.
enum class ResetStrategy {
  keep,         ///< plain iterative pruning: training continues from the trained values
  rewind_init,  ///< winning ticket: survivors go back to their initial values
  rewind_iter,  ///< late rewinding: survivors go back to their values at training iteration k
  reinit,       ///< same mask, fresh random initial values
  random_mask,  ///< control: a random mask with the same per-layer counts, survivors rewound to init
};
ResetStrategy parse_strategy(const std::string& name);
/// One line per strategy, for --help texts and docs.
std::string strategy_help();

/// Copies of every parameter (weights and biases) and learned buffer (batch-norm running
/// statistics), masks excluded, in registration order: what rewinding puts back.
std::vector<torch::Tensor> clone_parameters(const NetworkImpl& net);
/// Writes parameters from clone_parameters() back, then zeroes masked weights.
void load_parameters(NetworkImpl& net, const std::vector<torch::Tensor>& params);

/// Per-layer cumulative targets of one round: `sparsity` for every pruned layer, except the
/// output layer of a layer-wise schedule with an output rate.
struct RoundTarget {
  std::vector<size_t> layers;    ///< prunable-layer indices pruned
  std::vector<double> sparsity;  ///< cumulative target per entry of `layers` (layer-wise scope)
  double global = 0.0;           ///< cumulative target over all of `layers` (global scope)
  bool global_scope = false;
};

/// Prunes the smallest-magnitude survivors until each layer (layer-wise) or the group of layers
/// (global) has exactly round(target * size) weights pruned. Already-pruned weights stay pruned;
/// a target below the current sparsity prunes nothing. Returns the pruned count per layer of
/// `target.layers`.
std::vector<int64_t> prune_to_target(NetworkImpl& net, const RoundTarget& target);
/// Prunes random survivors of each listed layer until it has `pruned[i]` weights pruned.
void prune_random_to_counts(NetworkImpl& net, const std::vector<size_t>& layers, const std::vector<int64_t>& pruned,
                            std::mt19937_64& rng);

/// The layers a lottery config prunes (its `layers`, else all), as prunable-layer indices.
std::vector<size_t> lottery_layers(const NetworkImpl& net, const LotteryOptions& options);
/// The targets of round `round` (1-based) of the configured schedule (rate/rounds, sparsities or
/// one_shot).
RoundTarget round_target(const NetworkImpl& net, const LotteryOptions& options, int64_t round);
/// One rate-based round from the current sparsities: each layer loses `rate` of its survivors
/// (output_rate and conv_rate apply as configured). The rounds episodes' action with a magnitude
/// criterion.
RoundTarget rate_target(const NetworkImpl& net, const LotteryOptions& options, double rate);

/// The reference states a reset strategy needs, captured once per experiment.
struct ResetReferences {
  std::vector<torch::Tensor> init;    ///< parameters at initialisation (W0)
  std::vector<torch::Tensor> rewind;  ///< parameters at iteration k (rewind_iter)
  NetworkOptions network;             ///< to draw fresh initialisations (reinit)
  InputShape input;
  int64_t classes = 10;
};

/// Prunes `net` for `target` and resets its survivors by `strategy`. `reinit_seed` seeds the
/// fresh weights of reinit; `rng` draws the random mask of random_mask.
void prune_and_reset(NetworkImpl& net, const RoundTarget& target, ResetStrategy strategy, const ResetReferences& refs,
                     uint64_t reinit_seed, std::mt19937_64& rng);

/// One training run with validation checks every `eval_every` iterations (and at the end).
struct RoundTraining {
  int64_t iterations = 0;
  int64_t early_stop_iteration = 0;  ///< iteration of minimum validation loss
  double min_validation_loss = 0.0;
  double best_validation_accuracy = 0.0;
  double early_stop_test_accuracy = 0.0;  ///< test accuracy at the early-stop iteration
  double test_accuracy = 0.0;             ///< at the end of training
  double validation_accuracy = 0.0;       ///< at the end of training
  double seconds = 0.0;
};

/// Called at every validation check with (iteration, total iterations).
using CheckCallback = std::function<void(int64_t, int64_t)>;

/// Trains with a fresh optimizer; when `capture_at` > 0, the parameters after that many
/// iterations are stored in `captured` (late-rewinding reference).
RoundTraining train_round(NetworkImpl& net, const DataSplits& data, const TrainOptions& options, int64_t eval_every,
                          std::mt19937_64& rng, const CheckCallback& on_check = {}, int64_t capture_at = 0,
                          std::vector<torch::Tensor>* captured = nullptr);

}  // namespace prunegym
