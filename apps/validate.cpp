// `prunegym validate RUN_DIR`: a thin adapter over prunegym::validate_run.

#include "commands.h"

#include <prunegym/experiments/validate_run.h>

#include <iostream>

namespace prunegym::cli {

void add_validate(CLI::App& app, Commands& commands) {
  auto* sub = app.add_subcommand("validate", "build a finished run's final network again and check its numbers");
  auto o = std::make_shared<ValidateOptions>();
  auto threads = std::make_shared<std::optional<int64_t>>();
  auto no_finetune = std::make_shared<bool>(false);
  sub->add_option("run_dir", o->run_dir, "a finished train run's folder (prunegym train --out DIR)")
      ->required()
      ->type_name("RUN_DIR");
  sub->add_option("--threads", *threads, "LibTorch threads (default: the run's own, which makes the check exact)")
      ->type_name("N")
      ->check(CLI::PositiveNumber);
  sub->add_flag("--no-finetune", *no_finetune,
                "stop before fine-tuning: check the policy's network (values, sparsity, MACs, accuracy before "
                "fine-tuning) in a fraction of the time");
  sub->add_flag("--tolerant", o->tolerant, "judge by the tolerances below even on the run's own thread count");
  sub->add_option("--accuracy-tolerance", o->tolerance.accuracy, "allowed accuracy difference (tolerant)")
      ->type_name("X")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--out", o->out, "the report file (default: RUN_DIR/validation.json)")->type_name("F");
  sub->footer(R"(
Builds a finished train run's final network again from what the run folder records (run.json's
config, agent and seed; agent.ckpt; the thread count of summary.json): a fresh environment, the
same dense model (from the cache, or pretrained again the same way), the agent's greedy episodes,
the final policy applied as the run applied it, the same fine-tuning. Then it compares the final
values, sparsity, remaining weights, remaining MACs and every accuracy with summary.json.

On the run's thread count (and the same machine and libraries) the arithmetic is the same, so
every number must match exactly. With another --threads, or --tolerant, the final values are
only reported and the network's numbers are judged against tolerances: accuracy 1 percentage
point (--accuracy-tolerance), sparsity 0.5 points, remaining weights and MACs 1%.

Prints a table and writes it as JSON (validation.json). Exit codes: 0 valid, 1 some number
differs (the table marks it DIFFERS), 2 RUN_DIR is not a finished run.

examples:
  prunegym validate runs/lenet300-fashion-dqn-s1
  prunegym validate runs/lenet300-fashion-dqn-s1 --no-finetune
  prunegym validate runs/resnet50-fashion-dqn-s0 --threads 2 --tolerant
)");
  commands["validate"] = [o, threads, no_finetune] {
    o->threads = *threads;
    o->finetune = !*no_finetune;
    ProgressReporter progress(std::cerr);
    o->progress = &progress;
    const ValidateResult r = validate_run(*o);
    std::cout << validate_report(r);
    return r.ok() ? 0 : 1;
  };
}

}  // namespace prunegym::cli
