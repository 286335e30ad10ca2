#pragma once
/// PPO: categorical policy and value heads, clipped surrogate, GAE, entropy bonus, minibatch epochs.

#include <prunegym/agents/agent.h>
#include <prunegym/agents/dqn.h>

#include <torch/torch.h>

#include <random>
#include <vector>

namespace prunegym {

struct PPOOptions {
  std::vector<int64_t> hidden = {64, 64};
  double lr = 1e-3;
  int64_t rollout_steps = 32;  ///< transitions per update (updates happen at episode ends)
  int64_t epochs = 10;
  int64_t minibatch = 16;
  double clip = 0.2;
  double gamma = 0.99;
  double lambda = 0.95;  ///< GAE
  double entropy_coef = 0.01;
  double value_coef = 0.5;
  double grad_clip = 0.5;
  uint64_t seed = 0;

  PPOOptions& set_lr(double v) {
    lr = v;
    return *this;
  }
  PPOOptions& set_rollout_steps(int64_t v) {
    rollout_steps = v;
    return *this;
  }
  PPOOptions& set_epochs(int64_t v) {
    epochs = v;
    return *this;
  }
  PPOOptions& set_entropy_coef(double v) {
    entropy_coef = v;
    return *this;
  }
  PPOOptions& set_seed(uint64_t v) {
    seed = v;
    return *this;
  }
};

class PPOAgent : public Agent {
 public:
  PPOAgent(const Space& action_space, const Space& observation_space, PPOOptions options);
  std::string name() const override { return "ppo"; }
  Action act(const Observation& observation, bool explore) override;
  void observe(const Transition& t) override;
  void end_episode() override;
  double exploration() const override { return last_entropy_; }
  void save(const std::string& path) const override;
  void load(const std::string& path) override;

  /// Action probabilities of the current policy.
  std::vector<float> probabilities(const Observation& observation);
  int64_t updates() const { return updates_; }

 private:
  void update();

  Space action_space_, observation_space_;
  PPOOptions options_;
  Mlp policy_{nullptr}, value_{nullptr};
  std::unique_ptr<torch::optim::Adam> optimizer_;
  std::mt19937_64 rng_;
  // Rollout storage.
  std::vector<std::vector<float>> obs_;
  std::vector<int64_t> actions_;
  std::vector<float> log_probs_, values_, rewards_, dones_;
  std::vector<float> bootstrap_;  ///< value of next_observation where an episode was truncated
  int64_t updates_ = 0;
  double last_entropy_ = 0.0;
};

}  // namespace prunegym
