// AMC's observation (env.observation "layer_features"): 11 features of the layer the next step
// prunes, min-max normalised over the episode's layers, with the MACs removed and still to come
// and the previous action; the conformance suite covers its space over every schedule.

#include "helpers.h"

#include <prunegym/env/prune_env.h>
#include <prunegym/networks/cost.h>

#include <catch2/catch.hpp>

using namespace prunegym;
using json = nlohmann::json;

TEST_CASE("layer_features describes the layer to prune next as AMC does", "[env][observation]") {
  // conv (4 filters 3x3 on 12x12) -> flatten -> linear to 16 -> linear 16x10
  const json patch{
      {"network",
       {{"name", "custom"}, {"layers", json::array({"conv:4:3:1", "relu", "flatten", "linear:16", "relu", "linear"})}}},
      {"env", {{"observation", "layer_features"}}}};
  PruneEnv env(test::tiny_config(patch));
  REQUIRE(env.observation_space().shape() == std::vector<int64_t>{11});
  const auto first = env.reset().observation;
  REQUIRE(first.size() == 11);
  const auto cost = network_cost(env.network());
  REQUIRE(cost.layers.size() == 3);
  const double total = static_cast<double>(cost.macs);
  CHECK(first[0] == 0.0f);  // index 0 of 0..2
  CHECK(first[1] == 0.0f);  // a convolution
  CHECK(first[4] == 1.0f);  // the most output positions (the feature map against 1)
  CHECK(first[5] == 1.0f);  // the largest kernel (3 against 1)
  CHECK(first[8] == 0.0f);  // nothing removed yet
  CHECK(first[9] == Approx((cost.layers[1].macs + cost.layers[2].macs) / total));
  CHECK(first[10] == 0.0f);  // no previous action

  const double high = env.action_space().values().back();
  const auto after = env.step(Action(static_cast<int64_t>(env.action_space().values().size() - 1))).observation;
  CHECK(after[0] == Approx(0.5));  // the linear layer in the middle
  CHECK(after[1] == 1.0f);
  CHECK(after[2] == 1.0f);  // the most input columns (the flattened map)
  CHECK(after[4] == 0.0f);
  const auto now = network_cost(env.network());
  CHECK(after[8] == Approx((now.macs - now.remaining_macs) / total));
  CHECK(after[8] > 0.0f);
  CHECK(after[9] == Approx(cost.layers[2].macs / total));
  CHECK(after[10] == Approx(high / high));
  for (float f : after) {
    CHECK(f >= 0.0f);
    CHECK(f <= 1.0f);
  }
  CHECK_THROWS(PruneEnv(test::tiny_config({{"env", {{"observation", {{"name", "layer_features"}, {"x", 1}}}}}})));
}
