#pragma once
/// Rewards are small objects looked up by name. Add your own with PRUNEGYM_REGISTER(RewardRegistry,
/// ...) or RewardRegistry::instance().add (examples/custom_reward.cpp); the env never changes.

#include <prunegym/core/errors.h>
#include <prunegym/core/registry.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace prunegym {

/// Fixed for an episode: the targets and what the dense model achieved.
struct RewardSetup {
  double target_accuracy = 0.0;  ///< T_A
  double target_sparsity = 0.9;  ///< T_P
  double beta = 1.0;
  double dense_accuracy = 0.0;
  int64_t total_weights = 0;
  int64_t episode_length = 0;
  int64_t dense_macs = 0;  ///< the dense network's MACs per sample (0: its output positions are unknown)
};

/// What the reward sees after a step.
struct RewardInput {
  double accuracy = 0.0;  ///< A, fraction in [0, 1]
  double sparsity = 0.0;  ///< P over all prunable weights
  int64_t remaining = 0;
  int64_t total = 0;
  int64_t macs = 0;        ///< MACs per sample under the current masks (StepInfo::macs)
  int64_t dense_macs = 0;  ///< the dense network's
  int64_t step = 0;        ///< 1-based step of the episode
  bool last = false;       ///< the episode's final step
};

class RewardFn {
 public:
  virtual ~RewardFn() = default;
  /// Called at every reset.
  virtual void reset(const RewardSetup& setup) { setup_ = setup; }
  virtual double compute(const RewardInput& in) = 0;
  virtual std::unique_ptr<RewardFn> clone() const = 0;
  const RewardSetup& setup() const { return setup_; }

 protected:
  RewardSetup setup_;
};

/// Rewards by name (config key env.reward.name). A factory receives the reward's extra config keys
/// (everything in env.reward besides the standard ones) and must reject keys it does not know.
using RewardRegistry = Registry<RewardFn, const nlohmann::json&>;
template <>
RewardRegistry& RewardRegistry::instance();
using RewardFactory = RewardRegistry::Factory;

/// Registers a reward type with no extra parameters: `register_reward<MyReward>("mine", "...")`.
template <class R>
void register_reward(const std::string& name, const std::string& description = "") {
  RewardRegistry::instance().add(
      name,
      [name](const nlohmann::json& params) -> std::unique_ptr<RewardFn> {
        if (!params.empty()) throw ConfigError("env.reward: reward '" + name + "' takes no parameters");
        return std::make_unique<R>();
      },
      description);
}

/// Eq. 3 of PuRL: -beta * (max(1 - A/T_A, 0) + max(1 - P/T_P, 0)).
double purl_reward(double accuracy, double sparsity, const RewardSetup& s);
/// Eq. 4 (accuracy upside): -beta * ((1 - A/T_A) + max(1 - P/T_P, 0)).
double purl_upside_reward(double accuracy, double sparsity, const RewardSetup& s);
/// Eq. 5 (cubic upside): -beta * ((1 - (A/T_A)^3) + max(1 - P/T_P, 0)).
double purl_cubic_reward(double accuracy, double sparsity, const RewardSetup& s);
/// Seed 000: -(1 - A) * remaining / total.
double lottery_q_reward(double accuracy, int64_t remaining, int64_t total);
/// AMC-style: -(1 - A) * log(remaining). With remaining MACs it is AMC's FLOPs reward, with
/// remaining weights its parameter reward.
double amc_log_reward(double accuracy, int64_t remaining);

}  // namespace prunegym
