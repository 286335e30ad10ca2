#pragma once
/// The episode loop shared by training, policy extraction and the CLI: the runner owns the
/// loop; agents only act and learn.

#include <prunegym/agents/agent.h>
#include <prunegym/env/env.h>

#include <atomic>
#include <functional>
#include <optional>
#include <vector>

namespace prunegym {

/// What one episode produced.
struct EpisodeRecord {
  int64_t episode = 0;
  double total_reward = 0.0;
  int64_t steps = 0;
  double accuracy = 0.0;  ///< at the end of the episode
  double sparsity = 0.0;
  bool early_stop = false;
  bool truncated = false;
  std::vector<double> values;  ///< action value (alpha) applied at each step
  double exploration = 0.0;    ///< the agent's exploration rate during the episode
  double seconds = 0.0;
  /// Steps decided on an observation the agent knows (Agent::knows); unset for agents that
  /// cannot tell.
  std::optional<int64_t> known_steps;
  std::vector<Action> actions;  ///< the actions taken, in order (kept in memory, not written)
};

/// Seed of training episode `episode` in a run seeded with `seed`: every episode has its own
/// seed, so a resumed run replays exactly what an uninterrupted one would have.
uint64_t episode_seed(uint64_t seed, int64_t episode, bool greedy = false);

/// Called after every step of an episode (progress reports of long episodes).
using EpisodeStepCallback = std::function<void(const StepResult&)>;

/// Runs one episode. With `learn` the agent explores and observes every transition.
EpisodeRecord run_episode(Env& env, Agent& agent, bool learn, uint64_t seed, int64_t episode = 0, int64_t total = 1,
                          const EpisodeStepCallback& on_step = nullptr);

/// Replays `actions` from a reset with `seed` until the episode ends or the actions run out: the
/// same decisions measured on another environment (a greedy check judged with dense timing).
EpisodeRecord replay_actions(Env& env, const std::vector<Action>& actions, uint64_t seed);

struct RunOptions {
  int64_t episodes = 55;
  int64_t start_episode = 0;  ///< > 0 when resuming
  uint64_t seed = 0;
  const std::atomic<bool>* stop = nullptr;  ///< checked between episodes
  std::function<void(const EpisodeRecord&)> on_episode;
};

/// Trains for episodes [start_episode, episodes); returns the records of the episodes run.
std::vector<EpisodeRecord> train_agent(Env& env, Agent& agent, const RunOptions& options);

/// PuRL's final policy: the mean action value at each step over `episodes` greedy episodes.
struct GreedyPolicy {
  std::vector<double> mean_values;
  std::vector<EpisodeRecord> episodes;
};
GreedyPolicy greedy_policy(Env& env, Agent& agent, int64_t episodes, uint64_t seed);

}  // namespace prunegym
