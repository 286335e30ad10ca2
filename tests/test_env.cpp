// env/ parts: spaces, criteria, rewards, config validation.

#include "helpers.h"

#include <prunegym/core/errors.h>
#include <prunegym/env/config.h>
#include <prunegym/env/criteria.h>
#include <prunegym/env/rewards.h>
#include <prunegym/env/spaces.h>

#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

using namespace prunegym;
using Catch::Matchers::Contains;

TEST_CASE("the default alpha grid has 23 actions and step 0.2 gives 12", "[spaces]") {
  auto fine = Space::discrete(Space::grid(0.0, 2.2, 0.1));
  CHECK(fine.n() == 23);
  CHECK(fine.values()[3] == Approx(0.3));
  CHECK(fine.values().back() == Approx(2.2));
  auto coarse = Space::discrete(Space::grid(0.0, 2.2, 0.2));
  CHECK(coarse.n() == 12);
  CHECK(coarse.values().back() == Approx(2.2));
}

TEST_CASE("Discrete contains, samples and explains out-of-range actions", "[spaces]") {
  auto s = Space::discrete(Space::grid(0.0, 2.2, 0.1));
  CHECK(s.contains(Action(0)));
  CHECK(s.contains(Action(22)));
  CHECK_FALSE(s.contains(Action(23)));
  CHECK_FALSE(s.contains(Action(-1)));
  CHECK_FALSE(s.contains(Action::continuous({1.0})));
  CHECK_THAT(s.explain(Action(23)), Contains("0..22"));
  REQUIRE_THROWS_AS(s.value_of(Action(99)), ActionError);
  std::mt19937_64 gen(3);
  std::set<int64_t> seen;
  for (int i = 0; i < 500; ++i) {
    auto a = s.sample(gen);
    REQUIRE(s.contains(a));
    seen.insert(a.index);
  }
  CHECK(seen.size() == 23);
}

TEST_CASE("Box bounds, sampling and JSON round trip", "[spaces]") {
  auto b = Space::box({0.0, 0.0}, {2.2, 1.0});
  CHECK(b.shape() == std::vector<int64_t>{2});
  CHECK(b.contains(Action::continuous({1.0, 0.5})));
  CHECK_FALSE(b.contains(Action::continuous({2.3, 0.5})));
  CHECK_FALSE(b.contains(Action::continuous({1.0})));
  CHECK_FALSE(b.contains(Action::continuous({std::nan(""), 0.5})));
  CHECK(b.contains(Observation{0.5f, 1.0f}));
  CHECK_FALSE(b.contains(Observation{0.5f, 1.5f}));
  std::mt19937_64 gen(1);
  for (int i = 0; i < 100; ++i) REQUIRE(b.contains(b.sample(gen)));
  CHECK(Space::from_json(b.to_json()) == b);
  auto d = Space::discrete({0.0, 0.5, 1.0});
  CHECK(Space::from_json(d.to_json()) == d);
  CHECK(d.to_json()["n"] == 3);
  REQUIRE_THROWS_AS(Space::from_json(nlohmann::json{{"type", "Tuple"}}), ConfigError);
  REQUIRE_THROWS_AS(Space::box({1.0}, {0.0}), ConfigError);
}

namespace {

/// One 2x5 linear layer with weights 1..10 (odd ones negative) and one 5x1 layer.
NetworkPtr hand_network() {
  NetworkOptions o;
  o.name = "custom";
  o.options["layers"] = nlohmann::json::array({"linear:2", "linear"});
  auto net = build_network(o, {1, 1, 5}, 2);
  torch::NoGradGuard g;
  auto& w = net->prunable_layers()[0].weight;
  w.copy_(torch::tensor({1.f, -2.f, 3.f, -4.f, 5.f, -6.f, 7.f, -8.f, 9.f, -10.f}).view({2, 5}));
  net->prunable_layers()[1].weight.copy_(torch::tensor({0.1f, -0.2f, 0.3f, -0.4f}).view({2, 2}));
  return net;
}

}  // namespace

