// env/lottery: reset strategies (bitwise), exact-count pruning, schedules, early-stop bookkeeping,
// and the "rounds" episodes of PruneEnv.

#include "helpers.h"

#include <prunegym/core/errors.h>
#include <prunegym/env/lottery.h>
#include <prunegym/env/prune_env.h>

#include <catch2/catch.hpp>

#include <cmath>

using namespace prunegym;
using Catch::Matchers::Contains;

namespace {

NetworkOptions mlp() {
  NetworkOptions o;
  o.name = "custom";
  o.options["layers"] = nlohmann::json::array({"flatten", "linear:40", "relu", "linear:20", "relu", "linear"});
  o.init_seed = 3;
  return o;
}

const InputShape kShape{1, 6, 6};

/// A network whose weights differ from its initialisation (as after training).
NetworkPtr trained_like(const NetworkOptions& o) {
  auto net = build_network(o, kShape, 10);
  torch::NoGradGuard g;
  torch::manual_seed(11);
  for (auto& p : net->parameters()) p.add_(torch::randn_like(p) * 0.05);
  return net;
}

bool same(const torch::Tensor& a, const torch::Tensor& b) { return a.sizes() == b.sizes() && torch::equal(a, b); }

int64_t pruned(const PrunableLayer& l) { return l.numel() - l.remaining(); }

}  // namespace

TEST_CASE("schedules: rate per round, explicit list, one shot", "[lottery]") {
  LotteryOptions o;
  o.rate = 0.2;
  o.rounds = 5;
  const auto s = o.schedule();
  REQUIRE(s.size() == 5);
  CHECK(s[0] == Approx(0.2));
  CHECK(s[1] == Approx(0.36));
  CHECK(s[4] == Approx(1 - std::pow(0.8, 5)));
  o.sparsities = {0.2, 0.52, 0.8, 0.96, 0.9996};
  CHECK(o.schedule() == o.sparsities);
  o.sparsities.clear();
  o.one_shot = 0.9;
  CHECK(o.schedule() == std::vector<double>{0.9});
}

TEST_CASE("every round hits its cumulative sparsity exactly, per layer and globally", "[lottery]") {
  for (const std::string scope : {"layerwise", "global"}) {
    auto net = trained_like(mlp());
    LotteryOptions o;
    o.scope = scope;
    o.sparsities = {0.2, 0.52, 0.8, 0.96, 0.9996};
    for (int64_t round = 1; round <= 5; ++round) {
      const auto target = round_target(*net, o, round);
      prune_to_target(*net, target);
      const double s = o.sparsities[static_cast<size_t>(round - 1)];
      if (scope == "layerwise") {
        for (const auto& l : net->prunable_layers())
          CHECK(pruned(l) == std::llround(s * static_cast<double>(l.numel())));
      } else {
        const int64_t total = net->total_prunable();
        CHECK(total - net->remaining_prunable() == std::llround(s * static_cast<double>(total)));
      }
      // Pruned weights are zero.
      for (const auto& l : net->prunable_layers()) CHECK(l.weight.mul(1 - l.mask).abs().sum().item<double>() == 0.0);
    }
  }
}

TEST_CASE("global scope ranks all layers together; layer-wise ranks each alone", "[lottery]") {
  auto net = trained_like(mlp());
  {
    torch::NoGradGuard g;
    net->prunable_layers()[1].weight.mul_(10.0);  // fc2's weights dwarf everyone else's
  }
  auto global = trained_like(mlp());
  load_state(*global, clone_state(*net));
  LotteryOptions o;
  o.one_shot = 0.5;
  o.scope = "layerwise";
  prune_to_target(*net, round_target(*net, o, 1));
  CHECK(net->prunable_layers()[1].sparsity() == Approx(0.5).margin(1e-3));
  o.scope = "global";
  prune_to_target(*global, round_target(*global, o, 1));
  CHECK(global->sparsity() == Approx(0.5).margin(1e-3));
  CHECK(global->prunable_layers()[1].sparsity() < 0.2);  // the big layer is mostly spared
  CHECK(global->prunable_layers()[0].sparsity() > 0.5);
  // The global threshold is one value: every survivor outweighs every pruned weight.
  double max_pruned = 0, min_alive = 1e9;
  {
    auto ref = trained_like(mlp());
    torch::NoGradGuard g;
    ref->prunable_layers()[1].weight.mul_(10.0);
    for (size_t i = 0; i < ref->prunable_layers().size(); ++i) {
      const auto w = ref->prunable_layers()[i].weight.abs();
      const auto m = global->prunable_layers()[i].mask;
      if (m.eq(0).any().item<bool>()) max_pruned = std::max(max_pruned, w.masked_select(m.eq(0)).max().item<double>());
      min_alive = std::min(min_alive, w.masked_select(m.gt(0)).min().item<double>());
    }
  }
  CHECK(max_pruned <= min_alive);
}

