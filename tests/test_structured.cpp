// Channel groups (networks/groups.h) and the structured criterion channel_norm: the groups of a
// stack, a basic-block and a bottleneck ResNet; removing a channel is exact (nothing downstream
// reads it any more); action, round_to and min_keep; clear errors for bad options.

#include "helpers.h"

#include <prunegym/core/errors.h>
#include <prunegym/env/criteria.h>
#include <prunegym/env/prune_env.h>
#include <prunegym/networks/batch_norm.h>
#include <prunegym/networks/cost.h>
#include <prunegym/networks/groups.h>
#include <prunegym/networks/train.h>

#include <catch2/catch.hpp>

using namespace prunegym;
using Catch::Matchers::Contains;
using json = nlohmann::json;

namespace {

NetworkPtr network(const std::string& name, InputShape input = {1, 28, 28, nullptr}, double width = 1.0) {
  NetworkOptions o;
  o.name = name;
  if (width != 1.0) o.options["width"] = width;  // the residual networks' option
  return build_network(o, input, 10);
}

std::unique_ptr<PruningCriterion> channel_norm(const json& options = json::object()) {
  return make_criterion("channel_norm", CriterionRegistry::instance().parse("channel_norm", options, "env.criterion"));
}

std::string name_of(const NetworkImpl& net, size_t i) { return net.prunable_layers()[i].name; }

}  // namespace

TEST_CASE("layer stacks group each layer with the next; a flatten gives blocks of columns", "[structured]") {
  auto lenet300 = network("lenet300");
  const auto g300 = checked_channel_groups(*lenet300);
  REQUIRE(g300.size() == 2);  // the classifier feeds nothing
  CHECK(name_of(*lenet300, g300[0].producer) == "fc1.weight");
  CHECK(g300[0].channels == 300);
  CHECK(name_of(*lenet300, g300[0].consumers.at(0).layer) == "fc2.weight");
  CHECK(g300[0].consumers[0].block == 1);

  auto lenet5 = network("lenet5");
  const auto g5 = checked_channel_groups(*lenet5);
  REQUIRE(g5.size() == 4);
  CHECK(name_of(*lenet5, g5[1].producer) == "conv2.weight");
  CHECK(name_of(*lenet5, g5[1].consumers.at(0).layer) == "fc1.weight");
  CHECK(g5[1].consumers[0].block == 5 * 5);  // 16 channels of 5x5 flattened into fc1's 400 inputs
}

TEST_CASE("residual networks group block-internal channels only", "[structured][resnet]") {
  auto r20 = network("resnet20", {1, 28, 28, nullptr}, 0.25);
  const auto basic = checked_channel_groups(*r20);
  REQUIRE(basic.size() == 9);  // one conv1 -> conv2 per basic block
  CHECK(name_of(*r20, basic[0].producer) == "layer1.0.conv1.weight");
  CHECK(name_of(*r20, basic[0].consumers.at(0).layer) == "layer1.0.conv2.weight");
  CHECK(basic[0].batch_norms == std::vector<std::string>{"layer1.0.bn1"});
  for (const auto& g : basic) {
    const auto& producer = name_of(*r20, g.producer);
    CHECK(producer.find("conv2") == std::string::npos);  // a block's last conv is tied to the residual
    CHECK(producer != "conv1.weight");                   // the stem too
  }
  auto r50 = network("resnet50", {1, 28, 28, nullptr}, 0.125);
  const auto bottleneck = checked_channel_groups(*r50);
  CHECK(bottleneck.size() == 2 * 16);  // conv1 -> conv2 and conv2 -> conv3 in each of 16 blocks
}

