// Residual networks with batch norm: layer counts, names, shapes, batch-norm modes and statistics
// through resets, snapshots and lottery rewinding, and the 108-dim per-layer state of ResNet-50.

#include "helpers.h"

#include <prunegym/core/errors.h>
#include <prunegym/env/lottery.h>
#include <prunegym/env/prune_env.h>
#include <prunegym/networks/resnet.h>
#include <prunegym/networks/train.h>

#include <catch2/catch.hpp>

#include <cstdlib>

using namespace prunegym;
using Catch::Matchers::Contains;
using json = nlohmann::json;

namespace {

NetworkPtr resnet(const std::string& name, double width, InputShape input = {1, 28, 28, nullptr},
                  int64_t classes = 10) {
  NetworkOptions o;
  o.name = name;
  if (width != 1.0) o.options["width"] = width;  // the residual networks' option
  return build_network(o, input, classes);
}

torch::Tensor running_mean(NetworkImpl& net) { return net.named_buffers()["bn1.running_mean"].clone(); }

/// The tiny synthetic setup on a quarter-width ResNet-20.
Config resnet20_config(const json& extra = json::object()) {
  json patch{{"network",
              {{"name", "resnet20"},
               {"layers", json::array()},
               {"width", 0.25},
               {"pretrain", {{"epochs", 2}, {"batch_size", 100}}}}},
             {"env", {{"retrain", {{"samples", 200}, {"batch_size", 50}}}, {"evaluation", {{"samples", 200}}}}}};
  patch.merge_patch(extra);
  return test::tiny_config(patch);
}

}  // namespace

TEST_CASE("built-in residual networks have the published prunable layer counts", "[resnet]") {
  const std::vector<std::pair<std::string, size_t>> expected{
      {"resnet18", 21}, {"resnet50", 54}, {"resnet20", 22}, {"resnet56", 58}};
  for (const auto& [name, layers] : expected) {
    INFO(name);
    auto net = resnet(name, 0.125);
    REQUIRE(net->prunable_layers().size() == layers);
    CHECK(net->prunable_layers().front().name == "conv1.weight");
    CHECK(net->prunable_layers().back().name == "fc.weight");
    net->eval();
    CHECK(net->forward(torch::randn({2, 1, 28, 28})).sizes() == torch::IntArrayRef{2, 10});
  }
  auto r50 = resnet("resnet50", 0.125);
  CHECK(r50->layer_index("layer1.0.downsample.0.weight") == 4);  // conv1, then conv1-3 of the first block
  CHECK(r50->layer_index("layer4.2.conv3.weight") == 52);
}

TEST_CASE("residual networks adapt to input channels, classes and width", "[resnet]") {
  auto rgb = resnet("resnet20", 0.25, {3, 32, 32, nullptr}, 100);
  rgb->eval();
  CHECK(rgb->forward(torch::randn({3, 3, 32, 32})).sizes() == torch::IntArrayRef{3, 100});
  CHECK(rgb->prunable_layers().front().weight.sizes() == torch::IntArrayRef{4, 3, 3, 3});  // 16 x 0.25 filters
  auto full = resnet("resnet20", 1.0);
  CHECK(full->prunable_layers().size() == rgb->prunable_layers().size());
  CHECK(full->total_prunable() > 10 * rgb->total_prunable());
  NetworkOptions o;
  o.name = "resnet18";
  o.options["layers"] = nlohmann::json::array({"linear"});  // a stack's option: unknown to a ResNet
  CHECK_THROWS_WITH(build_network(o, {1, 28, 28, nullptr}, 10), Contains("'network.layers'"));
  CHECK_THROWS_WITH(test::tiny_config({{"network", {{"width", 0.5}}}}), Contains("network.width"));
}

TEST_CASE("batch norm trains in train mode and evaluates with its running statistics", "[resnet]") {
  auto net = resnet("resnet20", 0.25, {1, 12, 12, nullptr}, 10);
  const Tensors data{torch::randn({64, 1, 12, 12}) + 2.0, torch::randint(0, 10, {64}, torch::kInt64)};
  const auto before = running_mean(*net);
  evaluate(*net, data, 32);
  CHECK(torch::equal(running_mean(*net), before));  // evaluation never moves the statistics
  std::mt19937_64 rng(0);
  auto optimizer = make_optimizer(*net, TrainOptions());
  train(*net, *optimizer, data, TrainOptions().set_batch_size(32), rng);
  CHECK_FALSE(torch::equal(running_mean(*net), before));
  // Two evaluations give the same answer: eval mode, no batch statistics.
  CHECK(evaluate(*net, data, 64).loss == Approx(evaluate(*net, data, 7).loss).epsilon(1e-4));
}

