#pragma once
/// Tabular Q-learning over discretised observations, with seed 000's two update rules.

#include <prunegym/agents/agent.h>

#include <random>
#include <unordered_map>
#include <vector>

namespace prunegym {

struct QLearningOptions {
  std::string update = "eq6";  ///< "eq3": Q += a(r + max Q' - Q); "eq6": Q = (1-a)Q + a(r + g max Q')
  double alpha = 0.9;          ///< learning rate
  double gamma = 0.6;          ///< discount (eq6 only)
  int64_t bins = 10;           ///< bins per observation dimension
  double epsilon_start = 1.0;  ///< decays linearly over the run...
  double epsilon_end = 0.1;    ///< ...to this
  uint64_t seed = 0;

  QLearningOptions& set_update(std::string v) {
    update = std::move(v);
    return *this;
  }
  QLearningOptions& set_alpha(double v) {
    alpha = v;
    return *this;
  }
  QLearningOptions& set_gamma(double v) {
    gamma = v;
    return *this;
  }
  QLearningOptions& set_bins(int64_t v) {
    bins = v;
    return *this;
  }
  QLearningOptions& set_epsilon(double start, double end) {
    epsilon_start = start;
    epsilon_end = end;
    return *this;
  }
  QLearningOptions& set_seed(uint64_t v) {
    seed = v;
    return *this;
  }
};

class TabularQAgent : public Agent {
 public:
  TabularQAgent(const Space& action_space, const Space& observation_space, QLearningOptions options);
  std::string name() const override { return "q"; }
  void begin_episode(int64_t episode, int64_t total) override;
  Action act(const Observation& observation, bool explore) override;
  void observe(const Transition& t) override;
  double exploration() const override { return epsilon_; }
  /// True when the state has a row with a single best action: the greedy choice is the table's,
  /// not a random tie-break (an unseen state, or untried actions still at zero).
  std::optional<bool> knows(const Observation& observation) const override;
  void save(const std::string& path) const override;
  void load(const std::string& path) override;

  /// The discrete state an observation falls into.
  std::string state_key(const Observation& observation) const;
  /// Q-values of a state (zeros for an unseen one).
  std::vector<double> q_values(const Observation& observation) const;
  /// Applies one update rule to a Q-value; exposed so tests can check it by hand.
  static double updated_q(const std::string& rule, double q, double reward, double max_next, double alpha,
                          double gamma);
  size_t states_seen() const { return table_.size(); }

 private:
  std::vector<double>& row(const std::string& key);

  Space action_space_, observation_space_;
  QLearningOptions options_;
  std::unordered_map<std::string, std::vector<double>> table_;
  std::mt19937_64 rng_;
  double epsilon_ = 1.0;
};

}  // namespace prunegym
