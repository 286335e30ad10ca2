// A reward of your own, registered by name and used through the config, without touching the
// environment. Here: PuRL's penalty plus a bonus for every percent of sparsity above the target.
//
//   build/bin/example_custom_reward configs/tiny-synthetic.json
#include <prunegym/env/prune_env.h>

#include <iostream>

namespace {

class SparsityBonusReward : public prunegym::RewardFn {
 public:
  explicit SparsityBonusReward(double bonus) : bonus_(bonus) {}
  double compute(const prunegym::RewardInput& in) override {
    const double extra = std::max(in.sparsity - setup_.target_sparsity, 0.0);
    return prunegym::purl_reward(in.accuracy, in.sparsity, setup_) + bonus_ * extra;
  }
  std::unique_ptr<prunegym::RewardFn> clone() const override { return std::make_unique<SparsityBonusReward>(*this); }

 private:
  double bonus_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: example_custom_reward CONFIG.json\n";
    return 2;
  }
  // 1. Register the reward under a name; "bonus" becomes a config key of env.reward.
  prunegym::RewardRegistry::instance().add(
      "sparsity_bonus",
      [](const nlohmann::json& params) -> std::unique_ptr<prunegym::RewardFn> {
        for (auto it = params.begin(); it != params.end(); ++it)
          if (it.key() != "bonus")
            throw prunegym::ConfigError("env.reward." + it.key() + ": unknown key (known: bonus)");
        return std::make_unique<SparsityBonusReward>(params.value("bonus", 1.0));
      },
      "PuRL penalty plus bonus * (sparsity above target)");

  // 2. Select it in the config like any built-in reward.
  auto doc = prunegym::read_json_file(argv[1]);
  doc["env"]["reward"] = {{"name", "sparsity_bonus"}, {"bonus", 2.0}, {"target_sparsity", 0.5}};
  prunegym::PruneEnv env(prunegym::Config::from_json(doc));

  // 3. Run one episode with a fixed alpha and print the rewards.
  env.reset();
  bool done = false;
  while (!done) {
    auto r = env.step(prunegym::Action(14));  // alpha 1.4
    std::cout << r.info.layer << ": sparsity " << r.info.sparsity << ", accuracy " << r.info.accuracy << ", reward "
              << r.reward << "\n";
    done = r.terminated || r.truncated;
  }
  return 0;
}
