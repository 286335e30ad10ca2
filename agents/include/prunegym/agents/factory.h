#pragma once
/// Builds agents by name from the config's "agents" section and reads the "train" section.

#include <prunegym/agents/agent.h>
#include <prunegym/networks/train.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace prunegym {

/// The "train" section: the pipeline around the agent.
struct TrainSettings {
  int64_t episodes = 55;        ///< PuRL's budget
  int64_t policy_episodes = 5;  ///< greedy episodes averaged into the final policy
  TrainOptions finetune = TrainOptions().set_optimizer("adam").set_lr(1e-3).set_batch_size(128).set_epochs(3);
};

/// Parses the "train" section strictly (unknown keys name the key).
TrainSettings parse_train_settings(const nlohmann::json& section);

/// Names of the built-in agents.
std::vector<std::string> agent_names();

/// Builds agent `name` from `agents_section[name]` (missing keys take the defaults).
/// `target_sparsity` feeds the uniform baseline's search. Throws ConfigError naming bad keys.
std::unique_ptr<Agent> make_agent(const std::string& name, const nlohmann::json& agents_section, const Space& action_space,
                                  const Space& observation_space, uint64_t seed, double target_sparsity);

/// Episodes for agent `name`: its own "episodes" key when set, else the train section's.
int64_t agent_episodes(const std::string& name, const nlohmann::json& agents_section, const TrainSettings& train);

}  // namespace prunegym