TEST_CASE("the output layer can be pruned at its own rate", "[lottery]") {
  auto net = trained_like(mlp());
  LotteryOptions o;
  o.rate = 0.2;
  o.output_rate = 0.1;
  o.rounds = 3;
  for (int64_t round = 1; round <= 3; ++round) prune_to_target(*net, round_target(*net, o, round));
  const auto& layers = net->prunable_layers();
  CHECK(pruned(layers[0]) == std::llround((1 - std::pow(0.8, 3)) * static_cast<double>(layers[0].numel())));
  CHECK(pruned(layers[2]) == std::llround((1 - std::pow(0.9, 3)) * static_cast<double>(layers[2].numel())));
}

TEST_CASE("one-shot pruning can prune the output layer at its own rate", "[lottery]") {
  auto net = trained_like(mlp());
  LotteryOptions o;
  o.one_shot = 0.9;
  o.output_rate = 0.45;
  prune_to_target(*net, round_target(*net, o, 1));
  const auto& layers = net->prunable_layers();
  CHECK(pruned(layers[0]) == std::llround(0.9 * static_cast<double>(layers[0].numel())));
  CHECK(pruned(layers[2]) == std::llround(0.45 * static_cast<double>(layers[2].numel())));
  // Through a config too; with an explicit sparsity list it is refused (rate per round is ambiguous there).
  const auto c = test::tiny_config({{"lottery", {{"one_shot", 0.9}, {"output_rate", 0.45}}}});
  CHECK(c.lottery.output_rate.value_or(0) == 0.45);
  CHECK_THROWS_WITH(test::tiny_config({{"lottery", {{"sparsities", {0.2, 0.5}}, {"output_rate", 0.1}}}}),
                    Contains("one_shot"));
}

TEST_CASE("convolution layers can be pruned at their own rate (Conv-2/4/6 schedules)", "[lottery]") {
  NetworkOptions cnn;
  cnn.name = "custom";
  cnn.options["layers"] =
      nlohmann::json::array({"conv:4:3:1", "relu", "conv:4:3:1", "relu", "flatten", "linear:20", "relu", "linear"});
  cnn.init_seed = 5;
  auto net = trained_like(cnn);
  LotteryOptions o;
  o.rate = 0.2;
  o.conv_rate = 0.1;
  o.output_rate = 0.1;
  o.rounds = 4;
  const auto& layers = net->prunable_layers();
  REQUIRE(layers.size() == 4);
  for (int64_t round = 1; round <= 4; ++round) {
    prune_to_target(*net, round_target(*net, o, round));
    const auto expect = [&](size_t i, double rate) {
      return std::llround((1 - std::pow(1 - rate, static_cast<double>(round))) *
                          static_cast<double>(layers[i].numel()));
    };
    CHECK(pruned(layers[0]) == expect(0, 0.1));  // convolutions at conv_rate
    CHECK(pruned(layers[1]) == expect(1, 0.1));
    CHECK(pruned(layers[2]) == expect(2, 0.2));  // the hidden linear layer at rate
    CHECK(pruned(layers[3]) == expect(3, 0.1));  // the output layer at output_rate
  }
  // An agent's per-round rate scales every layer's own rate alike.
  auto fresh = trained_like(cnn);
  const auto t = rate_target(*fresh, o, 0.4);
  REQUIRE(t.sparsity.size() == 4);
  CHECK(t.sparsity[0] == Approx(0.2));
  CHECK(t.sparsity[2] == Approx(0.4));
  CHECK(t.sparsity[3] == Approx(0.2));
  // One shot: conv_rate is the convolutions' sparsity. Refused with an explicit list or the global scope.
  o = LotteryOptions();
  o.one_shot = 0.8;
  o.conv_rate = 0.5;
  prune_to_target(*fresh, round_target(*fresh, o, 1));
  const auto& once = fresh->prunable_layers();
  CHECK(pruned(once[0]) == std::llround(0.5 * static_cast<double>(once[0].numel())));
  CHECK(pruned(once[2]) == std::llround(0.8 * static_cast<double>(once[2].numel())));
  const auto c = test::tiny_config({{"lottery", {{"rate", 0.2}, {"conv_rate", 0.15}}}});
  CHECK(c.lottery.conv_rate.value_or(0) == 0.15);
  CHECK_THROWS_WITH(test::tiny_config({{"lottery", {{"sparsities", {0.2, 0.5}}, {"conv_rate", 0.1}}}}),
                    Contains("conv_rate") && Contains("one_shot"));
  CHECK_THROWS_WITH(test::tiny_config({{"lottery", {{"scope", "global"}, {"conv_rate", 0.1}}}}), Contains("layerwise"));
  CHECK_THROWS_WITH(test::tiny_config({{"lottery", {{"conv_rate", 1.0}}}}), Contains("[0, 1)"));
}

