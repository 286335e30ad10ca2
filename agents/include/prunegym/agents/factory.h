#pragma once
/// Builds agents by name from the config's "agents" section and reads the "train" section.

#include <prunegym/agents/agent.h>
#include <prunegym/core/registry.h>
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
  int64_t greedy_every = 0;     ///< every N training episodes, one greedy episode without learning (0 = none)
  /// How a greedy check is measured: "episode" (its own end, under the env's timing) or "dense"
  /// (its actions replayed with a retrain and evaluation after every layer, so runs of either
  /// timing are judged by the same measurement).
  std::string greedy_measure = "episode";
  /// How the final policy is applied to the dense model (layer-wise schedules): "one_shot" prunes
  /// every layer by its mean greedy value at once (PuRL's final step); "episode" replays the first
  /// greedy episode's actions, retraining after every layer as the episodes did.
  std::string final_policy = "one_shot";
  /// One-shot only: re-estimate the batch-norm statistics on this many training samples after
  /// pruning (0 = no; the dense statistics stay).
  int64_t recalibrate_bn = 0;
  TrainOptions finetune = TrainOptions().set_optimizer("adam").set_lr(1e-3).set_batch_size(128).set_epochs(3);
  /// Rounds episodes only: when set (an object), the final network is built as seed 000 builds it:
  /// a fresh network trained with these settings (a merge patch over lottery.train), then one
  /// greedy episode whose rounds retrain with them too. Null: the greedy episode runs on the
  /// training environment.
  nlohmann::json final_train;
};

/// Parses the "train" section strictly (unknown keys name the key).
TrainSettings parse_train_settings(const nlohmann::json& section);

/// What an agent factory receives.
struct AgentContext {
  const nlohmann::json& options;  ///< the agent's config section agents.NAME ({} when absent; "episodes" removed)
  std::string path;               ///< that section's key path for errors ("agents.dqn")
  const Space& action_space;
  const Space& observation_space;
  uint64_t seed = 0;
  double target_sparsity = 0.9;  ///< T_P of the environment (the uniform baseline searches for it)
};

/// Agents by name (prunegym train --agent NAME, bench grids' "agent"). Each agent registers itself
/// in its own source file with PRUNEGYM_REGISTER(AgentRegistry, ...); a plugin can add more.
using AgentRegistry = Registry<Agent, const AgentContext&>;
template <>
AgentRegistry& AgentRegistry::instance();

/// Names of the registered agents.
std::vector<std::string> agent_names();

/// Builds agent `name` from `agents_section[name]` (missing keys take the defaults).
/// `target_sparsity` feeds the uniform baseline's search. Throws ConfigError naming bad keys.
std::unique_ptr<Agent> make_agent(const std::string& name, const nlohmann::json& agents_section,
                                  const Space& action_space, const Space& observation_space, uint64_t seed,
                                  double target_sparsity);

/// Episodes for agent `name`: its own "episodes" key when set, else the train section's.
int64_t agent_episodes(const std::string& name, const nlohmann::json& agents_section, const TrainSettings& train);

}  // namespace prunegym
