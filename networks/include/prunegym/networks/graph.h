#pragma once
/// Node-classification graphs for GCN models: the graph itself (features, normalised adjacency,
/// labels), a deterministic planted-partition generator, a reader for the Cora dataset in its
/// plain-text form, and the train/validation/test node splits.
///
/// A graph dataset fits the same Tensors/DataSplits shape as image data: a split's `x` holds node
/// ids (int64) and `y` their labels; the graph travels with the input shape (InputShape::graph),
/// so a network built for it computes on the whole graph and returns the rows of the nodes asked.

#include <prunegym/core/json_reader.h>

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace prunegym {

struct Graph {
  torch::Tensor features;   ///< [N, F] float32, one row per node
  torch::Tensor adjacency;  ///< sparse COO [N, N]: D^-1/2 (A + I) D^-1/2, coalesced
  torch::Tensor labels;     ///< [N] int64 class ids
  int64_t edges = 0;        ///< undirected edges without self loops, duplicates merged
  std::vector<std::string> class_names;
  std::string description;

  int64_t nodes() const { return labels.defined() ? labels.size(0) : 0; }
  int64_t feature_count() const { return features.defined() ? features.size(1) : 0; }
  /// Fraction of edges whose two ends share a class.
  double edge_homophily() const;
};

/// Options of the graph sources: the synthetic generator's size and difficulty ("graph") and
/// the node splits (both "graph" and "cora").
struct GraphOptions {
  // Planted-partition generator: `classes` communities; an edge joins two nodes of one class with
  // probability `homophily`; each node draws `words` words, a fraction `word_signal` of them from
  // its class's block of the vocabulary and the rest uniformly (binary bag of words).
  int64_t nodes = 2708;
  int64_t classes = 7;
  int64_t features = 1433;
  double degree = 4.0;  ///< mean node degree
  double homophily = 0.8;
  int64_t words = 18;
  double word_signal = 0.25;
  uint64_t seed = 3;
  // Node splits: `train_per_class` training nodes of every class, then `validation` and `test`
  // nodes from the rest, in an order fixed by data.split_seed.
  int64_t train_per_class = 20;
  int64_t validation = 500;
  int64_t test = 1000;
  /// The config's data.graph section (read by the graph and cora sources; networks/src/sources/graph.cpp).
  void read(ObjectReader& r);
  nlohmann::json to_json() const;  ///< every key: resolved documents always carry the section
};

/// The symmetric-normalised adjacency with self loops, D^-1/2 (A + I) D^-1/2, of an undirected
/// graph given as (u, v) pairs (either direction; duplicates and self loops in the list are merged).
/// Throws DataError for a node id outside [0, nodes). `unique_edges` receives the edge count.
torch::Tensor normalized_adjacency(const std::vector<std::pair<int64_t, int64_t>>& edges, int64_t nodes,
                                   int64_t* unique_edges = nullptr);

/// One GCN convolution: adjacency @ (h W^T) + bias (bias may be undefined).
torch::Tensor gcn_propagate(const torch::Tensor& adjacency, const torch::Tensor& h, const torch::Tensor& weight,
                            const torch::Tensor& bias);

/// `dense` as a coalesced sparse COO matrix when at most `max_density` of it is nonzero (bag-of-words
/// features), else an undefined tensor: graph layers then multiply the sparse form.
torch::Tensor sparse_if_mostly_zero(const torch::Tensor& dense, double max_density = 0.1);

/// The deterministic planted-partition graph the options describe (features not normalised).
Graph make_planted_partition(const GraphOptions& options);

/// Reads `cora.content` (id, 0/1 word columns, class name per line) and `cora.cites` (cited id,
/// citing id per line) from `folder`. Malformed lines throw DataError naming file and line;
/// citations naming papers absent from cora.content are skipped and counted in the description.
Graph read_cora(const std::string& folder);

/// Node ids of the three splits (see GraphOptions), deterministic given split_seed.
struct GraphSplit {
  std::vector<int64_t> train, validation, test;
};
GraphSplit split_nodes(const Graph& graph, const GraphOptions& options, uint64_t split_seed);

}  // namespace prunegym
