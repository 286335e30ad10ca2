// networks/graph: normalised adjacency, the GCN layer against hand-computed values, the
// planted-partition generator and its splits, the Cora reader and its errors, GCN training, and
// GCN episodes in both episode modes.

#include "helpers.h"

#include <prunegym/core/errors.h>
#include <prunegym/env/prune_env.h>
#include <prunegym/networks/graph.h>
#include <prunegym/networks/train.h>

#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <set>

using namespace prunegym;
using Catch::Matchers::Contains;

namespace {

/// The path graph 0 - 1 - 2, given with a reversed duplicate and a self loop.
torch::Tensor path_adjacency(int64_t* edges = nullptr) {
  return normalized_adjacency({{0, 1}, {1, 0}, {1, 2}, {2, 2}}, 3, edges);
}

std::shared_ptr<Graph> path_graph() {
  auto g = std::make_shared<Graph>();
  g->features = torch::tensor({1.0f, 0.0f, 0.0f, 1.0f, 1.0f, 1.0f}).reshape({3, 2});
  g->adjacency = path_adjacency(&g->edges);
  g->labels = torch::tensor({0, 1, 1}, torch::kInt64);
  g->class_names = {"a", "b"};
  return g;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

/// A small graph config: 600 nodes in 4 classes with weak word features, GCN 2 layers.
nlohmann::json graph_json() {
  return nlohmann::json::parse(R"({
    "data": {"source": "graph", "normalize": true,
             "graph": {"nodes": 600, "classes": 4, "features": 200, "degree": 6, "homophily": 0.85,
                       "words": 12, "word_signal": 0.2, "seed": 5,
                       "train_per_class": 15, "validation": 100, "test": 300}},
    "network": {"name": "custom", "layers": ["gcn:32", "leaky_relu", "gcn:16", "leaky_relu", "linear"],
                "pretrain": {"optimizer": "adam", "lr": 0.01, "batch_size": 1000, "epochs": 100}},
    "env": {"retrain": {"samples": 0, "batch_size": 1000, "epochs": 10, "lr": 0.01},
            "reward": {"name": "purl", "target_sparsity": 0.8, "target_accuracy": 0.5}}
  })");
}

Config graph_config(const nlohmann::json& patch = nlohmann::json::object()) {
  auto j = test::tiny_json();
  j.merge_patch(graph_json());
  j["data"].erase("synthetic");
  j["data"].erase("validation");
  j.merge_patch(patch);
  j["cache_dir"] = test::scratch_dir("cache");
  return Config::from_json(j);
}

}  // namespace

TEST_CASE("the normalised adjacency of a path graph matches the hand computation", "[graph]") {
  int64_t edges = -1;
  auto a = path_adjacency(&edges).to_dense();
  CHECK(edges == 2);
  // Degrees with self loops: 2, 3, 2.
  const double s6 = 1.0 / std::sqrt(6.0);
  const double expected[3][3] = {{0.5, s6, 0.0}, {s6, 1.0 / 3.0, s6}, {0.0, s6, 0.5}};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) CHECK(a[i][j].item<double>() == Approx(expected[i][j]).margin(1e-6));
  CHECK(torch::equal(a, a.t()));

  SECTION("isolated nodes keep their self loop with weight 1") {
    auto b = normalized_adjacency({{0, 1}}, 3).to_dense();
    CHECK(b[2][2].item<double>() == Approx(1.0));
    CHECK(b[0][1].item<double>() == Approx(0.5));
  }
  SECTION("an edge naming a missing node is an error") {
    CHECK_THROWS_WITH(normalized_adjacency({{0, 3}}, 3), Contains("outside 0..2"));
  }
}

