#include "commands.h"

#include "cli.h"

#include <prunegym/env/prune_env.h>
#include <prunegym/env/system.h>
#include <prunegym/networks/errors.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace prunegym::cli {

const char* const kPretrainHelp = R"(usage: prunegym pretrain --config F [--set K=V ...] [--threads N]

Trains the dense network the config describes (network, data, network.pretrain) and caches it
under the config's cache folder (cache_dir, else $PRUNEGYM_CACHE, else ~/.cache/prunegym), keyed
by a hash of everything that determines it. A second run loads the cache instantly; a corrupt
cache file is reported and rebuilt. Prints the dense validation and test accuracy.

example:
  prunegym pretrain --config configs/lenet300-fashion.json
)";

const char* const kEpisodeHelp = R"(usage: prunegym episode --config F (--actions I,J,... | --alpha A) [options]

Runs one episode of the pruning MDP: one step per prunable layer, each pruning that layer with
the chosen action, retraining briefly and measuring accuracy (env.timing = "dense"). With
env.episode = "rounds" each step is a lottery-ticket round instead (prune, reset, retrain).

options:
  --actions I,J,...   action indices, one per layer in episode order (see 'prunegym info');
                      rounds episodes: one per round, up to the round limit
  --alpha A           the same action value for every step (the nearest grid value)
  --seed S            seed of this episode (retrain subsets); default: the config's seed
  --format F          json (default): one JSON object per step and a summary line on stdout
                      table: a per-step table and a summary for people
  --set K=V           override a config key, e.g. --set env.timing=sparse (repeatable)
  --threads N         LibTorch threads (0 = one per core)

examples:
  prunegym episode --config configs/lenet300-fashion.json --alpha 1.0 --format table
  prunegym episode --config configs/lenet300-fashion.json --actions 12,10,4 --seed 3
  prunegym episode --config configs/lottery-q-lenet300.json --alpha 0.2 --format table
)";

const char* const kInfoHelp = R"(usage: prunegym info --config F [--set K=V ...]

Prints what an environment built from the config looks like: data, network and its prunable
layers with their sizes, the action and observation spaces, the reward and its targets, and the
registered rewards. Pretrains (or loads) the dense model to report its accuracy.
)";

