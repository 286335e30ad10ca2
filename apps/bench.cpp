// `prunegym bench`: a thin adapter over prunegym::run_bench.

#include "commands.h"

#include <prunegym/core/errors.h>
#include <prunegym/experiments/bench_run.h>

#include <iostream>

namespace prunegym::cli {

namespace {

struct BenchArgs {
  std::string grid, out;
  std::vector<std::string> only;
  std::optional<int64_t> seeds;
  int64_t jobs = 1;
  bool dry_run = false;
  std::string backend = "local";
  std::optional<int64_t> cell;
  int64_t threads = 0;
  std::vector<std::string> slurm_options;
  bool no_wait = false;
  double poll = 10.0;
};

int run(const BenchArgs& a) {
  BenchOptions o;
  o.grid_path = a.grid;
  o.seeds = a.seeds;
  o.jobs = a.jobs;
  o.out = a.out;
  o.dry_run = a.dry_run;
  o.backend = a.backend;
  o.cell = a.cell;
  o.threads = a.threads;
  o.slurm_options = a.slurm_options;
  o.wait = !a.no_wait;
  o.poll_seconds = a.poll;
  o.only.insert(a.only.begin(), a.only.end());
  InterruptGuard interrupt;
  ProgressReporter progress(std::cerr);
  o.stop = &InterruptGuard::flag();
  o.progress = &progress;
  const BenchResult r = run_bench(o);
  if (a.dry_run) {
    for (const auto& [dir, pending] : r.listing) std::cout << (pending ? "todo   " : "cached ") << dir << "\n";
    return 0;
  }
  if (a.cell) {
    for (const auto& f : r.failed) std::cerr << "failed: " << f << "\n";
    return r.cell_status;
  }
  std::string jobs;
  for (const auto& id : r.slurm_jobs) jobs += (jobs.empty() ? "" : ",") + id;
  if (a.backend == "slurm" && a.no_wait) {
    std::cout << (jobs.empty() ? "nothing to submit" : "slurm job " + jobs) << "\n";
    std::cerr << "watch it with the same command without --no-wait; `prunegym bench --grid " << a.grid
              << (a.out.empty() ? "" : " --out " + a.out) << "` writes the tables once it is done\n";
    return 0;
  }
  if (r.interrupted && a.backend == "slurm") {
    std::cerr << "stopped watching: Slurm job " << jobs << " keeps running; rerun the same command to watch it, or "
              << "scancel " << jobs << " to stop it\n";
    return 130;
  }
  if (r.interrupted) {
    std::cerr
        << "interrupted: rerun the same command to continue (finished runs are kept, interrupted ones resume from "
           "their last episode)\n";
    return 130;
  }
  if (!r.plot_message.empty()) std::cerr << r.plot_message << "\n";
  std::cout << r.markdown << "results in " << r.out << " (results.csv, results.md, results.json"
            << (r.plot_message.empty() ? ", curves.png, pareto.png" : "") << ")\n";
  if (r.failed.empty()) return 0;
  std::cerr << r.failed.size() << " runs failed:\n";
  for (const auto& f : r.failed) std::cerr << "  " << f << "\n";
  std::cerr << "rerun the same command to run them again (finished runs are kept)\n";
  return 1;
}

/// --backend and what goes with it (Slurm options, waiting, one cell).
void add_cluster_options(CLI::App& sub, BenchArgs& a) {
  sub.add_option("--backend", a.backend,
                 "where runs execute: local (a process pool, default) or slurm (sbatch --array)")
      ->type_name("B")
      ->check(CLI::IsMember({"local", "slurm"}));
  add_repeatable(sub, "--slurm-opt", a.slurm_options,
                 "an sbatch option, e.g. partition=cpu, time=02:00:00, cpus-per-task=4, mem=8G, account=A (repeatable)")
      ->type_name("K=V");
  sub.add_flag("--no-wait", a.no_wait, "slurm: submit, print the job id and return");
  sub.add_option("--poll", a.poll, "slurm: seconds between progress checks (default 10)")
      ->type_name("S")
      ->check(CLI::PositiveNumber);
  sub.add_option("--cell", a.cell,
                 "run one cell (0-based index in the grid's run order) in the foreground; Slurm "
                 "array tasks run this")
      ->type_name("I")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--threads", a.threads,
                 "LibTorch threads per run (default: cores / jobs; with --cell: $SLURM_CPUS_PER_TASK, else all "
                 "cores); e.g. --threads 1 beside another job that uses the cores")
      ->type_name("N")
      ->check(CLI::PositiveNumber);
}

}  // namespace

