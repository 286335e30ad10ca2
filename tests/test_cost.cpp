// Parameter and MAC accounting (networks/cost.h): by hand on the stacks, against the published
// counts of the residual networks, through a TorchScript import, and in the env's step info.

#include "helpers.h"

#include <prunegym/env/prune_env.h>
#include <prunegym/networks/cost.h>
#include <prunegym/networks/train.h>

#include <catch2/catch.hpp>

#include <filesystem>

using namespace prunegym;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

NetworkPtr network(const std::string& name, InputShape input = {1, 28, 28, nullptr}, int64_t classes = 10,
                   double width = 1.0) {
  NetworkOptions o;
  o.name = name;
  if (width != 1.0) o.options["width"] = width;  // the residual networks' option
  return build_network(o, input, classes);
}

/// Within `tolerance` (a fraction) of a published count.
bool near(int64_t value, double published, double tolerance) {
  return std::abs(static_cast<double>(value) - published) <= tolerance * published;
}

}  // namespace

TEST_CASE("MACs of the layer stacks are positions x weights, counted by hand", "[cost]") {
  const auto lenet300 = network_cost(*network("lenet300"));
  CHECK(lenet300.macs == 784 * 300 + 300 * 100 + 100 * 10);
  CHECK(lenet300.parameters == 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10);
  CHECK(lenet300.prunable == lenet300.macs);  // every weight of a linear layer is applied once
  CHECK(lenet300.unknown_layers == 0);

  // LeNet-5 on 28x28: conv 6@5x5 padded (28x28 out), pool, conv 16@5x5 (10x10), pool, 400-120-84-10.
  const auto lenet5 = network_cost(*network("lenet5"));
  REQUIRE(lenet5.layers.size() == 5);
  CHECK(lenet5.layers[0].positions == 28 * 28);
  CHECK(lenet5.layers[1].positions == 10 * 10);
  CHECK(lenet5.layers[2].positions == 1);
  CHECK(lenet5.macs == 28 * 28 * 6 * 25 + 10 * 10 * 16 * 6 * 25 + 400 * 120 + 120 * 84 + 84 * 10);
}

TEST_CASE("remaining MACs count the unmasked weights only", "[cost]") {
  auto net = network("lenet300");
  auto& fc1 = net->prunable_layers()[0];
  fc1.mask.narrow(0, 0, 150).zero_();  // half of fc1's output rows
  const auto c = network_cost(*net);
  CHECK(c.remaining_macs == c.macs - 150 * 784);
  CHECK(c.layers[0].remaining_macs == 150 * 784);
  CHECK(c.macs_fraction() == Approx(1.0 - 150.0 * 784 / static_cast<double>(c.macs)));
  const auto j = c.to_json(true);
  CHECK(j.at("layers").at(0).at("remaining_macs") == 150 * 784);
  CHECK(j.at("macs") == c.macs);
}

TEST_CASE("residual networks match the published MAC and parameter counts", "[cost][resnet]") {
  // torchvision ResNet-50 and ResNet-18 at 224x224x3, 1,000 classes: 4.09 G and 1.82 G MACs,
  // 25.56 M and 11.69 M parameters; ResNet-56 (CIFAR) at 32x32x3: about 125 M MACs, 0.85 M parameters.
  const auto r50 = network_cost(*network("resnet50", {3, 224, 224, nullptr}, 1000));
  CHECK(near(r50.macs, 4.09e9, 0.02));
  CHECK(near(r50.parameters, 25.557e6, 0.001));
  const auto r18 = network_cost(*network("resnet18", {3, 224, 224, nullptr}, 1000));
  CHECK(near(r18.macs, 1.82e9, 0.02));
  CHECK(near(r18.parameters, 11.690e6, 0.001));
  const auto r56 = network_cost(*network("resnet56", {3, 32, 32, nullptr}, 10));
  CHECK(near(r56.macs, 125e6, 0.02));
  CHECK(near(r56.parameters, 0.853e6, 0.01));
  CHECK(r50.unknown_layers + r18.unknown_layers + r56.unknown_layers == 0);
}

TEST_CASE("MobileNet-V2 matches the published MAC and parameter counts", "[cost]") {
  // torchvision's mobilenet_v2 at 224x224x3, 1,000 classes: 0.30 G MACs (300.8 M), 3,504,872 parameters.
  const auto net = network("mobilenet_v2", {3, 224, 224, nullptr}, 1000);
  const auto c = network_cost(*net);
  CHECK(near(c.macs, 300.8e6, 0.02));
  CHECK(c.parameters == 3504872);
  CHECK(c.unknown_layers == 0);
}

TEST_CASE("a TorchScript import finds the same positions by probing its graph", "[cost][torchscript]") {
  const fs::path dir = test::scratch_dir("cost_torchscript");
  auto native = network("resnet20", {1, 28, 28, nullptr}, 10, 0.25);
  const std::string path = (dir / "resnet20.pt").string();
  native->save_model(path);  // TorchScript with batch norm in inference form
  NetworkOptions o;
  o.name = "torchscript";
  o.options["path"] = path;
  auto imported = build_network(o, {1, 28, 28, nullptr}, 10);
  const auto a = network_cost(*native), b = network_cost(*imported);
  REQUIRE(a.layers.size() == b.layers.size());
  for (size_t i = 0; i < a.layers.size(); ++i) {
    INFO(a.layers[i].name << " / " << b.layers[i].name);
    CHECK(b.layers[i].positions == a.layers[i].positions);
  }
  CHECK(b.macs == a.macs);
  CHECK(b.unknown_layers == 0);
}

TEST_CASE("step info carries the remaining and dense MACs", "[cost][env]") {
  PruneEnv env(test::tiny_config());
  const auto dense = network_cost(env.network());
  const auto reset = env.reset();
  CHECK(reset.info.dense_macs == dense.macs);
  CHECK(reset.info.macs == dense.macs);
  const auto r = env.step(Action(env.action_space().n() - 1));  // the largest alpha
  const auto now = network_cost(env.network());
  CHECK(r.info.macs == now.remaining_macs);
  CHECK(r.info.macs < r.info.dense_macs);
  const json j = r.info;
  CHECK(j.at("macs") == r.info.macs);
  CHECK(j.at("dense_macs") == dense.macs);
}
