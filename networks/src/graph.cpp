#include <prunegym/core/errors.h>
#include <prunegym/networks/graph.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <unordered_map>

namespace fs = std::filesystem;

namespace prunegym {

namespace {

// Draws with our own arithmetic so a seed gives the same graph with every standard library.
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }
int64_t below(std::mt19937_64& rng, int64_t n) { return static_cast<int64_t>(rng() % static_cast<uint64_t>(n)); }

std::vector<std::string> split_fields(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream is(line);
  std::string f;
  while (is >> f) out.push_back(f);
  return out;
}

}  // namespace

double Graph::edge_homophily() const {
  if (!adjacency.defined() || edges == 0) return 0.0;
  auto idx = adjacency.indices();
  auto off = idx[0].ne(idx[1]);
  auto same = labels.index_select(0, idx[0]).eq(labels.index_select(0, idx[1])).logical_and(off);
  return same.sum().item<double>() / off.sum().item<double>();
}

torch::Tensor normalized_adjacency(const std::vector<std::pair<int64_t, int64_t>>& edges, int64_t nodes,
                                   int64_t* unique_edges) {
  if (nodes <= 0) throw DataError("a graph needs at least one node");
  std::vector<std::pair<int64_t, int64_t>> pairs;
  pairs.reserve(edges.size() * 2 + static_cast<size_t>(nodes));
  for (const auto& [u, v] : edges) {
    if (u < 0 || u >= nodes || v < 0 || v >= nodes)
      throw DataError("edge (" + std::to_string(u) + ", " + std::to_string(v) + ") names a node outside 0.." +
                      std::to_string(nodes - 1));
    if (u == v) continue;  // self loops are added below, once per node
    pairs.emplace_back(u, v);
    pairs.emplace_back(v, u);
  }
  for (int64_t i = 0; i < nodes; ++i) pairs.emplace_back(i, i);
  std::sort(pairs.begin(), pairs.end());
  pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
  if (unique_edges) *unique_edges = static_cast<int64_t>(pairs.size() - static_cast<size_t>(nodes)) / 2;

  std::vector<double> degree(static_cast<size_t>(nodes), 0.0);
  for (const auto& p : pairs) degree[static_cast<size_t>(p.first)] += 1.0;
  const auto nnz = static_cast<int64_t>(pairs.size());
  auto index = torch::empty({2, nnz}, torch::kInt64);
  auto values = torch::empty({nnz}, torch::kFloat32);
  auto* rows = index.data_ptr<int64_t>();
  auto* cols = rows + nnz;
  auto* val = values.data_ptr<float>();
  for (int64_t k = 0; k < nnz; ++k) {
    const auto [i, j] = pairs[static_cast<size_t>(k)];
    rows[k] = i;
    cols[k] = j;
    val[k] = static_cast<float>(1.0 / std::sqrt(degree[static_cast<size_t>(i)] * degree[static_cast<size_t>(j)]));
  }
  // Sorted and unique already, so the tensor is coalesced by construction.
  return torch::sparse_coo_tensor(index, values, {nodes, nodes}).coalesce();
}

torch::Tensor gcn_propagate(const torch::Tensor& adjacency, const torch::Tensor& h, const torch::Tensor& weight,
                            const torch::Tensor& bias) {
  // Transform first, then aggregate: the sparse product then runs on the narrower matrix.
  auto out = torch::mm(adjacency, torch::mm(h, weight.t()));
  return bias.defined() ? out + bias : out;
}

torch::Tensor sparse_if_mostly_zero(const torch::Tensor& dense, double max_density) {
  const double nonzero = dense.ne(0).sum().item<double>();
  if (dense.numel() == 0 || nonzero > max_density * static_cast<double>(dense.numel())) return {};
  return dense.to_sparse().coalesce();
}

