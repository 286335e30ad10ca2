// A train run's final network, built by the run (finalize) and built again by `prunegym validate`.

#include "final_network.h"

#include <prunegym/core/errors.h>
#include <prunegym/core/json_file.h>
#include <prunegym/core/system.h>
#include <prunegym/core/timing.h>
#include <prunegym/experiments/run_summary.h>
#include <prunegym/experiments/validate_run.h>
#include <prunegym/networks/batch_norm.h>
#include <prunegym/networks/cost.h>
#include <prunegym/networks/train.h>

#include <cmath>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <sstream>

namespace fs = std::filesystem;

namespace prunegym {

Config final_train_config(const Config& c, const nlohmann::json& patch) {
  nlohmann::json j = c.to_json();
  j["lottery"]["train"].merge_patch(patch);
  const auto& t = j["lottery"]["train"];
  auto& pretrain = j["network"]["pretrain"];
  for (const char* key : {"optimizer", "lr", "momentum", "weight_decay", "batch_size", "epochs"})
    if (t.contains(key)) pretrain[key] = t[key];
  j["lottery"]["train"]["samples"] = 0;  // the whole training split (parse_train_settings checks the key)
  return Config::from_json(j);
}

namespace {

/// The policy's values applied to `env`: one-shot, or (schedules replayed by stepping) one
/// greedy episode, whose rounds can take minutes each (seed 000 trains 9 epochs per round).
void apply_policy(const TrainSettings& settings, uint64_t seed, ProgressReporter* progress, PruneEnv& env, Agent& agent,
                  FinalNetwork& f) {
  if (env.schedule().replays_by_values() && settings.final_policy == "episode") {
    env.apply_values(f.policy.mean_values);  // the one-shot reading, for comparison (the replay resets)
    recalibrate_batch_norm(env.network(), env.data().train, 2000);
    f.one_shot = std::make_pair(env.evaluate_split("validation"), env.evaluate_split("test"));
    f.episode = replay_actions(env, f.policy.episodes.front().actions, episode_seed(seed, 0, true));
    f.values = f.episode->values;
  } else if (env.schedule().replays_by_values()) {
    env.apply_values(f.policy.mean_values);
    if (settings.recalibrate_bn > 0) recalibrate_batch_norm(env.network(), env.data().train, settings.recalibrate_bn);
  } else {
    int64_t step = 0;
    const auto t_episode = Clock::now();
    f.episode = run_episode(env, agent, false, episode_seed(seed, 0, true), 0, 1, [&](const StepResult& r) {
      if (!progress) return;
      std::ostringstream os;
      os << "final network, step " << ++step << ": value " << std::setprecision(3) << r.info.value << ", accuracy "
         << pct(r.info.accuracy) << ", sparsity " << pct(r.info.sparsity) << "  "
         << fmt_duration(seconds_since(t_episode));
      progress->line(os.str());
    });
    f.values = f.episode->values;
  }
}

}  // namespace

FinalNetwork finalize(const TrainSettings& settings, uint64_t seed, ProgressReporter* progress, Env& training_env,
                      PruneEnv& env, Agent& agent, bool finetune) {
  FinalNetwork f;
  const auto t_policy = Clock::now();
  f.policy = greedy_policy(training_env, agent, settings.policy_episodes, seed);
  f.values = f.policy.mean_values;
  apply_policy(settings, seed, progress, env, agent, f);
  f.before_val = env.evaluate_split("validation");
  f.before_test = env.evaluate_split("test");
  f.policy_seconds = seconds_since(t_policy);
  if (!finetune) return f;
  const auto t_ft = Clock::now();
  env.finetune(settings.finetune, [&](int64_t epoch, int64_t total, double loss) {
    if (!progress) return;
    std::ostringstream os;
    os << "fine-tune epoch " << epoch + 1 << "/" << total << "  loss " << std::fixed << std::setprecision(4) << loss
       << "  " << fmt_duration(seconds_since(t_ft));
    progress->line(os.str());
  });
  f.after_val = env.evaluate_split("validation");
  f.after_test = env.evaluate_split("test");
  f.after_train = env.evaluate_split("train");
  f.finetune_seconds = seconds_since(t_ft);
  f.finetuned = true;
  return f;
}

// ---- validate ----

bool ValidateResult::ok() const { return failures().empty(); }

std::vector<std::string> ValidateResult::failures() const {
  std::vector<std::string> names;
  for (const auto& c : checks)
    if (c.judged && !c.ok) names.push_back(c.name);
  return names;
}

nlohmann::json ValidateResult::to_json() const {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& c : checks)
    rows.push_back({{"name", c.name},
                    {"recorded", c.recorded},
                    {"replayed", c.replayed},
                    {"difference", c.replayed - c.recorded},
                    {"tolerance", c.tolerance},
                    {"judged", c.judged},
                    {"ok", c.ok}});
  return {{"run_dir", run_dir},     {"mode", exact ? "exact" : "tolerant"},
          {"threads", threads},     {"run_threads", run_threads},
          {"finetuned", finetuned}, {"ok", ok()},
          {"failures", failures()}, {"checks", rows},
          {"wall_seconds", seconds}};
}

