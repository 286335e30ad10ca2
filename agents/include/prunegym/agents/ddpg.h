#pragma once
/// DDPG as AMC uses it for one continuous action per layer: an actor MLP with a sigmoid output
/// scaled to the Box bounds, a critic MLP on (observation, action), replay, soft target updates,
/// truncated-normal exploration noise after random warm-up episodes, decaying per episode, and a
/// moving-average baseline subtracted from the rewards of each minibatch. AMC's defaults; where
/// prunegym differs, the option says so (docs/agents.md).

#include <prunegym/agents/agent.h>

#include <torch/torch.h>

#include <memory>
#include <random>
#include <vector>

namespace prunegym {

struct DDPGOptions {
  std::vector<int64_t> hidden = {300, 300};  ///< AMC: two hidden layers of 300, actor and critic alike
  double lr_actor = 1e-4;
  double lr_critic = 1e-3;
  int64_t buffer_size = 2000;  ///< transitions (AMC: 100 episodes' worth; here a count)
  int64_t batch_size = 64;
  double gamma = 1.0;            ///< AMC: no discount inside an episode
  double tau = 0.01;             ///< soft target update rate
  int64_t warmup = 100;          ///< episodes of uniformly random actions before learning
  double init_delta = 0.5;       ///< noise sigma, in the actor's [0, 1] output, after warm-up
  double delta_decay = 0.95;     ///< sigma x this per episode after warm-up
  double moving_alpha = 0.5;     ///< baseline update rate
  bool episode_reward = true;    ///< AMC: every step of an episode learns from the episode's total reward
  int64_t updates_per_step = 1;  ///< minibatch updates per stored transition (AMC: 1)
  uint64_t seed = 0;
};

class DDPGAgent : public Agent {
 public:
  DDPGAgent(const Space& action_space, const Space& observation_space, DDPGOptions options);
  std::string name() const override { return "ddpg"; }
  void begin_episode(int64_t episode, int64_t total) override;
  Action act(const Observation& observation, bool explore) override;
  void observe(const Transition& t) override;
  void end_episode() override;
  /// The noise sigma of this episode (1 while warming up: actions are uniform then).
  double exploration() const override;
  void save(const std::string& path) const override;
  void load(const std::string& path) override;

  /// The actor's action for an observation, in the Box bounds.
  double policy(const Observation& observation);
  /// The critic's value of (observation, action).
  double value(const Observation& observation, double action);
  int64_t updates() const { return updates_; }

 private:
  struct Net;
  void store(const std::vector<float>& obs, double action01, double reward, const std::vector<float>& next, bool end);
  void learn();
  double to_unit(double action) const;

  Space action_space_, observation_space_;
  DDPGOptions options_;
  std::shared_ptr<Net> net_;
  std::mt19937_64 rng_;
  int64_t episode_ = 0, updates_ = 0;
  double baseline_ = 0.0;
  bool has_baseline_ = false;
  /// Replay: rows of [obs, action in [0, 1], reward, next obs, terminal].
  torch::Tensor replay_;
  int64_t stored_ = 0;
  std::vector<Transition> pending_;  ///< this episode's steps, held for episode_reward
};

}  // namespace prunegym
