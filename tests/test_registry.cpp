// One registration mechanism: Registry<T>, and each extension point taking a user-registered part.

#include "helpers.h"

#include <prunegym/agents/factory.h>
#include <prunegym/agents/runner.h>
#include <prunegym/core/json_reader.h>
#include <prunegym/core/registry.h>
#include <prunegym/env/prune_env.h>
#include <prunegym/env/toy_env.h>
#include <prunegym/server/env_kinds.h>
#include <prunegym/server/env_server.h>

#include <catch2/catch.hpp>

using namespace prunegym;
using Catch::Matchers::Contains;
using json = nlohmann::json;

namespace {

struct Shape {
  virtual ~Shape() = default;
  virtual int sides() const = 0;
};
struct Polygon : Shape {
  explicit Polygon(int n) : n(n) {}
  int sides() const override { return n; }
  int n;
};
using ShapeRegistry = Registry<Shape, int>;

/// Prunes every episode layer at once in a single step, then retrains and evaluates.
class AllAtOnce : public EpisodeSchedule {
 public:
  explicit AllAtOnce(EnvCore& core) : grid_(core.criterion().default_grid()) {
    for (size_t i = 0; i < core.network().prunable_layers().size(); ++i) layers_.push_back(i);
  }
  int64_t length() const override { return 1; }
  int64_t step_limit() const override { return 0; }
  ActionGrid default_grid() const override { return grid_; }
  ScheduleStep step(EnvCore& core, const EpisodeState&, double value, double) override {
    ScheduleStep s;
    s.info.prune_ms = core.prune(layers_, value);
    s.info.retrain_ms = core.retrain();
    s.info.eval_ms = core.evaluate();
    const StepInfo counts = core.counts();
    s.info.accuracy = counts.accuracy;
    s.info.remaining = counts.remaining;
    s.info.total = counts.total;
    s.info.sparsity = counts.sparsity;
    s.info.layer_sparsities = counts.layer_sparsities;
    s.info.value = value;
    s.info.step_sparsity = counts.sparsity;
    s.info.evaluated = true;
    for (size_t k = 0; k < layers_.size(); ++k) s.pruned.push_back(k);
    s.observed_sparsity = counts.sparsity;
    s.finished = true;
    return s;
  }

 private:
  ActionGrid grid_;
};

/// Removes the first half of every listed layer (by flat index), whatever the value.
class FirstHalf : public PruningCriterion {
 public:
  std::string name() const override { return "first_half"; }
  ActionMeaning meaning() const override { return ActionMeaning::sparsity; }
  ActionGrid default_grid() const override { return {0.0, 1.0, 0.5}; }
  void apply(NetworkImpl& net, const std::vector<size_t>& layers, double) const override {
    torch::NoGradGuard no_grad;
    for (size_t i : layers) {
      auto& l = net.prunable_layers()[i];
      l.mask.view({-1}).narrow(0, 0, l.numel() / 2).zero_();
      l.weight.mul_(l.mask);
    }
  }
};

/// (sparsity) alone: a one-dimensional state.
class SparsityOnly : public ObservationBuilder {
 public:
  Space space(const ObservationShape&) const override { return Space::box({0.0}, {1.0}); }
  Observation build(const EpisodeState& e, const NetworkImpl&) const override {
    return {static_cast<float>(e.sparsity)};
  }
};

/// Always the first action.
class FirstAction : public Agent {
 public:
  std::string name() const override { return "first_action"; }
  Action act(const Observation&, bool) override { return Action(0); }
  void save(const std::string&) const override {}
  void load(const std::string&) override {}
};

PRUNEGYM_REGISTER(
    ScheduleRegistry, "test_all_at_once",
    [](const json&, EnvCore& core) -> std::unique_ptr<EpisodeSchedule> { return std::make_unique<AllAtOnce>(core); },
    "every layer in one step");
PRUNEGYM_REGISTER(
    CriterionRegistry, "test_first_half",
    [](const json&) -> std::unique_ptr<PruningCriterion> { return std::make_unique<FirstHalf>(); }, "");
PRUNEGYM_REGISTER(
    ObservationRegistry, "test_sparsity_only",
    [](const json&) -> std::unique_ptr<ObservationBuilder> { return std::make_unique<SparsityOnly>(); }, "");
PRUNEGYM_REGISTER(
    AgentRegistry, "test_first_action",
    [](const AgentContext& c) -> std::unique_ptr<Agent> {
      ObjectReader(c.options, c.path).finish();
      return std::make_unique<FirstAction>();
    },
    "always action 0");
PRUNEGYM_REGISTER(
    NetworkRegistry, "test_two_layer",
    [](const NetworkOptions&, InputShape input, int64_t classes) -> std::unique_ptr<NetworkImpl> {
      return std::make_unique<LayerStackImpl>(
          std::vector<LayerSpec>{LayerSpec::flatten(), LayerSpec::linear(16),
                                 LayerSpec::activation(LayerSpec::Kind::relu), LayerSpec::linear()},
          input, classes);
    },
    "flatten, fc 16, relu, fc");

}  // namespace