TEST_CASE("each reset strategy resets exactly what it should", "[lottery]") {
  const auto opts = mlp();
  auto init_net = build_network(opts, kShape, 10);
  ResetReferences refs;
  refs.init = clone_parameters(*init_net);
  refs.network = opts;
  refs.input = kShape;
  refs.classes = 10;
  auto mid = trained_like(opts);
  refs.rewind = clone_parameters(*mid);  // stands in for W_k
  {
    torch::NoGradGuard g;
    for (auto& t : refs.rewind) t.add_(0.01);
  }
  LotteryOptions o;
  o.one_shot = 0.6;

  // The magnitude mask every strategy but random_mask must produce.
  auto reference = trained_like(opts);
  const auto trained = clone_parameters(*reference);
  prune_to_target(*reference, round_target(*reference, o, 1));

  auto check_values = [&](NetworkImpl& net, const std::vector<torch::Tensor>& expected) {
    auto params = net.parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      // Parameters are registered weight, bias per layer; masks apply to weights only.
      torch::Tensor want = expected[i];
      for (const auto& l : net.prunable_layers())
        if (l.weight.data_ptr() == params[i].data_ptr()) want = expected[i] * l.mask;
      CHECK(same(params[i], want));
    }
  };

  std::mt19937_64 rng(1);
  SECTION("keep: the trained survivors stay as they are") {
    auto net = trained_like(opts);
    prune_and_reset(*net, round_target(*net, o, 1), ResetStrategy::keep, refs, 99, rng);
    for (size_t i = 0; i < 3; ++i) CHECK(same(net->prunable_layers()[i].mask, reference->prunable_layers()[i].mask));
    check_values(*net, trained);
  }
  SECTION("rewind_init: survivors and biases go back to W0") {
    auto net = trained_like(opts);
    prune_and_reset(*net, round_target(*net, o, 1), ResetStrategy::rewind_init, refs, 99, rng);
    for (size_t i = 0; i < 3; ++i) CHECK(same(net->prunable_layers()[i].mask, reference->prunable_layers()[i].mask));
    check_values(*net, refs.init);
  }
  SECTION("rewind_iter: survivors go back to W_k") {
    auto net = trained_like(opts);
    prune_and_reset(*net, round_target(*net, o, 1), ResetStrategy::rewind_iter, refs, 99, rng);
    check_values(*net, refs.rewind);
  }
  SECTION("reinit: same mask, fresh values from the given seed") {
    auto net = trained_like(opts);
    prune_and_reset(*net, round_target(*net, o, 1), ResetStrategy::reinit, refs, 99, rng);
    for (size_t i = 0; i < 3; ++i) CHECK(same(net->prunable_layers()[i].mask, reference->prunable_layers()[i].mask));
    NetworkOptions fresh = opts;
    fresh.init_seed = 99;
    check_values(*net, clone_parameters(*build_network(fresh, kShape, 10)));
    CHECK_FALSE(same(net->parameters()[0], refs.init[0] * net->prunable_layers()[0].mask));
  }
  SECTION("random_mask: same per-layer counts, a different (nested) mask, survivors at W0") {
    auto net = trained_like(opts);
    // An earlier round's pruning must survive.
    {
      torch::NoGradGuard g;
      net->prunable_layers()[0].mask.view({-1}).narrow(0, 0, 10).fill_(0);
      net->apply_masks();
      reference->prunable_layers()[0].mask.view({-1}).narrow(0, 0, 10).fill_(0);
    }
    const auto before = net->prunable_layers()[0].mask.clone();
    prune_and_reset(*net, round_target(*net, o, 1), ResetStrategy::random_mask, refs, 99, rng);
    for (size_t i = 0; i < 3; ++i) {
      const auto& l = net->prunable_layers()[i];
      CHECK(pruned(l) == std::llround(0.6 * static_cast<double>(l.numel())));
      CHECK_FALSE(same(l.mask, reference->prunable_layers()[i].mask));
    }
    CHECK(net->prunable_layers()[0].mask.mul(1 - before).sum().item<double>() == 0.0);  // nested
    check_values(*net, refs.init);
  }
}

