// prunegym::experiments in-process: the train run (and its resume), the episode run, the bench grid
// with awkward variant names, the lottery run, and the shared CSV writer and progress reporter.

#include "helpers.h"

#include <prunegym/core/errors.h>
#include <prunegym/core/json_file.h>
#include <prunegym/env/prune_env.h>
#include <prunegym/experiments/bench_run.h>
#include <prunegym/experiments/episode_run.h>
#include <prunegym/experiments/lottery_run.h>
#include <prunegym/experiments/train_run.h>
#include <prunegym/experiments/validate_run.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace prunegym;
using Catch::Matchers::Contains;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> lines_of(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("the CSV writer quotes fields that hold commas, quotes or newlines", "[experiments]") {
  CsvWriter csv({"variant", "value"});
  csv.row({"plain", CsvWriter::num(0.25)});
  csv.row({"with,comma", "say \"hi\""});
  csv.row({"two\nlines", CsvWriter::num(int64_t{7})});
  CHECK(csv.str() == "variant,value\nplain,0.25\n\"with,comma\",\"say \"\"hi\"\"\"\n\"two\nlines\",7\n");
  CHECK_THROWS_AS(csv.row({"one field"}), Error);
}

TEST_CASE("the progress reporter rewrites one line on a terminal and prints lines elsewhere", "[experiments]") {
  std::ostringstream tty_out, log_out;
  ProgressReporter tty(tty_out, 1), log(log_out, 0);
  for (auto* p : {&tty, &log}) {
    p->update("step 1");
    p->update("step 2", true);
    p->line("done");
    p->finish();
  }
  CHECK(tty_out.str() == "\rstep 1\033[K\rstep 2\033[K\r\033[Kdone\n");
  CHECK(log_out.str() == "step 2\ndone\n");
  CHECK(ProgressReporter::bar(1, 4, 8) == "[##......]");
}

TEST_CASE("a train run in-process: results, stop-after, and a resume that matches an uninterrupted run",
          "[experiments][train]") {
  const auto dir = fs::path(test::scratch_dir("train-run"));
  TrainRunOptions o;
  o.config = test::tiny_config();
  o.agent = "q";
  o.seed = 3;
  o.episodes = 6;
  o.plot = false;
  o.out = (dir / "full").string();
  const auto full = run_train(o);
  REQUIRE(full.finished);
  CHECK(full.episodes_done == 6);
  CHECK(full.summary.layers.size() == 3);
  CHECK(full.summary.after_finetune.test > 0.5);
  for (const char* f : {"summary.json", "episodes.csv", "run.json", "agent.ckpt", "pruned_model.pt", "config.json"})
    CHECK(fs::exists(dir / "full" / f));
  CHECK(lines_of(dir / "full" / "episodes.csv").size() == 7);
  // The typed summary is the file: it reads back into itself, key for key.
  const json written = read_json_file((dir / "full" / "summary.json").string());
  CHECK(full.summary.to_json() == written);
  CHECK(RunSummary::from_json(written).to_json() == written);
  // The final network's cost: the tiny MLP's MACs are its weights (every weight applied once).
  CHECK(written.at("cost").at("macs") == full.summary.total);
  CHECK(written.at("cost").at("remaining_macs") == full.summary.remaining);

  // The final policy as an episode: the first greedy episode's actions, retrained layer by layer.
  TrainRunOptions e = o;
  e.config = test::tiny_config({{"train", {{"final_policy", "episode"}}}});
  e.out = (dir / "episode").string();
  const auto as_episode = run_train(e);
  REQUIRE(as_episode.finished);
  CHECK(as_episode.summary.final_values == as_episode.summary.greedy_episodes.front().values);
  REQUIRE(as_episode.summary.final_episode.has_value());
  CHECK_THAT(train_report(full), Contains("global sparsity"));

  o.out = (dir / "part").string();
  o.stop_after = 4;
  const auto part = run_train(o);
  CHECK_FALSE(part.finished);
  CHECK(part.stopped_by_option);
  CHECK(part.episodes_done == 4);
  CHECK_FALSE(fs::exists(dir / "part" / "summary.json"));

  TrainRunOptions resume;
  resume.resume = (dir / "part").string();
  resume.plot = false;
  const auto resumed = run_train(resume);
  REQUIRE(resumed.finished);
  CHECK(resumed.summary.final_values == full.summary.final_values);
  CHECK(resumed.summary.sparsity == full.summary.sparsity);

  TrainRunOptions again = o;
  again.stop_after.reset();
  CHECK_THROWS_WITH(run_train(again), Contains("--resume") && Contains("--force"));
  again.agent = "sarsa";
  again.force = true;
  CHECK_THROWS_WITH(run_train(again), Contains("unknown agent 'sarsa'"));
}

TEST_CASE("seed 000's final network: train.final_train trains a fresh network whose rounds retrain with it",
          "[experiments][train]") {
  const auto dir = fs::path(test::scratch_dir("final-train"));
  // A fixed 50% rate per round (the random agent over one action) to 70% sparsity: two rounds.
  const json patch = json::parse(R"({
    "env": {"episode": "rounds", "criterion": "magnitude_target", "actions": {"values": [0.5]},
            "reward": {"name": "lottery_q", "target_sparsity": 0.7}},
    "lottery": {"train": {"optimizer": "adam", "lr": 0.002, "batch_size": 64, "epochs": 1, "samples": 300}},
    "agents": {"random": {"episodes": 1}},
    "train": {"policy_episodes": 1, "final_train": {"epochs": 3, "samples": 0}, "finetune": {"epochs": 0}}
  })");
  TrainRunOptions o;
  o.config = test::tiny_config(patch);
  o.agent = "random";
  o.plot = false;
  o.out = (dir / "run").string();
  const auto r = run_train(o);
  REQUIRE(r.finished);
  const json s = r.summary.to_json();
  CHECK(s["final_values"] == json::array({0.5, 0.5}));
  CHECK(s["sparsity"].get<double>() == Approx(0.75).margin(0.01));
  // No fine-tuning: the network after the last round is the one reported.
  CHECK(s["after_finetune"]["test_accuracy"] == s["before_finetune"]["test_accuracy"]);

  // The rebuilt network is the one a config with pretraining = final_train settings gives.
  json rebuilt = o.config.to_json();
  rebuilt["network"]["pretrain"] = {{"optimizer", "adam"}, {"lr", 0.002}, {"batch_size", 64}, {"epochs", 3}};
  PruneEnv reference(Config::from_json(rebuilt));
  CHECK(s["final_network"]["dense_validation_accuracy"].get<double>() == reference.dense().validation_accuracy);
  CHECK(s["final_network"]["rebuilt_with"]["epochs"] == 3);
  CHECK(s["dense"]["validation_accuracy"].get<double>() == PruneEnv(o.config).dense().validation_accuracy);

  // Per-class test accuracy adds up to the overall figure.
  int64_t samples = 0, correct = 0;
  for (const auto& c : s["after_finetune"]["test_classes"]) {
    samples += c["samples"].get<int64_t>();
    correct += c["correct"].get<int64_t>();
  }
  CHECK(samples == 400);
  CHECK(static_cast<double>(correct) / 400.0 == Approx(s["after_finetune"]["test_accuracy"].get<double>()));
  CHECK(s["after_finetune"]["train_accuracy"].get<double>() > 0.5);

  // final_train belongs to rounds episodes, and its keys are checked.
  TrainRunOptions bad = o;
  bad.force = true;
  json layerwise = patch;
  layerwise["env"]["episode"] = "layerwise";
  layerwise["env"]["criterion"] = "std_threshold";
  layerwise["env"].erase("actions");
  bad.config = test::tiny_config(layerwise);
  CHECK_THROWS_WITH(run_train(bad), Contains("train.final_train") && Contains("rounds"));
  json typo = patch;
  typo["train"]["final_train"]["epoch"] = 9;
  // The train section is checked when the config loads.
  CHECK_THROWS_WITH(test::tiny_config(typo), Contains("train.final_train.epoch"));
  json subset = patch;
  subset["train"]["final_train"]["samples"] = 100;
  CHECK_THROWS_WITH(test::tiny_config(subset), Contains("train.final_train.samples") && Contains("must be 0"));
}