TEST_CASE("a GCN layer computes A_hat (H W^T) + b as by hand", "[graph]") {
  auto g = path_graph();
  auto w = torch::tensor({1.0f, 2.0f}).reshape({1, 2});
  auto b = torch::tensor({0.5f});
  // H W^T = [1, 2, 3]; rows of A_hat times that, plus the bias.
  const double s6 = 1.0 / std::sqrt(6.0);
  const double expected[3] = {0.5 * 1 + s6 * 2 + 0.5, s6 * 1 + 2.0 / 3.0 + s6 * 3 + 0.5, s6 * 2 + 0.5 * 3 + 0.5};
  auto out = gcn_propagate(g->adjacency, g->features, w, b);
  REQUIRE(out.sizes() == torch::IntArrayRef({3, 1}));
  for (int i = 0; i < 3; ++i) CHECK(out[i][0].item<double>() == Approx(expected[i]).margin(1e-6));

  SECTION("a network's forward returns the rows of the node ids asked, in their order") {
    NetworkOptions o;
    o.name = "custom";
    o.options["layers"] = nlohmann::json::array({"gcn:1", "linear"});
    auto net = build_network(o, InputShape{2, 1, 1, g}, 2);
    REQUIRE(net->prunable_layers().size() == 2);
    CHECK(net->prunable_layers()[0].name == "gcn1.weight");
    CHECK(net->prunable_layers()[1].name == "fc1.weight");
    {
      torch::NoGradGuard no_grad;
      auto params = net->named_parameters();
      params["gcn1.weight"].copy_(w);
      params["gcn1.bias"].copy_(b);
      params["fc1.weight"].copy_(torch::tensor({1.0f, -1.0f}).reshape({2, 1}));
      params["fc1.bias"].zero_();
    }
    auto logits = net->forward(torch::tensor({2, 0}, torch::kInt64));
    REQUIRE(logits.sizes() == torch::IntArrayRef({2, 2}));
    CHECK(logits[0][0].item<double>() == Approx(expected[2]).margin(1e-5));
    CHECK(logits[0][1].item<double>() == Approx(-expected[2]).margin(1e-5));
    CHECK(logits[1][0].item<double>() == Approx(expected[0]).margin(1e-5));

    // Gradients reach the graph layer, and a masked weight stays out of the output.
    torch::nn::functional::cross_entropy(logits, torch::tensor({1, 0}, torch::kInt64)).backward();
    CHECK(net->prunable_layers()[0].weight.grad().abs().sum().item<double>() > 0);
    net->prunable_layers()[0].mask[0][1] = 0.0f;
    net->apply_masks();
    torch::NoGradGuard no_grad;
    auto masked = net->forward(torch::tensor({0}, torch::kInt64));
    CHECK(masked[0][0].item<double>() == Approx(0.5 * 1 + s6 * 0 + 0.5).margin(1e-5));
    CHECK_THROWS_AS(net->forward(torch::zeros({1, 2})), DataError);
  }
}

TEST_CASE("sparse and dense node features give the same GCN output and weight gradient", "[graph]") {
  GraphOptions o;
  o.nodes = 200;
  o.classes = 3;
  o.features = 60;
  const auto g = make_planted_partition(o);
  torch::manual_seed(4);
  auto w1 = torch::randn({8, 60}).requires_grad_(true);
  auto w2 = w1.detach().clone().requires_grad_(true);
  auto b = torch::randn({8});
  auto dense = gcn_propagate(g.adjacency, g.features, w1, b);
  auto sparse = gcn_propagate(g.adjacency, g.features.to_sparse(), w2, b);
  CHECK(torch::allclose(dense, sparse, 1e-5, 1e-6));
  dense.pow(2).sum().backward();
  sparse.pow(2).sum().backward();
  CHECK(torch::allclose(w1.grad(), w2.grad(), 1e-4, 1e-5));
}

TEST_CASE("graph layers need graph data; image layers refuse it", "[graph][errors]") {
  NetworkOptions o;
  o.name = "custom";
  o.options["layers"] = nlohmann::json::array({"gcn:4", "linear"});
  CHECK_THROWS_WITH(build_network(o, InputShape{1, 6, 6}, 3), Contains("needs graph data"));
  o.options["layers"] = nlohmann::json::array({"conv:4:3", "linear"});
  CHECK_THROWS_WITH(build_network(o, InputShape{2, 1, 1, path_graph()}, 2), Contains("gcn:OUT"));
  CHECK_THROWS_WITH(LayerSpec::parse("gcn"), Contains("gcn:OUT"));
  o.name = "gcn2";
  o.options.erase("layers");
  auto net = build_network(o, InputShape{2, 1, 1, path_graph()}, 2);
  std::vector<std::string> names;
  for (const auto& l : net->prunable_layers()) names.push_back(l.name);
  CHECK(names == std::vector<std::string>{"gcn1.weight", "gcn2.weight", "fc1.weight"});
}

