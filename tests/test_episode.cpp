// PruneEnv: Gymnasium semantics, observations, determinism, reset, snapshots, errors, cache.

#include "helpers.h"

#include <prunegym/core/cancel.h>
#include <prunegym/core/errors.h>
#include <prunegym/env/pretrain.h>
#include <prunegym/env/prune_env.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>

using namespace prunegym;
using Catch::Matchers::Contains;

namespace {

std::vector<StepResult> run(PruneEnv& env, const std::vector<int64_t>& actions, std::optional<uint64_t> seed) {
  ResetOptions o;
  o.seed = seed;
  env.reset(o);
  std::vector<StepResult> out;
  for (auto a : actions) out.push_back(env.step(Action(a)));
  return out;
}

bool same_weights(NetworkImpl& a, const std::vector<torch::Tensor>& state) {
  auto now = clone_state(a);
  if (now.size() != state.size()) return false;
  for (size_t i = 0; i < now.size(); ++i)
    if (!torch::equal(now[i], state[i])) return false;
  return true;
}

}  // namespace

TEST_CASE("a layerwise episode prunes one layer per step and ends on the last", "[env]") {
  PruneEnv env(test::tiny_config());
  REQUIRE(env.episode_length() == 3);
  CHECK(env.action_space().n() == 23);
  auto start = env.reset();
  CHECK(start.observation == Observation{0.0f, static_cast<float>(env.dense_accuracy()), 0.0f});
  CHECK(env.observation_space().contains(start.observation));
  CHECK(env.dense_accuracy() > 0.7);

  auto r1 = env.step(Action(10));
  CHECK(r1.info.layer == "fc1.weight");
  CHECK(r1.info.value == Approx(1.0));
  CHECK(r1.info.step_sparsity > 0.5);
  CHECK(r1.info.layer_sparsities[1] == 0.0);
  CHECK(r1.info.evaluated);
  CHECK(r1.info.retrain_ms >= 0.0);
  CHECK_FALSE(r1.terminated);
  CHECK(r1.observation[0] == 1.0f);
  CHECK(r1.observation[2] == Approx(r1.info.sparsity));
  CHECK(env.observation_space().contains(r1.observation));
  // Dense reward: the PuRL formula of this step's accuracy and sparsity.
  const auto& s = env.reward_setup();
  CHECK(r1.reward == Approx(purl_reward(r1.info.accuracy, r1.info.sparsity, s)));

  auto r2 = env.step(Action(22));
  auto r3 = env.step(Action(5));
  CHECK(r2.info.layer == "fc2.weight");
  CHECK(r3.info.layer == "fc3.weight");
  CHECK(r3.terminated);
  CHECK_FALSE(r3.truncated);
  CHECK(r3.info.sparsity > r1.info.sparsity);
  const int64_t total = r3.info.total;
  CHECK(r3.info.remaining == env.network().remaining_prunable());
  CHECK(r3.info.sparsity == Approx(1.0 - double(r3.info.remaining) / double(total)));
}

TEST_CASE("per_layer observations hold (a_i, p_i) and start at zero", "[env]") {
  PruneEnv env(test::tiny_config({{"env", {{"observation", "per_layer"}}}}));
  auto start = env.reset();
  REQUIRE(start.observation.size() == 6);
  CHECK(start.observation == Observation(6, 0.0f));
  auto r1 = env.step(Action(12));
  CHECK(r1.observation[0] == Approx(r1.info.accuracy));
  CHECK(r1.observation[1] == Approx(r1.info.step_sparsity));
  CHECK(r1.observation[2] == 0.0f);
  auto r2 = env.step(Action(3));
  CHECK(r2.observation[1] == Approx(r1.info.step_sparsity));  // persistent
  CHECK(r2.observation[3] == Approx(r2.info.step_sparsity));
  CHECK(env.observation_space().contains(r2.observation));
}

