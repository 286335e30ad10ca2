#pragma once
/// Data sources: one class per source (networks/src/sources/, one file each), registered by name
/// (config key data.source). A source knows its default folder, whether it reads files, how to
/// load its splits, what part of the dense-model cache key it decides, and the work it asks of a
/// server. Add your own with PRUNEGYM_REGISTER(DataSourceRegistry, "name", factory, "description").

#include <prunegym/core/registry.h>
#include <prunegym/networks/data.h>
#include <prunegym/networks/work.h>

#include <memory>
#include <string>
#include <vector>

namespace prunegym {

class DataSource {
 public:
  virtual ~DataSource() = default;
  /// The folder read when the config gives no data.path ("" = none).
  virtual std::string default_path() const { return ""; }
  /// True when the source reads files under data.path (a server checks the path is allowed).
  virtual bool reads_files() const { return false; }
  /// The train, validation and test splits the options describe.
  virtual DataSplits load(const DataOptions& options) const = 0;
  /// The source's part of data_fingerprint(): whatever of its files and settings decides the data.
  virtual std::string fingerprint(const DataOptions& options) const = 0;
  /// What loading asks of a server, checked against its limits before anything is loaded.
  virtual std::vector<WorkItem> work(const DataOptions&) const { return {}; }
};

/// Image-like sources: they yield a training pool and a test split; the validation split, the
/// training limit and the normalisation are the same for all of them (split_and_normalize).
class PoolSource : public DataSource {
 public:
  struct Pool {
    Tensors train;  ///< the training pool, before the validation split (uint8 or float pixels)
    Tensors test;   ///< the test split, data.test_limit applied
    int64_t classes = 10;
    std::string description;
  };
  virtual Pool read(const DataOptions& options) const = 0;
  DataSplits load(const DataOptions& options) const override;
};

/// Holds out data.validation samples of the pool (a fixed permutation by data.split_seed), applies
/// data.train_limit, converts bytes to floats and normalises by the training statistics.
DataSplits split_and_normalize(const DataOptions& options, PoolSource::Pool pool);
/// Pixels stored as bytes, as floats in [0, 1].
Tensors bytes_to_float(const Tensors& bytes);
/// Node-classification splits of `graph` (node ids as inputs; data.graph's split sizes).
DataSplits node_splits(const DataOptions& options, std::shared_ptr<Graph> graph);
/// The part of a graph source's fingerprint that node_splits() decides (data.graph's split sizes).
std::string node_split_fingerprint(const GraphOptions& graph);

using DataSourceRegistry = Registry<DataSource>;
template <>
DataSourceRegistry& DataSourceRegistry::instance();

}  // namespace prunegym
