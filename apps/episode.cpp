// `prunegym episode`: one episode with given actions, every step printed as it happens.

#include "commands.h"

#include <prunegym/core/errors.h>
#include <prunegym/core/timing.h>
#include <prunegym/experiments/episode_run.h>
#include <prunegym/networks/train.h>

#include <iomanip>
#include <iostream>

namespace prunegym::cli {

namespace {

struct EpisodeArgs {
  ConfigArgs config;
  std::vector<int64_t> actions;
  std::optional<double> alpha;
  std::optional<int64_t> seed;
  std::string format = "json";
};

void print_table_row(const StepResult& r) {
  const auto& i = r.info;
  const std::string what = i.round > 0 ? "round " + std::to_string(i.round) : i.layer;
  std::cout << std::left << std::setw(5) << i.step << std::setw(24) << what << std::right << std::fixed
            << std::setprecision(2) << std::setw(7) << i.value << std::setw(11) << pct(i.step_sparsity, 1)
            << std::setw(10) << pct(i.sparsity, 1) << std::setw(10)
            << (i.evaluated ? pct(i.accuracy) : std::string("-")) << std::setw(10) << std::setprecision(4) << r.reward
            << std::setw(11) << std::setprecision(1) << i.retrain_ms << std::setw(9) << i.eval_ms
            << (i.early_stop ? "  early stop" : "") << "\n";
}

void print_table_summary(const EpisodeRunResult& r) {
  const auto& s = r.summary;
  const auto& last = r.steps.back();
  std::cout << "\nsummary\n"
            << "  sparsity            " << pct(s["sparsity"].get<double>()) << " (" << s["remaining"] << " of "
            << s["total"] << " weights remain)\n"
            << "  accuracy            " << r.env["split"].get<std::string>() << " " << pct(s["accuracy"].get<double>())
            << ", test " << pct(s["test_accuracy"].get<double>()) << " (dense test "
            << pct(s["dense_test_accuracy"].get<double>()) << ")\n"
            << "  total reward        " << std::fixed << std::setprecision(4) << s["total_reward"].get<double>() << "\n"
            << "  end                 "
            << (last.info.early_stop ? "early stop (accuracy collapse)"
                : last.terminated    ? "terminated"
                                     : "truncated")
            << " after " << last.info.step << " steps\n"
            << std::setprecision(1) << "  median step         " << s["median_step_ms"].get<double>() << " ms (prune "
            << s["median_prune_ms"].get<double>() << ", retrain " << s["median_retrain_ms"].get<double>()
            << ", evaluate " << s["median_eval_ms"].get<double>() << ")\n"
            << std::setprecision(3) << "  reset               " << s["reset_ms"].get<double>() << " ms\n"
            << std::setprecision(0) << "  peak memory         " << s["peak_rss_mib"].get<double>() << " MiB, "
            << s["threads"] << " threads\n";
}

int run(const EpisodeArgs& a) {
  EpisodeRunOptions o;
  o.config = load_config(a.config);
  configure_threads(o.config.threads);
  o.actions = a.actions;
  o.alpha = a.alpha;
  if (a.seed) o.seed = static_cast<uint64_t>(*a.seed);
  o.log = [](const std::string& line) { std::cerr << line << std::endl; };
  const bool table = a.format == "table";
  auto on_start = [&](const EpisodeRunResult& r) {
    if (!table) {
      std::cout << nlohmann::json{{"reset", {{"observation", r.start.observation}, {"info", r.start.info}}}}.dump()
                << "\n";
      return;
    }
    std::cout << "dense model: validation " << pct(r.env["dense_validation_accuracy"].get<double>()) << ", test "
              << pct(r.env["dense_test_accuracy"].get<double>()) << "; state/reward accuracy on "
              << r.env["split"].get<std::string>() << ": " << pct(r.start.info.accuracy) << "\n"
              << std::left << std::setw(5) << "step" << std::setw(24) << "layer" << std::right << std::setw(7)
              << "value" << std::setw(11) << "step sp." << std::setw(10) << "sparsity" << std::setw(10) << "accuracy"
              << std::setw(10) << "reward" << std::setw(11) << "retrain ms" << std::setw(9) << "eval ms"
              << "\n";
  };
  auto on_step = [&](const StepResult& s) {
    if (table) return print_table_row(s);
    std::cout << nlohmann::json{{"observation", s.observation},
                                {"reward", s.reward},
                                {"terminated", s.terminated},
                                {"truncated", s.truncated},
                                {"info", s.info}}
                     .dump()
              << "\n";
  };
  const EpisodeRunResult r = play_episode(o, on_start, on_step);
  if (table)
    print_table_summary(r);
  else
    std::cout << nlohmann::json{{"summary", r.summary}}.dump() << "\n";
  return 0;
}

}  // namespace

void add_episode(CLI::App& app, Commands& commands) {
  auto* sub = app.add_subcommand("episode", "run one pruning episode with given actions and print every step");
  auto a = std::make_shared<EpisodeArgs>();
  add_config_args(*sub, a->config);
  auto* actions = sub->add_option("--actions", a->actions,
                                  "action indices, one per layer in episode order (see 'prunegym info'); rounds "
                                  "episodes: one per round, up to the round limit")
                      ->delimiter(',')
                      ->type_name("I,J,...");
  sub->add_option("--alpha", a->alpha, "the same action value for every step (the nearest grid value)")
      ->type_name("A")
      ->excludes(actions);
  sub->add_option("--seed", a->seed, "seed of this episode (retrain subsets); default: the config's")
      ->type_name("S")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--format", a->format,
                  "json (default): one JSON object per step and a summary line on stdout; table: for people")
      ->check(CLI::IsMember({"json", "table"}));
  sub->footer(R"(
Runs one episode of the pruning MDP. With env.episode = "layerwise" each step prunes one layer
with the chosen action, retrains briefly and measures accuracy (env.timing = "dense"); with
env.episode = "rounds" each step is a lottery-ticket round (prune, reset, retrain).

examples:
  prunegym episode --config configs/lenet300-fashion.json --alpha 1.0 --format table
  prunegym episode --config configs/lenet300-fashion.json --actions 12,10,4 --seed 3
  prunegym episode --config configs/lottery-q-lenet300.json --alpha 0.2 --format table
)");
  commands["episode"] = [a] { return run(*a); };
}

}  // namespace prunegym::cli
