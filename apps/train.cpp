// `prunegym train`: a thin adapter over prunegym::run_train.

#include "commands.h"

#include <prunegym/agents/factory.h>
#include <prunegym/experiments/train_run.h>

#include <iostream>

namespace prunegym::cli {

namespace {

struct TrainArgs {
  ConfigArgs config;
  std::string agent;
  std::optional<int64_t> episodes, seed, stop_after;
  std::string out, resume, remote;
  bool force = false;
};

int run(const TrainArgs& a) {
  TrainRunOptions o;
  if (a.resume.empty()) {
    if (a.config.path.empty() || a.agent.empty())
      throw UsageError("a new run needs --config and --agent (or --resume DIR)");
    o.config = load_config(a.config);
    o.config_path = a.config.path;
    o.agent = a.agent;
    if (a.seed) o.seed = static_cast<uint64_t>(*a.seed);
    o.out = a.out;
    o.force = a.force;
  } else {
    if (!a.config.path.empty() || !a.config.sets.empty() || !a.agent.empty() || a.seed || !a.out.empty())
      throw UsageError("--resume takes the run's own settings; drop --config, --set, --agent, --seed and --out");
    o.resume = a.resume;
  }
  o.episodes = a.episodes;
  o.stop_after = a.stop_after;
  o.threads = a.config.threads;
  o.remote = a.remote;
  InterruptGuard interrupt;
  ProgressReporter progress(std::cerr);
  o.stop = &InterruptGuard::flag();
  o.progress = &progress;
  const TrainRunResult r = run_train(o);
  if (!r.finished) {
    std::cerr << (r.stopped_by_option ? "stopped (--stop-after)" : "interrupted") << " after " << r.episodes_done
              << " of " << r.episodes << " episodes; everything is saved in " << r.out
              << "\ncontinue with: prunegym train --resume " << r.out << "\n";
    return r.stopped_by_option ? 0 : 130;
  }
  if (!r.plot_message.empty()) std::cerr << r.plot_message << "\n";
  std::cout << train_report(r);
  return 0;
}

}  // namespace

void add_train(CLI::App& app, Commands& commands) {
  auto* sub = app.add_subcommand("train", "train an agent, extract its policy (PuRL), fine-tune, write results");
  auto a = std::make_shared<TrainArgs>();
  add_config_args(*sub, a->config);
  sub->get_option("--config")->required(false);
  sub->add_option("--agent", a->agent, "a registered agent: dqn, q, ppo, random, uniform, or a plugin's")
      ->type_name("NAME");
  sub->add_option("--episodes", a->episodes,
                  "training episodes (default: agents.NAME.episodes, else train.episodes = 55)")
      ->type_name("N")
      ->check(CLI::PositiveNumber);
  sub->add_option("--seed", a->seed, "seed of the agent and of every episode (default: the config's seed)")
      ->type_name("S")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--out", a->out, "results folder (default: runs/<config>-<agent>-s<seed>)")->type_name("DIR");
  sub->add_option("--resume", a->resume, "continue an interrupted run from its checkpoint")->type_name("DIR");
  sub->add_option("--stop-after", a->stop_after, "stop (as Ctrl-C would, but exit 0) after N more episodes")
      ->type_name("N")
      ->check(CLI::PositiveNumber);
  sub->add_option("--remote", a->remote,
                  "train against a prunegym server (prunegym serve), or one server of an endpoints file (seed S uses "
                  "line S mod N; scripts/slurm-serve writes one); fine-tuning runs locally")
      ->type_name("ENDPOINT|FILE");
  sub->add_flag("--force", a->force, "overwrite a finished or interrupted run in --out");
  sub->footer([] {
    std::string agents;
    for (const auto& n : AgentRegistry::instance().names())
      agents += "  " + n + std::string(n.size() < 10 ? 10 - n.size() : 1, ' ') +
                AgentRegistry::instance().description(n) + "\n";
    return "\nTrains an agent on the pruning environment, then, as PuRL does, takes the mean action value per\n"
           "layer over a few greedy episodes as the final policy, applies it to the dense model and fine-tunes\n"
           "on the whole training set. Ctrl-C stops after the current episode and saves everything.\n\n"
           "agents (registered; --plugin LIB adds yours, see examples/agent_plugin.cpp):\n" +
           agents +
           R"(
writes to DIR:
  episodes.csv     one row per training episode (reward, accuracy, sparsity, epsilon, alphas)
  summary.json     final alphas, per-layer and global sparsity, accuracy before/after fine-tuning,
                   dense accuracy, wall time per phase, peak memory
  pruned_model.pt  the pruned, fine-tuned network as TorchScript (torch.jit.load; graph networks:
                   a LibTorch archive); inputs normalised as summary.json's input_normalization.
                   With a structured criterion (channel_norm) the removed channels are gone:
                   smaller tensors, the same function (summary.json "export": parameters, MACs,
                   file sizes, compact against dense)
  masked_model.pt  structured criteria only: the same network with dense shapes and zeros
  agent.ckpt       the agent (resumable), config.json
  run.json         the run's state (--resume DIR continues from it)
  curves.png       reward, accuracy and sparsity per episode (needs python3-matplotlib)

examples:
  prunegym train --config configs/lenet300-fashion.json --agent dqn --seed 1
  prunegym train --resume runs/lenet300-fashion-dqn-s1 --episodes 100
  prunegym --plugin build/lib/libprunegym_agent_plugin.so train --config configs/tiny-synthetic.json --agent layer_bandit
)";
  });
  commands["train"] = [a] { return run(*a); };
}

}  // namespace prunegym::cli
