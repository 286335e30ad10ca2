#pragma once
/// The train run (`prunegym train`): train an agent on the pruning environment, checkpointed after
/// every episode; then PuRL's final policy (mean greedy action per layer), applied to the dense
/// model and fine-tuned. Results land in a run folder: run.json (resumable state), episodes.csv,
/// summary.json, agent.ckpt, pruned_model.pt, config.json and curves.png.

#include <prunegym/agents/runner.h>
#include <prunegym/env/config.h>
#include <prunegym/experiments/run_summary.h>
#include <prunegym/experiments/support.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <optional>
#include <string>

namespace prunegym {

struct TrainRunOptions {
  /// A new run: the config, the agent's registered name and the seed. Ignored with `resume`.
  Config config;
  std::string config_path;  ///< names the default folder: runs/<stem>-<agent>-s<seed>
  std::string agent;
  std::optional<uint64_t> seed;  ///< default: the config's
  std::string out;               ///< run folder ("" = the default)
  bool force = false;            ///< overwrite a run already in `out`
  /// Continue the run in this folder (same config, agent and seed); `episodes` may extend it.
  std::string resume;
  std::optional<int64_t> episodes;          ///< default: agents.NAME.episodes, else train.episodes
  std::optional<int64_t> stop_after;        ///< stop (exit 0, resumable) after this many more episodes
  std::optional<int64_t> threads;           ///< LibTorch threads (0 = one per core)
  std::string remote;                       ///< train against a prunegym server at this endpoint, or the
                                            ///< fleet of an endpoints file (seed S uses server S mod N)
  bool plot = true;                         ///< draw curves.png
  const std::atomic<bool>* stop = nullptr;  ///< set (e.g. by Ctrl-C): stop after the current episode
  ProgressReporter* progress = nullptr;     ///< episode progress and fine-tuning lines
};

struct TrainRunResult {
  std::string out;                 ///< the run folder
  bool finished = false;           ///< false: stopped early, everything saved, resumable
  bool stopped_by_option = false;  ///< stopped by stop_after (not by an interrupt)
  int64_t episodes_done = 0;
  int64_t episodes = 0;
  RunSummary summary;        ///< what summary.json holds (finished runs)
  std::string plot_message;  ///< why curves.png was skipped ("" = drawn)
};

/// Runs (or resumes) a train run. UsageError for inconsistent options, ConfigError for bad configs.
TrainRunResult run_train(const TrainRunOptions& options);

/// The summary table printed after a finished run.
std::string train_report(const TrainRunResult& result);

}  // namespace prunegym