TEST_CASE("sparse timing retrains and rewards only at the end", "[env]") {
  PruneEnv env(test::tiny_config({{"env", {{"timing", "sparse"}}}}));
  auto r = run(env, {15, 15, 15}, 0);
  CHECK(r[0].reward == 0.0);
  CHECK(r[1].reward == 0.0);
  CHECK_FALSE(r[0].info.evaluated);
  CHECK(r[0].info.retrain_ms == 0.0);
  CHECK(r[2].info.evaluated);
  CHECK(r[2].reward == Approx(purl_reward(r[2].info.accuracy, r[2].info.sparsity, env.reward_setup())));
  CHECK(r[2].reward != 0.0);
}

TEST_CASE("same seed and same actions give an identical trajectory", "[env][determinism]") {
  PruneEnv a(test::tiny_config());
  PruneEnv b(test::tiny_config());
  auto ra = run(a, {8, 14, 3}, 42);
  auto rb = run(b, {8, 14, 3}, 42);
  for (size_t i = 0; i < ra.size(); ++i) {
    CHECK(ra[i].observation == rb[i].observation);
    CHECK(ra[i].reward == rb[i].reward);
    CHECK(ra[i].info.remaining == rb[i].info.remaining);
  }
  CHECK(same_weights(b.network(), clone_state(a.network())));
  // A different seed draws other retrain subsets, so the weights differ.
  auto rc = run(b, {8, 14, 3}, 43);
  CHECK_FALSE(same_weights(b.network(), clone_state(a.network())));
}

TEST_CASE("reset restores the pretrained weights and masks exactly", "[env]") {
  PruneEnv env(test::tiny_config());
  env.reset();
  const auto pristine = clone_state(env.network());
  run(env, {20, 20, 20}, 1);
  CHECK(env.network().sparsity() > 0.5);
  CHECK_FALSE(same_weights(env.network(), pristine));
  auto start = env.reset();
  CHECK(same_weights(env.network(), pristine));
  CHECK(env.network().sparsity() == 0.0);
  CHECK(start.info.step == 0);
}

TEST_CASE("snapshot and restore branch an episode exactly", "[env]") {
  PruneEnv env(test::tiny_config());
  ResetOptions o;
  o.seed = 9;
  env.reset(o);
  env.step(Action(11));
  const auto snap = env.snapshot();
  auto a2 = env.step(Action(7));
  auto a3 = env.step(Action(4));
  const auto weights_a = clone_state(env.network());
  env.restore(snap);
  auto b2 = env.step(Action(7));
  auto b3 = env.step(Action(4));
  CHECK(a2.observation == b2.observation);
  CHECK(a3.reward == b3.reward);
  CHECK(same_weights(env.network(), weights_a));  // optimizer state and RNG came back too
  // Restoring into a finished episode makes it steppable again from the snapshot point.
  env.restore(snap);
  CHECK_FALSE(env.episode_over());
  CHECK(env.step(Action(0)).info.step == 2);
}

TEST_CASE("a rejected action leaves the environment usable and unchanged", "[env][errors]") {
  PruneEnv env(test::tiny_config());
  env.reset();
  env.step(Action(5));
  const auto before = clone_state(env.network());
  REQUIRE_THROWS_AS(env.step(Action(23)), ActionError);
  REQUIRE_THROWS_WITH(env.step(Action(-1)), Contains("0..22"));
  REQUIRE_THROWS_AS(env.step(Action::continuous({1.0})), ActionError);
  CHECK(same_weights(env.network(), before));
  auto r = env.step(Action(5));
  CHECK(r.info.step == 2);
  CHECK(r.info.layer == "fc2.weight");
}

TEST_CASE("stepping before reset or after the end is an error", "[env][errors]") {
  PruneEnv env(test::tiny_config());
  REQUIRE_THROWS_WITH(env.step(Action(1)), Contains("reset()"));
  run(env, {1, 1, 1}, 0);
  REQUIRE(env.episode_over());
  REQUIRE_THROWS_AS(env.step(Action(1)), EpisodeError);
  REQUIRE_THROWS_WITH(env.step(Action(1)), Contains("call reset()"));
  env.reset();
  CHECK_NOTHROW(env.step(Action(1)));
}

