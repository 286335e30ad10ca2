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
};

int run(const BenchArgs& a) {
  BenchOptions o;
  o.grid_path = a.grid;
  o.seeds = a.seeds;
  o.jobs = a.jobs;
  o.out = a.out;
  o.dry_run = a.dry_run;
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
  if (r.interrupted) {
    std::cerr << "interrupted: rerun the same command to continue (finished runs are kept, interrupted ones resume from "
                 "their last episode)\n";
    return 130;
  }
  if (!r.plot_message.empty()) std::cerr << r.plot_message << "\n";
  std::cout << r.markdown << "results in " << r.out << " (results.csv, results.md, results.json"
            << (r.plot_message.empty() ? ", curves.png, pareto.png" : "") << ")\n";
  if (r.failed.empty()) return 0;
  std::cerr << r.failed.size() << " runs failed:\n";
  for (const auto& f : r.failed) std::cerr << "  " << f << "\n";
  return 1;
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

example:
  prunegym bench --grid configs/bench/purl-table1.json --jobs 2
)");
  commands["bench"] = [a] { return run(*a); };
}

}  // namespace prunegym::cli
