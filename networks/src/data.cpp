#include <prunegym/core/errors.h>
#include <prunegym/networks/data.h>
#include <prunegym/networks/data_source.h>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace prunegym {

Tensors Tensors::head(int64_t n) const {
  if (n <= 0 || n >= size()) return *this;
  return {x.narrow(0, 0, n), y.narrow(0, 0, n)};
}

Tensors Tensors::to(const torch::Device& device) const { return {x.to(device), y.to(device)}; }

Tensors bytes_to_float(const Tensors& bytes) { return {bytes.x.to(torch::kFloat32).div_(255.0), bytes.y}; }

DataSplits split_and_normalize(const DataOptions& o, PoolSource::Pool pool) {
  DataSplits out;
  out.classes = pool.classes;
  out.description = pool.description;
  out.shape = {pool.train.x.size(1), pool.train.x.size(2), pool.train.x.size(3), nullptr};
  const int64_t n = pool.train.size();
  if (o.validation < 0 || o.validation >= n) {
    throw ConfigError("data.validation: " + std::to_string(o.validation) +
                      " held-out samples leaves no training data (the training split has " + std::to_string(n) + ")");
  }
  // A fixed permutation decides which samples are held out, independent of any run seed.
  auto gen = at::detail::createCPUGenerator(o.split_seed + 0x5eed);
  auto perm = torch::randperm(n, gen, torch::kInt64);
  auto val_idx = perm.narrow(0, 0, o.validation);
  auto train_idx = perm.narrow(0, o.validation, n - o.validation);
  if (o.train_limit > 0 && o.train_limit < train_idx.size(0)) train_idx = train_idx.narrow(0, 0, o.train_limit);
  auto pick = [&](const torch::Tensor& idx) {
    Tensors t{pool.train.x.index_select(0, idx), pool.train.y.index_select(0, idx)};
    return t.x.scalar_type() == torch::kUInt8 ? bytes_to_float(t) : t;
  };
  out.train = pick(train_idx);
  out.validation = pick(val_idx);
  pool.train = {};
  out.test = pool.test;
  if (o.normalize) {
    out.mean = out.train.x.mean().item<double>();
    out.stddev = out.train.x.std().item<double>();
    if (out.stddev <= 0) out.stddev = 1.0;
    for (Tensors* t : {&out.train, &out.validation, &out.test}) {
      if (t->size() > 0) t->x.sub_(out.mean).div_(out.stddev);
    }
  }
  return out;
}

DataSplits PoolSource::load(const DataOptions& options) const { return split_and_normalize(options, read(options)); }

DataSplits node_splits(const DataOptions& o, std::shared_ptr<Graph> graph) {
  if (o.normalize) {
    // Each node's features sum to 1 (bag-of-words rows), the usual GCN preprocessing.
    graph->features.div_(graph->features.sum(1, true).clamp_min(1e-12));
  }
  const GraphSplit split = split_nodes(*graph, o.graph, o.split_seed);
  auto take = [&](std::vector<int64_t> ids, int64_t limit) {
    if (limit > 0 && limit < static_cast<int64_t>(ids.size())) ids.resize(static_cast<size_t>(limit));
    auto t = torch::tensor(ids, torch::kInt64);
    return Tensors{t, graph->labels.index_select(0, t)};
  };
  DataSplits out;
  out.train = take(split.train, o.train_limit);
  out.validation = take(split.validation, 0);
  out.test = take(split.test, o.test_limit);
  out.classes = static_cast<int64_t>(graph->class_names.size());
  out.description = graph->description;
  out.shape = InputShape{graph->feature_count(), 1, 1, graph};
  return out;
}

std::string node_split_fingerprint(const GraphOptions& g) {
  std::ostringstream os;
  os << ";train_per_class=" << g.train_per_class << ";graph_validation=" << g.validation << ";test=" << g.test;
  return os.str();
}

template <>
DataSourceRegistry& DataSourceRegistry::instance() {
  static DataSourceRegistry registry("data source", "data.source");
  return registry;
}

DataSplits load_data(const DataOptions& o) { return DataSourceRegistry::instance().make(o.source)->load(o); }

std::string data_fingerprint(const DataOptions& o) {
  std::ostringstream os;
  os << "source=" << o.source << ";validation=" << o.validation << ";train_limit=" << o.train_limit
     << ";normalize=" << o.normalize << ";split_seed=" << o.split_seed;
  os << DataSourceRegistry::instance().make(o.source)->fingerprint(o);
  return os.str();
}

std::string default_data_path(const std::string& source) {
  return DataSourceRegistry::instance().make(source)->default_path();
}

bool source_reads_files(const std::string& source) {
  return DataSourceRegistry::instance().make(source)->reads_files();
}

}  // namespace prunegym
