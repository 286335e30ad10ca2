// Integration on a slice of real Fashion-MNIST (installed by scripts/test from Debian's
// dataset-fashion-mnist).

#include "helpers.h"

#include <prunegym/env/prune_env.h>

#include <catch2/catch.hpp>

#include <filesystem>

using namespace prunegym;

TEST_CASE("LeNet-300-100 on a Fashion-MNIST slice: pruning trades accuracy for sparsity", "[integration]") {
  const std::string root = "/usr/share/datasets/fashion-mnist";
  REQUIRE(std::filesystem::exists(root + "/train-images-idx3-ubyte.gz"));  // scripts/test installs it
  auto j = nlohmann::json::parse(R"({
    "threads": 2,
    "data": {"source": "idx", "path": "/usr/share/datasets/fashion-mnist",
             "validation": 1000, "train_limit": 6000, "test_limit": 2000},
    "network": {"name": "lenet300", "pretrain": {"epochs": 3}},
    "env": {"retrain": {"samples": 500}}
  })");
  j["cache_dir"] = test::scratch_dir("cache-fashion");
  PruneEnv env(Config::from_json(j));
  CHECK(env.data().train.size() == 6000);
  CHECK(env.data().shape.height == 28);
  // 3 epochs on 6000 images: a working LeNet is well above 75% on this data.
  CHECK(env.dense().test_accuracy > 0.75);

  auto mild = [&] {
    env.reset();
    StepResult r;
    for (int i = 0; i < 3; ++i) r = env.step(Action(5));  // alpha 0.5
    return r;
  }();
  CHECK(mild.terminated);
  CHECK(mild.info.sparsity > 0.3);
  CHECK(mild.info.accuracy > env.dense_accuracy() - 0.05);

  auto harsh = [&] {
    env.reset();
    StepResult r;
    for (int i = 0; i < 3; ++i) r = env.step(Action(22));  // alpha 2.2
    return r;
  }();
  CHECK(harsh.info.sparsity > 0.95);
  CHECK(harsh.info.sparsity > mild.info.sparsity);
  CHECK(harsh.info.accuracy < mild.info.accuracy);
  CHECK(harsh.reward < 0.0);
}
