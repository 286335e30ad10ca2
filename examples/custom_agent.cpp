// Your own agent, used in-process: implement prunegym::Agent (layer_bandit.h: a UCB1 bandit per
// layer) and hand it to the runner. To use it from `prunegym train` and `prunegym bench`, register
// it in a plugin instead (agent_plugin.cpp).
//
//   build/bin/example_custom_agent configs/tiny-synthetic.json [episodes]
#include "layer_bandit.h"

#include <prunegym/agents/runner.h>
#include <prunegym/env/prune_env.h>

#include <iostream>

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