TEST_CASE("an episode run streams every step and checks all actions first", "[experiments][episode]") {
  EpisodeRunOptions o;
  o.config = test::tiny_config();
  o.actions = {3, 10, 22};
  o.seed = 4;
  int started = 0;
  std::vector<std::string> layers;
  const auto r = play_episode(
      o, [&](const EpisodeRunResult&) { ++started; }, [&](const StepResult& s) { layers.push_back(s.info.layer); });
  CHECK(started == 1);
  CHECK(layers == std::vector<std::string>{"fc1.weight", "fc2.weight", "fc3.weight"});
  CHECK(r.summary["steps"] == 3);
  const auto alphas = r.summary["alphas"].get<std::vector<double>>();
  REQUIRE(alphas.size() == 3);
  CHECK(alphas[0] == Approx(0.3));
  CHECK(alphas[1] == Approx(1.0));
  CHECK(alphas[2] == Approx(2.2));

  o.actions = {3, 10, 99};
  int steps = 0;
  CHECK_THROWS_AS(play_episode(o, {}, [&](const StepResult&) { ++steps; }), ActionError);
  CHECK(steps == 0);
  o.actions.clear();
  o.alpha = 9.0;
  CHECK_THROWS_WITH(play_episode(o), Contains("not near any action value"));
}