Graph make_planted_partition(const GraphOptions& o) {
  auto fail = [](const std::string& key, const std::string& rule) {
    throw ConfigError("data.graph." + key + " " + rule);
  };
  if (o.classes < 2) fail("classes", "must be at least 2");
  if (o.nodes < o.classes) fail("nodes", "must be at least data.graph.classes");
  if (o.features < o.classes)
    fail("features", "must be at least data.graph.classes (each class owns a block of words)");
  if (!(o.degree >= 0)) fail("degree", "must be >= 0");
  if (!(o.homophily >= 0 && o.homophily <= 1)) fail("homophily", "must be in [0, 1]");
  if (!(o.word_signal >= 0 && o.word_signal <= 1)) fail("word_signal", "must be in [0, 1]");
  if (o.words < 1) fail("words", "must be at least 1");

  std::mt19937_64 rng(o.seed * 0x9E3779B97F4A7C15ull + 0x6a09e667ull);
  Graph g;
  // Balanced classes in a shuffled order.
  std::vector<int64_t> label(static_cast<size_t>(o.nodes));
  for (int64_t i = 0; i < o.nodes; ++i) label[static_cast<size_t>(i)] = i % o.classes;
  for (int64_t i = o.nodes - 1; i > 0; --i)
    std::swap(label[static_cast<size_t>(i)], label[static_cast<size_t>(below(rng, i + 1))]);
  std::vector<std::vector<int64_t>> members(static_cast<size_t>(o.classes));
  for (int64_t i = 0; i < o.nodes; ++i) members[static_cast<size_t>(label[static_cast<size_t>(i)])].push_back(i);

  // Binary bag of words: class c owns words [c*F/C, (c+1)*F/C).
  g.features = torch::zeros({o.nodes, o.features}, torch::kFloat32);
  auto* x = g.features.data_ptr<float>();
  for (int64_t i = 0; i < o.nodes; ++i) {
    const int64_t c = label[static_cast<size_t>(i)];
    const int64_t lo = c * o.features / o.classes, hi = (c + 1) * o.features / o.classes;
    for (int64_t w = 0; w < o.words; ++w) {
      const int64_t word = uniform01(rng) < o.word_signal ? lo + below(rng, hi - lo) : below(rng, o.features);
      x[i * o.features + word] = 1.0f;
    }
  }

  // Edges: a uniform first end; the second from the same class with probability `homophily`.
  const auto attempts = static_cast<int64_t>(std::llround(static_cast<double>(o.nodes) * o.degree / 2.0));
  std::vector<std::pair<int64_t, int64_t>> edges;
  edges.reserve(static_cast<size_t>(attempts));
  for (int64_t e = 0; e < attempts; ++e) {
    const int64_t u = below(rng, o.nodes);
    const int64_t c = label[static_cast<size_t>(u)];
    int64_t v;
    if (uniform01(rng) < o.homophily) {
      const auto& same = members[static_cast<size_t>(c)];
      v = same[static_cast<size_t>(below(rng, static_cast<int64_t>(same.size())))];
    } else {
      do v = below(rng, o.nodes);
      while (label[static_cast<size_t>(v)] == c);
    }
    if (u != v) edges.emplace_back(u, v);
  }
  g.adjacency = normalized_adjacency(edges, o.nodes, &g.edges);
  g.labels = torch::tensor(label, torch::kInt64);
  for (int64_t c = 0; c < o.classes; ++c) g.class_names.push_back("class" + std::to_string(c));
  std::ostringstream os;
  os << "synthetic graph (" << o.nodes << " nodes, " << g.edges << " edges, " << o.classes << " classes, " << o.features
     << " words, homophily " << o.homophily << ", word signal " << o.word_signal << ")";
  g.description = os.str();
  return g;
}

namespace {

/// cora.cites: one "cited citing" pair of paper ids per line; citations of unknown papers are
/// skipped and counted in `unknown`.
std::vector<std::pair<int64_t, int64_t>> read_citations(const fs::path& cites_path,
                                                        const std::unordered_map<std::string, int64_t>& node_of,
                                                        int64_t& unknown) {
  std::ifstream cites(cites_path);
  if (!cites) throw DataError("cannot open " + cites_path.string());
  std::vector<std::pair<int64_t, int64_t>> edges;
  int64_t line_no = 0;
  std::string line;
  while (std::getline(cites, line)) {
    ++line_no;
    const auto f = split_fields(line);
    if (f.empty()) continue;
    if (f.size() != 2)
      throw DataError(cites_path.string() + " line " + std::to_string(line_no) +
                      ": expected two paper ids (cited, citing), got " + std::to_string(f.size()) + " field(s)");
    const auto a = node_of.find(f[0]), b = node_of.find(f[1]);
    if (a == node_of.end() || b == node_of.end()) {
      ++unknown;
      continue;
    }
    edges.emplace_back(a->second, b->second);
  }
  return edges;
}

}  // namespace