TEST_CASE("MobileNet-V2 groups each expansion with its depthwise and projection convolutions", "[structured]") {
  auto net = network("mobilenet_v2", {1, 28, 28, nullptr}, 0.5);
  REQUIRE(net->prunable_layers().size() == 53);  // 52 convolutions (17 depthwise) and the classifier
  const auto groups = checked_channel_groups(*net);
  REQUIRE(groups.size() == 17);  // the stem feeding the first block, then one expansion per later block
  CHECK(name_of(*net, groups[0].producer) == "features.0.0.weight");
  CHECK(name_of(*net, groups[0].consumers.at(0).layer) == "features.1.conv.0.0.weight");
  CHECK(groups[0].consumers.at(0).depthwise);
  CHECK(name_of(*net, groups[0].consumers.at(1).layer) == "features.1.conv.1.weight");
  CHECK(groups[1].batch_norms == std::vector<std::string>{"features.2.conv.0.1", "features.2.conv.1.1"});
  CHECK(name_of(*net, groups[1].consumers.at(0).layer) == "features.2.conv.1.0.weight");
  CHECK(name_of(*net, groups[1].consumers.at(1).layer) == "features.2.conv.2.weight");
  for (const auto& g : groups) CHECK(name_of(*net, g.producer) != "features.18.0.weight");  // tied to nothing else
}

TEST_CASE("a removed channel is gone: nothing downstream reads it", "[structured]") {
  for (const std::string name : {"lenet5", "resnet20", "mobilenet_v2"}) {
    INFO(name);
    auto net = network(name, {1, 28, 28, nullptr}, name == "lenet5" ? 1.0 : 0.25);
    net->eval();
    const auto groups = checked_channel_groups(*net);
    const auto crit = channel_norm({{"action", "fraction"}});
    std::vector<size_t> producers;
    for (const auto& g : groups) producers.push_back(g.producer);
    crit->apply(*net, producers, 0.5);
    torch::NoGradGuard no_grad;
    const auto x = torch::randn({8, 1, 28, 28});
    const auto before = net->forward(x);
    // Overwrite every removed channel's weights and everything on its path; the output must not move.
    auto params = net->named_parameters(/*recurse=*/true);
    for (const auto& g : groups) {
      const auto alive = surviving_channels(*net, g);
      CHECK(static_cast<int64_t>(alive.size()) == g.channels - g.channels / 2);
      auto& w = net->prunable_layers()[g.producer].weight;
      const auto removed = (net->prunable_layers()[g.producer].mask.reshape({g.channels, -1}).amax(1) == 0);
      w.index_put_({removed}, 3.0);
      for (const auto& bn : g.batch_norms) params[bn + ".bias"].index_put_({removed}, 5.0);
      const std::string bias = name_of(*net, g.producer).substr(0, name_of(*net, g.producer).size() - 6) + "bias";
      if (params.contains(bias)) params[bias].index_put_({removed}, 7.0);
      for (const auto& c : g.consumers)  // a depthwise filter carries the channel on: overwrite it too
        if (c.depthwise) net->prunable_layers()[c.layer].weight.index_put_({removed}, 11.0);
    }
    CHECK((net->forward(x) - before).abs().max().item<double>() < 1e-5);
  }
}

TEST_CASE("channel_norm: alpha and fraction actions, round_to and min_keep", "[structured]") {
  auto net = network("lenet300");
  const auto g = checked_channel_groups(*net)[0];  // fc1: 300 channels
  channel_norm({{"action", "fraction"}, {"round_to", 8}})->apply(*net, {0}, 0.5);
  CHECK(surviving_channels(*net, g).size() == 152);  // 150 kept, rounded up to a multiple of 8
  channel_norm({{"action", "fraction"}})->apply(*net, {0}, 0.5);
  CHECK(surviving_channels(*net, g).size() == 150);  // a fraction of all channels: 2 more go
  channel_norm({{"action", "fraction"}, {"min_keep", 4}})->apply(*net, {0}, 1.0);
  CHECK(surviving_channels(*net, g).size() == 4);
  // The consumer lost the matching input columns; the classifier (no group) is never touched.
  CHECK(net->prunable_layers()[1].remaining() == 4 * 100);
  channel_norm()->apply(*net, {2}, 2.2);
  CHECK(net->prunable_layers()[2].remaining() == net->prunable_layers()[2].numel());

  // At initialisation the neurons' norms are alike and none is below 1 x their std; make 50 small.
  auto fresh = network("lenet300");
  {
    torch::NoGradGuard no_grad;
    fresh->prunable_layers()[0].weight.narrow(0, 10, 50).mul_(0.01);
  }
  channel_norm({{"rank", "l2"}})->apply(*fresh, {0}, 1.0);
  const auto left = surviving_channels(*fresh, g).size();
  CHECK(left == 250);
  const auto cost = network_cost(*fresh);
  CHECK(cost.remaining_macs == static_cast<int64_t>(left) * 784 + static_cast<int64_t>(left) * 100 + 100 * 10);
}

