#pragma once
/// PruneEnv: an agent prunes a trained network (PuRL's MDP, or seed 000's lottery rounds). One
/// prune -> retrain -> evaluate -> reward core (EnvCore) plus parts chosen by the config, each
/// from its registry: the episode schedule (env.episode), the criterion (env.criterion), the
/// observation (env.observation) and the reward (env.reward.name).

#include <prunegym/env/config.h>
#include <prunegym/env/criteria.h>
#include <prunegym/env/env.h>
#include <prunegym/env/env_core.h>
#include <prunegym/env/episode_state.h>
#include <prunegym/env/lottery.h>
#include <prunegym/env/observation.h>
#include <prunegym/env/pretrain.h>
#include <prunegym/env/rewards.h>
#include <prunegym/env/schedule.h>

#include <torch/torch.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

namespace prunegym {

class ActionWall;  // env/budget.h

/// Everything needed to put the environment back exactly where it was.
struct EnvSnapshot : EnvState {
  EnvCore::State core;
  std::shared_ptr<RewardFn> reward;
  bool started = false;
  bool done = false;
  EpisodeState episode;
  Observation observation;
};

struct PruneEnvHooks {
  LogFn log;                               ///< progress and warnings (pretraining, cache)
  std::shared_ptr<const DataSplits> data;  ///< preloaded data to share between envs
  /// cached_only: describe the config without training a dense model that is not cached yet
  /// (dense().trained tells; such an env refuses reset()).
  PretrainPolicy pretrain = PretrainPolicy::train;
};

class PruneEnv : public Env {
 public:
  explicit PruneEnv(const Config& config, PruneEnvHooks hooks = {});
  ~PruneEnv() override;

  ResetResult reset(const ResetOptions& options = {}) override;
  StepResult step(const Action& action) override;
  const Space& action_space() const override { return action_space_; }
  const Space& observation_space() const override { return observation_space_; }
  nlohmann::json describe() const override;
  std::shared_ptr<const EnvState> save_state() const override;
  void restore_state(const EnvState& state) override;

  EnvSnapshot snapshot() const;
  void restore(const EnvSnapshot& snapshot);

  const Config& config() const { return core_.config(); }
  const DenseModel& dense() const { return core_.dense(); }
  /// Accuracy of the dense model on the state/reward split.
  double dense_accuracy() const { return core_.dense_accuracy(); }
  const RewardSetup& reward_setup() const { return reward_setup_; }
  NetworkImpl& network() { return core_.network(); }
  const NetworkImpl& network() const { return core_.network(); }
  const PruningCriterion& criterion() const { return core_.criterion(); }
  const DataSplits& data() const { return core_.data(); }
  const EpisodeSchedule& schedule() const { return *schedule_; }
  /// Names of the layers the episode prunes, in order.
  std::vector<std::string> episode_layers() const;
  /// Steps of a full episode: the layer count, or the round limit of "rounds" episodes.
  int64_t episode_length() const { return schedule_->length(); }
  bool episode_over() const { return done_; }
  /// The episode so far: steps taken, the last accuracy and sparsity, one record per layer.
  const EpisodeState& episode() const { return episode_; }
  /// env.budget's action wall (null without a budget).
  const ActionWall* budget() const { return wall_.get(); }
  /// Accuracy of the current network on the test split.
  double test_accuracy() { return core_.evaluate_split("test").accuracy; }
  /// Accuracy and loss of the current network on "train", "validation" or "test".
  EvalResult evaluate_split(const std::string& split) { return core_.evaluate_split(split); }

  /// Applies a final policy: restores the dense model, then prunes episode layer i with
  /// values[i] (no retraining in between; env.budget's wall raises them as in an episode, so
  /// replaying requested or applied values gives the same network). Ends any running episode.
  void apply_values(const std::vector<double>& values);
  /// Trains the current (pruned) network on the whole training split; masked weights stay zero.
  TrainStats finetune(const TrainOptions& options, const EpochCallback& on_epoch = {});
  /// Saves the current network as NetworkImpl::save_model does (TorchScript for the built-in
  /// stacks and residual networks, weights with zeros where masked).
  void save_network(const std::string& path) const;
  /// Exports the current network to `path`. With a structured criterion the removed channels are
  /// physically gone (networks/groups.h compact_network) and the masked form, same function and
  /// dense shapes, goes to `masked_path`; otherwise, or when the network has no TorchScript form of
  /// its own, `path` gets the masked network. Returns what was written: {"compact", "file",
  /// "file_bytes", "parameters", "macs", "dense_parameters", "dense_macs", ...}.
  nlohmann::json export_network(const std::string& path, const std::string& masked_path) const;

 private:
  void build_action_space();
  void build_reward_setup();
  Observation observe() const;
  /// EpisodeError for an env built to describe its config only (PretrainPolicy::cached_only).
  void require_dense_model() const;
  void record(const ScheduleStep& step, double value);

  EnvCore core_;
  std::unique_ptr<EpisodeSchedule> schedule_;
  std::unique_ptr<ObservationBuilder> observation_builder_;
  std::unique_ptr<RewardFn> reward_prototype_;
  std::unique_ptr<RewardFn> reward_;
  std::unique_ptr<ActionWall> wall_;
  RewardSetup reward_setup_;
  Space action_space_;
  Space observation_space_;
  bool started_ = false;
  bool done_ = false;
  EpisodeState episode_;
  Observation observation_;
};

}  // namespace prunegym
