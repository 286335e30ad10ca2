// Parts that own their options (tests/parts/: one file each, registered there) used through
// config keys: a slot takes a name or {"name", ...options}; options are validated when the config
// loads, with errors naming the full key path, and written back in canonical form.

#include "helpers.h"

#include <prunegym/core/errors.h>
#include <prunegym/env/prune_env.h>

#include <catch2/catch.hpp>

using namespace prunegym;
using Catch::Matchers::Contains;
using json = nlohmann::json;

TEST_CASE("a criterion and an observation with their own options work through config keys", "[parts][config]") {
  const Config config = test::tiny_config(json::parse(R"({"env": {
      "criterion": {"name": "test_scaled_magnitude", "scale": 0.5},
      "observation": {"name": "test_progress", "with_accuracy": true}}})"));
  CHECK(config.env.criterion == "test_scaled_magnitude");
  CHECK(config.env.criterion_options == json{{"scale", 0.5}});
  CHECK(config.env.observation_options == json{{"with_accuracy", true}});
  const json written = config.to_json();
  CHECK(written["env"]["criterion"] == json{{"name", "test_scaled_magnitude"}, {"scale", 0.5}});
  CHECK(Config::from_json(written).to_json() == written);  // the canonical form reads back as itself

  PruneEnv env(config);
  CHECK(env.observation_space().shape() == std::vector<int64_t>{2});
  const auto start = env.reset({0});
  CHECK(start.observation == Observation{0.0f, static_cast<float>(env.dense_accuracy())});
  const auto& values = env.action_space().values();
  const auto it = std::find(values.begin(), values.end(), 1.0);
  REQUIRE(it != values.end());
  const auto r = env.step(Action(it - values.begin()));  // sparsity 1.0, scaled to 0.5
  CHECK(r.info.layer_sparsities[0] == Approx(0.5).margin(0.01));
  CHECK(r.observation[0] == Approx(1.0 / 3.0));
  CHECK(r.observation[1] == static_cast<float>(r.info.accuracy));
}

TEST_CASE("a part named without options takes its defaults, written back in full", "[parts][config]") {
  const Config config = test::tiny_config(json{{"env", {{"criterion", "test_scaled_magnitude"}}}});
  CHECK(config.env.criterion_options == json{{"scale", 1.0}});
  CHECK(config.to_json()["env"]["criterion"] == json{{"name", "test_scaled_magnitude"}, {"scale", 1.0}});
  // Built-ins without options keep the bare name, so every shipped document stays as it was.
  CHECK(test::tiny_config().to_json()["env"]["criterion"] == "std_threshold");
}

TEST_CASE("part options are checked when the config loads, naming the key path", "[parts][config][errors]") {
  auto load = [](const json& env) { return test::tiny_config(json{{"env", env}}); };
  CHECK_THROWS_WITH(load(json{{"criterion", {{"name", "test_scaled_magnitude"}, {"scal", 0.5}}}}),
                    Contains("env.criterion.scal"));
  CHECK_THROWS_WITH(load(json{{"criterion", {{"name", "test_scaled_magnitude"}, {"scale", 2.0}}}}),
                    Contains("env.criterion.scale") && Contains("(0, 1]"));
  CHECK_THROWS_WITH(load(json{{"observation", {{"name", "test_progress"}, {"with_accuracy", 1}}}}),
                    Contains("env.observation.with_accuracy"));
  CHECK_THROWS_WITH(load(json{{"criterion", {{"scale", 0.5}}}}), Contains("env.criterion") && Contains("name"));
  CHECK_THROWS_WITH(load(json{{"criterion", 3}}), Contains("env.criterion"));
  CHECK_THROWS_WITH(load(json{{"criterion", {{"name", "nope"}}}}), Contains("nope") && Contains("std_threshold"));
  // A built-in without options refuses any.
  CHECK_THROWS_WITH(load(json{{"criterion", {{"name", "std_threshold"}, {"alpha", 1}}}}), Contains("takes no options"));
}

