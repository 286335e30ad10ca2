// prunegym: one binary, subcommands (CLI11). Errors are one line on stderr; bad input exits with 2.

#include "commands.h"

#include <prunegym/core/errors.h>
#include <prunegym/core/plugin.h>
#include <prunegym/core/system.h>

#include <torch/torch.h>

#include <iostream>
#include <map>

namespace {

const char* const kFooter = R"(
Run 'prunegym <command> --help' for the options of a command.

Every command that reads a config takes --config F, --set K=V (repeatable; V is parsed as JSON,
else taken as a string, e.g. --set env.reward.name=purl_upside) and --threads N.

--plugin LIB (before the command, repeatable) loads a shared library that registers your own
rewards, criteria, observations, schedules, networks, agents or env kinds
(examples/reward_plugin.cpp, examples/agent_plugin.cpp, docs/architecture.md).

Exit codes: 0 success, 1 runtime failure, 2 bad input (config, action, option, dataset),
130 interrupted (everything saved; the command says how to continue).
)";

/// "usage: prunegym train [OPTIONS]" instead of CLI11's "Usage: train [OPTIONS]".
class Formatter : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App* app, std::string name) const override {
    std::string usage = CLI::Formatter::make_usage(app, name);
    const std::string from = "Usage: " + name;
    if (usage.find(from) != std::string::npos)
      usage.replace(usage.find(from), from.size(), "usage: " + (app->get_parent() ? "prunegym " + name : name));
    return usage;
  }
};

/// Loads every "--plugin LIB" given before the command, so help texts and option checks see
/// what the plugins register.
void load_plugins(int argc, char** argv) {
  for (int i = 1; i + 1 < argc && std::string(argv[i]) == "--plugin"; i += 2) prunegym::load_plugin(argv[i + 1]);
}

/// CLI11's parse errors as one line in the project's words.
std::string parse_message(const CLI::ParseError& e, bool in_command) {
  std::string what = e.what();
  for (const std::string prefix :
       {"The following arguments were not expected: ", "The following argument was not expected: "}) {
    if (what.rfind(prefix, 0) == 0) {
      const std::string rest = what.substr(prefix.size());
      if (rest.rfind("--", 0) == 0) return "unknown option " + rest;
      if (!in_command)
        return "unknown command '" + rest.substr(0, rest.find(' ')) +
               "' (commands: pretrain, train, episode, info, bench, serve, lottery, validate)";
      return "unexpected argument " + rest;
    }
  }
  return what;
}

}  // namespace

int main(int argc, char** argv) {
  namespace cli = prunegym::cli;
  CLI::App app{"prunegym - reinforcement-learning-driven neural-network pruning", "prunegym"};
  app.formatter(std::make_shared<Formatter>());
  // The general notes belong to `prunegym --help` only, not to every command's help.
  app.footer([&app] { return app.get_subcommands().empty() ? std::string(kFooter) : std::string(); });
  app.require_subcommand(0, 1);
  std::vector<std::string> plugins;
  cli::add_repeatable(app, "--plugin", plugins, "load a plugin library (before the command)")->type_name("LIB");
  cli::Commands commands;
  for (const auto& add : {cli::add_pretrain, cli::add_train, cli::add_episode, cli::add_info, cli::add_bench,
                          cli::add_serve, cli::add_lottery, cli::add_validate})
    add(app, commands);
  // Before parsing: `prunegym info --help` on a slow BLAS should already say so.
  const std::string warning = prunegym::blas_warning(prunegym::detect_blas());
  if (!warning.empty()) std::cerr << warning << "\n";
  try {
    load_plugins(argc, argv);
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    const auto chosen = app.get_subcommands();
    std::cout << (chosen.empty() ? app.help() : chosen.front()->help());
    return 0;
  } catch (const CLI::ParseError& e) {
    const auto chosen = app.get_subcommands();
    const std::string where = chosen.empty() ? "prunegym" : "prunegym " + chosen.front()->get_name();
    std::cerr << where << ": error: " << parse_message(e, !chosen.empty()) << " (see " << where << " --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "prunegym: error: " << e.what() << "\n";
    return 2;
  }
  const auto chosen = app.get_subcommands();
  if (chosen.empty()) {
    std::cout << app.help();
    return 2;
  }
  const std::string command = chosen.front()->get_name();
  try {
    return commands.at(command)();
  } catch (const prunegym::UsageError& e) {
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
