#pragma once
/// A tiny deterministic environment with a known optimal policy, for checking that an agent
/// learns before spending compute on pruning. Shaped like the pruning MDP: a fixed number of
/// steps, a discrete action per step, observation (step, last reward).

#include <prunegym/env/env.h>

namespace prunegym {

struct ToyEnvOptions {
  int64_t steps = 4;             ///< episode length
  int64_t actions = 5;           ///< actions per step
  bool sparse = false;           ///< one reward at the end (fraction of correct steps) instead of per step
  int64_t observation_size = 2;  ///< >= 2: (step, last correct) padded with zeros (for wire benchmarks)
  ToyEnvOptions& set_steps(int64_t v) {
    steps = v;
    return *this;
  }
  ToyEnvOptions& set_actions(int64_t v) {
    actions = v;
    return *this;
  }
  ToyEnvOptions& set_sparse(bool v) {
    sparse = v;
    return *this;
  }
  ToyEnvOptions& set_observation_size(int64_t v) {
    observation_size = v;
    return *this;
  }
};

/// At step t the correct action is (2t + 1) mod actions; a correct action earns 1 (dense), a
/// wrong one 0. The optimal return is `steps` (dense) or 1 (sparse). Deterministic: it has no
/// randomness, so a reset seed changes nothing. Its info sets step and value only (it has no
/// accuracy or masks).
class ToyEnv : public Env {
 public:
  explicit ToyEnv(ToyEnvOptions options = {});
  ResetResult reset(const ResetOptions& options = {}) override;
  StepResult step(const Action& action) override;
  const Space& action_space() const override { return action_space_; }
  const Space& observation_space() const override { return observation_space_; }
  double optimal_return() const { return options_.sparse ? 1.0 : static_cast<double>(options_.steps); }
  int64_t best_action(int64_t step) const { return (2 * step + 1) % options_.actions; }

 private:
  ToyEnvOptions options_;
  Space action_space_, observation_space_;
  int64_t t_ = 0, correct_ = 0;
  bool started_ = false;
  bool done_ = true;
};

}  // namespace prunegym
