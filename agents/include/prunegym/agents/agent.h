#pragma once
/// The Agent interface. An agent sees only spaces, observations, actions and rewards, so it runs
/// unchanged in-process (PruneEnv) or against a remote environment.

#include <prunegym/env/env.h>
#include <prunegym/env/spaces.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>

namespace prunegym {

/// One step of experience.
struct Transition {
  Observation observation;
  Action action;
  double reward = 0.0;
  Observation next_observation;
  bool terminated = false;  ///< no bootstrapping from next_observation
  bool truncated = false;   ///< ended by a limit; next_observation is still a real state
  StepInfo info;            ///< the environment's metrics for this step
};

class Agent {
 public:
  virtual ~Agent() = default;
  virtual std::string name() const = 0;
  /// Called before each training episode; schedules (epsilon, ...) run over `total` episodes.
  virtual void begin_episode(int64_t episode, int64_t total) {
    (void)episode;
    (void)total;
  }
  /// The action for an observation; `explore` false asks for the greedy policy.
  virtual Action act(const Observation& observation, bool explore) = 0;
  /// Learns from one transition (only called while training).
  virtual void observe(const Transition& transition) { (void)transition; }
  /// Called after each training episode.
  virtual void end_episode() {}
  /// Whether the agent's greedy choice for this observation rests on what it learned (a tabular
  /// agent: a seen state with one best action), so a report can say how many final decisions
  /// came from the table rather than from tie-breaks;
  /// nullopt for agents that generalise over observations (networks) or do not learn.
  virtual std::optional<bool> knows(const Observation& observation) const {
    (void)observation;
    return std::nullopt;
  }
  /// Current exploration rate for progress displays (NaN when the agent has none).
  virtual double exploration() const;
  /// Saves everything needed to resume training (weights, optimizer, RNG, buffers, counters).
  virtual void save(const std::string& path) const = 0;
  /// Loads what save() wrote; throws DataError when the file is missing or of another agent.
  virtual void load(const std::string& path) = 0;
};

/// Reads a JSON checkpoint written by write_checkpoint_json; throws DataError when the file is
/// missing, unreadable, or belongs to another agent than `agent`.
nlohmann::json read_checkpoint_json(const std::string& path, const std::string& agent);
/// Writes a JSON checkpoint (`j["agent"]` names the agent).
void write_checkpoint_json(const std::string& path, const nlohmann::json& j);

/// Scales each observation dimension to [0, 1] with the space bounds (unbounded dims pass through).
std::vector<float> normalize_observation(const Observation& observation, const Space& space);

}  // namespace prunegym
