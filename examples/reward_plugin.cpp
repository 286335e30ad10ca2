// A reward of your own as a plugin: build this file as a shared library and every prunegym
// command can use the reward by name, including the grids of `prunegym bench`.
//
//   build/bin/prunegym --plugin build/lib/libprunegym_reward_plugin.so
//       episode --config configs/tiny-synthetic.json --alpha 1.0 --set env.reward.name=balanced
//   grid file: "plugins": ["../../build/lib/libprunegym_reward_plugin.so"]
//
// "balanced": accuracy and sparsity weighted equally, each as its gap to the target, with an
// optional weight `w` on the sparsity gap (env.reward.w in the config).
#include <prunegym/core/errors.h>
#include <prunegym/env/rewards.h>

#include <algorithm>

namespace {

class BalancedReward : public prunegym::RewardFn {
 public:
  explicit BalancedReward(double w) : w_(w) {}
  double compute(const prunegym::RewardInput& in) override {
    const double accuracy_gap = std::max(setup_.target_accuracy - in.accuracy, 0.0);
    const double sparsity_gap = std::max(setup_.target_sparsity - in.sparsity, 0.0);
    return -(accuracy_gap + w_ * sparsity_gap);
  }
  std::unique_ptr<prunegym::RewardFn> clone() const override { return std::make_unique<BalancedReward>(*this); }

 private:
  double w_;
};

std::unique_ptr<prunegym::RewardFn> make_balanced(const nlohmann::json& params) {
  for (auto it = params.begin(); it != params.end(); ++it)
    if (it.key() != "w") throw prunegym::ConfigError("env.reward." + it.key() + ": unknown key (known: w)");
  return std::make_unique<BalancedReward>(params.value("w", 1.0));
}

}  // namespace

// Runs when the library is loaded: the name is known before any config is read.
PRUNEGYM_REGISTER(prunegym::RewardRegistry, "balanced", make_balanced, "-(max(T_A - A, 0) + w * max(T_P - P, 0))");
