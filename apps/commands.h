#pragma once
/// The prunegym subcommands. Each takes its arguments after the subcommand name and returns
/// the process exit code.

#include <string>
#include <vector>

namespace prunegym::cli {

int run_pretrain(const std::vector<std::string>& args);
int run_episode(const std::vector<std::string>& args);
int run_info(const std::vector<std::string>& args);
int run_train(const std::vector<std::string>& args);
int run_serve(const std::vector<std::string>& args);
int run_lottery(const std::vector<std::string>& args);
int run_bench(const std::vector<std::string>& args);
std::string lottery_help();

extern const char* const kPretrainHelp;
extern const char* const kEpisodeHelp;
extern const char* const kInfoHelp;
extern const char* const kTrainHelp;
extern const char* const kServeHelp;
extern const char* const kBenchHelp;

}  // namespace prunegym::cli
