// apps/bench_grid: grid parsing and patch application, run planning, statistics.

#include "helpers.h"

#include <prunegym/core/errors.h>
#include <prunegym/experiments/bench_grid.h>

#include <catch2/catch.hpp>

#include <cmath>

using namespace prunegym;
using Catch::Matchers::Contains;
using json = nlohmann::json;

namespace {

json grid_doc(const json& variants) {
  return json{{"base", test::tiny_json()}, {"agent", "random"}, {"seeds", 2}, {"variants", variants}};
}

}  // namespace

TEST_CASE("a grid applies each variant's patch over the base config", "[bench]") {
  const auto g = bench::parse_grid(
      grid_doc(
          json::array({{{"name", "base"}},
                       {{"name", "sparse"}, {"patch", {{"env", {{"timing", "sparse"}}}}}},
                       {{"name", "q-eq3"}, {"agent", "q"}, {"patch", {{"agents", {{"q", {{"update", "eq3"}}}}}}}}})),
      ".");
  REQUIRE(g.variants.size() == 3);
  CHECK(g.seeds == 2);
  CHECK(g.variants[0].config["env"]["timing"] == "dense");
  CHECK(g.variants[1].config["env"]["timing"] == "sparse");
  CHECK(g.variants[1].config["env"]["reward"]["name"] == "purl");  // untouched keys stay
  CHECK(g.variants[2].agent == "q");
  CHECK(g.variants[2].config["agents"]["q"]["update"] == "eq3");
  CHECK(g.variants[0].agent == "random");
}

TEST_CASE("grid errors name the variant and the key", "[bench][errors]") {
  CHECK_THROWS_WITH(
      bench::parse_grid(grid_doc(json::array({{{"name", "bad"}, {"patch", {{"env", {{"timingg", "x"}}}}}}})), "."),
      Contains("variant 'bad'") && Contains("env.timingg"));
  CHECK_THROWS_WITH(
      bench::parse_grid(
          grid_doc(json::array(
              {{{"name", "bad-agent"}, {"agent", "q"}, {"patch", {{"agents", {{"q", {{"alpha_typo", 1}}}}}}}}})),
          "."),
      Contains("variant 'bad-agent'") && Contains("alpha_typo"));
  CHECK_THROWS_WITH(
      bench::parse_grid(
          grid_doc(json::array({{{"name", "r"}, {"patch", {{"env", {{"reward", {{"name", "nope"}}}}}}}}})), "."),
      Contains("variant 'r'") && Contains("nope"));
  CHECK_THROWS_WITH(bench::parse_grid(grid_doc(json::array({{{"name", "a"}}, {{"name", "a"}}})), "."),
                    Contains("two variants"));
  CHECK_THROWS_WITH(bench::parse_grid(grid_doc(json::array({{{"name", "x"}, {"agent", "sarsa"}}})), "."),
                    Contains("sarsa"));
  CHECK_THROWS_WITH(bench::parse_grid(grid_doc(json::array()), "."), Contains("variants"));
  CHECK_THROWS_WITH(bench::parse_grid(json{{"variants", json::array({{{"name", "a"}}})}}, "."), Contains("base"));
  CHECK_THROWS_WITH(
      bench::parse_grid(json{{"base", test::tiny_json()}, {"variants", json::array({{{"name", "a"}}})}, {"sedes", 2}},
                        "."),
      Contains("sedes"));
}

TEST_CASE("runs are keyed by everything that decides their result", "[bench]") {
  const auto variants = json::array({{{"name", "a"}}, {{"name", "b"}, {"patch", {{"env", {{"timing", "sparse"}}}}}}});
  const auto g = bench::parse_grid(grid_doc(variants), ".");
  const auto runs = bench::plan_runs(g, 2);
  REQUIRE(runs.size() == 4);
  CHECK(runs[0].dir.rfind("runs/a-s0-", 0) == 0);
  CHECK(runs[3].dir.rfind("runs/b-s1-", 0) == 0);
  std::set<std::string> keys;
  for (const auto& r : runs) keys.insert(r.key);
  CHECK(keys.size() == 4);
  // The same variant in another grid file keeps its key; a changed patch does not.
  auto renamed = variants;
  renamed[1]["description"] = "now documented";
  CHECK(bench::plan_runs(bench::parse_grid(grid_doc(renamed), "."), 2)[2].key == runs[2].key);
  renamed[1]["patch"]["env"]["timing"] = "dense";
  CHECK(bench::plan_runs(bench::parse_grid(grid_doc(renamed), "."), 2)[2].key != runs[2].key);
}

TEST_CASE("mean and standard error match hand-computed values", "[bench]") {
  const auto m = bench::mean_se({0.80, 0.85, 0.90});
  CHECK(m.n == 3);
  CHECK(m.mean == Approx(0.85));
  CHECK(m.se == Approx(0.05 / std::sqrt(3.0)));  // sample sd 0.05
  const auto two = bench::mean_se({1.0, 3.0});
  CHECK(two.mean == Approx(2.0));
  CHECK(two.se == Approx(1.0));  // sd sqrt(2), / sqrt(2)
  CHECK(bench::mean_se({5.0}).se == 0.0);
  CHECK(bench::mean_se({}).n == 0);
}

TEST_CASE("the Pareto front keeps exactly the undominated points", "[bench]") {
  // (accuracy, sparsity): b dominates a; c and b trade off; d equals b.
  const auto front = bench::pareto_front({{0.80, 0.50}, {0.85, 0.60}, {0.70, 0.90}, {0.85, 0.60}, {0.60, 0.40}});
  CHECK(front == std::vector<size_t>{1, 2, 3});
}
