// Coupled channel groups (network.coupled): the producers tied by residual additions are pruned
// as one group. Their structure on basic-block and bottleneck ResNets and MobileNet-V2; removing
// a coupled channel is exact and the compact model (and compact retraining) follows; a tie left
// alone (the default) is never half-pruned; the option is checked like every network key.

#include "helpers.h"

#include <prunegym/core/errors.h>
#include <prunegym/env/criteria.h>
#include <prunegym/env/prune_env.h>
#include <prunegym/networks/cost.h>
#include <prunegym/networks/groups.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

using namespace prunegym;
using Catch::Matchers::Contains;
using json = nlohmann::json;

namespace {

NetworkPtr network(const std::string& name, double width, bool coupled = true) {
  NetworkOptions o;
  o.name = name;
  o.options["width"] = width;
  if (coupled) o.options["coupled"] = true;
  return build_network(o, {1, 28, 28, nullptr}, 10);
}

std::string name_of(const NetworkImpl& net, size_t i) { return net.prunable_layers()[i].name; }

std::vector<std::string> names(const NetworkImpl& net, const std::vector<size_t>& layers) {
  std::vector<std::string> out;
  for (size_t i : layers) out.push_back(name_of(net, i));
  return out;
}

std::vector<std::string> consumer_names(const NetworkImpl& net, const ChannelGroup& g) {
  std::vector<size_t> layers;
  for (const auto& c : g.consumers) layers.push_back(c.layer);
  return names(net, layers);
}

/// Removes `fraction` of every group's channels by `rank`.
void prune_channels(NetworkImpl& net, double fraction, const std::string& rank = "l1") {
  const auto crit = make_criterion(
      "channel_norm",
      CriterionRegistry::instance().parse("channel_norm", {{"action", "fraction"}, {"rank", rank}}, "env.criterion"));
  std::vector<size_t> producers;
  for (const auto& g : checked_channel_groups(net)) producers.push_back(g.producer);
  crit->apply(net, producers, fraction);
}

/// The output channels of a layer with an unmasked weight.
std::vector<int64_t> alive_rows(const PrunableLayer& l) {
  const auto alive = l.mask.reshape({l.mask.size(0), -1}).amax(1) > 0;
  std::vector<int64_t> out;
  for (int64_t c = 0; c < alive.size(0); ++c)
    if (alive[c].item<bool>()) out.push_back(c);
  return out;
}

}  // namespace

TEST_CASE("coupled groups tie a stage's residual producers into one group", "[coupled][resnet]") {
  auto r20 = network("resnet20", 0.5);
  const auto groups = checked_channel_groups(*r20);
  REQUIRE(groups.size() == 9 + 3);  // the block-internal groups and one per stage
  for (size_t i = 1; i < groups.size(); ++i) CHECK(groups[i - 1].producer < groups[i].producer);  // network order
  const auto stem = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return !g.tied.empty(); });
  REQUIRE(stem != groups.end());
  CHECK(name_of(*r20, stem->producer) == "conv1.weight");  // layer1 has no shortcut conv: the stem is tied
  CHECK(names(*r20, stem->tied) ==
        std::vector<std::string>{"layer1.0.conv2.weight", "layer1.1.conv2.weight", "layer1.2.conv2.weight"});
  CHECK(consumer_names(*r20, *stem) == std::vector<std::string>{"layer1.0.conv1.weight", "layer1.1.conv1.weight",
                                                                "layer1.2.conv1.weight", "layer2.0.conv1.weight",
                                                                "layer2.0.downsample.0.weight"});
  CHECK(stem->batch_norms == std::vector<std::string>{"bn1", "layer1.0.bn2", "layer1.1.bn2", "layer1.2.bn2"});
  const auto& last = *std::find_if(groups.rbegin(), groups.rend(), [](const auto& g) { return !g.tied.empty(); });
  CHECK(name_of(*r20, last.producer) == "layer3.0.downsample.0.weight");
  CHECK(consumer_names(*r20, last).back() == "fc.weight");
  CHECK(last.batch_norms.front() == "layer3.0.downsample.1");
  CHECK(channel_group_json(last, *r20)["tied"].size() == 3);

  // ResNet-50: layer1 starts with a shortcut, so the stem is a group of its own (no tie) and each
  // stage's shortcut leads its blocks' conv3.
  auto r50 = network("resnet50", 0.125);
  const auto g50 = checked_channel_groups(*r50);
  CHECK(g50.size() == 32 + 1 + 4);
  size_t coupled = 0;
  for (const auto& g : g50)
    if (!g.tied.empty()) {
      ++coupled;
      CHECK(name_of(*r50, g.producer).find("downsample.0") != std::string::npos);
      for (const auto& t : names(*r50, g.tied)) CHECK(t.find("conv3") != std::string::npos);
    }
  CHECK(coupled == 4);
  CHECK(name_of(*r50, g50.front().producer) == "conv1.weight");
  CHECK(g50.front().tied.empty());

  // The default keeps them out (what AMC prunes).
  CHECK(checked_channel_groups(*network("resnet20", 0.5, false)).size() == 9);
}