TEST_CASE("resets, snapshots and lottery rewinding carry the batch-norm statistics", "[resnet][env]") {
  PruneEnv env(resnet20_config());
  CHECK(env.episode_layers().size() == 22);
  env.reset({1});
  const auto dense = running_mean(env.network());
  const auto snap = env.snapshot();
  env.step(Action(10));  // retraining moves the statistics
  CHECK_FALSE(torch::equal(running_mean(env.network()), dense));
  env.restore(snap);
  CHECK(torch::equal(running_mean(env.network()), dense));
  env.step(Action(10));
  env.reset({1});
  CHECK(torch::equal(running_mean(env.network()), dense));

  auto fresh = resnet("resnet20", 0.25, {1, 12, 12, nullptr}, 10);
  const auto init = clone_parameters(*fresh);
  load_parameters(env.network(), init);  // rewinding to W0 puts back W0's statistics too
  CHECK(torch::equal(running_mean(env.network()), running_mean(*fresh)));
}

TEST_CASE("ResNet-50 with the per-layer observation has PuRL's 108-dim state", "[resnet][env]") {
  PruneEnv env(test::tiny_config({{"network",
                                   {{"name", "resnet50"},
                                    {"layers", json::array()},
                                    {"width", 0.0625},
                                    {"pretrain", {{"epochs", 1}, {"batch_size", 100}}}}},
                                  {"env",
                                   {{"observation", "per_layer"},
                                    {"evaluation", {{"samples", 100}}},
                                    {"retrain", {{"samples", 100}, {"batch_size", 50}}}}}}));
  CHECK(env.observation_space().shape() == std::vector<int64_t>{108});
  CHECK(env.episode_length() == 54);
  const auto start = env.reset({0});
  CHECK(start.observation.size() == 108);
  const auto r = env.step(Action(15));
  CHECK(r.info.layer == "conv1.weight");
  CHECK(r.observation[1] == Approx(r.info.step_sparsity));
  CHECK(r.info.step_sparsity > 0.5);
}

TEST_CASE("evaluation folds batch norm into the convolutions and gives the unfolded outputs", "[resnet]") {
  for (const std::string name : {"resnet20", "resnet50"}) {
    INFO(name);
    auto net = resnet(name, 0.25);
    const Tensors data{torch::randn({64, 1, 28, 28}), torch::randint(0, 10, {64}, torch::kInt64)};
    std::mt19937_64 rng(0);
    auto optimizer = make_optimizer(*net, TrainOptions());
    train(*net, *optimizer, data, TrainOptions().set_batch_size(32), rng);  // non-trivial statistics
    net->eval();
    torch::NoGradGuard no_grad;
    const auto folded = net->forward(data.x);
    ::setenv("PRUNEGYM_RESNET_FOLD", "0", 1);
    const auto unfolded = net->forward(data.x);
    ::unsetenv("PRUNEGYM_RESNET_FOLD");
    CHECK(torch::allclose(folded, unfolded, 1e-4, 1e-4));
  }
}

TEST_CASE("convolution weights are channels-last, masks standard, and the dense-model cache keeps both",
          "[resnet][env]") {
  const auto config = resnet20_config();
  for (int pass = 0; pass < 2; ++pass) {  // the second environment loads the dense model from the cache
    INFO("pass " << pass);
    PruneEnv env(config);
    if (pass == 1) CHECK(env.dense().from_cache);
    const auto& layer = env.network().prunable_layers()[1];  // layer1.0.conv1: [4, 4, 3, 3]
    CHECK(layer.weight.is_contiguous(torch::MemoryFormat::ChannelsLast));
    CHECK_FALSE(layer.weight.is_contiguous());
    CHECK(layer.mask.is_contiguous());
    env.reset({0});
    const auto r = env.step(Action(12));
    CHECK(r.info.step_sparsity > 0.3);
    CHECK(layer.weight.is_contiguous(torch::MemoryFormat::ChannelsLast));
    // Pruned weights are exactly the masked ones, whatever the layouts.
    const auto& first = env.network().prunable_layers()[0];
    CHECK(torch::equal(first.weight.ne(0), first.mask.gt(0)));
  }
}

