#pragma once
/// The dense model every episode starts from: trained once per distinct (network, data,
/// pretraining settings, seed) and cached on disk under a hash of all of them.

#include <prunegym/core/hash.h>
#include <prunegym/core/log.h>
#include <prunegym/env/config.h>
#include <prunegym/networks/data.h>
#include <prunegym/networks/model.h>

#include <functional>
#include <string>
#include <vector>

namespace prunegym {

struct DenseModel {
  NetworkPtr network;
  std::vector<torch::Tensor> state;  ///< trained weights (clone_state order)
  double validation_accuracy = 0.0;
  double test_accuracy = 0.0;
  std::string cache_file;
  bool from_cache = false;
  double train_seconds = 0.0;  ///< 0 when loaded from the cache
  /// False when the cache had no model and training was not asked for: the network then holds its
  /// initial weights and the accuracies are NaN (PretrainPolicy::cached_only).
  bool trained = true;
};

/// Whether a missing dense model is trained (every command that runs episodes) or left untrained
/// (`prunegym info`, which describes a config from its architecture in seconds).
enum class PretrainPolicy { train, cached_only };

/// The key that decides whether a cached dense model can be reused.
/// `built`: the config's network if the caller has built it already (saves building it again).
nlohmann::json pretrain_key(const Config& config, const DataSplits& data, const NetworkImpl* built = nullptr);

/// Loads the cached dense model, or trains and caches it. A corrupt or mismatching cache file is
/// reported through `log`, discarded and rebuilt.
DenseModel load_or_pretrain(const Config& config, const DataSplits& data, const LogFn& log = {},
                            PretrainPolicy policy = PretrainPolicy::train);

}  // namespace prunegym