TEST_CASE("accuracy collapse ends the episode early", "[env]") {
  // Prune every weight of the first layer: the output is constant, accuracy ~ one class.
  PruneEnv env(test::tiny_config({{"env",
                                   {{"criterion", "magnitude_target"},
                                    {"early_stop_accuracy", 0.5},
                                    {"retrain", {{"samples", 0}, {"epochs", 0}}}}}}));
  env.reset();
  auto r = env.step(Action(env.action_space().n() - 1));  // sparsity 1.0
  CHECK(r.info.step_sparsity == 1.0);
  CHECK(r.info.early_stop);
  CHECK(r.terminated);
  CHECK(env.episode_over());
}

TEST_CASE("max_steps truncates the episode", "[env]") {
  PruneEnv env(test::tiny_config({{"env", {{"max_steps", 2}}}}));
  auto r = run(env, {1, 1}, 0);
  CHECK_FALSE(r[0].truncated);
  CHECK(r[1].truncated);
  CHECK_FALSE(r[1].terminated);
  REQUIRE_THROWS_AS(env.step(Action(1)), EpisodeError);
}

TEST_CASE("a continuous Box action space takes alpha values", "[env]") {
  PruneEnv env(test::tiny_config({{"env", {{"actions", {{"type", "box"}}}}}}));
  REQUIRE(env.action_space().kind() == Space::Kind::box);
  env.reset();
  auto r = env.step(Action::continuous({1.25}));
  CHECK(r.info.value == Approx(1.25));
  REQUIRE_THROWS_AS(env.step(Action::continuous({3.0})), ActionError);
  REQUIRE_THROWS_AS(env.step(Action(3)), ActionError);
}

TEST_CASE("reset options override the targets of one episode and bad ones are rejected", "[env]") {
  PruneEnv env(test::tiny_config());
  ResetOptions o;
  o.options = {{"target_sparsity", 0.5}};
  env.reset(o);
  auto r = env.step(Action(22));
  RewardSetup s = env.reward_setup();
  s.target_sparsity = 0.5;
  CHECK(r.reward == Approx(purl_reward(r.info.accuracy, r.info.sparsity, s)));
  o.options = {{"target_sparsty", 0.5}};
  REQUIRE_THROWS_WITH(env.reset(o), Contains("target_sparsty"));
  CHECK(env.step(Action(1)).info.step == 2);  // the rejected reset changed nothing
}

TEST_CASE("the dense model is cached and a corrupt cache is rebuilt", "[env][cache]") {
  auto config = test::tiny_config();
  config.cache_dir = test::scratch_dir("cache-corrupt");
  for (const auto& e : std::filesystem::directory_iterator(config.cache_dir)) std::filesystem::remove(e.path());
  std::vector<std::string> log;
  PruneEnv first(config, {[&](const std::string& l) { log.push_back(l); }, nullptr});
  CHECK_FALSE(first.dense().from_cache);
  const std::string file = first.dense().cache_file;
  REQUIRE(std::filesystem::exists(file));

  PruneEnv second(config);
  CHECK(second.dense().from_cache);
  CHECK(same_weights(second.network(), first.dense().state));

  // Flip bytes in the middle of the weights: the checksum catches it and the model is retrained.
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(file) / 2));
    f.write("garbage!", 8);
  }
  log.clear();
  PruneEnv third(config, {[&](const std::string& l) { log.push_back(l); }, nullptr});
  CHECK_FALSE(third.dense().from_cache);
  bool warned = false;
  for (const auto& l : log) warned = warned || l.find("checksum") != std::string::npos;
  CHECK(warned);
  CHECK(same_weights(third.network(), first.dense().state));  // retraining is deterministic

  // Truncated file: also rebuilt.
  std::filesystem::resize_file(file, 100);
  PruneEnv fourth(config);
  CHECK_FALSE(fourth.dense().from_cache);
}