namespace {

/// What validate reads from a run folder.
struct RecordedRun {
  Config config;
  TrainSettings settings;
  std::string agent;
  uint64_t seed = 0;
  RunSummary summary;
};

RecordedRun read_run(const fs::path& dir) {
  if (!fs::is_directory(dir)) throw UsageError("validate: " + dir.string() + " is not a folder");
  for (const char* file : {"run.json", "agent.ckpt"})
    if (!fs::exists(dir / file))
      throw UsageError("validate: " + dir.string() + " has no " + file + " (not a prunegym train folder)");
  const nlohmann::json state = read_json_file((dir / "run.json").string());
  RecordedRun r;
  try {
    r.agent = state.at("agent").get<std::string>();
    r.seed = state.at("seed").get<uint64_t>();
    if (!state.at("finished").get<bool>())
      throw UsageError("validate: the run in " + dir.string() + " has not finished (" +
                       std::to_string(state.at("records").size()) + " of " +
                       std::to_string(state.at("episodes").get<int64_t>()) +
                       " episodes); finish it with prunegym train --resume " + dir.string());
    r.config = Config::from_json(state.at("config"));
  } catch (const nlohmann::json::exception& e) {
    throw UsageError("validate: " + (dir / "run.json").string() + " is not a train run's state: " + e.what());
  } catch (const ConfigError& e) {
    throw ConfigError((dir / "run.json").string() + ": its recorded config no longer loads: " + e.what());
  }
  if (!fs::exists(dir / "summary.json"))
    throw UsageError("validate: " + dir.string() + " has no summary.json; finish it with prunegym train --resume " +
                     dir.string());
  try {
    r.summary = RunSummary::from_json(read_json_file((dir / "summary.json").string()));
  } catch (const nlohmann::json::exception& e) {
    throw UsageError("validate: " + (dir / "summary.json").string() + " is not a run summary: " + e.what());
  }
  r.settings = parse_train_settings(r.config.train);
  return r;
}

/// Compares and records one number.
struct Checker {
  ValidateResult& result;
  const ValidateTolerance& tol;

  void add(const std::string& name, double recorded, double replayed, double tolerance, bool judged = true) {
    const double allowed = result.exact ? 0.0 : tolerance;
    const bool ok = std::fabs(replayed - recorded) <= allowed + 1e-12 * std::max(1.0, std::fabs(recorded));
    result.checks.push_back({name, recorded, replayed, allowed, judged || result.exact, ok});
  }
  void accuracy(const std::string& name, double recorded, double replayed) {
    add(name, recorded, replayed, tol.accuracy);
  }
  void count(const std::string& name, double recorded, double replayed) {
    add(name, recorded, replayed, tol.relative * std::fabs(recorded));
  }
};

void compare(const RecordedRun& run, const FinalNetwork& f, PruneEnv& env, ValidateResult& result,
             const ValidateTolerance& tol) {
  const RunSummary& s = run.summary;
  Checker check{result, tol};
  // Final values: in a tolerant validation other weights may lead the agent elsewhere; the
  // network's numbers below are what is judged.
  const size_t n = std::max(s.final_values.size(), f.values.size());
  for (size_t i = 0; i < n; ++i) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double rec = i < s.final_values.size() ? s.final_values[i] : nan;
    const double rep = i < f.values.size() ? f.values[i] : nan;
    // A missing value is NaN, which no tolerance accepts.
    check.add("final_values[" + std::to_string(i) + "]", rec, rep, std::numeric_limits<double>::infinity(), false);
  }
  const auto& net = env.network();
  check.add("sparsity", s.sparsity, net.sparsity(), tol.sparsity);
  check.count("remaining", static_cast<double>(s.remaining), static_cast<double>(net.remaining_prunable()));
  if (s.cost.is_object() && s.cost.contains("remaining_macs"))
    check.count("cost.remaining_macs", s.cost.at("remaining_macs").get<double>(),
                static_cast<double>(network_cost(net).remaining_macs));
  if (s.one_shot_before_finetune && f.one_shot) {
    check.accuracy("one_shot_before_finetune.validation_accuracy", s.one_shot_before_finetune->validation,
                   f.one_shot->first.accuracy);
    check.accuracy("one_shot_before_finetune.test_accuracy", s.one_shot_before_finetune->test,
                   f.one_shot->second.accuracy);
  }
  check.accuracy("before_finetune.validation_accuracy", s.before_finetune.validation, f.before_val.accuracy);
  check.accuracy("before_finetune.test_accuracy", s.before_finetune.test, f.before_test.accuracy);
  if (!f.finetuned) return;
  check.accuracy("after_finetune.validation_accuracy", s.after_finetune.validation, f.after_val.accuracy);
  check.accuracy("after_finetune.test_accuracy", s.after_finetune.test, f.after_test.accuracy);
  if (s.after_finetune_train)
    check.accuracy("after_finetune.train_accuracy", *s.after_finetune_train, f.after_train.accuracy);
}

}  // namespace

