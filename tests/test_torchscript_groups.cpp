// Channel groups of imported TorchScript modules (networks/src/torchscript_groups.cpp): torchvision's
// resnet18 and mobilenet_v2 as python/export_model.py writes them, a hand-written chain with a
// flatten into a linear layer, and a concatenation that is left unpruned with its reason. Removing a
// group's channels is exact (nothing downstream reads them), and a tied layer is never touched.

#include "helpers.h"

#include <prunegym/env/criteria.h>
#include <prunegym/networks/groups.h>
#include <prunegym/networks/torchscript.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace prunegym;
using Catch::Matchers::Contains;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* const kModels = R"(import sys, torch
import torch.nn as nn
import torch.nn.functional as F
class Chain(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.b1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 12, 3, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(12)
        self.fc1 = nn.Linear(12 * 7 * 7, 32)
        self.drop = nn.Dropout(0.1)
        self.fc2 = nn.Linear(32, 10)
    def forward(self, x):
        x = F.max_pool2d(F.relu(self.b1(self.c1(x))), 2)
        x = F.max_pool2d(torch.relu(self.b2(self.c2(x))), 2)
        return self.fc2(self.drop(F.relu(self.fc1(torch.flatten(x, 1)))))
class Branch(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 4, 3, padding=1)
        self.b = nn.Conv2d(1, 4, 3, padding=1)
        self.c = nn.Conv2d(8, 6, 3, padding=1)
        self.fc = nn.Linear(6, 10)
    def forward(self, x):
        y = torch.cat([F.relu(self.a(x)), F.relu(self.b(x))], 1)
        z = F.relu(self.c(y))
        return self.fc(F.adaptive_avg_pool2d(z, 1).flatten(1))
torch.manual_seed(0)
for name, net in (("chain", Chain()), ("branch", Branch())):
    net.eval()
    torch.jit.script(net).save(sys.argv[1] + "/" + name + ".pt")
)";

/// The modules the tests read, written once per run with python3 (and python/export_model.py for
/// torchvision's); "" when python3-torch or python3-torchvision is missing.
std::string model(const std::string& name) {
  static const fs::path dir = [] {
    const fs::path d = test::scratch_dir("torchscript_groups");
    std::ofstream(d / "write.py") << kModels;
    const std::string py = "/usr/bin/python3 ", quiet = " > /dev/null 2>&1";
    const std::string exporter = py + PRUNEGYM_SOURCE_DIR + "/python/export_model.py ";
    for (const std::string& cmd : {py + (d / "write.py").string() + " " + d.string(),
                                   exporter + "resnet18 " + (d / "resnet18.pt").string() + " --size 28",
                                   exporter + "mobilenet_v2 " + (d / "mobilenet_v2.pt").string() + " --size 28"})
      if (std::system((cmd + quiet).c_str()) != 0) return fs::path();
    return d;
  }();
  const fs::path file = dir / (name + ".pt");
  return !dir.empty() && fs::exists(file) ? file.string() : "";
}

NetworkPtr imported(const std::string& path) {
  NetworkOptions o;
  o.name = "torchscript";
  o.options["path"] = path;
  auto net = build_network(o, {1, 28, 28, nullptr}, 10);
  net->eval();
  return net;
}

std::string name_of(const NetworkImpl& net, size_t i) { return net.prunable_layers()[i].name; }

/// The note about `layer`, "" when there is none.
std::string note_of(const NetworkImpl& net, const std::string& layer) {
  for (const auto& n : net.channel_group_notes())
    if (n.rfind(layer + ":", 0) == 0) return n;
  return "";
}

#define REQUIRE_MODEL(path, what)                                                                   \
  const std::string path = model(what);                                                             \
  if (path.empty()) {                                                                               \
    WARN("python3-torch or python3-torchvision is missing: the " what " module cannot be written"); \
    return;                                                                                         \
  }

}  // namespace

