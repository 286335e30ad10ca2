// AMC's observation (He et al., 2018): the layer the next step prunes, described by 11 features,
// each in [0, 1]. Config: "observation": "layer_features".
//
//   0 episode index of the layer        6 its weights (parameters)
//   1 type: 0 convolution, 1 linear     7 its dense MACs per sample
//   2 input channels (weight dim 1)     8 MACs removed so far, share of the dense network's
//   3 output channels                   9 dense MACs of the episode layers after it, same share
//   4 output positions (height x width) 10 the previous action, over the action space's largest
//   5 kernel size (1 for linear)
//
// Features 0-7 are min-max normalised over the episode's layers (0 where they all agree), as AMC's
// code does; 8-10 are fractions already. AMC's code feeds the stride where feature 4 stands: the
// output positions carry the spatial size that the stride sets, and the MACs with it, and every
// network can tell them (NetworkImpl::output_positions()). The same builder serves structured and
// unstructured episodes: "removed" counts whatever the masks took.

#include <prunegym/core/registry.h>
#include <prunegym/env/observation.h>
#include <prunegym/networks/model.h>

#include <algorithm>
#include <array>

namespace prunegym {

namespace {

constexpr size_t kFeatures = 11;
constexpr size_t kStatic = 8;  ///< features 0-7 describe the layer and do not change in an episode

using Row = std::array<double, kStatic>;

class LayerFeaturesObservation : public ObservationBuilder {
 public:
  Space space(const ObservationShape& s) const override {
    action_high_ = s.action_high > 0 ? s.action_high : 1.0;
    return Space::box(std::vector<double>(kFeatures, 0.0), std::vector<double>(kFeatures, 1.0));
  }

  Observation build(const EpisodeState& e, const NetworkImpl& net) const override {
    if (e.layers.empty()) return Observation(kFeatures, 0.0f);
    // Shapes and positions only: the MACs under the masks come with the episode state (the step
    // counted them), so no mask is read here.
    const auto& layers = net.prunable_layers();
    const auto positions = net.output_positions();
    std::vector<Row> rows;
    rows.reserve(e.layers.size());
    for (size_t k = 0; k < e.layers.size(); ++k) {
      const size_t i = e.layers[k].index;
      rows.push_back(describe(k, layers.at(i).weight, i < positions.size() ? positions[i] : -1));
    }
    const size_t current = std::min(static_cast<size_t>(std::max<int64_t>(e.step, 0)), e.layers.size() - 1);
    Observation out;
    out.reserve(kFeatures);
    for (size_t f = 0; f < kStatic; ++f) {
      double lo = rows[0][f], hi = rows[0][f];
      for (const auto& r : rows) {
        lo = std::min(lo, r[f]);
        hi = std::max(hi, r[f]);
      }
      out.push_back(hi > lo ? static_cast<float>((rows[current][f] - lo) / (hi - lo)) : 0.0f);
    }
    const double total = e.dense_macs > 0 ? static_cast<double>(e.dense_macs) : 1.0;
    double rest = 0.0;
    for (size_t k = current + 1; k < rows.size(); ++k) rest += rows[k][7];
    out.push_back(clamp01(static_cast<double>(e.dense_macs - e.macs) / total));
    out.push_back(clamp01(rest / total));
    out.push_back(clamp01(e.last_value / action_high_));
    return out;
  }

 private:
  static float clamp01(double x) { return static_cast<float>(std::clamp(x, 0.0, 1.0)); }

  /// Features 0-7 of episode layer k with weight `w`, applied at `positions` output positions.
  static Row describe(size_t k, const torch::Tensor& w, int64_t positions) {
    const bool conv = w.dim() == 4;
    const auto at = std::max<int64_t>(positions, 0);  // unknown positions count no MACs (networks/cost.h)
    return {static_cast<double>(k),
            conv ? 0.0 : 1.0,
            w.dim() > 1 ? static_cast<double>(w.size(1)) : 1.0,
            static_cast<double>(w.dim() > 0 ? w.size(0) : 0),
            static_cast<double>(at),
            conv ? static_cast<double>(w.size(2)) : 1.0,
            static_cast<double>(w.numel()),
            static_cast<double>(at * w.numel())};
  }

  mutable double action_high_ = 1.0;  ///< from space(), which the env calls once when it is built
};

}  // namespace

PRUNEGYM_REGISTER(ObservationRegistry, "layer_features",
                  (without_options<LayerFeaturesObservation, ObservationBuilder>("observation 'layer_features'")),
                  "AMC's state: 11 features of the layer the next step prunes (index, type, channels, "
                  "positions, kernel, weights, MACs, MACs removed and still to come, previous action)");

}  // namespace prunegym