TEST_CASE("the planted-partition graph is deterministic, homophilous, and split without overlap", "[graph]") {
  GraphOptions o;
  o.nodes = 400;
  o.classes = 4;
  o.features = 80;
  o.degree = 6;
  o.homophily = 0.9;
  o.seed = 5;
  const auto g = make_planted_partition(o);
  const auto again = make_planted_partition(o);
  CHECK(torch::equal(g.features, again.features));
  CHECK(torch::equal(g.adjacency.indices(), again.adjacency.indices()));
  CHECK(torch::equal(g.labels, again.labels));
  CHECK(g.nodes() == 400);
  CHECK(g.feature_count() == 80);
  CHECK(torch::bincount(g.labels).eq(100).all().item<bool>());
  CHECK(g.edge_homophily() == Approx(0.9).margin(0.04));
  const double mean_degree = 2.0 * static_cast<double>(g.edges) / 400.0;
  CHECK(mean_degree > 5.4);
  CHECK(mean_degree <= 6.0);
  // Each node's words lean to its class's block: the class block holds more than 1/4 of them.
  auto block = g.features.narrow(1, 0, 20).sum(1);
  auto in_class0 = g.labels.eq(0);
  CHECK((block.masked_select(in_class0).sum() / g.features.masked_select(in_class0.unsqueeze(1)).sum()).item<double>() >
        0.3);

  o.seed = 6;
  CHECK_FALSE(torch::equal(make_planted_partition(o).labels, g.labels));

  o.train_per_class = 10;
  o.validation = 50;
  o.test = 100;
  const auto s = split_nodes(g, o, 0);
  CHECK(s.train.size() == 40);
  CHECK(s.validation.size() == 50);
  CHECK(s.test.size() == 100);
  std::set<int64_t> all(s.train.begin(), s.train.end());
  all.insert(s.validation.begin(), s.validation.end());
  all.insert(s.test.begin(), s.test.end());
  CHECK(all.size() == 190);
  auto train_labels = g.labels.index_select(0, torch::tensor(s.train, torch::kInt64));
  CHECK(torch::bincount(train_labels).eq(10).all().item<bool>());
  CHECK(split_nodes(g, o, 1).train != s.train);
  CHECK(split_nodes(g, o, 0).train == s.train);

  o.train_per_class = 101;
  CHECK_THROWS_WITH(split_nodes(g, o, 0), Contains("train_per_class"));
  o.train_per_class = 10;
  o.test = 400;
  CHECK_THROWS_WITH(split_nodes(g, o, 0), Contains("only 360 nodes remain"));
  o.homophily = 1.5;
  CHECK_THROWS_WITH(make_planted_partition(o), Contains("data.graph.homophily"));
}

TEST_CASE("the Cora reader builds the graph and names malformed lines", "[graph][errors]") {
  const auto dir = test::scratch_dir("cora");
  const std::string content = dir + "/cora.content";
  const std::string cites = dir + "/cora.cites";
  write_file(content,
             "31336\t0\t1\t0\tNeural_Networks\n"
             "1061127\t1\t0\t0\tRule_Learning\n"
             "1106406\t0\t0\t1\tNeural_Networks\n"
             "13195\t1\t1\t0\tCase_Based\n");
  write_file(cites, "31336\t1061127\n1061127\t31336\n1106406\t13195\n35\t31336\n\n");
  const auto g = read_cora(dir);
  CHECK(g.nodes() == 4);
  CHECK(g.feature_count() == 3);
  CHECK(g.edges == 2);
  CHECK(g.class_names == std::vector<std::string>{"Case_Based", "Neural_Networks", "Rule_Learning"});
  CHECK(torch::equal(g.labels, torch::tensor({1, 2, 1, 0}, torch::kInt64)));
  CHECK(g.features[3][1].item<float>() == 1.0f);
  CHECK_THAT(g.description, Contains("1 citations of papers not in cora.content skipped"));

  SECTION("a line with the wrong number of word columns") {
    write_file(content, "1\t0\t1\tA\n2\t1\t0\tB\n3\t1\tA\n");
    CHECK_THROWS_WITH(read_cora(dir), Contains("cora.content line 3") && Contains("1 word columns where line 1 has 2"));
  }
  SECTION("a word column that is not a number") {
    write_file(content, "1\t0\t1\tA\n2\t1\tx\tB\n");
    CHECK_THROWS_WITH(read_cora(dir), Contains("cora.content line 2") && Contains("'x', not a number"));
  }
  SECTION("a paper id given twice") {
    write_file(content, "1\t0\t1\tA\n2\t1\t0\tB\n1\t1\t1\tB\n");
    CHECK_THROWS_WITH(read_cora(dir), Contains("line 3") && Contains("appears twice (first on line 1)"));
  }
  SECTION("a citation line with three ids") {
    write_file(cites, "31336\t1061127\n1\t2\t3\n");
    CHECK_THROWS_WITH(read_cora(dir), Contains("cora.cites line 2") && Contains("got 3 field(s)"));
  }
  SECTION("a missing file names the fix") {
    std::filesystem::remove(cites);
    CHECK_THROWS_WITH(read_cora(dir), Contains("has no cora.cites") && Contains("data.source \"graph\""));
  }
  SECTION("as a data source, with splits and row-normalised features") {
    DataOptions d;
    d.source = "cora";
    d.path = dir;
    d.graph.train_per_class = 1;
    d.graph.validation = 0;
    d.graph.test = 1;
    const auto splits = load_data(d);
    CHECK(splits.classes == 3);
    CHECK(splits.train.size() == 3);
    CHECK(splits.test.size() == 1);
    CHECK(splits.shape.channels == 3);
    REQUIRE(splits.shape.graph);
    CHECK(splits.shape.graph->features.sum(1).allclose(torch::ones({4})));
  }
}

