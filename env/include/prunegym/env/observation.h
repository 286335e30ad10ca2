#pragma once
/// Observation builders: what the agent sees of the episode. "compact" is PuRL's 3-dim state
/// (step, accuracy, sparsity); "per_layer" is the (a_i, p_i) vector, 2 entries per episode layer
/// (108 dims on ResNet-50). Add your own with PRUNEGYM_REGISTER(ObservationRegistry, ...).

#include <prunegym/core/registry.h>
#include <prunegym/env/spaces.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <vector>

namespace prunegym {

/// The episode's shape, fixed when the env is built.
struct ObservationShape {
  int64_t episode_length = 0;  ///< steps of a full episode
  int64_t layers = 0;          ///< layers the episode prunes
};

/// The episode's state after a reset or a step.
struct ObservationInput {
  int64_t step = 0;                ///< steps taken
  double accuracy = 0.0;           ///< last measured accuracy on the state/reward split
  double sparsity = 0.0;           ///< the schedule's sparsity (global, or of the pruned group)
  const std::vector<float>* per_layer = nullptr;  ///< (a_i, p_i) per episode layer
};

class ObservationBuilder {
 public:
  virtual ~ObservationBuilder() = default;
  virtual Space space(const ObservationShape& shape) const = 0;
  virtual Observation build(const ObservationInput& in) const = 0;
};

/// Builders by name (config key env.observation); the factory gets the builder's options ({}).
using ObservationRegistry = Registry<ObservationBuilder, const nlohmann::json&>;
template <>
ObservationRegistry& ObservationRegistry::instance();

}  // namespace prunegym
