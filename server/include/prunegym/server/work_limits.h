#pragma once
/// Ceilings on the work one `make` request may ask of the server: a remote config must not occupy
/// a worker for hours or allocate gigabytes (pretraining epochs, data sizes, action grids, network
/// sizes). The operator raises or lowers each with `prunegym serve --limit KEY=VALUE`; `hello`
/// reports them; docs/protocol.md lists them.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace prunegym {

struct WorkLimits {
  int64_t pretrain_epochs = 500;  ///< network.pretrain.epochs (graph networks train full-batch: 100s)
  int64_t retrain_epochs = 100;   ///< env.retrain.epochs, lottery.train.epochs
  int64_t samples = 200000;       ///< data.synthetic.train/test, env.retrain.samples
  int64_t graph_nodes = 100000;   ///< data.graph.nodes
  int64_t features = 1 << 20;     ///< inputs per sample (synthetic shape, graph features)
  int64_t action_values = 10000;  ///< values of a discrete action grid
  double network_width = 4.0;     ///< network.width of residual networks
  int64_t layer_width = 16384;    ///< outputs of one custom layer (network.layers)
  int64_t layers = 64;            ///< custom layers
  int64_t rounds = 100;           ///< lottery rounds, env.max_steps

  /// The names `--limit` accepts, in hello's order.
  static std::vector<std::string> keys();
  /// Sets one limit; ConfigError naming the known keys for an unknown one, or for a value <= 0.
  void set(const std::string& key, double value);
  /// Parses "KEY=VALUE" (the --limit form).
  void set(const std::string& assignment);
  /// The limit named `key` (one of keys()); ConfigError for an unknown one.
  double get(const std::string& key) const;
  nlohmann::json to_json() const;
};

}  // namespace prunegym