TEST_CASE("a schedule's registered default reward applies when the config names none", "[parts][config]") {
  // The tiny config names its reward; null removes the key (a JSON merge patch).
  const json unnamed = {{"name", nullptr}};
  CHECK(test::tiny_config(json{{"env", {{"episode", "rounds"}, {"reward", unnamed}}}}).env.reward.name == "lottery_q");
  CHECK(test::tiny_config(json{{"env", {{"episode", "layerwise"}, {"reward", unnamed}}}}).env.reward.name == "purl");
  CHECK(ScheduleRegistry::instance().traits("rounds").at("default_reward") == "lottery_q");
}

TEST_CASE("a data source registered in one file is used through data.source", "[parts][data]") {
  const Config config = test::tiny_config(json::parse(R"({"data": {"source": "test_stripes", "validation": 100}})"));
  PruneEnv env(config);
  CHECK(env.data().description == "stripes");
  CHECK(env.data().classes == 4);
  CHECK(env.data().train.size() == 700);
  CHECK(env.data().validation.size() == 100);
  CHECK(env.data().test.size() == 200);
  CHECK(env.dense_accuracy() > 0.9);  // the bands are easy: the tiny MLP learns them
  CHECK_THAT(data_fingerprint(config.data), Contains("source=test_stripes") && Contains(";stripes=1"));
  CHECK_FALSE(source_reads_files("test_stripes"));
  CHECK_THROWS_WITH(test::tiny_config(json{{"data", {{"source", "stripez"}}}}),
                    Contains("data.source") && Contains("stripez") && Contains("test_stripes"));
}

TEST_CASE("the train and agents sections are checked when the config loads", "[parts][config][errors]") {
  CHECK_THROWS_WITH(test::tiny_config(json{{"train", {{"episodse", 5}}}}), Contains("train.episodse"));
  CHECK_THROWS_WITH(test::tiny_config(json{{"train", {{"episodes", 0}}}}), Contains("train.episodes"));
  CHECK_THROWS_WITH(test::tiny_config(json{{"agents", {{"dqn", 3}}}}), Contains("agents.dqn"));
  CHECK_THROWS_WITH(test::tiny_config(json{{"agents", {{"dqn", {{"episodes", -1}}}}}}),
                    Contains("agents.dqn.episodes"));
  CHECK(test::tiny_config(json{{"train", {{"episodes", 7}}}}).train["episodes"] == 7);
}

TEST_CASE("a network kind registered in one file owns its options", "[parts][networks][config]") {
  // null drops the tiny config's custom layer list (a JSON merge patch).
  const auto mlp = [](const json& extra) {
    json network = {{"name", "test_hidden_mlp"}, {"layers", nullptr}};
    network.update(extra);
    return test::tiny_config(json{{"network", network}});
  };
  const Config config = mlp({{"hidden", 24}});
  CHECK(config.network.options == json{{"hidden", 24}});
  const json written = config.to_json();
  CHECK(written["network"]["hidden"] == 24);
  CHECK(written["network"]["layers"] == json::array());  // every document keeps the key
  CHECK(Config::from_json(written).to_json() == written);
  CHECK(mlp(json::object()).network.options == json{{"hidden", 16}});  // the default, written back in full

  PruneEnv env(config);
  REQUIRE(env.network().prunable_layers().size() == 2);
  CHECK(env.network().prunable_layers()[0].weight.size(0) == 24);
  const auto work = network_work(config.network);
  REQUIRE(work.size() == 1);
  CHECK(work[0].key == "network.hidden");
  CHECK(work[0].value == 24);
  CHECK(work[0].limit == "layer_width");

  CHECK_THROWS_WITH(mlp({{"hidden", 0}}), Contains("network.hidden") && Contains("positive"));
  CHECK_THROWS_WITH(mlp({{"hidden", "wide"}}), Contains("network.hidden"));
  CHECK_THROWS_WITH(mlp({{"width", 0.5}}),
                    Contains("'network.width' does not apply to network 'test_hidden_mlp'") && Contains("resnet50"));
  CHECK_THROWS_WITH(test::tiny_config(json{{"network", {{"hidden", 8}}}}),
                    Contains("'network.hidden' does not apply to network 'custom'") && Contains("test_hidden_mlp"));
}