ValidateResult validate_run(const ValidateOptions& o) {
  const auto t0 = Clock::now();
  const fs::path dir = o.run_dir;
  RecordedRun run = read_run(dir);
  ValidateResult result;
  result.run_dir = dir.string();
  result.run_threads = run.summary.threads;
  run.config.threads = o.threads.value_or(run.summary.threads);
  configure_threads(run.config.threads);
  result.threads = torch::get_num_threads();
  result.exact = !o.tolerant && result.threads == result.run_threads;
  result.finetuned = o.finetune;
  const LogFn log = [&](const std::string& line) {
    if (o.progress) o.progress->line(line);
  };
  log("validating " + dir.string() + " (" + run.agent + ", seed " + std::to_string(run.seed) + ", " +
      std::to_string(result.threads) + " threads: " + (result.exact ? "exact" : "tolerant") + ")");
  PruneEnv training(run.config, PruneEnvHooks{log, nullptr});
  std::unique_ptr<PruneEnv> rebuilt;
  if (!run.settings.final_train.is_null())
    rebuilt = std::make_unique<PruneEnv>(final_train_config(run.config, run.settings.final_train),
                                         PruneEnvHooks{log, nullptr});
  auto agent = make_agent(run.agent, run.config.agents, training.action_space(), training.observation_space(), run.seed,
                          run.config.env.reward.target_sparsity);
  agent->load((dir / "agent.ckpt").string());
  PruneEnv& env = rebuilt ? *rebuilt : training;
  log("replaying the final policy" + std::string(o.finetune ? " and fine-tuning" : " (no fine-tuning)"));
  const FinalNetwork f = finalize(run.settings, run.seed, o.progress, training, env, *agent, o.finetune);
  compare(run, f, env, result, o.tolerance);
  result.seconds = seconds_since(t0);
  write_atomic(o.out.empty() ? dir / "validation.json" : fs::path(o.out), result.to_json().dump(2) + "\n");
  return result;
}

std::string validate_report(const ValidateResult& r) {
  std::ostringstream os;
  os << "validate " << r.run_dir << ": " << (r.exact ? "exact" : "tolerant") << " on " << r.threads
     << " threads (the run used " << r.run_threads << ")" << (r.finetuned ? "" : ", no fine-tuning") << "\n";
  os << std::left << std::setw(46) << "check" << std::right << std::setw(16) << "recorded" << std::setw(16)
     << "replayed" << std::setw(13) << "tolerance"
     << "  verdict\n";
  for (const auto& c : r.checks) {
    os << std::left << std::setw(46) << c.name << std::right << std::setprecision(8) << std::setw(16) << c.recorded
       << std::setw(16) << c.replayed << std::setw(13) << std::setprecision(4) << c.tolerance << "  "
       << (!c.judged ? "reported"
           : c.ok    ? "ok"
                     : "DIFFERS")
       << "\n";
  }
  const auto failed = r.failures();
  if (failed.empty())
    os << "valid: every judged number matches (" << fmt_duration(r.seconds) << ")\n";
  else
    os << "NOT valid: " << failed.size() << " of " << r.checks.size() << " numbers differ (" << fmt_duration(r.seconds)
       << ")\n";
  return os.str();
}

}  // namespace prunegym