TEST_CASE("a training run records its early-stop iteration and accuracies", "[lottery]") {
  const auto config = test::tiny_config();
  const auto data = load_data(config.data);
  auto net = build_network(config.network, data.shape, data.classes);
  TrainOptions t = TrainOptions().set_optimizer("adam").set_lr(2e-3).set_batch_size(50).set_epochs(2);
  std::mt19937_64 rng(0);
  std::vector<int64_t> checks;
  std::vector<torch::Tensor> at_k;
  const auto r = train_round(
      *net, data, t, 7, rng, [&](int64_t it, int64_t) { checks.push_back(it); }, 5, &at_k);
  const int64_t expected = 2 * ((1500 - 300 + 49) / 50);
  CHECK(r.iterations == expected);
  CHECK(checks.back() == expected);  // a check at the end even off the 7-iteration grid
  CHECK(checks.front() == 7);
  CHECK((r.early_stop_iteration % 7 == 0 || r.early_stop_iteration == expected));
  CHECK(r.early_stop_iteration > 0);
  CHECK(r.best_validation_accuracy >= r.validation_accuracy);
  CHECK(r.test_accuracy > 0.5);  // it learned: 10 classes, chance is 0.1
  REQUIRE(at_k.size() == net->parameters().size());
  CHECK_FALSE(same(at_k[0], net->parameters()[0]));
}

TEST_CASE("the early-stop and final test accuracies are those of the networks at those checks", "[lottery]") {
  // train_round evaluates the test set only where the validation loss reaches a new minimum and at
  // the end; a callback that evaluates both sets at every check must find the same figures.
  const auto config = test::tiny_config();
  const auto data = load_data(config.data);
  auto net = build_network(config.network, data.shape, data.classes);
  TrainOptions t = TrainOptions().set_optimizer("adam").set_lr(2e-3).set_batch_size(50).set_epochs(2);
  std::mt19937_64 rng(0);
  double min_loss = std::numeric_limits<double>::infinity(), at_min = -1, last = -1;
  int64_t min_it = -1;
  const auto r = train_round(*net, data, t, 5, rng, [&](int64_t it, int64_t) {
    const auto v = evaluate(*net, data.validation);
    last = evaluate(*net, data.test).accuracy;
    if (v.loss < min_loss) {
      min_loss = v.loss;
      min_it = it;
      at_min = last;
    }
  });
  CHECK(r.early_stop_iteration == min_it);
  CHECK(r.early_stop_test_accuracy == at_min);
  CHECK(r.test_accuracy == last);
  CHECK(r.min_validation_loss == min_loss);
}

