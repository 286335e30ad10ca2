#pragma once
/// The episode run (`prunegym episode`): one episode with given actions, every step reported, and
/// a summary with per-phase median timings.

#include <prunegym/core/log.h>
#include <prunegym/env/config.h>
#include <prunegym/env/env.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <vector>

namespace prunegym {

struct EpisodeRunOptions {
  Config config;
  std::vector<int64_t> actions;  ///< action indices, one per step (exclusive with alpha)
  std::optional<double> alpha;   ///< the same action value at every step (nearest grid value)
  std::optional<uint64_t> seed;  ///< default: the config's
  LogFn log;                     ///< pretraining and cache messages
};

struct EpisodeRunResult {
  ResetResult start;
  std::vector<StepResult> steps;
  nlohmann::json summary;  ///< steps, total_reward, end, accuracies, sparsity, median timings, memory
  nlohmann::json env;      ///< dense accuracies, the state/reward split
};

/// Runs the episode; `on_start` and `on_step` see each result as it happens (for streaming output).
/// Every action is checked before the first step: a bad list fails without a partial run.
EpisodeRunResult play_episode(const EpisodeRunOptions& options,
                              const std::function<void(const EpisodeRunResult&)>& on_start = {},
                              const std::function<void(const StepResult&)>& on_step = {});

}  // namespace prunegym
