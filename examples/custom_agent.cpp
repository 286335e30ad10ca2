// Your own agent in ~60 lines: implement prunegym::Agent and hand it to the runner. This one
// treats every layer as a separate multi-armed bandit and picks alphas by UCB1.
//
//   build/bin/example_custom_agent configs/tiny-synthetic.json [episodes]
#include <prunegym/agents/runner.h>
#include <prunegym/env/prune_env.h>

#include <cmath>
#include <fstream>
#include <iostream>

namespace {

class LayerBanditAgent : public prunegym::Agent {
 public:
  LayerBanditAgent(const prunegym::Space& actions, int64_t layers)
      : n_(actions.n()), sums_(layers, std::vector<double>(n_, 0.0)), counts_(layers, std::vector<double>(n_, 0.0)) {}

  std::string name() const override { return "layer_bandit"; }

  prunegym::Action act(const prunegym::Observation& obs, bool explore) override {
    const auto layer = static_cast<size_t>(obs[0]);  // compact observation: (layer, accuracy, sparsity)
    double total = 1.0;
    for (double c : counts_[layer]) total += c;
    int64_t best = 0;
    double best_score = -1e300;
    for (int64_t a = 0; a < n_; ++a) {
      const double c = counts_[layer][a];
      const double mean = c > 0 ? sums_[layer][a] / c : 0.0;
      const double bonus = explore ? (c > 0 ? std::sqrt(2.0 * std::log(total) / c) : 1e9) : 0.0;
      if (mean + bonus > best_score) {
        best_score = mean + bonus;
        best = a;
      }
    }
    return prunegym::Action(best);
  }

  void observe(const prunegym::Transition& t) override {
    const auto layer = static_cast<size_t>(t.observation[0]);
    sums_[layer][t.action.index] += t.reward;  // dense rewards: credit each layer's own step
    counts_[layer][t.action.index] += 1.0;
  }

  void save(const std::string& path) const override { std::ofstream(path) << "layer_bandit\n"; }
  void load(const std::string&) override {}

 private:
  int64_t n_;
  std::vector<std::vector<double>> sums_, counts_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: example_custom_agent CONFIG.json [episodes]\n";
    return 2;
  }
  prunegym::PruneEnv env(prunegym::Config::load(argv[1]));
  LayerBanditAgent agent(env.action_space(), env.episode_length());

  prunegym::RunOptions run;
  run.episodes = argc > 2 ? std::stoll(argv[2]) : 100;
  run.on_episode = [](const prunegym::EpisodeRecord& r) {
    if ((r.episode + 1) % 20 == 0)
      std::cout << "episode " << r.episode + 1 << ": reward " << r.total_reward << ", sparsity " << r.sparsity << "\n";
  };
  prunegym::train_agent(env, agent, run);

  const auto policy = prunegym::greedy_policy(env, agent, 1, 0);
  std::cout << "greedy alphas:";
  for (double v : policy.mean_values) std::cout << " " << v;
  std::cout << "\nsparsity " << policy.episodes[0].sparsity << ", accuracy " << policy.episodes[0].accuracy << "\n";
  return 0;
}