namespace {

using Clock = std::chrono::steady_clock;

void log_stderr(const std::string& line) { std::cerr << line << std::endl; }

Config config_with_threads(const Args& args) {
  Config config = load_config(args);
  if (args.has("threads")) config.threads = args.get_int("threads", 0);
  if (config.threads < 0) throw UsageError("--threads must be >= 0");
  configure_threads(config.threads);
  return config;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// The action list for the episode from --actions or --alpha.
std::vector<Action> episode_actions(const Args& args, const PruneEnv& env) {
  const auto& space = env.action_space();
  const auto layers = env.episode_layers();
  // Rounds episodes take up to episode_length() actions and may end earlier.
  const auto L = env.rounds_mode() ? static_cast<size_t>(env.episode_length()) : layers.size();
  std::vector<Action> actions;
  if (args.has("actions") == args.has("alpha")) throw UsageError("give exactly one of --actions or --alpha");
  if (args.has("actions")) {
    for (int64_t i : parse_int_list(args.get("actions"), "actions")) {
      if (space.kind() == Space::Kind::box) throw UsageError("--actions takes indices but the action space is a Box; use --alpha");
      actions.emplace_back(i);
    }
    if (env.rounds_mode() && !actions.empty() && actions.size() <= L) return actions;
    if (actions.size() != L) {
      std::string names;
      for (const auto& n : layers) names += (names.empty() ? "" : ", ") + n;
      throw UsageError("--actions has " + std::to_string(actions.size()) + " values but the episode has " +
                       std::to_string(L) + " steps (layers " + names + ")");
    }
    return actions;
  }
  const double alpha = args.get_double("alpha", 0.0);
  if (space.kind() == Space::Kind::box) return std::vector<Action>(L, Action::continuous({alpha}));
  const auto& values = space.values();
  size_t best = 0;
  for (size_t i = 1; i < values.size(); ++i)
    if (std::abs(values[i] - alpha) < std::abs(values[best] - alpha)) best = i;
  const double tolerance = values.size() > 1 ? 0.5 * std::abs(values[1] - values[0]) + 1e-9 : 1e-9;
  if (std::abs(values[best] - alpha) > tolerance) {
    std::ostringstream os;
    os << "--alpha " << alpha << " is not near any action value (the grid runs " << values.front() << ".."
       << values.back() << ")";
    throw UsageError(os.str());
  }
  return std::vector<Action>(L, Action(static_cast<int64_t>(best)));
}

void print_table_header() {
  std::cout << std::left << std::setw(5) << "step" << std::setw(12) << "layer" << std::right << std::setw(7) << "alpha"
            << std::setw(11) << "layer sp." << std::setw(10) << "sparsity" << std::setw(10) << "accuracy"
            << std::setw(10) << "reward" << std::setw(11) << "retrain ms" << std::setw(9) << "eval ms" << "\n";
}

void print_table_row(const StepResult& r) {
  const auto& i = r.info;
  std::cout << std::left << std::setw(5) << i.step << std::setw(12) << i.layer << std::right << std::fixed
            << std::setprecision(2) << std::setw(7) << i.alpha << std::setw(11) << pct(i.layer_sparsity, 1)
            << std::setw(10) << pct(i.sparsity, 1) << std::setw(10)
            << (i.evaluated ? pct(i.accuracy) : std::string("-")) << std::setw(10) << std::setprecision(4) << r.reward
            << std::setw(11) << std::setprecision(1) << i.retrain_ms << std::setw(9) << i.eval_ms
            << (i.early_stop ? "  early stop" : "") << "\n";
}

}  // namespace

int run_pretrain(const std::vector<std::string>& argv) {
  Args args(argv, {"config", "threads"}, {}, {"set"});
  const Config config = config_with_threads(args);
  const auto t0 = Clock::now();
  const DataSplits data = load_data(config.data);
  const DenseModel dense = load_or_pretrain(config, data, log_stderr);
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  nlohmann::json out{{"network", config.network.name},
                     {"data", data.description},
                     {"train_samples", data.train.size()},
                     {"validation_samples", data.validation.size()},
                     {"test_samples", data.test.size()},
                     {"validation_accuracy", dense.validation_accuracy},
                     {"test_accuracy", dense.test_accuracy},
                     {"from_cache", dense.from_cache},
                     {"cache_file", dense.cache_file},
                     {"train_seconds", dense.train_seconds},
                     {"wall_seconds", secs}};
  std::cout << out.dump() << "\n";
  return 0;
}

int run_info(const std::vector<std::string>& argv) {
  Args args(argv, {"config", "threads"}, {}, {"set"});
  const Config config = config_with_threads(args);
  PruneEnv env(config, {log_stderr, nullptr});
  const auto& net = env.network();
  std::cout << "data:        " << env.data().description << " (train " << env.data().train.size() << ", validation "
            << env.data().validation.size() << ", test " << env.data().test.size() << ")\n";
  std::cout << "network:     " << config.network.name << ", " << net.total_prunable() << " prunable weights\n";
  std::cout << "dense:       validation " << pct(env.dense().validation_accuracy) << ", test "
            << pct(env.dense().test_accuracy) << "\n";
  std::cout << "layers:\n";
  for (const auto& l : net.prunable_layers()) {
    std::cout << "  " << std::left << std::setw(14) << l.name << std::right << std::setw(9) << l.numel() << "  "
              << l.weight.sizes() << "\n";
  }
  std::cout << "episode:     " << config.env.episode << ", " << env.episode_length() << " steps, timing "
            << config.env.timing << "\n";
  std::cout << "criterion:   " << config.env.criterion << "\n";
  std::cout << "actions:     " << env.action_space().to_json().dump() << "\n";
  std::cout << "observation: " << config.env.observation << " " << env.observation_space().to_json().dump() << "\n";
  const auto& rs = env.reward_setup();
  std::cout << "reward:      " << config.env.reward.name << " (T_A " << pct(rs.target_accuracy) << ", T_P "
            << pct(rs.target_sparsity) << ", beta " << rs.beta << ")\n";
  std::cout << "rewards:    ";
  for (const auto& n : RewardRegistry::instance().names()) std::cout << " " << n;
  std::cout << "\n";
  return 0;
}

int run_episode(const std::vector<std::string>& argv) {
  Args args(argv, {"config", "actions", "alpha", "seed", "format", "threads"}, {}, {"set"});
  const std::string format = args.get("format", "json");
  if (format != "json" && format != "table") throw UsageError("--format must be json or table, got '" + format + "'");
  const Config config = config_with_threads(args);
  PruneEnv env(config, {log_stderr, nullptr});
  const auto actions = episode_actions(args, env);
  // Check every action before the first step, so a bad list fails fast without a partial run.
  for (size_t i = 0; i < actions.size(); ++i) {
    const std::string why = env.action_space().explain(actions[i]);
    if (!why.empty()) throw ActionError("--actions position " + std::to_string(i + 1) + ": " + why);
  }

  ResetOptions reset_options;
  if (args.has("seed")) {
    const int64_t seed = args.get_int("seed", 0);
    if (seed < 0) throw UsageError("--seed must be >= 0");
    reset_options.seed = static_cast<uint64_t>(seed);
  }
  auto t0 = Clock::now();
  const ResetResult start = env.reset(reset_options);
  const double reset_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();

  if (format == "table") {
    std::cout << "dense model: validation " << pct(env.dense().validation_accuracy) << ", test "
              << pct(env.dense().test_accuracy) << "; state/reward accuracy on " << config.env.evaluation.split << ": "
              << pct(start.info.accuracy) << "\n";
    print_table_header();
  } else {
    std::cout << nlohmann::json{{"reset", {{"observation", start.observation}, {"info", start.info}}}}.dump() << "\n";
  }

  std::vector<double> step_ms, prune_ms, retrain_ms, eval_ms, alphas;
  double total_reward = 0.0;
  StepResult last;
  for (const auto& action : actions) {
    t0 = Clock::now();
    last = env.step(action);
    step_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    prune_ms.push_back(last.info.prune_ms);
    retrain_ms.push_back(last.info.retrain_ms);
    eval_ms.push_back(last.info.eval_ms);
    alphas.push_back(last.info.alpha);
    total_reward += last.reward;
    if (format == "table") {
      print_table_row(last);
    } else {
      std::cout << nlohmann::json{{"observation", last.observation},
                                  {"reward", last.reward},
                                  {"terminated", last.terminated},
                                  {"truncated", last.truncated},
                                  {"info", last.info}}
                       .dump()
                << "\n";
    }
    if (last.terminated || last.truncated) break;
  }
  const double test_accuracy = env.test_accuracy();
  nlohmann::json summary{{"steps", last.info.step},
                         {"total_reward", total_reward},
                         {"terminated", last.terminated},
                         {"truncated", last.truncated},
                         {"early_stop", last.info.early_stop},
                         {"alphas", alphas},
                         {"accuracy", last.info.accuracy},
                         {"test_accuracy", test_accuracy},
                         {"dense_accuracy", env.dense_accuracy()},
                         {"dense_test_accuracy", env.dense().test_accuracy},
                         {"sparsity", last.info.sparsity},
                         {"layer_sparsities", last.info.layer_sparsities},
                         {"remaining", last.info.remaining},
                         {"total", last.info.total},
                         {"median_step_ms", median(step_ms)},
                         {"median_prune_ms", median(prune_ms)},
                         {"median_retrain_ms", median(retrain_ms)},
                         {"median_eval_ms", median(eval_ms)},
                         {"reset_ms", reset_ms},
                         {"peak_rss_mib", peak_rss_mib()},
                         {"threads", torch::get_num_threads()}};
  if (format == "json") {
    std::cout << nlohmann::json{{"summary", summary}}.dump() << "\n";
    return 0;
  }
  std::cout << "\nsummary\n"
            << "  sparsity            " << pct(last.info.sparsity) << " (" << last.info.remaining << " of "
            << last.info.total << " weights remain)\n"
            << "  accuracy            " << config.env.evaluation.split << " " << pct(last.info.accuracy) << ", test "
            << pct(test_accuracy) << " (dense test " << pct(env.dense().test_accuracy) << ")\n"
            << "  total reward        " << std::fixed << std::setprecision(4) << total_reward << "\n"
            << "  end                 "
            << (last.info.early_stop ? "early stop (accuracy collapse)" : last.terminated ? "terminated" : "truncated")
            << " after " << last.info.step << " steps\n"
            << std::setprecision(1) << "  median step         " << median(step_ms) << " ms (prune " << median(prune_ms)
            << ", retrain " << median(retrain_ms) << ", evaluate " << median(eval_ms) << ")\n"
            << std::setprecision(3) << "  reset               " << reset_ms << " ms\n"
            << std::setprecision(0) << "  peak memory         " << peak_rss_mib() << " MiB, " << torch::get_num_threads()
            << " threads\n";
  return 0;
}

}  // namespace prunegym::cli
