#pragma once
/// EnvCore: the prune -> retrain -> evaluate machinery every episode schedule shares. PruneEnv owns
/// one; a schedule borrows it for the length of a step.

#include <prunegym/core/log.h>
#include <prunegym/env/config.h>
#include <prunegym/env/criteria.h>
#include <prunegym/env/env.h>
#include <prunegym/env/pretrain.h>

#include <torch/torch.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

namespace prunegym {

class EnvCore {
 public:
  /// Loads (or takes) the data, then pretrains or loads the dense model. With
  /// PretrainPolicy::cached_only and no cached model, the core describes the architecture only:
  /// dense_accuracy() is NaN and nothing may be run on it.
  EnvCore(const Config& config, std::shared_ptr<const DataSplits> data, const LogFn& log,
          PretrainPolicy policy = PretrainPolicy::train);

  const Config& config() const { return config_; }
  const torch::Device& device() const { return device_; }
  NetworkImpl& network() { return *network_; }
  const NetworkImpl& network() const { return *network_; }
  const PruningCriterion& criterion() const { return *criterion_; }
  const DataSplits& data() const { return *data_; }
  const DenseModel& dense() const { return dense_; }
  /// Accuracy of the dense model on the state/reward split.
  double dense_accuracy() const { return dense_accuracy_; }
  std::mt19937_64& rng() { return rng_; }

  /// Prunes `layers` for action value `value` (what it means is the criterion's); milliseconds.
  double prune(const std::vector<size_t>& layers, double value);
  /// Retrains briefly with the episode's optimizer and env.retrain; milliseconds.
  double retrain();
  /// Retrains with a fresh optimizer over `options` (lottery rounds); milliseconds.
  double retrain_with(const TrainOptions& options);
  /// Measures accuracy on the state/reward split and keeps it; milliseconds.
  double evaluate();
  double accuracy() const { return accuracy_; }

  /// Mask counts: remaining/total weights, global and per-layer sparsity (step, layer, value unset).
  StepInfo counts() const;
  /// Back to the dense weights with a fresh episode optimizer; accuracy = the dense accuracy.
  void restart();
  /// Seeds the episode RNG (Gymnasium semantics: only when asked, or once at first reset).
  void seed(std::optional<uint64_t> seed);

  /// The parts of a snapshot the core owns.
  struct State {
    std::vector<torch::Tensor> network;
    std::string optimizer;
    std::mt19937_64 rng;
    bool seeded = false;
    double accuracy = 0.0;
  };
  State save() const;
  void load(const State& state);

  /// Accuracy and loss on "train", "validation" or "test".
  EvalResult evaluate_split(const std::string& split);
  /// The network on `data`, masked or compact as env.evaluation.compact says.
  EvalResult evaluate_on(const Tensors& data);
  /// Trains on the whole training split (masked weights stay zero).
  TrainStats finetune(const TrainOptions& options, const EpochCallback& on_epoch);

 private:
  Config config_;
  /// train() over the network, or over its compact copy as env.retrain.compact says.
  TrainStats train_on(torch::optim::Optimizer& optimizer, const TrainOptions& options,
                      const EpochCallback& on_epoch = {});

  torch::Device device_;
  std::shared_ptr<const DataSplits> data_;
  DenseModel dense_;
  NetworkPtr network_;
  std::unique_ptr<PruningCriterion> criterion_;
  Tensors eval_set_;
  double dense_accuracy_ = 0.0;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::mt19937_64 rng_;
  bool seeded_ = false;
  double accuracy_ = 0.0;
  std::vector<int64_t> positions_;  ///< network_->output_positions(), for the MACs in counts()
  int64_t dense_macs_ = 0;
};

}  // namespace prunegym