TEST_CASE("MobileNet-V2's coupled groups are each stage's block outputs", "[coupled]") {
  auto net = network("mobilenet_v2", 0.5);
  const auto groups = checked_channel_groups(*net);
  REQUIRE(groups.size() == 17 + 7);  // one per stage on top of the expansion groups
  std::vector<const ChannelGroup*> stage;
  for (const auto& g : groups)
    if (name_of(*net, g.producer).find("conv.2.weight") != std::string::npos ||
        name_of(*net, g.producer) == "features.1.conv.1.weight")
      stage.push_back(&g);
  REQUIRE(stage.size() == 7);
  // The 32-channel stage: features.4 (stride 2) leads, features.5 and .6 add to it; read by their
  // expansions and the next stage's first one.
  const auto& s32 = *stage[2];
  CHECK(name_of(*net, s32.producer) == "features.4.conv.2.weight");
  CHECK(names(*net, s32.tied) == std::vector<std::string>{"features.5.conv.2.weight", "features.6.conv.2.weight"});
  CHECK(consumer_names(*net, s32) == std::vector<std::string>{"features.5.conv.0.0.weight",
                                                              "features.6.conv.0.0.weight",
                                                              "features.7.conv.0.0.weight"});
  CHECK(consumer_names(*net, *stage.back()) == std::vector<std::string>{"features.18.0.weight"});  // the head
}

TEST_CASE("a coupled channel is gone from every producer and reader, exactly", "[coupled][resnet]") {
  for (const auto& [name, width] :
       std::vector<std::pair<std::string, double>>{{"resnet20", 0.5}, {"resnet50", 0.125}, {"mobilenet_v2", 0.25}}) {
    INFO(name);
    auto net = network(name, width);
    prune_channels(*net, 0.5);
    net->eval();
    torch::NoGradGuard no_grad;
    torch::manual_seed(2);
    const auto x = torch::randn({4, 1, 28, 28});
    const auto before = net->forward(x);
    // Every producer of a coupled group lost the same rows, and its batch norms' shifts no longer matter.
    auto params = net->named_parameters(/*recurse=*/true);
    for (const auto& g : checked_channel_groups(*net)) {
      const auto alive = surviving_channels(*net, g);
      CHECK(static_cast<int64_t>(alive.size()) == g.channels - g.channels / 2);
      for (size_t p : group_producers(g)) CHECK(alive_rows(net->prunable_layers()[p]) == alive);
      if (g.tied.empty()) continue;
      std::set<int64_t> kept(alive.begin(), alive.end());
      for (const auto& bn : g.batch_norms)
        for (int64_t c = 0; c < g.channels; ++c)
          if (!kept.count(c)) params[bn + ".bias"][c].fill_(9.0);
    }
    CHECK((net->forward(x) - before).abs().max().item<double>() < 1e-4);

    // The compact model computes the same with the channels gone, and its counts are the masks'.
    const auto compact = compact_network(*net);
    auto module = scripted_module(*net, net->script_forward(), compact.tensors);
    module.eval();
    const auto small = module.forward({x}).toTensor();
    CHECK((small - before).abs().max().item<double>() < 1e-4);
    const auto cost = network_cost(*net);
    CHECK(compact.prunable == cost.remaining);
    CHECK(compact.macs == cost.remaining_macs);
    CHECK(compact.shapes.back().second.front() == 10);  // the classifier keeps its outputs
  }
}