TEST_CASE("lottery config errors name the key", "[lottery][errors]") {
  CHECK_THROWS_WITH(test::tiny_config({{"lottery", {{"strategies", {"rewind", "keep"}}}}}),
                    Contains("lottery.strategies"));
  CHECK_THROWS_WITH(test::tiny_config({{"lottery", {{"rate", 0.2}, {"sparsities", {0.2, 0.5}}}}}),
                    Contains("one schedule"));
  CHECK_THROWS_WITH(test::tiny_config({{"lottery", {{"sparsities", {0.5, 0.2}}}}}), Contains("increase"));
  CHECK_THROWS_WITH(test::tiny_config({{"lottery", {{"scope", "global"}, {"output_rate", 0.1}}}}),
                    Contains("layerwise"));
  CHECK_THROWS_WITH(test::tiny_config({{"lottery", {{"train", {{"epochs", -1}}}}}}), Contains("lottery.train.epochs"));
  CHECK_THROWS_WITH(test::tiny_config({{"lottery", {{"typo", 1}}}}), Contains("lottery.typo"));
}

TEST_CASE("rounds episodes: lottery_q reward, termination at the target, truncation at the limit", "[lottery][env]") {
  const nlohmann::json rounds = {{"env",
                                  {{"episode", "rounds"},
                                   {"criterion", "magnitude_target"},
                                   {"max_steps", 4},
                                   {"reward", {{"name", nullptr}, {"target_sparsity", 0.5}}}}},
                                 {"lottery", {{"train", {{"epochs", 1}, {"samples", 300}, {"batch_size", 50}}}}}};
  PruneEnv env(test::tiny_config(rounds));
  CHECK_FALSE(env.schedule().replays_by_values());
  CHECK(env.config().env.reward.name == "lottery_q");
  CHECK(env.episode_length() == 4);
  CHECK(env.action_space().values() == std::vector<double>{0.1, 0.2, 0.3, 0.4, 0.5});
  CHECK_THROWS_AS(env.apply_values({0.1}), EpisodeError);

  SECTION("20% per round reaches 50% in the fourth round") {
    env.reset();
    std::vector<double> sparsity;
    StepResult r;
    do {
      r = env.step(Action(1));  // rate 0.2
      sparsity.push_back(r.observation[2]);
      CHECK(r.observation[0] == static_cast<float>(sparsity.size()));
      CHECK(r.info.round == static_cast<int64_t>(sparsity.size()));  // rounds report the round, not a layer
      CHECK(r.info.layer.empty());
      CHECK(r.info.step_sparsity == Approx(r.observation[2]));
      CHECK(r.reward ==
            Approx(-(1 - r.info.accuracy) * static_cast<double>(r.info.remaining) / static_cast<double>(r.info.total)));
    } while (!r.terminated && !r.truncated);
    REQUIRE(sparsity.size() == 4);
    CHECK(sparsity[0] == Approx(0.2).margin(1e-3));
    CHECK(sparsity[3] == Approx(1 - std::pow(0.8, 4)).margin(1e-3));
    CHECK(r.terminated);
    CHECK_FALSE(r.truncated);
    CHECK_THROWS_AS(env.step(Action(0)), EpisodeError);
  }
  SECTION("10% per round stops at the round limit, truncated") {
    env.reset();
    StepResult r;
    int steps = 0;
    do {
      r = env.step(Action(0));
      ++steps;
    } while (!r.terminated && !r.truncated);
    CHECK(steps == 4);
    CHECK(r.truncated);
    CHECK_FALSE(r.terminated);
    CHECK(r.info.sparsity == Approx(1 - std::pow(0.9, 4)).margin(1e-3));
  }
  SECTION("the survivors are rewound to the initialisation before retraining") {
    PruneEnv no_train(
        test::tiny_config(nlohmann::json{{"env", rounds["env"]}, {"lottery", {{"train", {{"epochs", 0}}}}}}));
    no_train.reset();
    no_train.step(Action(4));
    auto fresh = build_network(no_train.config().network, no_train.data().shape, no_train.data().classes);
    const auto& l = no_train.network().prunable_layers()[0];
    CHECK(torch::equal(l.weight, fresh->prunable_layers()[0].weight * l.mask));
  }
}