TEST_CASE("bad structured options get errors that name the key", "[structured][config]") {
  CHECK_THROWS_WITH(test::tiny_config({{"env", {{"criterion", {{"name", "channel_norm"}, {"rank", "l3"}}}}}}),
                    Contains("env.criterion.rank"));
  CHECK_THROWS_WITH(test::tiny_config({{"env", {{"criterion", {{"name", "channel_norm"}, {"round_to", 0}}}}}}),
                    Contains("env.criterion.round_to"));
  CHECK_THROWS_WITH(test::tiny_config({{"env", {{"criterion", {{"name", "channel_norm"}, {"scope", "x"}}}}}}),
                    Contains("scope"));
  auto net = network("lenet300");
  CHECK_THROWS_WITH(channel_norm({{"round_to", 512}})->apply(*net, {0}, 1.0), Contains("env.criterion.round_to"));
  CHECK(net->prunable_layers()[0].remaining() == net->prunable_layers()[0].numel());  // nothing changed
  CHECK_THROWS_WITH(channel_norm({{"rank", "bn_scale"}})->apply(*net, {0}, 1.0), Contains("has none"));
}

TEST_CASE("a structured episode removes neurons and lowers the MACs", "[structured][env]") {
  PruneEnv env(test::tiny_config({{"env", {{"criterion", {{"name", "channel_norm"}, {"action", "fraction"}}}}}}));
  env.reset();
  const auto r = env.step(Action(env.action_space().n() - 1));                 // the largest fraction: 0.9
  CHECK(r.info.layer_sparsities[0] == Approx(1.0 - 6.0 / 64.0).margin(1e-9));  // 58 of 64 neurons go
  CHECK(r.info.macs < r.info.dense_macs);
}

TEST_CASE("a structured episode steps over the channel groups, not every layer", "[structured][env]") {
  const json criterion = {{"name", "channel_norm"}, {"action", "fraction"}};
  PruneEnv env(test::tiny_config({{"env", {{"criterion", criterion}}}}));
  // fc1 and fc2 produce groups; the classifier would remove nothing and is no step.
  CHECK(env.episode_layers() == std::vector<std::string>{"fc1.weight", "fc2.weight"});
  CHECK(env.episode_length() == 2);
  env.reset();
  CHECK(env.step(Action(5)).info.layer_sparsities[0] > 0.0);
  const auto last = env.step(Action(5));
  CHECK(last.terminated);
  CHECK(last.info.layer_sparsities[1] > 0.0);
  // Unstructured criteria keep stepping over every prunable layer.
  CHECK(PruneEnv(test::tiny_config()).episode_length() == 3);
  // env.layers may choose among the producers; any other layer is an error that says why.
  PruneEnv second(test::tiny_config({{"env", {{"criterion", criterion}, {"layers", {"fc2.weight"}}}}}));
  CHECK(second.episode_layers() == std::vector<std::string>{"fc2.weight"});
  CHECK_THROWS_WITH(PruneEnv(test::tiny_config({{"env", {{"criterion", criterion}, {"layers", {"fc3.weight"}}}}})),
                    Contains("env.layers: 'fc3.weight' produces no channel group"));
}