TEST_CASE("a scripted chain groups each layer with the next, through batch norm, pooling and flatten",
          "[torchscript][structured]") {
  REQUIRE_MODEL(path, "chain");
  auto net = imported(path);
  const auto groups = checked_channel_groups(*net);
  REQUIRE(groups.size() == 3);
  CHECK(name_of(*net, groups[0].producer) == "c1.weight");
  CHECK(groups[0].channels == 8);
  CHECK(groups[0].batch_norms == std::vector<std::string>{"b1"});
  CHECK(name_of(*net, groups[0].consumers.at(0).layer) == "c2.weight");
  CHECK(name_of(*net, groups[1].producer) == "c2.weight");
  CHECK(name_of(*net, groups[1].consumers.at(0).layer) == "fc1.weight");
  CHECK(groups[1].consumers[0].block == 7 * 7);  // 12 channels of 7x7 flattened into fc1's 588 inputs
  CHECK(name_of(*net, groups[2].producer) == "fc1.weight");
  CHECK(groups[2].consumers.at(0).block == 1);
  CHECK_THAT(note_of(*net, "fc2.weight"), Contains("outputs"));
}

TEST_CASE("a concatenation is left unpruned, and prunegym says why", "[torchscript][structured]") {
  REQUIRE_MODEL(path, "branch");
  auto net = imported(path);
  const auto groups = checked_channel_groups(*net);
  REQUIRE(groups.size() == 1);
  CHECK(name_of(*net, groups[0].producer) == "c.weight");
  CHECK_THAT(note_of(*net, "a.weight"), Contains("concatenat"));
  CHECK_THAT(note_of(*net, "b.weight"), Contains("concatenat"));
}

TEST_CASE("torchvision's resnet18 groups its blocks' inner channels; the residual ties stay",
          "[torchscript][structured][resnet]") {
  REQUIRE_MODEL(path, "resnet18");
  auto net = imported(path);
  const auto groups = checked_channel_groups(*net);
  REQUIRE(groups.size() == 8);  // one conv1 -> conv2 per basic block, as the built-in resnet18
  for (const auto& g : groups) {
    const std::string producer = name_of(*net, g.producer), block = producer.substr(0, producer.size() - 12);
    CHECK(producer == block + "conv1.weight");
    REQUIRE(g.consumers.size() == 1);
    CHECK(name_of(*net, g.consumers[0].layer) == block + "conv2.weight");
    CHECK(g.batch_norms == std::vector<std::string>{block + "bn1"});
  }
  for (const std::string tied : {"conv1.weight", "layer1.0.conv2.weight", "layer2.0.downsample.0.weight"})
    CHECK_THAT(note_of(*net, tied), Contains("residual"));
}

TEST_CASE("torchvision's mobilenet_v2 groups expansions with their depthwise convolutions",
          "[torchscript][structured]") {
  REQUIRE_MODEL(path, "mobilenet_v2");
  auto net = imported(path);
  const auto groups = checked_channel_groups(*net);
  // The stem, the first block's projection, 16 expansions, the last block's projection and the
  // final 1x1 convolution: every block output that no residual add reads.
  REQUIRE(groups.size() == 20);
  CHECK(name_of(*net, groups[0].producer) == "features.0.0.weight");
  CHECK(groups[0].consumers.at(0).depthwise);
  CHECK(name_of(*net, groups[0].consumers[0].layer) == "features.1.conv.0.0.weight");
  CHECK(name_of(*net, groups[2].producer) == "features.2.conv.0.0.weight");
  CHECK(groups[2].batch_norms == std::vector<std::string>{"features.2.conv.0.1", "features.2.conv.1.1"});
  CHECK(name_of(*net, groups[2].consumers.at(1).layer) == "features.2.conv.2.weight");
  CHECK(name_of(*net, groups.back().producer) == "features.18.0.weight");
  CHECK(name_of(*net, groups.back().consumers.at(0).layer) == "classifier.1.weight");
  CHECK_THAT(note_of(*net, "features.3.conv.2.weight"), Contains("residual"));
  CHECK_THAT(note_of(*net, "features.2.conv.1.0.weight"), Contains("depthwise"));
}

