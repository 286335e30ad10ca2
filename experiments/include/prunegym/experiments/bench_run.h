#pragma once
/// The bench run (`prunegym bench`): every variant of a grid x every seed as a separate
/// `prunegym train` process, J at a time; finished runs are cached by the hash of everything that
/// decides them and interrupted ones resume. Then mean +- SE tables (results.csv/.md/.json) and
/// plots (curves.png, pareto.png) over every finished run. With backend "slurm" the pending runs
/// go to Slurm as one job array whose tasks each run one cell (`cell`) into the shared folder.

#include <prunegym/experiments/bench_grid.h>
#include <prunegym/experiments/support.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace prunegym {

struct BenchOptions {
  std::string grid_path;
  std::optional<int64_t> seeds;  ///< default: the grid's
  int64_t jobs = 1;              ///< runs at a time; each gets cores/jobs LibTorch threads
  std::string out;               ///< "" = runs/bench-<grid stem>
  std::set<std::string> only;    ///< run only these variants (tables still cover every finished run)
  bool dry_run = false;          ///< plan and list, run nothing
  std::string executable;        ///< the prunegym binary that runs cells ("" = this process's)
  bool plot = true;
  std::string backend = "local";  ///< "local" (process pool) or "slurm" (sbatch job array)
  std::optional<int64_t> cell;    ///< run only this cell (an index into the plan), as a Slurm array task does
  int64_t threads = 0;  ///< LibTorch threads per run (0: cores/jobs; with `cell`: $SLURM_CPUS_PER_TASK, else all cores)
  std::vector<std::string> slurm_options;   ///< passed to sbatch ("partition=x" becomes --partition=x)
  bool wait = true;                         ///< slurm: wait for the array, showing progress, then write the tables
  double poll_seconds = 10.0;               ///< slurm: how often squeue and the run folder are read
  const std::atomic<bool>* stop = nullptr;  ///< set: start no new runs, wait for the running ones
  ProgressReporter* progress = nullptr;
};

struct BenchResult {
  std::string out;
  int64_t planned = 0, cached = 0, todo = 0;
  std::vector<std::pair<std::string, bool>> listing;  ///< dry run: (run folder, pending)
  bool interrupted = false;
  std::vector<std::string> failed;      ///< "variant seed S: see LOG"
  std::vector<std::string> slurm_jobs;  ///< slurm: the job ids this bench submitted or watched
  int cell_status = 0;                  ///< with `cell`: the run's exit status
  std::string markdown;                 ///< results.md
  std::string plot_message;             ///< why the plots were skipped ("" = drawn)
};

BenchResult run_bench(const BenchOptions& options);

}  // namespace prunegym