TEST_CASE("a stopped pretraining resumes from its last epoch and ends with the same weights", "[env][cache]") {
  // Adam's moment estimates and SGD's momentum both live in the optimizer: each must be restored.
  for (const char* optimizer : {"adam", "sgd"}) {
    DYNAMIC_SECTION(optimizer) {
      auto config = test::tiny_config({{"network",
                                        {{"pretrain",
                                          {{"optimizer", optimizer},
                                           {"lr", std::string(optimizer) == "sgd" ? 0.05 : 0.002},
                                           {"momentum", 0.9},
                                           {"epochs", 4}}}}}});
      DataSplits data = load_data(config.data);
      config.cache_dir = test::scratch_dir(std::string("cache-whole-") + optimizer);
      const DenseModel whole = load_or_pretrain(config, data);

      config.cache_dir = test::scratch_dir(std::string("cache-resumed-") + optimizer);
      std::atomic<bool> stop{false};
      std::vector<std::string> log;
      const LogFn logger = [&](const std::string& l) {
        log.push_back(l);
        if (l.find("epoch 2/4") != std::string::npos) stop = true;  // stopped during the third epoch
      };
      {
        CancelScope scope({{&stop, "the test stopped it"}});
        REQUIRE_THROWS_AS(load_or_pretrain(config, data, logger), Cancelled);
      }
      const auto checkpoint_in = [&](const std::string& dir) {
        return (std::filesystem::path(dir) / std::filesystem::path(whole.cache_file).filename()).string() + ".partial";
      };
      const std::string partial = checkpoint_in(config.cache_dir);
      REQUIRE(std::filesystem::exists(partial));
      log.clear();
      const DenseModel resumed = load_or_pretrain(config, data, logger);
      CHECK_FALSE(resumed.from_cache);
      CHECK(std::count_if(log.begin(), log.end(), [](const std::string& l) {
              return l.find("resuming the pretraining after epoch 2") != std::string::npos;
            }) == 1);
      CHECK(std::count_if(log.begin(), log.end(), [](const std::string& l) {
              return l.find("  epoch ") != std::string::npos;
            }) == 2);  // epochs 3 and 4 only
      REQUIRE(resumed.state.size() == whole.state.size());
      for (size_t i = 0; i < whole.state.size(); ++i) CHECK(torch::equal(resumed.state[i], whole.state[i]));
      CHECK(resumed.validation_accuracy == whole.validation_accuracy);
      CHECK_FALSE(std::filesystem::exists(partial));  // the finished model replaces its checkpoint

      // A damaged checkpoint is reported and the pretraining starts over, ending the same.
      config.cache_dir = test::scratch_dir(std::string("cache-damaged-") + optimizer);
      stop = false;
      {
        CancelScope scope({{&stop, "the test stopped it"}});
        REQUIRE_THROWS_AS(load_or_pretrain(config, data, logger), Cancelled);
      }
      const std::string damaged = checkpoint_in(config.cache_dir);
      std::filesystem::resize_file(damaged, std::filesystem::file_size(damaged) - 10);
      log.clear();
      const DenseModel restarted = load_or_pretrain(config, data, [&](const std::string& l) { log.push_back(l); });
      CHECK(std::any_of(log.begin(), log.end(), [](const std::string& l) {
        return l.find("ignoring the pretraining checkpoint") != std::string::npos &&
               l.find("truncated") != std::string::npos;
      }));
      for (size_t i = 0; i < whole.state.size(); ++i) CHECK(torch::equal(restarted.state[i], whole.state[i]));
    }
  }
}

TEST_CASE("a different pretraining setting gets its own cache entry", "[env][cache]") {
  auto a = test::tiny_config();
  auto b = test::tiny_config({{"network", {{"pretrain", {{"epochs", 3}}}}}});
  DataSplits data = load_data(a.data);
  CHECK(pretrain_key(a, data) != pretrain_key(b, data));
}

TEST_CASE("env.layers prunes a subset of layers in the given order", "[env]") {
  PruneEnv env(test::tiny_config({{"env", {{"layers", {"fc2.weight", "fc1.weight"}}}}}));
  CHECK(env.episode_length() == 2);
  auto r = run(env, {10, 10}, 0);
  CHECK(r[0].info.layer == "fc2.weight");
  CHECK(r[1].terminated);
  REQUIRE_THROWS_WITH(PruneEnv(test::tiny_config({{"env", {{"layers", {"fc9.weight"}}}}})),
                      Contains("fc9.weight") && Contains("fc1.weight"));
}
