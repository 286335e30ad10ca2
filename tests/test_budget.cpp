// env.budget (AMC's action wall, env/budget.h) and AMC's rewards: a budgeted episode never ends
// above its budget whatever the agent asks, for every resource and fraction criterion; replays
// meet it too; the budgeted env keeps the Env contract; bad budgets are refused with the fix; a
// latency budget's table is measured once, cached, and predicts from the masks.

#include "conformance/check_env.h"
#include "helpers.h"

#include <prunegym/core/errors.h>
#include <prunegym/env/budget.h>
#include <prunegym/env/prune_env.h>
#include <prunegym/networks/cost.h>
#include <prunegym/networks/latency.h>

#include <catch2/catch.hpp>

#include <random>

using namespace prunegym;
using json = nlohmann::json;

namespace {

/// A convolution (8 filters) feeding two linear layers, so MACs and weights differ.
json budget_patch(const std::string& resource, double ratio, const json& criterion, const std::string& actions) {
  return {
      {"network",
       {{"name", "custom"}, {"layers", json::array({"conv:8:3:1", "relu", "flatten", "linear:16", "relu", "linear"})}}},
      {"env",
       {{"criterion", criterion},
        {"actions", {{"type", actions}}},
        {"budget", {{"resource", resource}, {"ratio", ratio}}}}}};
}

const json kChannels = {{"name", "channel_norm"}, {"action", "fraction"}};

/// A latency budget on a network wide enough that removing channels clearly saves time (the
/// tiny one's layers take about a microsecond, mostly fixed cost), with a coarse table.
/// One LibTorch thread while it lives: a table timed on two threads with the other core busy (a
/// parallel ctest) would measure scheduler stalls, not the layers.
struct OneThread {
  int before = torch::get_num_threads();
  OneThread() { torch::set_num_threads(1); }
  ~OneThread() { torch::set_num_threads(before); }
};

json latency_patch(double ratio) {
  auto patch = budget_patch("latency", ratio, kChannels, "box");
  patch["network"]["layers"] = json::array({"conv:32:3:1", "relu", "flatten", "linear:128", "relu", "linear"});
  patch["env"]["budget"]["latency_points"] = 4;
  return patch;
}
const json kWeights = "magnitude_target";

/// Runs one episode, the agent asking `ask(step)` as a share of the action range; returns the
/// last step and whether the wall raised any value.
std::pair<StepResult, bool> run_episode(PruneEnv& env, const std::function<double(int64_t)>& ask) {
  env.reset();
  const auto& space = env.action_space();
  StepResult r;
  bool clipped = false;
  for (int64_t k = 0; !env.episode_over(); ++k) {
    const double share = ask(k);
    if (space.kind() == Space::Kind::discrete) {
      r = env.step(Action(std::llround(share * static_cast<double>(space.n() - 1))));
    } else {
      r = env.step(Action::continuous({space.low()[0] + share * (space.high()[0] - space.low()[0])}));
    }
    clipped = clipped || r.info.clipped;
  }
  return {r, clipped};
}

}  // namespace

TEST_CASE("a budgeted episode never ends above its budget, whatever the agent asks", "[env][budget]") {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  for (const std::string resource : {"macs", "params"}) {
    for (const json& criterion : {kChannels, kWeights}) {
      for (const std::string actions : {"discrete", "box"}) {
        INFO(resource << " x " << criterion.dump() << " x " << actions);
        PruneEnv env(test::tiny_config(budget_patch(resource, 0.5, criterion, actions)));
        REQUIRE(env.budget());
        const auto* wall = env.budget();
        const auto check = [&](const std::pair<StepResult, bool>& end) {
          CHECK(wall->resource(env.network()) <= wall->limit());
          CHECK(end.first.info.resource_ratio <= 0.5);
          CHECK(end.first.info.resource_ratio == Approx(wall->ratio(env.network())));
        };
        // Nothing asked: the wall does all the pruning and ends on the limit, to within a unit.
        const auto idle = run_episode(env, [](int64_t) { return 0.0; });
        check(idle);
        CHECK(idle.second);
        // Within one unit of the last episode layer: a weight, or a channel of linear:16 (its row
        // and its column in the classifier).
        const auto cost = network_cost(env.network());
        const bool macs = resource == "macs";
        const double dense = static_cast<double>(macs ? cost.macs : cost.prunable);
        const double unit = criterion == kChannels ? (macs ? cost.layers[1].macs + cost.layers[2].macs
                                                           : cost.layers[1].weights + cost.layers[2].weights) /
                                                         16.0 / dense
                                                   : 1.0 / dense;
        CHECK(idle.first.info.resource_ratio > 0.5 - unit);
        // The first layer at the highest action, then nothing: no wall is needed after it.
        check(run_episode(env, [](int64_t k) { return k == 0 ? 1.0 : 0.0; }));
        // Everything at the highest action: never raised.
        const auto all = run_episode(env, [](int64_t) { return 1.0; });
        check(all);
        CHECK_FALSE(all.second);
        for (int i = 0; i < 3; ++i) check(run_episode(env, [&](int64_t) { return uniform(rng); }));
      }
    }
  }
}

