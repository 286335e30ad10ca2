#pragma once
/// Episode schedules: what one step of an episode is. "layerwise" prunes one layer per step
/// (PuRL); "rounds" runs one lottery-ticket round per step (prune, reset the survivors, retrain;
/// seed 000). Both drive the same EnvCore; PruneEnv adds reward, early stop and observation.
/// Add your own with PRUNEGYM_REGISTER(ScheduleRegistry, ...).

#include <prunegym/core/registry.h>
#include <prunegym/env/criteria.h>
#include <prunegym/env/env.h>
#include <prunegym/env/env_core.h>
#include <prunegym/env/episode_state.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <vector>

namespace prunegym {

/// What one step of a schedule did.
struct ScheduleStep {
  /// Mask counts plus what the schedule knows: layer or round, value, step_sparsity, evaluated,
  /// timings. PruneEnv fills step, accuracy and early_stop.
  StepInfo info;
  double observed_sparsity = 0.0;  ///< the sparsity the compact observation shows
  bool finished = false;           ///< the schedule's natural end: its last layer, or the target
  /// Positions (in layers() order) of the episode layers this step pruned: PruneEnv records
  /// their accuracy and sparsity in the EpisodeState.
  std::vector<size_t> pruned;
};

class EpisodeSchedule {
 public:
  virtual ~EpisodeSchedule() = default;
  /// The layers the episode prunes (indices among the prunable layers), in order.
  const std::vector<size_t>& layers() const { return layers_; }
  /// Steps of a full episode.
  virtual int64_t length() const = 0;
  /// Steps after which an unfinished episode is truncated (0 = never).
  virtual int64_t step_limit() const = 0;
  /// The action grid when the config gives none.
  virtual ActionGrid default_grid() const = 0;
  /// The next step of `episode` (episode.step steps are done) with action value `value`: prunes,
  /// retrains and evaluates when the step measures, and says what it did. `target_sparsity` is T_P.
  virtual ScheduleStep step(EnvCore& core, const EpisodeState& episode, double value, double target_sparsity) = 0;
  /// True when a final policy is one value per episode layer applied to the dense model
  /// (PruneEnv::apply_values); false when it is replayed by stepping.
  virtual bool replays_by_values() const { return false; }

 protected:
  std::vector<size_t> layers_;
};

/// Schedules by name (config key env.episode); the factory gets its canonical options and the core.
/// Traits a schedule may register: "default_reward" (the reward when env.reward.name is not given).
using ScheduleRegistry = Registry<EpisodeSchedule, const nlohmann::json&, EnvCore&>;
template <>
ScheduleRegistry& ScheduleRegistry::instance();

}  // namespace prunegym
