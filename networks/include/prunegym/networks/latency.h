#pragma once
/// A per-layer latency table: how long each prunable layer takes on this machine, measured once
/// for the channel counts it can take, so that a latency budget needs no timing during a search.
///
/// Each prunable layer is timed as its own operation (a convolution with its kernel, groups and
/// output map, or a matrix product, followed by a ReLU) over a grid of input and output channel
/// counts: the dimensions a channel group can shrink (its producer's rows, its consumers' input
/// channels; a depthwise layer's both at once), `points` counts from 1/points of the channels to
/// all of them. Fixed dimensions (the input image's channels, the classifier's classes) keep one
/// point. Every entry is the fastest of five timed blocks of at least a millisecond, in the
/// network's own layout (channels-last where it keeps its filters so); each layer's grid is then
/// made monotone (fewer channels never cost more). The dense network's forward pass is measured
/// the same way on its TorchScript export (what a compact export is too).
///
/// A network's predicted latency is the dense forward pass scaled by the sum of its layers'
/// entries at the channel counts its masks leave (rows with a one; input channels some row still
/// reads), bilinear between grid points, over the sum of their dense entries: the rest of the
/// network (batch norm, activations, pooling, additions, dispatch) is taken to shrink as its layers
/// do. Under unstructured masks no channel goes, so the prediction stays the dense latency: what a
/// dense runtime does.

#include <prunegym/networks/data.h>
#include <prunegym/networks/model.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

namespace prunegym {

struct LatencyLayer {
  std::string name;
  std::vector<int64_t> shape;       ///< the dense weight's shape
  int64_t height = 1, width = 1;    ///< output map (1 x 1 for a linear layer)
  int64_t block = 1;                ///< input columns per input channel (a flatten before a linear layer)
  bool depthwise = false;           ///< one filter per channel: input and output shrink together
  bool channels_last = false;       ///< timed in the channels-last layout, as the network keeps the weight
  std::vector<int64_t> in_points;   ///< input channel counts measured (one point: fixed)
  std::vector<int64_t> out_points;  ///< output channel counts measured
  std::vector<double> seconds;      ///< [in index x out_points.size() + out index]

  /// The interpolated entry at `in` input and `out` output channels.
  double at(int64_t in, int64_t out) const;
};

struct LatencyTable {
  std::string machine;  ///< machine_key() when measured
  int64_t threads = 1, batch = 1, points = 8;
  double dense_seconds = 0.0;  ///< the dense network's measured forward pass
  double rest_seconds = 0.0;   ///< dense_seconds - the layers' dense entries (reported, not added)
  std::vector<LatencyLayer> layers;

  /// Seconds per batch predicted for the network's current masks.
  double predict(const NetworkImpl& net) const;
  /// The same, per layer (without the constant), in prunable_layers() order.
  std::vector<double> predict_layers(const NetworkImpl& net) const;
  nlohmann::json to_json() const;
  static LatencyTable from_json(const nlohmann::json& j);
};

/// The processor model, core count and LibTorch version: what a table's timings hold for.
std::string machine_key();

/// Measures the table for `net` (dense masks expected) with the current LibTorch threads.
/// ConfigError for networks whose layers' output maps are unknown (graphs, some imports).
LatencyTable measure_latency_table(NetworkImpl& net, const InputShape& input, int64_t batch, int64_t points,
                                   const std::function<void(const std::string&)>& log = {});

/// The table kept in `cache_file` when it was measured for this machine, threads, batch, points
/// and layer shapes; else measured and written there. `cache_file` empty: measured, not kept.
LatencyTable load_or_measure_latency_table(NetworkImpl& net, const InputShape& input, int64_t batch, int64_t points,
                                           const std::string& cache_file,
                                           const std::function<void(const std::string&)>& log = {});

/// Seconds per call of `run`: the fastest of five timed blocks of calls (each block at least a
/// millisecond, after a warm-up call), robust to other work on a shared machine.
double fastest_seconds(const std::function<void()>& run);

}  // namespace prunegym
