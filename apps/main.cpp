// prunegym: one binary, subcommands. Errors are one line on stderr; bad input exits with 2.

#include "cli.h"
#include "commands.h"

#include <prunegym/env/system.h>
#include <prunegym/networks/errors.h>

#include <torch/torch.h>

#include <cstring>
#include <iostream>

namespace {

const char* const kUsage = R"(prunegym - reinforcement-learning-driven neural-network pruning

usage: prunegym <command> [options]

commands:
  pretrain   train (or load from the cache) the dense model a config describes
  train      train an agent (q, dqn, ppo, random, uniform), extract its policy, fine-tune
  episode    run one pruning episode with given actions and print every step
  info       show a config's network, layers, spaces and reward
  bench      compare MDP variants (a grid of config patches) over seeds, in parallel
  serve      serve environments over ZeroMQ for external (e.g. Python) agents
  lottery    lottery-ticket rounds: iterative pruning with rewinding, re-init and controls

Run 'prunegym <command> --help' for the options of a command.

Global option (before the command):
  --plugin LIB      load a shared library that registers your own rewards (repeatable);
                    see examples/reward_plugin.cpp

Common to every command:
  --config F        the JSON config (configs/lenet300-fashion.json is the default setup)
  --set K=V         override one config key, e.g. --set env.reward.name=purl_upside
                    (repeatable; V is parsed as JSON, else taken as a string)
  --threads N       LibTorch threads (default: the config's, 0 = one per core)

Exit codes: 0 success, 1 runtime failure, 2 bad input (config, action, option, dataset).
)";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    while (args.size() >= 2 && args[0] == "--plugin") {
      prunegym::cli::load_plugin(args[1]);
      args.erase(args.begin(), args.begin() + 2);
    }
  } catch (const std::exception& e) {
    std::cerr << "prunegym: error: " << e.what() << "\n";
    return 2;
  }
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  const bool help = !args.empty() && (args[0] == "--help" || args[0] == "-h");

  const std::string warning = prunegym::blas_warning(prunegym::detect_blas());
  if (!warning.empty()) std::cerr << warning << "\n";

  try {
    namespace cli = prunegym::cli;
    if (command == "pretrain") return help ? (std::cout << cli::kPretrainHelp, 0) : cli::run_pretrain(args);
    if (command == "episode") return help ? (std::cout << cli::kEpisodeHelp, 0) : cli::run_episode(args);
    if (command == "train") return help ? (std::cout << cli::kTrainHelp, 0) : cli::run_train(args);
    if (command == "serve") return help ? (std::cout << cli::kServeHelp, 0) : cli::run_serve(args);
    if (command == "lottery") return help ? (std::cout << cli::lottery_help(), 0) : cli::run_lottery(args);
    if (command == "bench") return help ? (std::cout << cli::kBenchHelp, 0) : cli::run_bench(args);
    if (command == "info") return help ? (std::cout << cli::kInfoHelp, 0) : cli::run_info(args);
    std::cerr << "prunegym: unknown command '" << command << "' (commands: pretrain, train, episode, info, serve, lottery, bench; see prunegym --help)\n";
    return 2;
  } catch (const prunegym::cli::UsageError& e) {
    std::cerr << "prunegym " << command << ": error: " << e.what() << " (see prunegym " << command << " --help)\n";
    return 2;
  } catch (const prunegym::Error& e) {
    std::cerr << "prunegym " << command << ": error: " << e.what() << "\n";
    return 2;
  } catch (const c10::Error& e) {
    std::cerr << "prunegym " << command << ": LibTorch error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "prunegym " << command << ": error: " << e.what() << "\n";
    return 1;
  }
}
