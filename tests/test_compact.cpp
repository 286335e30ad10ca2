// Compact export (networks/groups.h compact_network): the removed channels are physically gone,
// the exported TorchScript computes what the masked network computes, and its parameter and MAC
// counts are the ones reported; only channels no consumer reads go; the env exports compact
// models for structured criteria and masked ones otherwise.

#include "helpers.h"

#include <prunegym/env/criteria.h>
#include <prunegym/env/prune_env.h>
#include <prunegym/networks/cost.h>
#include <prunegym/networks/groups.h>

#include <torch/script.h>

#include <catch2/catch.hpp>

#include <filesystem>

using namespace prunegym;
using json = nlohmann::json;

namespace {

NetworkPtr network(const std::string& name, double width = 1.0) {
  NetworkOptions o;
  o.name = name;
  if (width != 1.0) o.options["width"] = width;  // the residual networks' option
  return build_network(o, {1, 28, 28, nullptr}, 10);
}

/// Removes `fraction` of every group's channels by filter L1 norm.
void prune_channels(NetworkImpl& net, double fraction) {
  const auto crit = make_criterion(
      "channel_norm", CriterionRegistry::instance().parse("channel_norm", {{"action", "fraction"}}, "env.criterion"));
  std::vector<size_t> producers;
  for (const auto& g : checked_channel_groups(net)) producers.push_back(g.producer);
  crit->apply(net, producers, fraction);
}

int64_t parameter_count(const torch::jit::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

}  // namespace

TEST_CASE("the compact model computes what the masked one does, with smaller tensors", "[compact][resnet]") {
  for (const auto& [name, width] : std::vector<std::pair<std::string, double>>{{"lenet300", 1.0},
                                                                               {"lenet5", 1.0},
                                                                               {"conv2", 1.0},
                                                                               {"resnet20", 0.5},
                                                                               {"resnet50", 0.125},
                                                                               {"mobilenet_v2", 0.5}}) {
    INFO(name);
    auto net = network(name, width);
    prune_channels(*net, 0.5);
    net->eval();
    const auto dir = std::filesystem::path(test::scratch_dir("compact-" + name));
    net->save_model((dir / "masked.pt").string());
    const auto compact = save_compact_model(*net, (dir / "compact.pt").string());
    REQUIRE(compact);
    auto masked = torch::jit::load((dir / "masked.pt").string());
    auto small = torch::jit::load((dir / "compact.pt").string());
    masked.eval();
    small.eval();

    torch::NoGradGuard no_grad;
    torch::manual_seed(3);
    const auto x = torch::randn({1000, 1, 28, 28});
    const auto a = masked.forward({x}).toTensor();
    const auto b = small.forward({x}).toTensor();
    CHECK((a - b).abs().max().item<double>() < 1e-4);
    CHECK(torch::equal(a.argmax(1), b.argmax(1)));

    // Counts: what the file holds is what is reported, and what the masks left.
    const auto cost = network_cost(*net);
    CHECK(parameter_count(small) == compact->parameters);
    CHECK(compact->parameters < cost.parameters);
    CHECK(compact->prunable == cost.remaining);
    CHECK(compact->macs == cost.remaining_macs);
    CHECK(compact->removed_channels > 0);
    CHECK(std::filesystem::file_size(dir / "compact.pt") < std::filesystem::file_size(dir / "masked.pt"));
    // A structured removal never touches a layer outside the groups: the classifier keeps its outputs.
    const auto& last = compact->shapes.back();
    CHECK(last.second.front() == 10);
  }
}

TEST_CASE("only channels that no consumer reads are removed", "[compact]") {
  auto net = network("lenet300");
  {
    torch::NoGradGuard no_grad;
    auto& fc2 = net->prunable_layers()[1];
    fc2.mask.narrow(1, 0, 10).zero_();                   // neurons 0..9 of fc1 are read by nobody
    fc2.mask.narrow(1, 20, 5).narrow(0, 0, 99).zero_();  // neurons 20..24 still reach fc2's last row
    net->apply_masks();
  }
  const auto compact = compact_network(*net);
  CHECK(compact.removed_channels == 10);
  CHECK(compact.shapes[0].second == std::vector<int64_t>{290, 784});
  CHECK(compact.shapes[1].second == std::vector<int64_t>{100, 290});
  CHECK(read_channels(*net, checked_channel_groups(*net)[0]).front() == 10);

  // A layer whose every channel went keeps one, so the shapes stay valid.
  auto all = network("lenet300");
  prune_channels(*all, 1.0);  // min_keep leaves one channel per group
  const auto one = compact_network(*all);
  CHECK(one.shapes[0].second.front() == 1);
  CHECK(one.shapes[1].second == std::vector<int64_t>{1, 1});
}

TEST_CASE("the env exports a compact model for structured criteria and a masked one otherwise", "[compact][env]") {
  const auto dir = std::filesystem::path(test::scratch_dir("compact-env"));
  PruneEnv env(test::tiny_config({{"env", {{"criterion", {{"name", "channel_norm"}, {"action", "fraction"}}}}}}));
  env.reset();
  env.step(Action(5));  // fraction 0.5 of the first layer's 64 neurons
  const auto j = env.export_network((dir / "pruned.pt").string(), (dir / "masked.pt").string());
  CHECK(j.at("compact").get<bool>());
  CHECK(j.at("removed_channels").get<int64_t>() == 32);
  CHECK(j.at("parameters").get<int64_t>() < j.at("dense_parameters").get<int64_t>());
  CHECK(j.at("file_bytes").get<int64_t>() < j.at("masked_file_bytes").get<int64_t>());
  auto m = torch::jit::load((dir / "pruned.pt").string());
  CHECK(parameter_count(m) == j.at("parameters").get<int64_t>());

  PruneEnv plain(test::tiny_config());
  plain.reset();
  plain.step(Action(5));
  const auto k = plain.export_network((dir / "plain.pt").string(), (dir / "plain-masked.pt").string());
  CHECK_FALSE(k.at("compact").get<bool>());
  CHECK(k.at("reason").get<std::string>().find("std_threshold") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "plain-masked.pt"));
  CHECK(parameter_count(torch::jit::load((dir / "plain.pt").string())) == k.at("dense_parameters").get<int64_t>());
}