template <>
ShapeRegistry& ShapeRegistry::instance() {
  static ShapeRegistry registry("shape", "figure.shape");
  return registry;
}

TEST_CASE("a registry makes what was registered and names the known entries otherwise", "[registry]") {
  auto& r = ShapeRegistry::instance();
  r.add(
      "polygon", [](int n) { return std::make_unique<Polygon>(n); }, "n sides");
  CHECK(r.make("polygon", 5)->sides() == 5);
  CHECK(r.contains("polygon"));
  CHECK(r.description("polygon") == "n sides");
  r.add("triangle", [](int) { return std::make_unique<Polygon>(3); });
  CHECK(r.names() == std::vector<std::string>{"polygon", "triangle"});
  CHECK(r.make("triangle", 9)->sides() == 3);
  CHECK_THROWS_AS(r.make("circle", 0), ConfigError);
  CHECK_THROWS_WITH(r.make("circle", 0),
                    Contains("figure.shape") && Contains("unknown shape 'circle'") && Contains("polygon, triangle"));
  CHECK_THROWS_WITH(r.check("circle"), Contains("polygon"));
  CHECK_THROWS_AS(r.add("", [](int) { return std::make_unique<Polygon>(1); }), ConfigError);
  r.add("triangle", [](int) { return std::unique_ptr<Shape>(); });  // replacing is allowed
  CHECK_THROWS_WITH(r.make("triangle", 0), Contains("returned nothing"));
}

TEST_CASE("every extension point lists its built-ins in one registry", "[registry]") {
  auto has = [](const std::vector<std::string>& names, const char* n) {
    return std::find(names.begin(), names.end(), n) != names.end();
  };
  CHECK(has(RewardRegistry::instance().names(), "purl"));
  CHECK(has(CriterionRegistry::instance().names(), "std_threshold"));
  CHECK(has(ObservationRegistry::instance().names(), "per_layer"));
  CHECK(has(ScheduleRegistry::instance().names(), "rounds"));
  CHECK(has(NetworkRegistry::instance().names(), "lenet300"));
  CHECK(has(AgentRegistry::instance().names(), "dqn"));
  CHECK(has(EnvKindRegistry::instance().names(), "toy"));
  CHECK_THROWS_WITH(test::tiny_config({{"env", {{"episode", "sideways"}}}}), Contains("test_all_at_once"));
  CHECK_THROWS_WITH(test::tiny_config({{"env", {{"observation", "everything"}}}}), Contains("compact"));
}

