#pragma once
/// EpisodeState: what an episode has done so far, kept by PruneEnv. Schedules report what a step
/// did (ScheduleStep); PruneEnv records it here; observation builders compute the agent's view
/// from this state and the network, so a new observation is one file.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace prunegym {

/// What the episode knows of one of its layers.
struct LayerRecord {
  size_t index = 0;       ///< the layer's index among the network's prunable layers
  double accuracy = 0.0;  ///< accuracy on the state split after the step that last pruned it
  double sparsity = 0.0;  ///< its sparsity after that step
  bool pruned = false;    ///< a step has pruned it in this episode
};

struct EpisodeState {
  int64_t step = 0;         ///< steps taken
  double accuracy = 0.0;    ///< last measured accuracy on the state/reward split
  double sparsity = 0.0;    ///< the schedule's sparsity (global, or of the pruned group)
  double last_value = 0.0;  ///< the last step's action value (0 at reset)
  int64_t macs = 0;         ///< MACs per sample under the current masks (StepInfo::macs)
  int64_t dense_macs = 0;   ///< the dense network's (StepInfo::dense_macs)
  /// One record per episode layer, in episode order (EpisodeSchedule::layers()).
  std::vector<LayerRecord> layers;

  /// Back to the start of an episode over `layer_indices` (episode order), at the dense model's
  /// accuracy and sparsity.
  void restart(const std::vector<size_t>& layer_indices, double dense_accuracy, double dense_sparsity) {
    step = 0;
    accuracy = dense_accuracy;
    sparsity = dense_sparsity;
    last_value = 0.0;
    layers.assign(layer_indices.size(), LayerRecord{});
    for (size_t k = 0; k < layer_indices.size(); ++k) layers[k].index = layer_indices[k];
  }
};

}  // namespace prunegym