TEST_CASE("std_threshold prunes |w| < alpha * std of the surviving weights", "[criteria]") {
  auto net = hand_network();
  auto& l = net->prunable_layers()[0];
  const double sigma = l.weight.std().item<double>();  // std of 1..10 with signs
  StdThresholdCriterion c;
  c.apply(*net, {0}, 4.5 / sigma);  // threshold 4.5: removes |w| in {1,2,3,4}
  CHECK(l.remaining() == 6);
  CHECK(l.weight.abs().min().item<float>() == 0.0f);
  CHECK(l.weight.flatten()[4].item<float>() == 5.0f);
  CHECK(net->prunable_layers()[1].remaining() == 4);  // other layers untouched
  // The second application uses the std of the 6 survivors only.
  auto alive = l.weight.masked_select(l.mask.gt(0));
  const double sigma2 = alive.std().item<double>();
  c.apply(*net, {0}, 6.5 / sigma2);
  CHECK(l.remaining() == 4);
  c.apply(*net, {0}, 0.0);
  CHECK(l.remaining() == 4);  // alpha 0 prunes nothing
}

TEST_CASE("magnitude_target reaches the layer sparsity exactly", "[criteria]") {
  auto net = hand_network();
  MagnitudeTargetCriterion c;
  c.apply(*net, {0}, 0.3);
  auto& l = net->prunable_layers()[0];
  CHECK(l.remaining() == 7);
  CHECK(l.mask.flatten()[2].item<float>() == 0.0f);  // |3| went
  CHECK(l.mask.flatten()[3].item<float>() == 1.0f);  // |4| stays
  c.apply(*net, {0}, 0.1);                           // lower target: nothing is restored
  CHECK(l.remaining() == 7);
  c.apply(*net, {0, 1}, 0.5);
  CHECK(l.remaining() == 5);
  CHECK(net->prunable_layers()[1].remaining() == 2);
  REQUIRE_THROWS_AS(c.apply(*net, {0}, 1.5), ActionError);
}

TEST_CASE("global_magnitude uses one threshold over all layers", "[criteria]") {
  auto net = hand_network();
  GlobalMagnitudeCriterion c;
  // 14 weights; 30% -> 4 smallest overall are the four in the second layer (0.1..0.4).
  c.apply(*net, {0, 1}, 4.0 / 14.0);
  CHECK(net->prunable_layers()[1].remaining() == 0);
  CHECK(net->prunable_layers()[0].remaining() == 10);
  // Applied to layer 0 only, a 50% global target cuts the next three (1, 2, 3) in layer 0.
  c.apply(*net, {0}, 7.0 / 14.0);
  CHECK(net->prunable_layers()[0].remaining() == 7);
}

TEST_CASE("PuRL rewards match hand-computed values", "[rewards]") {
  RewardSetup s;
  s.target_accuracy = 0.8;
  s.target_sparsity = 0.9;
  s.beta = 2.0;
  // A = 0.6, P = 0.45: accuracy penalty 0.25, sparsity penalty 0.5.
  CHECK(purl_reward(0.6, 0.45, s) == Approx(-2.0 * (0.25 + 0.5)));
  // Above both targets the capped reward is 0 and the upside variants turn positive.
  CHECK(purl_reward(0.88, 0.95, s) == Approx(0.0));
  CHECK(purl_upside_reward(0.88, 0.95, s) == Approx(-2.0 * (1 - 1.1)));
  CHECK(purl_cubic_reward(0.88, 0.95, s) == Approx(-2.0 * (1 - 1.1 * 1.1 * 1.1)));
  CHECK(purl_upside_reward(0.6, 0.45, s) == Approx(-2.0 * (0.25 + 0.5)));
  CHECK(purl_cubic_reward(0.4, 0.9, s) == Approx(-2.0 * (1 - 0.125)));
  CHECK(lottery_q_reward(0.9, 25, 100) == Approx(-0.1 * 0.25));
  CHECK(amc_log_reward(0.9, 1000) == Approx(-0.1 * std::log(1000.0)));
}