TEST_CASE("removing a TorchScript group's channels is exact, and tied layers keep every channel",
          "[torchscript][structured]") {
  for (const std::string which : {"chain", "resnet18", "mobilenet_v2"}) {
    INFO(which);
    const std::string path = model(which);
    if (path.empty()) return;
    auto net = imported(path);
    const auto groups = checked_channel_groups(*net);
    std::vector<size_t> all(net->prunable_layers().size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    const auto crit = make_criterion(
        "channel_norm", CriterionRegistry::instance().parse("channel_norm", {{"action", "fraction"}}, "env.criterion"));
    crit->apply(*net, all, 0.5);  // every layer asked; only group producers may lose channels
    torch::NoGradGuard no_grad;
    const auto x = torch::randn({4, 1, 28, 28});
    const auto before = net->forward(x);
    auto params = net->named_parameters(/*recurse=*/true);
    std::vector<bool> touched(all.size(), false);
    for (const auto& g : groups) {
      touched[g.producer] = true;
      for (const auto& c : g.consumers) touched[c.layer] = true;
      CHECK(static_cast<int64_t>(surviving_channels(*net, g).size()) == g.channels - g.channels / 2);
      auto& w = net->prunable_layers()[g.producer].weight;
      const auto removed = net->prunable_layers()[g.producer].mask.reshape({g.channels, -1}).amax(1) == 0;
      w.index_put_({removed}, 3.0);
      for (const auto& bn : g.batch_norms) params[script_name(bn + ".bias")].index_put_({removed}, 5.0);
      const std::string producer = name_of(*net, g.producer);
      const std::string bias = script_name(producer.substr(0, producer.size() - 6) + "bias");
      if (params.contains(bias)) params[bias].index_put_({removed}, 7.0);
      for (const auto& c : g.consumers)
        if (c.depthwise) net->prunable_layers()[c.layer].weight.index_put_({removed}, 11.0);
    }
    CHECK((net->forward(x) - before).abs().max().item<double>() < 1e-5);
    for (size_t i = 0; i < all.size(); ++i)
      if (!touched[i]) CHECK(net->prunable_layers()[i].mask.min().item<double>() == 1.0);  // never half-pruned
  }
}

TEST_CASE("an imported module exports compact where its code allows, and says why where not",
          "[torchscript][structured][compact]") {
  const fs::path dir = test::scratch_dir("torchscript_compact");
  for (const std::string which : {"chain", "resnet18", "mobilenet_v2"}) {
    INFO(which);
    const std::string path = model(which);
    if (path.empty()) return;
    auto net = imported(path);
    std::vector<size_t> producers;
    for (const auto& g : checked_channel_groups(*net)) producers.push_back(g.producer);
    make_criterion("channel_norm",
                   CriterionRegistry::instance().parse("channel_norm", {{"action", "fraction"}}, "env.criterion"))
        ->apply(*net, producers, 0.5);
    const fs::path out = dir / (which + ".pt");
    std::string why;
    const auto compact = save_compact_model(*net, out.string(), &why);
    if (which == "mobilenet_v2") {  // every group has a depthwise consumer
      CHECK_FALSE(compact.has_value());
      CHECK_THAT(why, Contains("depthwise"));
      CHECK_FALSE(fs::exists(out));
      continue;
    }
    REQUIRE(compact.has_value());
    CHECK(why.empty());
    CHECK(compact->removed_channels > 0);
    auto loaded = torch::jit::load(out.string());
    loaded.eval();
    int64_t parameters = 0;
    for (const auto& p : loaded.parameters()) parameters += p.numel();
    CHECK(parameters == compact->parameters);
    int64_t dense = 0;
    for (const auto& p : net->parameters()) dense += p.numel();
    CHECK(parameters < dense);
    torch::NoGradGuard no_grad;
    const auto x = torch::randn({8, 1, 28, 28});
    net->eval();
    const auto masked = net->forward(x), small = loaded.forward({x}).toTensor();
    CHECK((masked - small).abs().max().item<double>() < 1e-4);
    CHECK(torch::equal(masked.argmax(1), small.argmax(1)));
  }
}