TEST_CASE("the wall reports what it raised, and replays meet the budget as the episode did", "[env][budget]") {
  PruneEnv env(test::tiny_config(budget_patch("macs", 0.4, kChannels, "box")));
  env.reset();
  std::vector<double> requested, applied;
  while (!env.episode_over()) {
    const auto r = env.step(Action::continuous({0.0}));
    requested.push_back(r.info.requested);
    applied.push_back(r.info.value);
    CHECK(r.info.requested == 0.0);
    CHECK(r.info.clipped == (r.info.value > 0.0));
  }
  CHECK(std::count_if(applied.begin(), applied.end(), [](double v) { return v > 0; }) >= 1);
  const auto episode_masks = network_cost(env.network());
  env.apply_values(requested);  // what the agent asked: the wall raises it again
  CHECK(network_cost(env.network()).remaining_macs == episode_masks.remaining_macs);
  env.apply_values(applied);  // what was applied: the wall leaves it
  CHECK(network_cost(env.network()).remaining_macs == episode_masks.remaining_macs);
  CHECK(env.budget()->resource(env.network()) <= env.budget()->limit());
}

TEST_CASE("a latency budget: the table is measured once, predicts from the masks, and the wall meets it",
          "[env][budget][latency]") {
  // Interpolation between grid points, clamped outside them.
  LatencyLayer l;
  l.in_points = {2, 4};
  l.out_points = {2, 4};
  l.seconds = {1.0, 2.0, 3.0, 4.0};
  CHECK(l.at(3, 3) == Approx(2.5));
  CHECK(l.at(1, 1) == 1.0);
  CHECK(l.at(4, 9) == 4.0);
  CHECK(l.at(2, 3) == Approx(1.5));

  const OneThread one_thread;
  const auto patch = latency_patch(0.8);
  PruneEnv env(test::tiny_config(patch));
  const auto* table = env.budget()->latency_table();
  REQUIRE(table);
  REQUIRE(table->layers.size() == 3);
  // Which dimensions can shrink: the convolution's filters (not the image's one channel), both
  // dimensions of linear:16, the classifier's inputs (not its classes).
  CHECK(table->layers[0].in_points.size() == 1);
  CHECK(table->layers[0].out_points == std::vector<int64_t>{8, 16, 24, 32});
  CHECK(table->layers[1].in_points.size() == 4);
  CHECK(table->layers[1].out_points.size() == 4);
  CHECK(table->layers[2].out_points.size() == 1);
  for (const auto& layer : table->layers)  // monotone: fewer channels never cost more
    for (size_t i = 1; i < layer.seconds.size(); ++i)
      if (i % layer.out_points.size() != 0) CHECK(layer.seconds[i] >= layer.seconds[i - 1]);
  // Dense masks: the prediction is the measured dense forward pass.
  CHECK(table->predict(env.network()) == Approx(table->dense_seconds));
  CHECK(LatencyTable::from_json(table->to_json()).to_json() == table->to_json());

  // Episodes end within the budget, whatever is asked, and report the predicted ratio.
  std::mt19937 rng(2);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  for (int i = 0; i < 3; ++i) {
    const auto end = run_episode(env, [&](int64_t) { return i == 0 ? 0.0 : uniform(rng); });
    CHECK(env.budget()->resource(env.network()) <= env.budget()->limit());
    CHECK(end.first.info.resource_ratio == Approx(env.budget()->ratio(env.network())));
    CHECK(end.first.info.resource_ratio <= 0.8);
    const auto layers = table->predict_layers(env.network());
    CHECK(layers[1] <= table->layers[1].seconds.back());  // channels went, so did time
  }

  // A second environment reads the table back from beside the dense model.
  std::vector<std::string> again;
  PruneEnvHooks hooks;
  hooks.log = [&](const std::string& line) { again.push_back(line); };
  PruneEnv second(test::tiny_config(patch), hooks);
  CHECK(
      std::any_of(again.begin(), again.end(), [](const std::string& s) { return s.find("from the cache") != s.npos; }));
  CHECK(second.budget()->latency_table()->to_json() == table->to_json());
}

