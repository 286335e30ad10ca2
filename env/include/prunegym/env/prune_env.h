#pragma once
/// PruneEnv: an agent prunes a trained network layer by layer (PuRL's MDP). Assembled from parts
/// chosen by the config: network, criterion, observation, reward, schedule.

#include <prunegym/env/config.h>
#include <prunegym/env/criteria.h>
#include <prunegym/env/env.h>
#include <prunegym/env/lottery.h>
#include <prunegym/env/pretrain.h>
#include <prunegym/env/rewards.h>

#include <torch/torch.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

namespace prunegym {

/// Everything needed to put the environment back exactly where it was.
struct EnvSnapshot {
  std::vector<torch::Tensor> network_state;
  std::string optimizer_state;
  std::mt19937_64 rng;
  std::shared_ptr<RewardFn> reward;
  bool started = false;
  bool done = false;
  int64_t step = 0;
  double accuracy = 0.0;
  Observation observation;
  std::vector<float> per_layer;
};

struct PruneEnvHooks {
  LogFn log;                                ///< progress and warnings (pretraining, cache)
  std::shared_ptr<const DataSplits> data;   ///< preloaded data to share between envs
};

class PruneEnv : public Env {
 public:
  explicit PruneEnv(const Config& config, PruneEnvHooks hooks = {});
  ~PruneEnv() override;

  ResetResult reset(const ResetOptions& options = {}) override;
  StepResult step(const Action& action) override;
  const Space& action_space() const override { return action_space_; }
  const Space& observation_space() const override { return observation_space_; }

  EnvSnapshot snapshot() const;
  void restore(const EnvSnapshot& snapshot);

  const Config& config() const { return config_; }
  const DenseModel& dense() const { return dense_; }
  /// Accuracy of the dense model on the state/reward split.
  double dense_accuracy() const { return dense_eval_accuracy_; }
  const RewardSetup& reward_setup() const { return reward_setup_; }
  NetworkImpl& network() { return *network_; }
  const DataSplits& data() const { return *data_; }
  /// True for "rounds" episodes (one lottery-ticket round per step).
  bool rounds_mode() const { return rounds_; }
  /// Names of the layers the episode prunes, in order.
  std::vector<std::string> episode_layers() const;
  /// Steps of a full episode: the layer count, or the round limit of "rounds" episodes.
  int64_t episode_length() const { return rounds_ ? max_rounds_ : static_cast<int64_t>(order_.size()); }
  bool episode_over() const { return done_; }
  /// Accuracy of the current network on the test split.
  double test_accuracy();
  /// Accuracy and loss of the current network on "train", "validation" or "test".
  EvalResult evaluate_split(const std::string& split);

  /// Applies a final policy: restores the dense model, then prunes episode layer i with
  /// values[i] (no retraining in between). Ends any running episode.
  void apply_values(const std::vector<double>& values);
  /// Trains the current (pruned) network on the whole training split; masked weights stay zero.
  TrainStats finetune(const TrainOptions& options, const EpochCallback& on_epoch = {});
  /// Saves the current network (weights and masks) as a LibTorch archive.
  void save_network(const std::string& path) const;

 private:
  StepInfo make_info() const;
  void build_observation(double sparsity);
  StepResult step_round(double value);
  double group_sparsity(const StepInfo& info) const;  ///< over the episode's layers

  bool rounds_ = false;
  int64_t max_rounds_ = 0;
  ResetStrategy strategy_ = ResetStrategy::rewind_init;
  ResetReferences refs_;
  LotteryOptions rounds_options_;

  Config config_;
  PruneEnvHooks hooks_;
  torch::Device device_;
  std::shared_ptr<const DataSplits> data_;
  Tensors eval_set_;
  Tensors retrain_set_;
  DenseModel dense_;
  NetworkPtr network_;
  double dense_eval_accuracy_ = 0.0;
  std::unique_ptr<PruningCriterion> criterion_;
  std::unique_ptr<RewardFn> reward_prototype_;
  std::unique_ptr<RewardFn> reward_;
  RewardSetup reward_setup_;
  Space action_space_;
  Space observation_space_;
  std::vector<size_t> order_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::mt19937_64 rng_;
  bool seeded_ = false;
  bool started_ = false;
  bool done_ = false;
  int64_t step_ = 0;
  double accuracy_ = 0.0;
  Observation observation_;
  std::vector<float> per_layer_;  ///< (a_i, p_i) for every episode layer
};

}  // namespace prunegym
