#pragma once
/// `prunegym validate RUN_DIR`: builds a finished train run's final network again, from the run's
/// recorded config, seed and agent checkpoint, on a fresh environment, and compares what it
/// measures with what summary.json reports. On the run's own thread count the arithmetic is the
/// same, so every number must match exactly; elsewhere (or when asked) each is judged against a
/// stated tolerance.

#include <prunegym/experiments/support.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace prunegym {

/// The tolerances of a tolerant validation (absolute, except where named relative).
struct ValidateTolerance {
  double accuracy = 0.01;   ///< one percentage point
  double sparsity = 0.005;  ///< half a percentage point
  double relative = 0.01;   ///< remaining weights and MACs: 1% of the recorded count
};

struct ValidateOptions {
  std::string run_dir;
  std::optional<int64_t> threads;  ///< default: the run's own (summary.json "threads")
  bool finetune = true;            ///< false: check up to the network before fine-tuning
  bool tolerant = false;           ///< judge by ValidateTolerance even on the run's own threads
  ValidateTolerance tolerance;
  std::string out;                       ///< the report file ("" = RUN_DIR/validation.json)
  ProgressReporter* progress = nullptr;  ///< phase and fine-tuning lines
};

struct ValidationCheck {
  std::string name;  ///< the summary.json key compared, e.g. "after_finetune.test_accuracy"
  double recorded = 0.0, replayed = 0.0;
  double tolerance = 0.0;  ///< |replayed - recorded| allowed (0: exact)
  bool judged = true;      ///< false: reported only (final values in a tolerant validation)
  bool ok = true;
};

struct ValidateResult {
  std::string run_dir;
  bool exact = true;  ///< judged exactly (the run's threads, no --tolerant)
  int64_t threads = 0, run_threads = 0;
  bool finetuned = true;
  std::vector<ValidationCheck> checks;
  double seconds = 0.0;

  bool ok() const;
  std::vector<std::string> failures() const;  ///< the names of the judged checks that differ
  nlohmann::json to_json() const;
};

/// UsageError when RUN_DIR is not a finished train run (the message says what is missing and how
/// to finish it); ConfigError when its recorded config no longer loads. Writes the report file.
ValidateResult validate_run(const ValidateOptions& options);

/// The table printed by `prunegym validate`.
std::string validate_report(const ValidateResult& result);

}  // namespace prunegym
