#pragma once
/// DQN as PuRL uses it: a small Q-network, experience replay, a target network, epsilon annealed
/// over a fraction of the run, Huber loss.

#include <prunegym/agents/agent.h>

#include <torch/torch.h>

#include <random>
#include <vector>

namespace prunegym {

/// Fixed-capacity ring buffer of transitions, sampled uniformly.
class ReplayBuffer {
 public:
  ReplayBuffer(size_t capacity, size_t observation_size);
  void add(const std::vector<float>& obs, int64_t action, double reward, const std::vector<float>& next, bool terminal);
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  struct Batch {
    torch::Tensor obs, actions, rewards, next, terminal;
  };
  Batch sample(size_t n, std::mt19937_64& rng) const;
  /// All stored tensors, for checkpoints.
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

 private:
  size_t capacity_, dim_, size_ = 0, next_ = 0;
  torch::Tensor obs_, actions_, rewards_, next_obs_, terminal_;
};

/// A multilayer perceptron: inputs -> hidden (ReLU) ... -> outputs.
struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t inputs, const std::vector<int64_t>& hidden, int64_t outputs);
  torch::Tensor forward(torch::Tensor x);
  torch::nn::Sequential layers;
};
TORCH_MODULE(Mlp);

/// An Mlp whose initial weights come from `seed` (the global generator is left as it was).
Mlp seeded_mlp(int64_t inputs, const std::vector<int64_t>& hidden, int64_t outputs, uint64_t seed);

struct DQNOptions {
  std::vector<int64_t> hidden = {64, 64};
  double lr = 1e-3;
  int64_t buffer_size = 400;
  int64_t batch_size = 32;
  double gamma = 0.982;
  int64_t target_update = 15;         ///< steps between target-network copies
  double exploration_fraction = 0.7;  ///< share of the run over which epsilon anneals
  double epsilon_start = 1.0;
  double epsilon_end = 0.02;
  int64_t learning_starts = 32;  ///< transitions collected before the first update
  int64_t train_freq = 1;        ///< steps between updates
  int64_t gradient_steps = 4;    ///< minibatch updates each time (cheap next to an env step)
  bool double_q = true;          ///< Double DQN targets
  double grad_clip = 10.0;
  uint64_t seed = 0;

  DQNOptions& set_lr(double v) {
    lr = v;
    return *this;
  }
  DQNOptions& set_buffer_size(int64_t v) {
    buffer_size = v;
    return *this;
  }
  DQNOptions& set_batch_size(int64_t v) {
    batch_size = v;
    return *this;
  }
  DQNOptions& set_gamma(double v) {
    gamma = v;
    return *this;
  }
  DQNOptions& set_target_update(int64_t v) {
    target_update = v;
    return *this;
  }
  DQNOptions& set_exploration_fraction(double v) {
    exploration_fraction = v;
    return *this;
  }
  DQNOptions& set_learning_starts(int64_t v) {
    learning_starts = v;
    return *this;
  }
  DQNOptions& set_gradient_steps(int64_t v) {
    gradient_steps = v;
    return *this;
  }
  DQNOptions& set_hidden(std::vector<int64_t> v) {
    hidden = std::move(v);
    return *this;
  }
  DQNOptions& set_seed(uint64_t v) {
    seed = v;
    return *this;
  }
};

class DQNAgent : public Agent {
 public:
  DQNAgent(const Space& action_space, const Space& observation_space, DQNOptions options);
  std::string name() const override { return "dqn"; }
  void begin_episode(int64_t episode, int64_t total) override;
  Action act(const Observation& observation, bool explore) override;
  void observe(const Transition& t) override;
  double exploration() const override { return epsilon_; }
  void save(const std::string& path) const override;
  void load(const std::string& path) override;

  std::vector<float> q_values(const Observation& observation);
  const ReplayBuffer& replay() const { return replay_; }
  int64_t updates() const { return updates_; }
  int64_t target_syncs() const { return target_syncs_; }
  /// Largest absolute difference between online and target parameters.
  double target_distance() const;

 private:
  void learn();

  Space action_space_, observation_space_;
  DQNOptions options_;
  Mlp online_{nullptr}, target_{nullptr};
  std::unique_ptr<torch::optim::Adam> optimizer_;
  ReplayBuffer replay_;
  std::mt19937_64 rng_;
  double epsilon_ = 1.0;
  int64_t steps_ = 0, updates_ = 0, target_syncs_ = 0;
};

}  // namespace prunegym
