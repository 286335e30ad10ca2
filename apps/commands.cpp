// The shared option helpers and the small commands: pretrain, info, episode.

#include "commands.h"

#include <prunegym/agents/factory.h>
#include <prunegym/core/errors.h>
#include <prunegym/core/json_file.h>
#include <prunegym/core/system.h>
#include <prunegym/core/timing.h>
#include <prunegym/env/prune_env.h>
#include <prunegym/experiments/episode_run.h>
#include <prunegym/networks/cost.h>
#include <prunegym/networks/groups.h>
#include <prunegym/networks/train.h>

#include <filesystem>
#include <iomanip>
#include <iostream>

namespace prunegym::cli {

namespace {

void log_stderr(const std::string& line) { std::cerr << line << std::endl; }

Config config_with_threads(const ConfigArgs& args) {
  Config config = load_config(args);
  configure_threads(config.threads);
  return config;
}

std::string names_of(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

CLI::Option* add_repeatable(CLI::App& sub, const std::string& name, std::vector<std::string>& into,
                            const std::string& help) {
  return sub.add_option(name, into, help)->expected(1)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

void add_config_args(CLI::App& sub, ConfigArgs& args) {
  sub.add_option("--config", args.path, "the JSON config (configs/lenet300-fashion.json is the default setup)")
      ->required()
      ->type_name("F");
  add_repeatable(sub, "--set", args.sets, "override one config key, e.g. --set env.timing=sparse (repeatable)")
      ->type_name("K=V");
  sub.add_option("--threads", args.threads, "LibTorch threads (0 = one per core)")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber);
}

Config load_config(const ConfigArgs& args) {
  nlohmann::json doc = read_json_file(args.path);
  for (const std::string& assignment : args.sets) {
    if (assignment.find('=') == std::string::npos || assignment[0] == '=')
      throw UsageError("--set needs key.path=value, got '" + assignment + "'");
    apply_override(doc, assignment);
  }
  Config config;
  try {
    config = Config::from_json(doc);
  } catch (const ConfigError& e) {
    throw ConfigError(args.path + ": " + e.what());
  }
  if (args.threads) config.threads = *args.threads;
  return config;
}

void add_pretrain(CLI::App& app, Commands& commands) {
  auto* sub = app.add_subcommand("pretrain", "train (or load from the cache) the dense model a config describes");
  auto args = std::make_shared<ConfigArgs>();
  auto out_dir = std::make_shared<std::string>();
  add_config_args(*sub, *args);
  sub->add_option("--out", *out_dir, "also write pretrain.json and the resolved config.json into this folder")
      ->type_name("DIR");
  sub->footer(R"(
Trains the dense network the config describes (network, data, network.pretrain) and caches it
under the config's cache folder (cache_dir, else $PRUNEGYM_CACHE, else ~/.cache/prunegym), keyed
by a hash of everything that determines it. A second run loads the cache instantly; a corrupt
cache file is reported and rebuilt. After every epoch the state so far is kept beside the cache
file (<cache file>.partial): a stopped pretraining, run again with the same config and threads,
resumes after its last whole epoch and ends with the same weights. Prints one JSON line: dense
validation and test accuracy, sample counts, the cache file and the time taken.

examples:
  prunegym pretrain --config configs/lenet300-fashion.json
  prunegym pretrain --config configs/resnet50-fashion.json --set network.stem=cifar --out runs/dense
)");
  commands["pretrain"] = [args, out_dir] {
    const Config config = config_with_threads(*args);
    const auto t0 = Clock::now();
    const DataSplits data = load_data(config.data);
    const DenseModel dense = load_or_pretrain(config, data, log_stderr);
    const NetworkCost cost = network_cost(*dense.network);
    nlohmann::json out{{"network", config.network.name},       {"data", data.description},
                       {"train_samples", data.train.size()},   {"validation_samples", data.validation.size()},
                       {"test_samples", data.test.size()},     {"validation_accuracy", dense.validation_accuracy},
                       {"test_accuracy", dense.test_accuracy}, {"from_cache", dense.from_cache},
                       {"cache_file", dense.cache_file},       {"train_seconds", dense.train_seconds},
                       {"wall_seconds", seconds_since(t0)}};
    out["parameters"] = cost.parameters;
    out["macs_per_sample"] = cost.macs;
    if (!out_dir->empty()) {
      std::filesystem::create_directories(*out_dir);
      write_atomic(std::filesystem::path(*out_dir) / "config.json", config.to_json().dump(2) + "\n");
      write_atomic(std::filesystem::path(*out_dir) / "pretrain.json", out.dump(2) + "\n");
    }
    std::cout << out.dump() << "\n";
    return 0;
  };
}

namespace {

/// The dense model's line: its accuracy when cached, else how to train it.
std::string dense_line(const PruneEnv& env, const ConfigArgs& args) {
  const auto& d = env.dense();
  if (d.trained)
    return "validation " + pct(d.validation_accuracy) + ", test " + pct(d.test_accuracy) + " (cached: " + d.cache_file +
           ")";
  const auto& p = env.config().pretrain;
  return "not trained yet: `prunegym pretrain --config " + args.path + "` trains it (" + std::to_string(p.epochs) +
         " epochs on " + std::to_string(env.data().train.size()) + " samples) and caches it as " + d.cache_file;
}

void print_info(const PruneEnv& env, const ConfigArgs& args) {
  const Config& config = env.config();
  const auto& net = env.dense().network;
  const NetworkCost cost = network_cost(*net);
  const std::string macs =
      cost.unknown_layers == static_cast<int64_t>(cost.layers.size())
          ? "MACs unknown (the network cannot tell its output positions)"
          : si_count(static_cast<double>(cost.macs)) + "MACs per sample" +
                (cost.unknown_layers ? " (" + std::to_string(cost.unknown_layers) + " layers unknown, not counted)"
                                     : std::string());
  std::cout << "data:        " << env.data().description << " (train " << env.data().train.size() << ", validation "
            << env.data().validation.size() << ", test " << env.data().test.size() << ")\n"
            << "network:     " << config.network.name << ", " << cost.parameters << " parameters, " << cost.prunable
            << " of them prunable, " << macs << "\n"
            << "dense:       " << dense_line(env, args) << "\nlayers:       (weights, positions per sample, MACs)\n";
  size_t width = 14;
  for (const auto& l : cost.layers) width = std::max(width, l.name.size() + 2);
  for (const auto& l : cost.layers)
    std::cout << "  " << std::left << std::setw(static_cast<int>(width)) << l.name << std::right << std::setw(9)
              << l.weights << std::setw(8) << (l.positions >= 0 ? std::to_string(l.positions) : "?") << std::setw(11)
              << (l.positions >= 0 ? si_count(static_cast<double>(l.macs)) : "?") << "  " << c10::IntArrayRef(l.shape)
              << "\n";
  const auto groups = checked_channel_groups(*net);
  std::cout << "channel groups (structured criteria remove a producer's output channels with its consumers' "
               "inputs): "
            << (groups.empty() ? "none\n" : std::to_string(groups.size()) + "\n");
  for (const auto& g : groups) {
    std::cout << "  " << net->prunable_layers()[g.producer].name;
    for (size_t t : g.tied) std::cout << " + " << net->prunable_layers()[t].name;
    std::cout << " (" << g.channels << (g.tied.empty() ? " channels) ->" : " channels, tied by residual adds) ->");
    for (const auto& c : g.consumers)
      std::cout << " " << net->prunable_layers()[c.layer].name << (c.block > 1 ? " x" + std::to_string(c.block) : "")
                << (c.depthwise ? " (depthwise)" : "");
    for (const auto& b : g.batch_norms) std::cout << ", " << b;
    std::cout << "\n";
  }
  for (const auto& note : net->channel_group_notes()) std::cout << "  " << note << "\n";
  const auto& rs = env.reward_setup();
  const std::string target_accuracy = env.dense().trained || config.env.reward.target_accuracy
                                          ? pct(rs.target_accuracy)
                                          : "dense - " + pct(config.env.reward.target_accuracy_drop) + " points";
  std::cout << "episode:     " << config.env.episode << ", " << env.episode_length() << " steps, timing "
            << config.env.timing << "\n"
            << "criterion:   " << config.env.criterion << "\n"
            << "actions:     " << env.action_space().to_json().dump() << "\n"
            << "observation: " << config.env.observation << " " << env.observation_space().to_json().dump() << "\n"
            << "reward:      " << config.env.reward.name << " (T_A " << target_accuracy << ", T_P "
            << pct(rs.target_sparsity) << ", beta " << rs.beta << ")\n"
            << "registered:\n"
            << "  rewards       " << names_of(RewardRegistry::instance().names()) << "\n"
            << "  criteria      " << names_of(CriterionRegistry::instance().names()) << "\n"
            << "  observations  " << names_of(ObservationRegistry::instance().names()) << "\n"
            << "  schedules     " << names_of(ScheduleRegistry::instance().names()) << "\n"
            << "  networks      " << names_of(NetworkRegistry::instance().names()) << "\n"
            << "  agents        " << names_of(AgentRegistry::instance().names()) << "\n";
}

}  // namespace

void add_info(CLI::App& app, Commands& commands) {
  auto* sub =
      app.add_subcommand("info", "show a config's network, layers, spaces and reward (in seconds, no training)");
  auto args = std::make_shared<ConfigArgs>();
  add_config_args(*sub, *args);
  sub->footer(R"(
Prints what an environment built from the config looks like: data, network and its prunable
layers with their sizes, output positions and multiply-accumulates per sample (MACs: positions x
weights; docs/networks.md), the episode schedule, the action and observation spaces, the reward and
its targets, and everything registered (with --plugin, yours too). It reads the architecture
only and never trains: when the dense model is cached it reports its accuracy, otherwise it says
how `prunegym pretrain` would train it.

example:
  prunegym info --config configs/lenet300-fashion.json --set env.observation=per_layer
)");
  commands["info"] = [args] {
    const Config config = config_with_threads(*args);
    PruneEnvHooks hooks;
    hooks.log = log_stderr;
    hooks.pretrain = PretrainPolicy::cached_only;
    const PruneEnv env(config, hooks);
    print_info(env, *args);
    return 0;
  };
}

}  // namespace prunegym::cli