#ifdef PRUNEGYM_CLI
TEST_CASE("a bench grid runs cells as processes and quotes awkward variant names", "[experiments][bench]") {
  const auto dir = fs::path(test::scratch_dir("bench-run"));
  const json grid{{"base", test::tiny_json()},
                  {"agent", "random"},
                  {"seeds", 1},
                  {"episodes", 2},
                  {"variants", json::array({{{"name", "plain"}}, {{"name", "with,comma"}, {"description", "a, b"}}})}};
  write_atomic(dir / "grid.json", grid.dump());
  BenchOptions o;
  o.grid_path = (dir / "grid.json").string();
  o.out = (dir / "out").string();
  o.jobs = 2;
  o.executable = PRUNEGYM_CLI;
  o.plot = false;
  const auto r = run_bench(o);
  REQUIRE(r.failed.empty());
  CHECK(r.todo == 2);
  const auto csv = lines_of(dir / "out" / "results.csv");
  REQUIRE(csv.size() == 3);
  CHECK(csv[1].rfind("plain,0,", 0) == 0);
  CHECK(csv[2].rfind("\"with,comma\",0,", 0) == 0);
  CHECK_THAT(r.markdown, Contains("with,comma"));

  o.dry_run = true;
  const auto again = run_bench(o);
  CHECK(again.cached == 2);
  CHECK(again.todo == 0);
}
#endif

TEST_CASE("a lottery run in-process writes its tables and reads finished rounds back", "[experiments][lottery]") {
  const auto dir = fs::path(test::scratch_dir("lottery-run"));
  LotteryRunOptions o;
  o.config = test::tiny_config({{"lottery",
                                 {{"strategies", {"rewind_init", "reinit"}},
                                  {"rounds", 2},
                                  {"train", {{"epochs", 1}, {"batch_size", 50}}},
                                  {"eval_every", 10}}}});
  o.out = (dir / "out").string();
  o.plot = false;
  std::ostringstream log;
  ProgressReporter progress(log, 0);
  o.progress = &progress;
  const auto r = run_lottery(o);
  CHECK(r.table["rows"].size() == 6);  // dense + 2 rounds, for each of 2 strategies
  CHECK(lines_of(dir / "out" / "lottery.csv").size() == 7);
  CHECK_THAT(r.markdown, Contains("rewind_init") && Contains("reinit"));
  std::ostringstream again_log;
  ProgressReporter again_progress(again_log, 0);
  o.progress = &again_progress;
  const auto again = run_lottery(o);
  CHECK_THAT(again_log.str(), Contains("read back"));
  CHECK(again.table["rows"] == r.table["rows"]);
}

TEST_CASE("a run writes its learned ratios for deployment pruners, and a budgeted DDPG run meets its budget",
          "[experiments][train][budget]") {
  const auto dir = fs::path(test::scratch_dir("ratios-run"));
  TrainRunOptions o;
  o.config = test::tiny_config({{"env",
                                 {{"criterion", {{"name", "channel_norm"}, {"action", "fraction"}}},
                                  {"actions", {{"type", "box"}, {"low", 0.0}, {"high", 0.9}}},
                                  {"budget", {{"resource", "macs"}, {"ratio", 0.5}}},
                                  {"reward", {{"name", "amc_error"}}}}},
                                {"agents", {{"ddpg", {{"warmup", 2}, {"hidden", {16}}, {"batch_size", 8}}}}}});
  o.agent = "ddpg";
  o.episodes = 4;
  o.plot = false;
  o.out = (dir / "ddpg").string();
  const auto run = run_train(o);
  REQUIRE(run.finished);
  const json summary = read_json_file((dir / "ddpg" / "summary.json").string());
  const auto cost = summary.at("cost");
  CHECK(cost.at("remaining_macs").get<double>() <= 0.5 * cost.at("macs").get<double>());
  const json ratios = read_json_file((dir / "ddpg" / "ratios.json").string());
  CHECK(ratios.at("structured").get<bool>());
  REQUIRE(ratios.at("layers").size() == 2);  // the two hidden layers' channel groups
  for (const auto& row : ratios.at("layers")) {
    const double removed = 1.0 - row.at("kept").get<double>() / row.at("channels").get<double>();
    CHECK(row.at("ratio").get<double>() == Approx(removed));
    const auto module = row.at("module").get<std::string>();
    CHECK(row.at("name").get<std::string>() == module + ".weight");
    CHECK(ratios.at("torch_pruning").at("pruning_ratio_dict").at(module) == row.at("ratio"));
  }
  CHECK(ratios.at("nni").at("config_list").size() == 2);
  CHECK(ratios.at("nni").at("config_list")[0].at("sparse_ratio") == ratios.at("layers")[0].at("ratio"));
  CHECK(ratios.at("layers")[0].at("ratio").get<double>() > 0.0);  // the budget made it prune
}