Graph read_cora(const std::string& folder) {
  const fs::path content_path = fs::path(folder) / "cora.content";
  const fs::path cites_path = fs::path(folder) / "cora.cites";
  for (const auto& p : {content_path, cites_path})
    if (!fs::exists(p))
      throw DataError("data.path " + folder + " has no " + p.filename().string() +
                      " (the Cora dataset in its plain-text form: cora.content and cora.cites side by side); "
                      "use data.source \"graph\" for the built-in synthetic graph");

  std::ifstream content(content_path);
  if (!content) throw DataError("cannot open " + content_path.string());
  std::unordered_map<std::string, int64_t> node_of;
  std::unordered_map<std::string, int64_t> first_line_of;
  std::vector<float> values;
  std::vector<std::string> label_names;
  int64_t columns = -1, columns_line = 0, line_no = 0;
  std::string line;
  while (std::getline(content, line)) {
    ++line_no;
    const auto f = split_fields(line);
    if (f.empty()) continue;
    auto where = [&] { return content_path.string() + " line " + std::to_string(line_no) + ": "; };
    if (f.size() < 3)
      throw DataError(where() + "expected a paper id, word columns and a class name, got " + std::to_string(f.size()) +
                      " field(s)");
    const auto words = static_cast<int64_t>(f.size()) - 2;
    if (columns < 0) {
      columns = words;
      columns_line = line_no;
    } else if (words != columns) {
      throw DataError(where() + std::to_string(words) + " word columns where line " + std::to_string(columns_line) +
                      " has " + std::to_string(columns));
    }
    if (auto [it, fresh] = first_line_of.emplace(f.front(), line_no); !fresh)
      throw DataError(where() + "paper id '" + f.front() + "' appears twice (first on line " +
                      std::to_string(it->second) + ")");
    for (int64_t k = 1; k <= words; ++k) {
      const std::string& s = f[static_cast<size_t>(k)];
      char* end = nullptr;
      const float v = std::strtof(s.c_str(), &end);
      if (end == s.c_str() || *end != '\0' || !std::isfinite(v))
        throw DataError(where() + "word column " + std::to_string(k) + " is '" + s + "', not a number");
      values.push_back(v);
    }
    node_of.emplace(f.front(), static_cast<int64_t>(label_names.size()));
    label_names.push_back(f.back());
  }
  const auto n = static_cast<int64_t>(label_names.size());
  if (n == 0) throw DataError(content_path.string() + " holds no papers");

  std::map<std::string, int64_t> class_ids;  // sorted names -> ids, independent of file order
  for (const auto& l : label_names) class_ids.emplace(l, 0);
  if (class_ids.size() < 2)
    throw DataError(content_path.string() + ": every paper has class '" + label_names.front() +
                    "'; node classification needs at least two classes");
  Graph g;
  int64_t next = 0;
  for (auto& [name, id] : class_ids) {
    id = next++;
    g.class_names.push_back(name);
  }
  std::vector<int64_t> labels;
  labels.reserve(static_cast<size_t>(n));
  for (const auto& l : label_names) labels.push_back(class_ids.at(l));

  int64_t unknown = 0;
  const auto edges = read_citations(cites_path, node_of, unknown);
  g.features = torch::from_blob(values.data(), {n, columns}, torch::kFloat32).clone();
  g.labels = torch::tensor(labels, torch::kInt64);
  g.adjacency = normalized_adjacency(edges, n, &g.edges);
  std::ostringstream os;
  os << "Cora " << folder << " (" << n << " nodes, " << g.edges << " edges, " << g.class_names.size() << " classes, "
     << columns << " words";
  if (unknown) os << "; " << unknown << " citations of papers not in cora.content skipped";
  os << ")";
  g.description = os.str();
  return g;
}

GraphSplit split_nodes(const Graph& g, const GraphOptions& o, uint64_t split_seed) {
  if (o.train_per_class < 1) throw ConfigError("data.graph.train_per_class must be at least 1");
  if (o.validation < 0 || o.test < 1) throw ConfigError("data.graph.validation must be >= 0 and data.graph.test >= 1");
  const int64_t n = g.nodes();
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  std::mt19937_64 rng(split_seed * 0x9E3779B97F4A7C15ull + 0x5eedull);
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(below(rng, i + 1))]);

  const auto classes = static_cast<int64_t>(g.class_names.size());
  std::vector<int64_t> taken(static_cast<size_t>(classes), 0);
  const auto* label = g.labels.data_ptr<int64_t>();
  GraphSplit s;
  std::vector<int64_t> rest;
  for (const int64_t v : order) {
    auto& t = taken[static_cast<size_t>(label[v])];
    if (t < o.train_per_class) {
      ++t;
      s.train.push_back(v);
    } else {
      rest.push_back(v);
    }
  }
  for (int64_t c = 0; c < classes; ++c)
    if (taken[static_cast<size_t>(c)] < o.train_per_class)
      throw ConfigError("data.graph.train_per_class: class '" + g.class_names[static_cast<size_t>(c)] + "' has only " +
                        std::to_string(taken[static_cast<size_t>(c)]) + " nodes; lower train_per_class");
  if (o.validation + o.test > static_cast<int64_t>(rest.size()))
    throw ConfigError("data.graph.validation + data.graph.test = " + std::to_string(o.validation + o.test) +
                      " but only " + std::to_string(rest.size()) +
                      " nodes remain after the training nodes; lower them or use a larger graph");
  s.validation.assign(rest.begin(), rest.begin() + o.validation);
  s.test.assign(rest.begin() + o.validation, rest.begin() + o.validation + o.test);
  return s;
}

}  // namespace prunegym