TEST_CASE("coupled groups rank a channel over all its producers", "[coupled][resnet]") {
  auto net = network("resnet20", 0.5);
  const auto groups = checked_channel_groups(*net);
  const auto g = *std::find_if(groups.begin(), groups.end(), [](const auto& x) { return !x.tied.empty(); });
  {
    torch::NoGradGuard no_grad;  // channel 3 is small in the stem only, channel 5 in every producer
    auto& layers = net->prunable_layers();
    layers[g.producer].weight[3].mul_(1e-6);
    for (size_t p : group_producers(g)) layers[p].weight[5].mul_(1e-3);
  }
  const auto crit = make_criterion(
      "channel_norm", CriterionRegistry::instance().parse("channel_norm", {{"action", "fraction"}}, "env.criterion"));
  crit->apply(*net, {g.producer}, 1.0 / static_cast<double>(g.channels));
  const auto alive = surviving_channels(*net, g);
  CHECK(static_cast<int64_t>(alive.size()) == g.channels - 1);
  CHECK(std::find(alive.begin(), alive.end(), 5) == alive.end());
  CHECK(std::find(alive.begin(), alive.end(), 3) != alive.end());
  // bn_scale sums the producers' batch-norm scales.
  auto bn = network("resnet20", 0.5);
  prune_channels(*bn, 0.5, "bn_scale");
  CHECK(compact_network(*bn).removed_channels > 0);
}

TEST_CASE("compact retraining follows masked training on coupled groups", "[coupled][compact][resnet]") {
  const auto o = TrainOptions().set_optimizer("sgd").set_lr(0.05).set_batch_size(8).set_samples(16);
  torch::manual_seed(3);
  const Tensors data{torch::randn({24, 1, 28, 28}, torch::kDouble), torch::randint(0, 10, {24}, torch::kLong)};
  auto masked = network("resnet20", 0.5);
  prune_channels(*masked, 0.5);
  masked->to(torch::kDouble);
  auto compact = network("resnet20", 0.5);
  compact->to(torch::kDouble);
  copy_state(*masked, *compact);
  auto opt_masked = make_optimizer(*masked, o), opt_compact = make_optimizer(*compact, o);
  std::mt19937_64 rng_masked(4), rng_compact(4);
  const auto a = train(*masked, *opt_masked, data, o, rng_masked);
  const auto b = train_compact(*compact, *opt_compact, data, o, rng_compact);
  REQUIRE(b.has_value());
  CHECK(b->loss == Approx(a.loss).epsilon(1e-9));
  const auto pm = masked->named_parameters();
  for (const auto& p : compact->named_parameters()) CHECK((p.value() - pm[p.key()]).abs().max().item<double>() < 1e-9);
}

TEST_CASE("a residual tie left alone is never half-pruned", "[coupled][resnet]") {
  for (const std::string name : {"resnet20", "resnet50", "mobilenet_v2"}) {
    INFO(name);
    auto net = network(name, name == "resnet50" ? 0.125 : 0.5, /*coupled=*/false);
    prune_channels(*net, 0.9);
    std::set<size_t> grouped;  // producers, and depthwise consumers, which carry a group's channels
    for (const auto& g : checked_channel_groups(*net)) {
      grouped.insert(g.producer);
      for (const auto& c : g.consumers)
        if (c.depthwise) grouped.insert(c.layer);
    }
    const auto& layers = net->prunable_layers();
    for (size_t i = 0; i < layers.size(); ++i) {
      INFO(layers[i].name);
      if (!grouped.count(i)) CHECK(alive_rows(layers[i]).size() == static_cast<size_t>(layers[i].weight.size(0)));
    }
  }
}

TEST_CASE("network.coupled is a residual networks' key, recorded only when set", "[coupled][config]") {
  const auto with = [](json network) {
    network["layers"] = json::array();  // the tiny config's stack layers go
    return test::tiny_config({{"network", network}});
  };
  const auto on = with({{"name", "resnet20"}, {"width", 0.25}, {"coupled", true}});
  CHECK(on.to_json()["network"]["coupled"] == true);
  CHECK(Config::from_json(on.to_json()).to_json() == on.to_json());
  CHECK(with({{"name", "resnet20"}, {"width", 0.25}}).to_json()["network"].count("coupled") == 0);
  CHECK_THROWS_WITH(with({{"name", "lenet5"}, {"coupled", true}}), Contains("network.coupled"));
  CHECK_THROWS_WITH(with({{"name", "resnet20"}, {"coupled", "yes"}}), Contains("network.coupled"));
}