TEST_CASE("batch-norm statistics are re-estimated after pruning, weights untouched", "[structured][resnet]") {
  auto net = network("resnet20", {1, 28, 28, nullptr}, 0.25);
  net->eval();
  auto buffers = net->named_buffers(/*recurse=*/true);
  buffers["bn1.running_mean"].fill_(100.0);  // statistics that fit nothing
  const auto weights = net->prunable_layers()[0].weight.clone();
  const Tensors data{torch::randn({300, 1, 28, 28}), torch::zeros({300}, torch::kLong)};
  CHECK(recalibrate_batch_norm(*net, data, 0) == 21);  // stem, 2 per block (9), 2 shortcuts
  CHECK(buffers["bn1.running_mean"].abs().max().item<double>() < 10.0);
  CHECK_FALSE(net->is_training());  // the mode is restored
  CHECK(torch::equal(net->prunable_layers()[0].weight, weights));
  auto stack = network("lenet300");
  CHECK(recalibrate_batch_norm(*stack, data, 0) == 0);
}

TEST_CASE("train.final_policy and train.recalibrate_bn are checked when the config loads", "[config]") {
  CHECK_THROWS_WITH(test::tiny_config({{"train", {{"final_policy", "all_at_once"}}}}), Contains("train.final_policy"));
  CHECK_THROWS_WITH(test::tiny_config({{"train", {{"final_policy", "episode"}, {"recalibrate_bn", 100}}}}),
                    Contains("train.recalibrate_bn"));
  CHECK_NOTHROW(test::tiny_config({{"train", {{"recalibrate_bn", 100}}}}));
}

TEST_CASE("the compact evaluation computes what the masked network does", "[structured]") {
  const Tensors data{torch::randn({200, 1, 28, 28}), torch::randint(0, 10, {200})};
  for (const std::string name : {"lenet5", "mobilenet_v2", "resnet20"}) {
    INFO(name);
    auto net = network(name, {1, 28, 28, nullptr}, name == "lenet5" ? 1.0 : 0.25);
    net->eval();
    CHECK_FALSE(evaluate_compact(*net, data, 64));  // nothing removed: nothing to compact
    std::vector<size_t> producers;
    for (const auto& g : checked_channel_groups(*net)) producers.push_back(g.producer);
    channel_norm({{"action", "fraction"}})->apply(*net, producers, 0.5);
    const auto masked = evaluate(*net, data, 64);
    const auto compact = evaluate_compact(*net, data, 64);
    REQUIRE(compact);
    CHECK(compact->accuracy == Approx(masked.accuracy).margin(1.0 / 200));
    CHECK(compact->loss == Approx(masked.loss).epsilon(1e-4));
    CHECK(compact->class_count == masked.class_count);
  }
  // At width 0.25 the stem and the first block both have 8 channels and the block adds them: the
  // stem is tied and forms no group.
  CHECK(checked_channel_groups(*network("mobilenet_v2", {1, 28, 28, nullptr}, 0.25)).size() == 16);
  CHECK(network("resnet20")->evaluates_faster_masked());  // folds batch norm: "auto" keeps it masked
  CHECK_FALSE(network("mobilenet_v2")->evaluates_faster_masked());
}

TEST_CASE("env.evaluation.compact changes the speed of a structured episode, not its rewards", "[structured][env]") {
  const auto config = [](const std::string& compact) {
    return test::tiny_config({{"env",
                               {{"criterion", {{"name", "channel_norm"}, {"action", "fraction"}}},
                                {"evaluation", {{"compact", compact}}}}}});
  };
  PruneEnv masked(config("never")), compact(config("always"));
  masked.reset({3});
  compact.reset({3});
  for (int64_t a : {5, 3}) {
    const auto m = masked.step(Action(a)), c = compact.step(Action(a));
    CHECK(c.reward == Approx(m.reward).margin(1e-9));
    CHECK(c.info.accuracy == Approx(m.info.accuracy).margin(1e-9));
  }
  CHECK_THROWS_WITH(config("sometimes"), Contains("env.evaluation.compact"));
}
