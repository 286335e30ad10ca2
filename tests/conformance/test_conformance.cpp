// The Env contract (check_env.h) over every registered episode schedule x criterion x observation
// on the tiny network (the test plugins of test_registry.cpp included), ToyEnv, and RemoteEnv of
// both kinds. A new part that breaks the contract fails here.

#include "../helpers.h"
#include "../server_helpers.h"
#include "check_env.h"

#include <prunegym/env/prune_env.h>
#include <prunegym/env/toy_env.h>
#include <prunegym/networks/data.h>
#include <prunegym/server/remote_env.h>

#include <catch2/catch.hpp>

using namespace prunegym;
using json = nlohmann::json;

namespace {

/// The tiny setup, cut down so a rounds episode takes a few short rounds.
json conformance_patch(const std::string& schedule, const std::string& criterion, const std::string& observation) {
  return json{{"env",
               {{"episode", schedule},
                {"criterion", criterion},
                {"observation", observation},
                {"max_steps", schedule == "layerwise" ? 0 : 4}}},
              {"lottery", {{"train", {{"epochs", 1}, {"samples", 300}}}}}};
}

}  // namespace

TEST_CASE("every registered schedule, criterion and observation keeps the Env contract", "[conformance][env]") {
  const Config base = test::tiny_config();
  const auto data = std::make_shared<const DataSplits>(load_data(base.data));
  int64_t built = 0;
  for (const auto& schedule : ScheduleRegistry::instance().names()) {
    for (const auto& criterion : CriterionRegistry::instance().names()) {
      for (const auto& observation : ObservationRegistry::instance().names()) {
        const std::string combo = schedule + " x " + criterion + " x " + observation;
        INFO(combo);
        std::unique_ptr<PruneEnv> env;
        try {
          PruneEnvHooks hooks;
          hooks.data = data;
          env =
              std::make_unique<PruneEnv>(test::tiny_config(conformance_patch(schedule, criterion, observation)), hooks);
        } catch (const ConfigError& e) {
          // A part may refuse a combination, with a clear error; the built-ins never refuse.
          WARN(combo << " is refused: " << e.what());
          const auto is_plugin = [](const std::string& name) { return name.rfind("test_", 0) == 0; };
          CHECK((is_plugin(schedule) || is_plugin(criterion) || is_plugin(observation)));
          continue;
        }
        const auto report = conformance::check_env(*env);
        INFO(report.text());
        CHECK(report.ok());
        CHECK(report.restored);  // PruneEnv always saves its state
        ++built;
      }
    }
  }
  CHECK(built >= 2 * 3 * 2);  // at least every combination of the built-ins
}

TEST_CASE("ToyEnv keeps the Env contract", "[conformance][env]") {
  for (bool sparse : {false, true}) {
    ToyEnv env(ToyEnvOptions().set_steps(5).set_actions(4).set_sparse(sparse));
    conformance::CheckOptions o;
    o.pruning_info = false;
    const auto report = conformance::check_env(env, o);
    INFO(report.text());
    CHECK(report.ok());
  }
}

TEST_CASE("RemoteEnv keeps the Env contract for both env kinds", "[conformance][server]") {
  test::TestServer ts;
  SECTION("toy") {
    RemoteEnv env(ts.endpoint, json{{"kind", "toy"}, {"toy", {{"steps", 4}, {"actions", 3}}}});
    conformance::CheckOptions o;
    o.pruning_info = false;
    const auto report = conformance::check_env(env, o);
    INFO(report.text());
    CHECK(report.ok());
  }
  SECTION("prune") {
    json config = test::tiny_json();
    config.erase("cache_dir");
    auto env = RemoteEnv::from_config(ts.endpoint, config);
    const auto report = conformance::check_env(*env);
    INFO(report.text());
    CHECK(report.ok());
  }
}