TEST_CASE("residual networks know each prunable layer's output positions", "[resnet]") {
  auto net = resnet("resnet50", 0.125);
  auto* r = dynamic_cast<ResNetImpl*>(net.get());
  REQUIRE(r != nullptr);
  const auto& pos = r->output_positions();
  REQUIRE(pos.size() == 54);
  CHECK(pos[0] == 14 * 14);                                        // 7x7/2 stem on 28x28
  CHECK(pos[net->layer_index("layer1.0.conv1.weight")] == 7 * 7);  // after the max-pool
  CHECK(pos[net->layer_index("layer2.0.conv1.weight")] == 7 * 7);  // 1x1 before the strided 3x3
  CHECK(pos[net->layer_index("layer2.0.conv2.weight")] == 4 * 4);
  CHECK(pos[net->layer_index("layer2.0.downsample.0.weight")] == 4 * 4);
  CHECK(pos.back() == 1);
}

TEST_CASE("network.stem picks the residual stem and is checked at config load", "[resnet][config]") {
  NetworkOptions o;
  o.name = "resnet50";
  o.options["width"] = 0.125;
  o.options["stem"] = "cifar";
  auto net = build_network(o, {1, 28, 28, nullptr}, 10);
  auto* r = dynamic_cast<ResNetImpl*>(net.get());
  REQUIRE(r != nullptr);
  const auto& pos = r->output_positions();
  CHECK(pos[0] == 28 * 28);                                          // 3x3/1 stem, no max-pool
  CHECK(pos[net->layer_index("layer1.0.conv1.weight")] == 28 * 28);  // stage 1 keeps the input size
  CHECK(pos.back() == 1);
  CHECK(net->forward(torch::randn({2, 1, 28, 28})).sizes() == torch::IntArrayRef({2, 10}));
  // The stem's first weight is 3x3 instead of 7x7; the rest of the network is the same.
  CHECK(net->named_parameters()["conv1.weight"].size(2) == 3);
  CHECK(resnet("resnet50", 0.125)->named_parameters()["conv1.weight"].size(2) == 7);

  auto cfg = resnet20_config({{"network", {{"stem", "imagenet"}}}});
  CHECK(cfg.network.options["stem"] == "imagenet");
  CHECK(cfg.to_json()["network"]["stem"] == "imagenet");
  CHECK_FALSE(resnet20_config().to_json()["network"].contains("stem"));  // unset keeps older documents
  CHECK_THROWS_WITH(resnet20_config({{"network", {{"stem", "tiny"}}}}),
                    Contains("network.stem") && Contains("\"cifar\"") && Contains("\"tiny\""));
  CHECK_THROWS_WITH(test::tiny_config({{"network", {{"stem", "cifar"}}}}),
                    Contains("network.stem") && Contains("resnet50") && Contains("mobilenet_v2"));
}

TEST_CASE("network keys belong to the network kinds that read them", "[resnet][config]") {
  // Each kind lists its keys in its registry entry; a key for another kind is an error naming the
  // kinds that take it, and a kind's required key is asked for by name.
  CHECK_THROWS_WITH(test::tiny_config({{"network", {{"width", 0.5}}}}),
                    Contains("'network.width' does not apply to network 'custom'") && Contains("resnet20"));
  CHECK_THROWS_WITH(test::tiny_config({{"network", {{"path", "m.pt"}}}}),
                    Contains("'network.path'") && Contains("torchscript"));
  CHECK_THROWS_WITH(
      test::tiny_config({{"network", {{"name", "torchscript"}, {"layers", json::array()}, {"width", 2}}}}),
      Contains("'network.width' does not apply to network 'torchscript'"));
  CHECK_THROWS_WITH(test::tiny_config({{"network", {{"name", "torchscript"}, {"layers", json::array()}}}}),
                    Contains("'network.path' is required for a torchscript network"));
  CHECK_THROWS_WITH(
      test::tiny_config({{"network", {{"name", "lenet300"}, {"layers", json::array({"flatten", "linear"})}}}}),
      Contains("'network.layers' does not apply to network 'lenet300'") && Contains("custom"));
  CHECK(test::tiny_config({{"network", {{"name", "mobilenet_v2"}, {"layers", json::array()}, {"width", 0.5}}}})
            .network.options["width"] == 0.5);
}