void add_bench(CLI::App& app, Commands& commands) {
  auto* sub = app.add_subcommand("bench", "compare MDP variants (a grid of config patches) over seeds, in parallel");
  auto a = std::make_shared<BenchArgs>();
  sub->add_option("--grid", a->grid, "the grid file (JSON; see configs/bench/)")->required()->type_name("F");
  sub->add_option("--seeds", a->seeds, "seeds 0..N-1 per variant (default: the grid's \"seeds\", else 3)")
      ->type_name("N")
      ->check(CLI::PositiveNumber);
  sub->add_option("--jobs", a->jobs, "runs at a time (default 1); each gets cores/J LibTorch threads")
      ->type_name("J")
      ->check(CLI::PositiveNumber);
  sub->add_option("--out", a->out, "results folder (default: runs/bench-<grid name>)")->type_name("DIR");
  sub->add_option("--only", a->only, "run only these variants (the tables still cover every finished run)")
      ->delimiter(',')
      ->type_name("A,B");
  sub->add_flag("--dry-run", a->dry_run, "validate the grid and list the runs (cached or to do), run nothing");
  add_cluster_options(*sub, *a);
  sub->footer(R"(
Compares MDP design choices: runs `prunegym train` for every variant of a grid and every seed, J
at a time as separate processes, then tabulates final accuracy and sparsity as mean +- standard
error over seeds and plots learning curves and the accuracy/sparsity Pareto front.

the grid file (JSON, comments allowed):
  {
    "base": "../lenet300-fashion.json",     // a config file (relative to the grid) or object
    "agent": "dqn",                          // default agent of every variant (any registered one)
    "seeds": 3,                              // default --seeds
    "episodes": 55,                          // optional: overrides the config's budget
    "plugins": ["../../build/lib/libmy_reward.so"],  // optional: libraries adding rewards, agents...
    "variants": [
      {"name": "baseline", "patch": {}},
      {"name": "sparse", "description": "rewards at the end only",
       "patch": {"env": {"timing": "sparse"}}},
      {"name": "q-eq3", "agent": "q", "patch": {"agents": {"q": {"update": "eq3"}}}}
    ]
  }
  A patch is a JSON merge patch over the base config: any env, agent, train or network key.
  Every variant is validated before anything runs; errors name the variant and the key.

caching and resuming: each run lives in DIR/runs/<variant>-s<seed>-<hash>, the hash covering the
resolved config, agent, seed, episodes and plugins. A finished run is never recomputed; an
interrupted one (Ctrl-C, crash, reboot) continues from its last episode when the bench is rerun.

writes to DIR:
  results.csv    one row per run: accuracy (test, after and before fine-tuning), validation
                 accuracy, sparsity, episodes to reach both targets, episodes, seconds
  results.md     one row per variant: mean +- standard error over seeds; * marks the Pareto front
  results.json   everything above plus per-episode learning curves (mean and standard error)
  curves.png     total reward per episode, mean over seeds with a +-1 SE band, per variant
  pareto.png     final accuracy against sparsity, runs and variant means, Pareto front marked

on a Slurm cluster (docs/cluster.md): --backend slurm submits the pending runs as one job array,
one task per run (`prunegym bench --grid F --cell $SLURM_ARRAY_TASK_ID`), all writing into DIR on
the shared filesystem. Runs already queued by an earlier submission are not resubmitted; failed
ones are listed with their logs and go out again when the command is rerun. It waits and shows
pending/running/done/failed counts, then writes the same tables as the local back end; with
--no-wait it returns the job id, and a later `prunegym bench --grid F` writes the tables. Preempted
tasks are requeued and resume their run from its last episode.

examples:
  prunegym bench --grid configs/bench/purl-table1.json --jobs 2
  prunegym bench --grid configs/bench/purl-table1.json --backend slurm --slurm-opt partition=cpu \
      --slurm-opt time=04:00:00 --slurm-opt cpus-per-task=4
)");
  commands["bench"] = [a] { return run(*a); };
}

}  // namespace prunegym::cli
