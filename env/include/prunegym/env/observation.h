#pragma once
/// Observation builders: what the agent sees of the episode. "compact" is PuRL's 3-dim state
/// (step, accuracy, sparsity); "per_layer" is the (a_i, p_i) vector, 2 entries per episode layer
/// (108 dims on ResNet-50); "layer_features" is AMC's 11 features of the layer to prune next
/// (observation_layer_features.cpp). Add your own with PRUNEGYM_REGISTER(ObservationRegistry, ...).

#include <prunegym/core/registry.h>
#include <prunegym/env/episode_state.h>
#include <prunegym/env/spaces.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <vector>

namespace prunegym {

/// The episode's shape, fixed when the env is built.
struct ObservationShape {
  int64_t episode_length = 0;  ///< steps of a full episode
  int64_t layers = 0;          ///< layers the episode prunes
  double action_high = 1.0;    ///< the largest action value (to scale the previous action)
};

class NetworkImpl;

class ObservationBuilder {
 public:
  virtual ~ObservationBuilder() = default;
  /// Called once, when the env is built and before any build(): a builder may keep from the shape
  /// what build() needs.
  virtual Space space(const ObservationShape& shape) const = 0;
  /// The agent's view after a reset or a step: computed from the episode so far and the network
  /// (its layers, shapes and masks as they are now).
  virtual Observation build(const EpisodeState& episode, const NetworkImpl& network) const = 0;
};

/// Builders by name (config key env.observation); the factory gets the builder's canonical options.
using ObservationRegistry = Registry<ObservationBuilder, const nlohmann::json&>;
template <>
ObservationRegistry& ObservationRegistry::instance();

}  // namespace prunegym