TEST_CASE("validate builds a finished run's final network again and finds every number, or names the one that differs",
          "[experiments][train][validate]") {
  const auto dir = fs::path(test::scratch_dir("validate-run"));
  TrainRunOptions o;
  o.agent = "q";
  o.seed = 2;
  o.episodes = 4;
  o.plot = false;
  const auto train = [&](const std::string& name, const json& patch) {
    o.config = test::tiny_config(patch);
    o.out = (dir / name).string();
    REQUIRE(run_train(o).finished);
    return o.out;
  };
  const auto validated = [](const std::string& run, bool finetune = true) {
    ValidateOptions v;
    v.run_dir = run;
    v.finetune = finetune;
    return validate_run(v);
  };
  // One-shot policy with fine-tuning: every number exact on the run's own threads.
  const std::string one_shot = train("one-shot", json::object());
  const ValidateResult r = validated(one_shot);
  CHECK(r.exact);
  CHECK(r.ok());
  CHECK(r.checks.size() == 3 + 3 + 2 + 3);  // 3 values; sparsity, remaining, MACs; 2 + 3 accuracies
  const json report = read_json_file((fs::path(one_shot) / "validation.json").string());
  CHECK(report.at("ok") == true);
  CHECK(report.at("mode") == "exact");
  CHECK_THAT(validate_report(r), Contains("valid: every judged number matches"));
  // The other readings of a policy: replayed as an episode, a budgeted box policy, rounds.
  CHECK(validated(train("episode", {{"train", {{"final_policy", "episode"}}}})).ok());
  o.agent = "random";
  const json budget{{"env",
                     {{"criterion", {{"name", "channel_norm"}, {"action", "fraction"}}},
                      {"actions", {{"type", "box"}, {"low", 0.0}, {"high", 0.9}}},
                      {"budget", {{"resource", "macs"}, {"ratio", 0.5}}},
                      {"reward", {{"name", "amc_error"}}}}}};
  CHECK(validated(train("budget", budget), false).ok());
  const json rounds = json::parse(R"({
    "env": {"episode": "rounds", "criterion": "magnitude_target", "actions": {"values": [0.3, 0.5]},
            "reward": {"name": "lottery_q", "target_sparsity": 0.7}},
    "lottery": {"train": {"optimizer": "adam", "lr": 0.002, "batch_size": 64, "epochs": 1, "samples": 300}},
    "train": {"policy_episodes": 1, "final_train": {"epochs": 2, "samples": 0}, "finetune": {"epochs": 0}}
  })");
  CHECK(validated(train("rounds", rounds)).ok());

  // A reported number that the network does not give is named; a tolerance can accept it.
  json summary = read_json_file((fs::path(one_shot) / "summary.json").string());
  summary["after_finetune"]["test_accuracy"] = summary["after_finetune"]["test_accuracy"].get<double>() - 0.004;
  write_atomic(fs::path(one_shot) / "summary.json", summary.dump(2));
  const ValidateResult tampered = validated(one_shot);
  CHECK_FALSE(tampered.ok());
  CHECK(tampered.failures() == std::vector<std::string>{"after_finetune.test_accuracy"});
  CHECK_THAT(validate_report(tampered), Contains("DIFFERS") && Contains("NOT valid: 1 of"));
  ValidateOptions lenient;
  lenient.run_dir = one_shot;
  lenient.tolerant = true;
  const ValidateResult tolerant = validate_run(lenient);
  CHECK_FALSE(tolerant.exact);
  CHECK(tolerant.ok());  // 0.4 points, within the 1-point accuracy tolerance

  // What is not a finished run is refused with what to do.
  CHECK_THROWS_WITH(validated((dir / "nowhere").string()), Contains("is not a folder"));
  o.out = (dir / "part").string();
  o.stop_after = 2;
  REQUIRE_FALSE(run_train(o).finished);
  CHECK_THROWS_WITH(validated(o.out), Contains("has not finished") && Contains("prunegym train --resume"));
}
