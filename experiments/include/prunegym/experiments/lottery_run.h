#pragma once
/// The lottery run (`prunegym lottery`): iterative magnitude pruning where each strategy resets the
/// survivors its own way after every round (rewind to W0, rewind to W_k, re-initialise, keep
/// training, random mask), all from the same initialisation and the same dense run. Resumable:
/// finished rounds are read back from DIR/state, never recomputed. Writes lottery.csv/.md/.json/.png.

#include <prunegym/env/config.h>
#include <prunegym/experiments/support.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <optional>
#include <string>

namespace prunegym {

struct LotteryRunOptions {
  Config config;            ///< its "lottery" section describes the schedule and training
  std::string config_path;  ///< names the default folder runs/<stem>-lottery
  std::string out;          ///< results folder ("" = the default)
  bool force = false;       ///< start over even if `out` holds another experiment
  std::optional<int64_t> threads;
  bool plot = true;  ///< draw lottery.png
  ProgressReporter* progress = nullptr;
};

struct LotteryRunResult {
  std::string out;
  nlohmann::json table;      ///< lottery.json
  std::string markdown;      ///< lottery.md
  std::string plot_message;  ///< why lottery.png was skipped ("" = drawn)
  double seconds = 0.0;
};

LotteryRunResult run_lottery(const LotteryRunOptions& options);

}  // namespace prunegym
