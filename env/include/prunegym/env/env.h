#pragma once
/// The abstract environment every agent talks to: in-process PruneEnv or a remote one.

#include <prunegym/env/spaces.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace prunegym {

/// What happened in one step (or at reset). Named fields, never positional tensors.
struct StepInfo {
  int64_t step = 0;             ///< steps taken in this episode
  std::string layer;            ///< layer pruned by this step ("" at reset and in rounds episodes)
  int64_t layer_index = -1;     ///< its index among the prunable layers
  int64_t round = 0;            ///< rounds episodes: the lottery round this step ran (1-based)
  double value = 0.0;           ///< action value applied: an alpha, or a sparsity (the criterion's meaning)
  double requested = 0.0;       ///< the value the action named (env.budget's wall may raise it to value)
  bool clipped = false;         ///< env.budget's action wall raised the value
  double resource_ratio = 0.0;  ///< env.budget: the resource left over the dense network's (0 = no budget)
  double step_sparsity = 0.0;   ///< sparsity of what the step pruned: its layer, or the round's layers
  double sparsity = 0.0;        ///< over all prunable weights
  double accuracy = 0.0;        ///< on the state/reward split (validation by default)
  bool evaluated = false;       ///< accuracy was measured in this step (false between sparse steps)
  int64_t remaining = 0;
  int64_t total = 0;
  /// Multiply-accumulates per sample of the prunable layers' non-zero weights, and of the dense
  /// network (networks/cost.h); 0 when the network cannot tell its output positions.
  int64_t macs = 0;
  int64_t dense_macs = 0;
  std::vector<double> layer_sparsities;
  double prune_ms = 0.0;
  double retrain_ms = 0.0;
  double eval_ms = 0.0;
  bool early_stop = false;  ///< terminated because accuracy fell below the floor
};

struct ResetOptions {
  std::optional<uint64_t> seed;  ///< reseeds the episode RNG when set (Gymnasium semantics)
  nlohmann::json options = nlohmann::json::object();
};

struct ResetResult {
  Observation observation;
  StepInfo info;
};

struct StepResult {
  Observation observation;
  double reward = 0.0;
  bool terminated = false;  ///< the episode's natural end: last layer, target reached, collapse
  bool truncated = false;   ///< a step limit ended it
  StepInfo info;
};

/// The saved state of an env (opaque to its users): see Env::save_state.
class EnvState {
 public:
  virtual ~EnvState() = default;
};

class Env {
 public:
  virtual ~Env() = default;
  virtual ResetResult reset(const ResetOptions& options = {}) = 0;
  virtual StepResult step(const Action& action) = 0;
  virtual const Space& action_space() const = 0;
  virtual const Space& observation_space() const = 0;

  /// Facts about the env for clients (the bridge sends them with a new session); {} by default.
  virtual nlohmann::json describe() const { return nlohmann::json::object(); }
  /// The whole state, to branch from and come back to; null when this env kind cannot save.
  virtual std::shared_ptr<const EnvState> save_state() const { return nullptr; }
  /// Puts back what save_state() returned (ConfigError for a state of another env).
  virtual void restore_state(const EnvState& state);
};

void to_json(nlohmann::json& j, const StepInfo& info);
void from_json(const nlohmann::json& j, StepInfo& info);

}  // namespace prunegym
