#pragma once
// What bench_run.cpp (the plan, the local process pool, one cell, the tables) and bench_slurm.cpp
// (the Slurm back end) share.

#include <prunegym/experiments/bench_run.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace prunegym::bench_detail {

/// A grid resolved against its run folder: every run, and the selected ones still to do.
struct Plan {
  bench::Grid grid;
  int64_t seeds = 0;
  std::vector<bench::RunSpec> runs;
  std::filesystem::path out;
  std::vector<size_t> todo;  ///< indices into runs: selected and without summary.json
};

/// The `prunegym train` command that runs (or resumes, when run.json exists) one cell.
std::vector<std::string> cell_command(const BenchOptions& o, const bench::Grid& grid, const bench::RunSpec& r,
                                      const std::filesystem::path& dir, int64_t threads);

/// "variant seed S: see LOG" for a run that ended without summary.json.
std::string failure_line(const Plan& plan, size_t cell, const std::string& extra_log = "");

/// results.csv, results.md, results.json and the plots from every finished run.
void write_tables(const BenchOptions& o, const Plan& plan, double wall_seconds, BenchResult& result);

/// UsageError when sbatch or squeue is missing.
void check_slurm_tools();

/// Submits the pending cells as a Slurm job array (those already queued in an earlier job are
/// not resubmitted), waits unless told not to, then writes the tables.
void run_slurm(const BenchOptions& o, Plan& plan, BenchResult& result);

/// Cells of earlier Slurm submissions (DIR/slurm/jobs.json) that squeue still lists, with the
/// job ids that hold them; empty without Slurm on this host.
std::set<size_t> slurm_queued_cells(const std::filesystem::path& out, std::set<std::string>* jobs = nullptr);

}  // namespace prunegym::bench_detail
