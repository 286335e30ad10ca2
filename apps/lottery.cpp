// `prunegym lottery`: a thin adapter over prunegym::run_lottery.

#include "commands.h"

#include <prunegym/core/errors.h>
#include <prunegym/core/timing.h>
#include <prunegym/env/lottery.h>
#include <prunegym/experiments/lottery_run.h>

#include <iostream>

namespace prunegym::cli {

namespace {

struct LotteryArgs {
  ConfigArgs config;
  std::vector<std::string> strategies;
  std::string out;
  bool force = false;
};

const char* const kLotteryText = R"(
Lottery-ticket experiments. The network is trained from its initialisation W0, then each round
prunes the smallest-magnitude surviving weights to the next sparsity of the schedule, resets the
survivors by the strategy and trains again. Every strategy starts from the same initialisation
and the same first training run, so rows differ only by the reset.

strategies (--strategies, default: the config's lottery.strategies = rewind_init,reinit,keep):
)";

const char* const kLotteryTail = R"(
the config's "lottery" section (docs/config.md):
  scope            "layerwise" (each layer to the target) or "global" (one threshold over the
                   pruned layers, as in the iterative-pruning study of CNNs and GCNs)
  rate, rounds     prune rate of the survivors per round (default 0.2 for 5 rounds); with
  output_rate      a separate rate for the output layer (the lottery-ticket paper: rate / 2);
                   with one_shot, the output layer's sparsity
  conv_rate        a separate rate for the convolution layers (the lottery-ticket paper: 0.1
                   for Conv-2/4, 0.15 for Conv-6); with one_shot, their sparsity
  sparsities       or an explicit cumulative schedule, e.g. [0.2, 0.52, 0.8, 0.96, 0.9996]
  one_shot         or one round straight to this sparsity
  layers           the layers to prune (default: all), e.g. ["conv1.weight", "conv2.weight"]
  train            optimizer, lr, batch_size, epochs (and samples) of every training run
  eval_every       iterations between validation checks (they give the early-stop iteration)

Rerunning the same command resumes: finished rounds are read back, never recomputed.

writes to DIR:
  lottery.csv      one row per strategy and round: target and remaining weights (%), test
                   accuracy at the end and at the early-stop iteration, best validation accuracy,
                   early-stop iteration (minimum validation loss), iterations, seconds
  lottery.md       the same as Markdown tables, one column group per strategy
  lottery.json     rows, config, dense accuracy, wall time per strategy
  lottery.png      test accuracy and early-stop iteration against remaining weights (log scale)
  state/           per-round checkpoints used to resume

example:
  prunegym lottery --config configs/lottery-lenet300.json --strategies rewind_init,reinit
)";

int run(const LotteryArgs& a) {
  LotteryRunOptions o;
  o.config = load_config(a.config);
  o.config_path = a.config.path;
  if (!a.strategies.empty()) {
    o.config.lottery.strategies = a.strategies;
    for (const auto& s : o.config.lottery.strategies) {
      try {
        parse_strategy(s);
      } catch (const ConfigError& e) {
        throw UsageError(std::string("--strategies: ") + e.what());
      }
    }
  }
  o.out = a.out;
  o.force = a.force;
  ProgressReporter progress(std::cerr);
  o.progress = &progress;
  const LotteryRunResult r = run_lottery(o);
  if (!r.plot_message.empty()) std::cerr << r.plot_message << "\n";
  std::cout << "lottery results in " << r.out << " (lottery.csv, lottery.md, lottery.json"
            << (r.plot_message.empty() ? ", lottery.png" : "") << "), wall time " << fmt_duration(r.seconds) << "\n"
            << r.markdown;
  return 0;
}

}  // namespace

void add_lottery(CLI::App& app, Commands& commands) {
  auto* sub =
      app.add_subcommand("lottery", "lottery-ticket rounds: iterative pruning with rewinding, re-init and controls");
  auto a = std::make_shared<LotteryArgs>();
  add_config_args(*sub, a->config);
  sub->add_option("--strategies", a->strategies, "strategies to compare, e.g. rewind_init,reinit,keep")
      ->delimiter(',')
      ->type_name("S1,S2");
  sub->add_option("--out", a->out, "results folder (default: runs/<config>-lottery)")->type_name("DIR");
  sub->add_flag("--force", a->force, "start over in DIR even if it holds another experiment");
  sub->footer([] { return std::string(kLotteryText) + strategy_help() + kLotteryTail; });
  commands["lottery"] = [a] { return run(*a); };
}

}  // namespace prunegym::cli
