#pragma once
/// What a network costs to run: parameters and multiply-accumulates (MACs) per sample, dense and
/// remaining, per prunable layer and in total.
///
/// A prunable layer applies each of its weights once per output position (NetworkImpl::
/// output_positions()): a convolution's MACs are output height x width x out channels x in
/// channels / groups x kernel area, which is positions x its weight count; a linear layer's are
/// in x out. Remaining MACs count the non-zero weights only, so under unstructured masks they are
/// what a sparse kernel would do, not what a dense runtime does. Biases, batch norm and
/// activations are not counted (as in the published counts: torchvision ResNet-50 at 224x224 is
/// 4.09 G MACs).

#include <prunegym/networks/model.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace prunegym {

struct LayerCost {
  std::string name;
  std::vector<int64_t> shape;  ///< the weight's shape
  int64_t positions = -1;      ///< output positions per sample (-1: unknown)
  int64_t weights = 0, remaining = 0;
  int64_t macs = 0, remaining_macs = 0;  ///< 0 when positions are unknown
};

struct NetworkCost {
  std::vector<LayerCost> layers;
  int64_t parameters = 0;                ///< every parameter of the network, biases and batch norms too
  int64_t prunable = 0, remaining = 0;   ///< weights of the prunable layers, all and unmasked
  int64_t macs = 0, remaining_macs = 0;  ///< per sample, over the layers whose positions are known
  int64_t unknown_layers = 0;            ///< layers whose positions the network could not tell

  double macs_fraction() const { return macs ? static_cast<double>(remaining_macs) / static_cast<double>(macs) : 1.0; }
  /// {"parameters", "prunable", "remaining", "macs", "remaining_macs", "unknown_layers"}; with
  /// `per_layer` also "layers": [{name, shape, positions, weights, remaining, macs, remaining_macs}].
  nlohmann::json to_json(bool per_layer = false) const;
};

/// The network's cost under its current masks.
NetworkCost network_cost(const NetworkImpl& network);

/// "4.09 G", "266.2 k": a count with an SI prefix, for reports.
std::string si_count(double value);

}  // namespace prunegym