TEST_CASE("a GCN learns the synthetic graph and beats an MLP on the same features", "[graph][learning]") {
  const auto config = graph_config();
  const auto data = load_data(config.data);
  CHECK(data.train.size() == 60);
  CHECK(data.validation.size() == 100);
  CHECK(data.test.size() == 300);
  CHECK(data.train.x.scalar_type() == torch::kInt64);
  auto fit = [&](const std::vector<std::string>& layers) {
    NetworkOptions o;
    o.name = "custom";
    o.options["layers"] = layers;
    auto net = build_network(o, data.shape, data.classes);
    auto opt = make_optimizer(*net, TrainOptions().set_lr(0.01));
    std::mt19937_64 rng(1);
    train(*net, *opt, data.train, TrainOptions().set_batch_size(1000).set_epochs(100), rng);
    return evaluate(*net, data.test).accuracy;
  };
  const double gcn = fit({"gcn:32", "leaky_relu", "gcn:16", "leaky_relu", "linear"});
  const double mlp = fit({"linear:32", "leaky_relu", "linear:16", "leaky_relu", "linear"});
  INFO("gcn " << gcn << ", mlp " << mlp);
  CHECK(gcn > 0.75);
  CHECK(gcn > mlp + 0.15);
}

TEST_CASE("a GCN episode runs end to end in both episode modes", "[graph][env]") {
  SECTION("layerwise: one graph layer per step") {
    PruneEnv env(graph_config());
    REQUIRE(env.episode_length() == 3);
    CHECK(env.dense_accuracy() > 0.6);
    env.reset();
    auto r1 = env.step(Action(12));
    CHECK(r1.info.layer == "gcn1.weight");
    CHECK(r1.info.step_sparsity > 0.5);
    auto r2 = env.step(Action(12));
    auto r3 = env.step(Action(5));
    CHECK(r2.info.layer == "gcn2.weight");
    CHECK(r3.info.layer == "fc1.weight");
    CHECK(r3.terminated);
    CHECK(r3.info.sparsity > 0.5);
    CHECK(r3.info.accuracy > 0.4);
    for (const auto& l : env.network().prunable_layers())
      CHECK(l.weight.masked_select(l.mask.eq(0)).abs().sum().item<double>() == 0.0);
  }
  SECTION("rounds: global pruning of the two graph layers, rewound to the initialisation") {
    const nlohmann::json rounds = {{"env",
                                    {{"episode", "rounds"},
                                     {"criterion", "magnitude_target"},
                                     {"max_steps", 3},
                                     {"reward", {{"name", nullptr}, {"target_sparsity", 0.6}}}}},
                                   {"lottery",
                                    {{"strategies", {"rewind_init"}},
                                     {"scope", "global"},
                                     {"layers", {"gcn1.weight", "gcn2.weight"}},
                                     {"train", {{"epochs", 30}, {"batch_size", 1000}, {"lr", 0.01}}}}}};
    PruneEnv env(graph_config(rounds));
    env.reset();
    StepResult r;
    int steps = 0;
    do {
      r = env.step(Action(4));  // 50% of the survivors per round
      ++steps;
    } while (!r.terminated && !r.truncated);
    CHECK(steps == 2);
    CHECK(r.terminated);
    const auto& layers = env.network().prunable_layers();
    const double pruned =
        static_cast<double>(layers[0].numel() - layers[0].remaining() + layers[1].numel() - layers[1].remaining());
    CHECK(pruned / static_cast<double>(layers[0].numel() + layers[1].numel()) == Approx(0.75).margin(1e-3));
    CHECK(layers[2].remaining() == layers[2].numel());
    CHECK(r.info.accuracy > 0.4);
  }
}

TEST_CASE("graph config keys are strict and named", "[graph][errors]") {
  CHECK_THROWS_WITH(graph_config({{"data", {{"graph", {{"nodez", 10}}}}}}), Contains("data.graph.nodez"));
  CHECK_THROWS_WITH(graph_config({{"data", {{"graph", {{"classes", "seven"}}}}}}), Contains("data.graph.classes"));
}