TEST_CASE("a budgeted env keeps the Env contract", "[env][budget][conformance]") {
  for (const std::string actions : {"discrete", "box"}) {
    PruneEnv env(test::tiny_config(budget_patch("params", 0.3, kWeights, actions)));
    const auto report = conformance::check_env(env);
    INFO(report.text());
    CHECK(report.ok());
  }
  const OneThread one_thread;
  PruneEnv env(test::tiny_config(latency_patch(0.8)));
  const auto report = conformance::check_env(env);
  INFO(report.text());
  CHECK(report.ok());
}

TEST_CASE("bad budgets are refused with the fix", "[env][budget][errors]") {
  const auto refused = [](const json& patch, const std::string& needle) {
    INFO(patch.dump());
    try {
      PruneEnv env(test::tiny_config(patch));
      FAIL("no error");
    } catch (const ConfigError& e) {
      CHECK_THAT(e.what(), Catch::Contains(needle));
    }
  };
  refused(budget_patch("macs", 0.5, "std_threshold", "discrete"), "share a layer loses");
  refused(budget_patch("macs", 0.01, kChannels, "discrete"), "raise env.budget.ratio");
  auto one_point = budget_patch("latency", 0.5, kChannels, "discrete");
  one_point["env"]["budget"]["latency_points"] = 1;
  refused(one_point, "2..32");
  auto table_keys = budget_patch("macs", 0.5, kChannels, "discrete");
  table_keys["env"]["budget"]["latency_batch"] = 8;
  refused(table_keys, "describe the latency table");
  refused(budget_patch("flops", 0.5, kChannels, "discrete"), "env.budget.resource");
  refused(budget_patch("macs", 0.0, kChannels, "discrete"), "(0, 1]");
  refused({{"env", {{"budget", {{"ratio", 0.5}}}}}}, "needs env.budget.resource");
  refused({{"env", {{"budget", {{"resource", "macs"}, {"ratio", 0.5}, {"limit", 3}}}}}}, "limit");
  auto rounds = budget_patch("params", 0.5, kWeights, "discrete");
  rounds["env"]["episode"] = "rounds";
  refused(rounds, "layer-wise episodes");

  // Recorded only when set: configs without a budget keep their run keys.
  CHECK_FALSE(test::tiny_config().to_json().at("env").contains("budget"));
  const auto c = test::tiny_config(budget_patch("params", 0.25, kWeights, "discrete"));
  CHECK(c.to_json().at("env").at("budget") == json{{"resource", "params"}, {"ratio", 0.25}});
  CHECK(Config::from_json(c.to_json()).env.budget.ratio == 0.25);
}

TEST_CASE("AMC's rewards score the episode's end: -error, or -error x log(resource)", "[env][rewards]") {
  for (const std::string name : {"amc_error", "amc_macs", "amc_params"}) {
    INFO(name);
    auto patch = budget_patch("macs", 0.5, kChannels, "discrete");
    patch["env"]["reward"] = {{"name", name}};
    PruneEnv env(test::tiny_config(patch));
    env.reset();
    const auto first = env.step(Action(3));
    CHECK(first.reward == 0.0);  // end-of-episode by default
    StepResult last = first;
    while (!env.episode_over()) last = env.step(Action(3));
    const double error = 1.0 - last.info.accuracy;
    REQUIRE(error > 0);
    const double expected = name == "amc_error"  ? -error
                            : name == "amc_macs" ? -error * std::log(static_cast<double>(last.info.macs))
                                                 : -error * std::log(static_cast<double>(last.info.remaining));
    CHECK(last.reward == Approx(expected));

    patch["env"]["reward"]["every_step"] = true;
    PruneEnv dense(test::tiny_config(patch));
    dense.reset();
    CHECK(dense.step(Action(3)).reward < 0.0);  // dense timing evaluates every step
  }
  CHECK_THROWS_WITH(test::tiny_config({{"env", {{"reward", {{"name", "amc_error"}, {"every", true}}}}}}),
                    Catch::Contains("takes every_step"));
  CHECK_THROWS_WITH(test::tiny_config({{"env", {{"reward", {{"name", "amc_macs"}, {"every_step", 1}}}}}}),
                    Catch::Contains("true or false"));
}
