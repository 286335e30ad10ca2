#include <prunegym/core/errors.h>
#include <prunegym/env/observation.h>

namespace prunegym {

namespace {

/// PuRL's 3-dim state: (step, accuracy, sparsity).
class CompactObservation : public ObservationBuilder {
 public:
  Space space(const ObservationShape& s) const override {
    return Space::box({0.0, 0.0, 0.0}, {static_cast<double>(s.episode_length), 1.0, 1.0});
  }
  Observation build(const EpisodeState& e, const NetworkImpl&) const override {
    return {static_cast<float>(e.step), static_cast<float>(e.accuracy), static_cast<float>(e.sparsity)};
  }
};

/// (step, sparsity): a state of the mask alone. The same actions lead to the same states whatever
/// the retraining budget, so a table learned on cheap rounds applies to a final network that
/// retrains longer (seed 000 states the mask itself, s <- W').
class StepSparsityObservation : public ObservationBuilder {
 public:
  Space space(const ObservationShape& s) const override {
    return Space::box({0.0, 0.0}, {static_cast<double>(s.episode_length), 1.0});
  }
  Observation build(const EpisodeState& e, const NetworkImpl&) const override {
    return {static_cast<float>(e.step), static_cast<float>(e.sparsity)};
  }
};

/// (a_i, p_i) for every episode layer: the accuracy after layer i was pruned and its sparsity.
class PerLayerObservation : public ObservationBuilder {
 public:
  Space space(const ObservationShape& s) const override {
    const auto n = static_cast<size_t>(2 * s.layers);
    return Space::box(std::vector<double>(n, 0.0), std::vector<double>(n, 1.0));
  }
  Observation build(const EpisodeState& e, const NetworkImpl&) const override {
    Observation out;
    out.reserve(2 * e.layers.size());
    for (const auto& l : e.layers) {
      out.push_back(static_cast<float>(l.accuracy));
      out.push_back(static_cast<float>(l.sparsity));
    }
    return out;
  }
};

}  // namespace

template <>
ObservationRegistry& ObservationRegistry::instance() {
  static ObservationRegistry registry = [] {
    ObservationRegistry r("observation", "env.observation");
    r.add("compact", without_options<CompactObservation, ObservationBuilder>("observation 'compact'"),
          "PuRL's 3-dim state: (step, accuracy, sparsity)");
    r.add("step_sparsity", without_options<StepSparsityObservation, ObservationBuilder>("observation 'step_sparsity'"),
          "(step, sparsity): the mask alone, so a learned table transfers to longer retraining");
    r.add("per_layer", without_options<PerLayerObservation, ObservationBuilder>("observation 'per_layer'"),
          "(a_i, p_i) per episode layer: 2 x layers dims");
    return r;
  }();
  return registry;
}

}  // namespace prunegym
