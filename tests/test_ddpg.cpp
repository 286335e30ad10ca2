// The DDPG agent (AMC's): it learns a small continuous task, it
// finds better budgeted pruning policies than random search at equal episodes, and a resumed run
// continues exactly as an uninterrupted one.

#include "helpers.h"

#include <prunegym/agents/baselines.h>
#include <prunegym/agents/ddpg.h>
#include <prunegym/agents/factory.h>
#include <prunegym/agents/runner.h>
#include <prunegym/core/errors.h>
#include <prunegym/env/prune_env.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>

using namespace prunegym;
using json = nlohmann::json;

namespace {

/// Three steps; step k wants the action targets[k] in [0, 1]; each step is rewarded with minus
/// its squared miss.
class TargetsEnv : public Env {
 public:
  ResetResult reset(const ResetOptions& = {}) override {
    step_ = 0;
    return {{0.0f}, StepInfo{}};
  }
  StepResult step(const Action& a) override {
    const double v = a.values.at(0);
    ++step_;
    StepResult r;
    r.terminated = step_ == 3;
    r.reward = -(v - kTargets[step_ - 1]) * (v - kTargets[step_ - 1]);
    r.observation = {static_cast<float>(step_) / 3.0f};
    r.info.step = step_;
    r.info.value = v;
    return r;
  }
  const Space& action_space() const override { return actions_; }
  const Space& observation_space() const override { return observations_; }
  static constexpr double kTargets[3] = {0.2, 0.8, 0.5};

 private:
  Space actions_ = Space::box({0.0}, {1.0});
  Space observations_ = Space::box({0.0}, {1.0});
  int64_t step_ = 0;
};

DDPGOptions small_options(uint64_t seed) {
  DDPGOptions o;
  o.hidden = {32, 32};
  o.lr_actor = 3e-3;
  o.lr_critic = 3e-3;
  o.warmup = 20;
  o.batch_size = 32;
  o.buffer_size = 600;
  o.tau = 0.05;
  o.init_delta = 0.3;
  o.delta_decay = 0.98;
  o.seed = seed;
  return o;
}

double best_reward(const std::vector<EpisodeRecord>& records) {
  double best = -1e300;
  for (const auto& r : records) best = std::max(best, r.total_reward);
  return best;
}

}  // namespace

TEST_CASE("DDPG learns a small continuous task", "[agents][ddpg]") {
  TargetsEnv env;
  auto options = small_options(0);
  options.episode_reward = false;  // per-step credit; the budgeted pruning test below uses AMC's
  options.gamma = 0.5;
  options.updates_per_step = 4;
  DDPGAgent agent(env.action_space(), env.observation_space(), options);
  RunOptions o;
  o.episodes = 300;
  const auto records = train_agent(env, agent, o);
  CHECK(agent.updates() > 0);
  auto obs = env.reset().observation;
  for (int k = 0; k < 3; ++k) {
    const double a = agent.act(obs, false).values[0];
    INFO("step " << k << ": " << a);
    CHECK(std::abs(a - TargetsEnv::kTargets[k]) < 0.1);
    obs = env.step(Action::continuous({a})).observation;
  }
  // Far better than the uniformly random warm-up episodes (their expected reward is -0.52).
  const auto greedy = run_episode(env, agent, false, 0);
  CHECK(greedy.total_reward > -0.03);
}

TEST_CASE("DDPG finds better budgeted pruning policies than random search at equal episodes", "[agents][ddpg]") {
  const json patch{
      {"network",
       {{"name", "custom"},
        {"layers", json::array({"flatten", "linear:64", "relu", "linear:48", "relu", "linear:32", "relu", "linear"})}}},
      {"env",
       {{"criterion", {{"name", "channel_norm"}, {"action", "fraction"}}},
        {"actions", {{"type", "box"}, {"low", 0.0}, {"high", 0.9}}},
        {"observation", "layer_features"},
        {"timing", "sparse"},
        {"retrain", {{"epochs", 0}}},
        {"budget", {{"resource", "macs"}, {"ratio", 0.3}}},
        {"reward", {{"name", "amc_error"}}}}}};
  PruneEnv env(test::tiny_config(patch));
  const int64_t episodes = 150;
  double ddpg = 0.0, random = 0.0;
  for (uint64_t seed : {0, 1, 2}) {
    auto o = small_options(seed);
    o.warmup = 30;
    DDPGAgent agent(env.action_space(), env.observation_space(), o);
    RandomAgent baseline(env.action_space(), seed);
    RunOptions run;
    run.episodes = episodes;
    run.seed = seed;
    const double d = best_reward(train_agent(env, agent, run));
    const double r = best_reward(train_agent(env, baseline, run));
    INFO("seed " << seed << ": ddpg " << d << ", random " << r);
    CHECK(d >= r);
    ddpg += d;
    random += r;
  }
  CHECK(ddpg > random);
}

TEST_CASE("DDPG resumes from its checkpoint exactly, and refuses what it cannot drive", "[agents][ddpg]") {
  const auto dir = std::filesystem::path(test::scratch_dir("ddpg"));
  TargetsEnv env;
  const auto run = [&](DDPGAgent& agent, int64_t from, int64_t to) {
    RunOptions o;
    o.start_episode = from;
    o.episodes = to;
    return train_agent(env, agent, o);
  };
  DDPGAgent whole(env.action_space(), env.observation_space(), small_options(4));
  run(whole, 0, 40);
  DDPGAgent first(env.action_space(), env.observation_space(), small_options(4));
  run(first, 0, 25);
  first.save((dir / "ddpg.ckpt").string());
  DDPGAgent resumed(env.action_space(), env.observation_space(), small_options(4));
  resumed.load((dir / "ddpg.ckpt").string());
  run(resumed, 25, 40);
  const Observation probe{0.5f};
  CHECK(resumed.policy(probe) == whole.policy(probe));
  CHECK(resumed.value(probe, 0.3) == whole.value(probe, 0.3));
  CHECK(resumed.updates() == whole.updates());

  CHECK_THROWS_AS(resumed.load((dir / "missing.ckpt").string()), DataError);
  CHECK_THROWS_WITH(DDPGAgent(Space::discrete({0.0, 1.0}), env.observation_space(), small_options(0)),
                    Catch::Contains("Box"));
  const auto bad = json{{"ddpg", {{"tau", 0.0}}}};
  CHECK_THROWS_WITH(make_agent("ddpg", bad, env.action_space(), env.observation_space(), 0, 0.9),
                    Catch::Contains("tau"));
  CHECK_THROWS_WITH(
      make_agent("ddpg", json{{"ddpg", {{"sigma", 1}}}}, env.action_space(), env.observation_space(), 0, 0.9),
      Catch::Contains("sigma"));
}
