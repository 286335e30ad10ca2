// The "graph" source: a generated citation-like graph (data.graph: a planted partition with
// bag-of-words features) for node classification.

#include <prunegym/networks/data_source.h>

#include <sstream>

namespace prunegym {

void GraphOptions::read(ObjectReader& r) {
  r.get("nodes", nodes);
  r.get("classes", classes);
  r.get("features", features);
  r.get("degree", degree);
  r.get("homophily", homophily);
  r.get("words", words);
  r.get("word_signal", word_signal);
  r.get("seed", seed);
  r.get("train_per_class", train_per_class);
  r.get("validation", validation);
  r.get("test", test);
}

nlohmann::json GraphOptions::to_json() const {
  return {{"nodes", nodes},
          {"classes", classes},
          {"features", features},
          {"degree", degree},
          {"homophily", homophily},
          {"words", words},
          {"word_signal", word_signal},
          {"seed", seed},
          {"train_per_class", train_per_class},
          {"validation", validation},
          {"test", test}};
}

namespace {

class GraphSource : public DataSource {
 public:
  DataSplits load(const DataOptions& o) const override {
    return node_splits(o, std::make_shared<Graph>(make_planted_partition(o.graph)));
  }

  std::string fingerprint(const DataOptions& o) const override {
    const auto& g = o.graph;
    std::ostringstream os;
    os << node_split_fingerprint(g) << ";nodes=" << g.nodes << ";classes=" << g.classes << ";features=" << g.features
       << ";degree=" << g.degree << ";homophily=" << g.homophily << ";words=" << g.words
       << ";word_signal=" << g.word_signal << ";seed=" << g.seed;
    return os.str();
  }

  std::vector<WorkItem> work(const DataOptions& o) const override {
    return {{"data.graph.nodes", static_cast<double>(o.graph.nodes), "graph_nodes"},
            {"data.graph.features", static_cast<double>(o.graph.features), "features"}};
  }
};

}  // namespace

PRUNEGYM_REGISTER(
    DataSourceRegistry, "graph", [] { return std::make_unique<GraphSource>(); },
    "a generated citation-like graph for node classification (data.graph)");

}  // namespace prunegym