TEST_CASE("rewards come from the registry and users can add their own", "[rewards]") {
  auto& r = RewardRegistry::instance();
  for (const char* name : {"purl", "purl_upside", "purl_cubic", "lottery_q", "amc_log"}) CHECK(r.contains(name));
  auto purl = r.make("purl", nlohmann::json::object());
  RewardSetup s;
  s.target_accuracy = 0.8;
  s.target_sparsity = 0.9;
  purl->reset(s);
  RewardInput in;
  in.accuracy = 0.6;
  in.sparsity = 0.45;
  CHECK(purl->compute(in) == Approx(-0.75));
  REQUIRE_THROWS_WITH(r.make("nope", nlohmann::json::object()), Contains("purl") && Contains("nope"));
  REQUIRE_THROWS_WITH(r.make("purl", {{"gamma", 1}}), Contains("env.reward.gamma"));

  struct Sparsest : RewardFn {
    double compute(const RewardInput& in) override { return in.sparsity; }
    std::unique_ptr<RewardFn> clone() const override { return std::make_unique<Sparsest>(*this); }
  };
  register_reward<Sparsest>("test_sparsest", "the sparsity itself");
  auto mine = r.make("test_sparsest", nlohmann::json::object());
  CHECK(mine->compute(in) == Approx(0.45));
}

TEST_CASE("config errors name the offending key", "[config]") {
  auto base = test::tiny_json();
  SECTION("unknown key") {
    base["env"]["rewrad"] = nlohmann::json::object();
    REQUIRE_THROWS_WITH(Config::from_json(base), Contains("env.rewrad"));
  }
  SECTION("wrong type") {
    base["env"]["retrain"]["samples"] = "many";
    REQUIRE_THROWS_WITH(Config::from_json(base), Contains("env.retrain.samples") && Contains("integer"));
  }
  SECTION("unknown enum value") {
    base["env"]["criterion"] = "random_pick";
    REQUIRE_THROWS_WITH(Config::from_json(base), Contains("env.criterion") && Contains("std_threshold"));
  }
  SECTION("unknown reward") {
    base["env"]["reward"]["name"] = "accuracy_only";
    REQUIRE_THROWS_WITH(Config::from_json(base), Contains("accuracy_only") && Contains("purl_upside"));
  }
  SECTION("inconsistent values") {
    base["env"]["actions"] = {{"values", {0.5, 1.0}}, {"step", 0.1}};
    REQUIRE_THROWS_WITH(Config::from_json(base), Contains("env.actions.values"));
  }
  SECTION("nested unknown key") {
    base["data"]["synthetic"]["colour"] = true;
    REQUIRE_THROWS_WITH(Config::from_json(base), Contains("data.synthetic.colour"));
  }
  SECTION("not an object") {
    base["network"] = 3;
    REQUIRE_THROWS_WITH(Config::from_json(base), Contains("network"));
  }
}

TEST_CASE("config survives a JSON round trip", "[config]") {
  const auto c = test::tiny_config();
  const auto again = Config::from_json(c.to_json());
  CHECK(again.to_json() == c.to_json());
  CHECK(again.env.retrain.samples == 200);
  CHECK(again.network.options["layers"].size() == 6);
}

TEST_CASE("config files report JSON syntax errors with the file name", "[config]") {
  const auto path = test::scratch_dir("cfg") + "/broken.json";
  std::ofstream(path) << "{\"seed\": 1,,}";
  REQUIRE_THROWS_WITH(Config::load(path), Contains("broken.json") && Contains("invalid JSON"));
  REQUIRE_THROWS_WITH(Config::load(path + ".missing"), Contains("cannot open"));
}

TEST_CASE("every shipped config parses", "[config]") {
  // configs/*.json (configs/bench/ holds grid files, which prunegym bench reads). Parsing checks every
  // key and value; the data and model files a config names are only opened when it runs.
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(PRUNEGYM_SOURCE_DIR) + "/configs")) {
    if (entry.path().extension() != ".json") continue;
    INFO(entry.path().string());
    REQUIRE_NOTHROW(Config::load(entry.path().string()));
    ++count;
  }
  CHECK(count >= 15);
}
