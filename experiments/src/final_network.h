#pragma once
/// A train run's final network (internal to prunegym::experiments): how the trained agent's
/// policy becomes the pruned, fine-tuned network. The train run builds it once; `prunegym
/// validate` builds it again from the run's files and compares.

#include <prunegym/agents/agent.h>
#include <prunegym/agents/factory.h>
#include <prunegym/agents/runner.h>
#include <prunegym/env/prune_env.h>
#include <prunegym/experiments/support.h>

#include <optional>
#include <utility>
#include <vector>

namespace prunegym {

struct FinalNetwork {
  std::vector<double> values;  ///< per layer (layerwise) or per round
  GreedyPolicy policy;
  std::optional<EpisodeRecord> episode;  ///< the stepped final episode (schedules not replayed by values)
  EvalResult before_val, before_test, after_val, after_test, after_train;
  std::optional<std::pair<EvalResult, EvalResult>> one_shot;  ///< final_policy episode: one-shot + BN refresh
  double policy_seconds = 0.0, finetune_seconds = 0.0;
  bool finetuned = false;
};

/// PuRL's final policy applied to the dense model (or, for schedules replayed by stepping, one
/// greedy episode), then fine-tuned on the whole training split unless `finetune` is false.
/// `training_env` is where the agent trained (greedy episodes run there); `env` holds the final
/// network (the same environment, or the rebuilt one of train.final_train).
FinalNetwork finalize(const TrainSettings& settings, uint64_t seed, ProgressReporter* progress, Env& training_env,
                      PruneEnv& env, Agent& agent, bool finetune = true);

/// Seed 000's final network: a fresh network trained with train.final_train (a merge patch over
/// lottery.train), whose rounds then retrain with the same settings.
Config final_train_config(const Config& c, const nlohmann::json& patch);

}  // namespace prunegym