TEST_CASE("a registered schedule, criterion and observation drive PruneEnv", "[registry][env]") {
  PruneEnv env(test::tiny_config(
      {{"env",
        {{"episode", "test_all_at_once"}, {"criterion", "test_first_half"}, {"observation", "test_sparsity_only"}}}}));
  CHECK(env.episode_length() == 1);
  CHECK(env.observation_space().shape() == std::vector<int64_t>{1});
  CHECK(env.action_space().values() == std::vector<double>{0.0, 0.5, 1.0});
  auto start = env.reset({3});
  CHECK(start.observation == Observation{0.0f});
  const auto r = env.step(Action(1));
  CHECK(r.terminated);
  CHECK_FALSE(r.truncated);
  CHECK(r.info.sparsity == Approx(0.5).margin(1e-3));
  for (double s : r.info.layer_sparsities) CHECK(s == Approx(0.5).margin(1e-2));
  CHECK(r.observation.size() == 1);
  CHECK(r.observation[0] == Approx(r.info.sparsity));
  CHECK(r.reward < 0);  // purl: below the 0.8 sparsity target
  CHECK_THROWS_AS(env.step(Action(0)), EpisodeError);
}

TEST_CASE("a registered network is built by name and pruned like a built-in one", "[registry][networks]") {
  PruneEnv env(test::tiny_config({{"network", {{"name", "test_two_layer"}, {"layers", json::array()}}}}));
  CHECK(env.episode_layers() == std::vector<std::string>{"fc1.weight", "fc2.weight"});
  env.reset({0});
  const auto r = env.step(Action(10));
  CHECK(r.info.layer == "fc1.weight");
  CHECK(r.info.step_sparsity > 0.5);
}

TEST_CASE("a registered agent is made by name with strict options", "[registry][agents]") {
  PruneEnv env(test::tiny_config());
  auto agent = make_agent("test_first_action", json::object(), env.action_space(), env.observation_space(), 0, 0.8);
  CHECK(agent->name() == "first_action");
  const auto record = run_episode(env, *agent, false, 1);
  CHECK(record.values == std::vector<double>{0.0, 0.0, 0.0});
  CHECK_THROWS_WITH(make_agent("test_first_action", {{"test_first_action", {{"speed", 1}}}}, env.action_space(),
                               env.observation_space(), 0, 0.8),
                    Contains("agents.test_first_action.speed"));
}

TEST_CASE("a registered env kind is served by the bridge and snapshots work through Env", "[registry][server]") {
  EnvKindRegistry::instance().add("test_counting_toy", [](const json& req, EnvKindContext&) -> std::unique_ptr<Env> {
    ToyEnvOptions o;
    o.steps = req.value("steps", 2);
    return std::make_unique<ToyEnv>(o);
  });
  ServerOptions o;
  o.bind = "inproc://registry-test";
  o.workers = 0;
  EnvServer server(o);
  const auto made =
      json::parse(server.handle(json{{"cmd", "make"}, {"kind", "test_counting_toy"}, {"steps", 4}}.dump()));
  REQUIRE(made.value("ok", false));
  CHECK(made["observation_space"]["high"][0] == 4.0);
  const auto hello = json::parse(server.handle(json{{"cmd", "hello"}}.dump()));
  CHECK(std::find(hello["kinds"].begin(), hello["kinds"].end(), "test_counting_toy") != hello["kinds"].end());
  const auto snap = json::parse(server.handle(json{{"cmd", "snapshot"}, {"session", made["session"]}}.dump()));
  CHECK_FALSE(snap.value("ok", true));  // the toy env has no save_state
  CHECK_THAT(snap.dump(), Contains("snapshots"));
  const auto bad = json::parse(server.handle(json{{"cmd", "make"}, {"kind", "nope"}}.dump()));
  CHECK_FALSE(bad.value("ok", true));
  CHECK_THAT(bad.dump(), Contains("test_counting_toy"));
}

TEST_CASE("PruneEnv saves and restores its state through the Env interface", "[registry][env]") {
  PruneEnv env(test::tiny_config());
  env.reset({5});
  env.step(Action(8));
  Env& base = env;
  const auto saved = base.save_state();
  REQUIRE(saved);
  const auto a = env.step(Action(12));
  base.restore_state(*saved);
  const auto b = env.step(Action(12));
  CHECK(a.observation == b.observation);
  CHECK(a.reward == b.reward);
  ToyEnv toy;
  CHECK_FALSE(static_cast<Env&>(toy).save_state());
  CHECK_THROWS_AS(env.restore_state(EnvState{}), ConfigError);
}
