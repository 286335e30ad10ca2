#pragma once
/// The prunegym subcommands: each adds its options to a CLI11 subcommand and returns the function
/// that runs it (after parsing) and gives the exit code. The work itself lives in prunegym::experiments.

#include <prunegym/env/config.h>

#include <CLI/CLI.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace prunegym::cli {

using Command = std::function<int()>;
/// Subcommand name -> what runs it.
using Commands = std::map<std::string, Command>;

/// --config F, --set K=V (repeatable), --threads N: common to every command that reads a config.
struct ConfigArgs {
  std::string path;
  std::vector<std::string> sets;
  std::optional<int64_t> threads;
};
void add_config_args(CLI::App& sub, ConfigArgs& args);
/// Loads the file and applies every --set (value parsed as JSON, else taken as a string).
Config load_config(const ConfigArgs& args);
/// A repeatable option that takes one value per use (--set a=1 --set b=2).
CLI::Option* add_repeatable(CLI::App& sub, const std::string& name, std::vector<std::string>& into,
                            const std::string& help);

void add_pretrain(CLI::App& app, Commands& commands);
void add_info(CLI::App& app, Commands& commands);
void add_episode(CLI::App& app, Commands& commands);
void add_train(CLI::App& app, Commands& commands);
void add_lottery(CLI::App& app, Commands& commands);
void add_bench(CLI::App& app, Commands& commands);
void add_serve(CLI::App& app, Commands& commands);
void add_validate(CLI::App& app, Commands& commands);

}  // namespace prunegym::cli
