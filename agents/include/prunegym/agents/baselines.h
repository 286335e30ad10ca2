#pragma once
/// Baselines every learned policy is compared against.

#include <prunegym/agents/agent.h>

#include <random>

namespace prunegym {

/// Uniformly random actions (greedy or not).
class RandomAgent : public Agent {
 public:
  RandomAgent(const Space& action_space, uint64_t seed);
  std::string name() const override { return "random"; }
  Action act(const Observation& observation, bool explore) override;
  void save(const std::string& path) const override;
  void load(const std::string& path) override;

 private:
  Space action_space_;
  std::mt19937_64 rng_;
};

struct UniformOptions {
  double target_sparsity = 0.9;  ///< the sparsity the single action value must reach
  UniformOptions& set_target_sparsity(double v) {
    target_sparsity = v;
    return *this;
  }
};

/// PuRL's uniform pruning baseline: one action value for every layer, found by bisection over the
/// (monotone) action grid as the smallest value whose episode reaches the target sparsity.
class UniformAgent : public Agent {
 public:
  UniformAgent(const Space& action_space, UniformOptions options);
  std::string name() const override { return "uniform"; }
  void begin_episode(int64_t episode, int64_t total) override;
  Action act(const Observation& observation, bool explore) override;
  void observe(const Transition& t) override;
  void end_episode() override;
  void save(const std::string& path) const override;
  void load(const std::string& path) override;

  bool converged() const { return lo_ >= hi_; }
  /// The action value the search settled on (or the current best guess).
  double chosen_value() const;

 private:
  Action action_for(double position) const;

  Space action_space_;
  UniformOptions options_;
  // Bisection bounds: indices for Discrete, values for Box. hi_ is the best feasible so far.
  double lo_ = 0.0, hi_ = 0.0, trial_ = 0.0;
  bool hi_feasible_ = false;
  double last_sparsity_ = 0.0;
};

}  // namespace prunegym
