#include <prunegym/agents/factory.h>
#include <prunegym/core/errors.h>
#include <prunegym/core/json_file.h>
#include <prunegym/core/system.h>
#include <prunegym/core/timing.h>
#include <prunegym/env/criteria.h>
#include <prunegym/env/prune_env.h>
#include <prunegym/experiments/ratios.h>
#include <prunegym/experiments/run_summary.h>
#include <prunegym/experiments/train_run.h>
#include <prunegym/networks/cost.h>
#include <prunegym/networks/train.h>
#include <prunegym/server/remote_env.h>

#include "final_network.h"

#include <cmath>
#include <filesystem>
#include <iomanip>
#include <sstream>

namespace fs = std::filesystem;

namespace prunegym {

namespace {

/// An episode's action values as one CSV field: "0.9;1.2;0.3".
std::string joined_values(const EpisodeRecord& r) {
  std::string values;
  for (size_t i = 0; i < r.values.size(); ++i) values += (i ? ";" : "") + CsvWriter::num(r.values[i]);
  return values;
}

/// The greedy checks (train.greedy_every): after_episodes is the number of training episodes done;
/// with train.greedy_measure "dense", accuracy and sparsity are those of the dense-timing replay.
std::string greedy_csv(const std::vector<EpisodeRecord>& checks) {
  CsvWriter csv({"after_episodes", "total_reward", "accuracy", "sparsity", "steps", "early_stop", "values"});
  for (const auto& r : checks) {
    csv.row({CsvWriter::num(r.episode + 1), CsvWriter::num(r.total_reward), CsvWriter::num(r.accuracy),
             CsvWriter::num(r.sparsity), CsvWriter::num(r.steps), r.early_stop ? "1" : "0", joined_values(r)});
  }
  return csv.str();
}

std::string episodes_csv(const std::vector<EpisodeRecord>& records) {
  CsvWriter csv(
      {"episode", "total_reward", "accuracy", "sparsity", "steps", "early_stop", "exploration", "seconds", "values"});
  for (const auto& r : records) {
    csv.row({CsvWriter::num(r.episode), CsvWriter::num(r.total_reward), CsvWriter::num(r.accuracy),
             CsvWriter::num(r.sparsity), CsvWriter::num(r.steps), r.early_stop ? "1" : "0",
             CsvWriter::num(r.exploration), CsvWriter::num(r.seconds), joined_values(r)});
  }
  return csv.str();
}

/// The run's identity and progress: what run.json holds.
struct RunState {
  Config config;
  TrainSettings settings;  ///< config.train, parsed once
  std::string agent;
  uint64_t seed = 0;
  fs::path out;
  int64_t episodes = 0;
  std::vector<EpisodeRecord> records;
  std::vector<EpisodeRecord> greedy;  ///< train.greedy_every checks (episode = the training episode before)

  void save(bool finished) const {
    const nlohmann::json st{{"agent", agent},
                            {"seed", seed},
                            {"episodes", episodes},
                            {"finished", finished},
                            {"config", config.to_json()},
                            {"records", records},
                            {"greedy", greedy}};
    write_atomic(out / "run.json", st.dump() + "\n");
    write_atomic(out / "episodes.csv", episodes_csv(records));
    if (!greedy.empty()) write_atomic(out / "greedy.csv", greedy_csv(greedy));
  }
};

RunState resume_state(const TrainRunOptions& o) {
  RunState s;
  s.out = o.resume;
  if (!fs::exists(s.out / "run.json"))
    throw UsageError("--resume " + s.out.string() + ": no run.json there (not a prunegym train folder)");
  const auto state = read_json_file((s.out / "run.json").string());
  s.config = Config::from_json(state.at("config"));
  s.settings = parse_train_settings(s.config.train);
  s.agent = state.at("agent").get<std::string>();
  s.seed = state.at("seed").get<uint64_t>();
  s.episodes = state.at("episodes").get<int64_t>();
  s.records = state.at("records").get<std::vector<EpisodeRecord>>();
  s.greedy = state.value("greedy", nlohmann::json::array()).get<std::vector<EpisodeRecord>>();
  return s;
}

RunState new_state(const TrainRunOptions& o) {
  RunState s;
  s.config = o.config;
  s.settings = parse_train_settings(s.config.train);
  s.agent = o.agent;
  AgentRegistry::instance().check(s.agent);
  s.seed = o.seed.value_or(s.config.seed);
  const std::string stem = fs::path(o.config_path.empty() ? "run" : o.config_path).stem().string();
  s.out = o.out.empty() ? "runs/" + stem + "-" + s.agent + "-s" + std::to_string(s.seed) : o.out;
  if (fs::exists(s.out / "run.json") && !o.force) {
    throw UsageError("the folder " + s.out.string() + " already holds a run; continue it with --resume " +
                     s.out.string() + ", or pass --force to start over, or choose --out");
  }
  const TrainSettings& settings = s.settings;
  if (!settings.final_train.is_null() && s.config.env.episode != "rounds")
    throw ConfigError("config key 'train.final_train' rebuilds the network of a rounds episode; env.episode is '" +
                      s.config.env.episode + "' (set env.episode to \"rounds\" or drop train.final_train)");
  s.episodes = agent_episodes(s.agent, s.config.agents, settings);
  return s;
}

/// One line per episode: a live bar on a terminal.
std::string episode_line(const EpisodeRecord& r, int64_t total, double elapsed, double remaining) {
  std::ostringstream os;
  const int64_t done = r.episode + 1;
  os << ProgressReporter::bar(done, total) << " episode " << std::setw(3) << done << "/" << total << "  reward "
     << std::fixed << std::setprecision(3) << std::setw(7) << r.total_reward << "  acc " << pct(r.accuracy)
     << "  sparsity " << pct(r.sparsity);
  if (!std::isnan(r.exploration)) os << "  eps " << std::setprecision(2) << r.exploration;
  os << "  " << fmt_duration(elapsed) << " elapsed, " << fmt_duration(remaining) << " left";
  return os.str();
}

/// The environment agents train against: local, or a prunegym server.
struct TrainingEnv {
  std::unique_ptr<PruneEnv> local;
  std::unique_ptr<RemoteEnv> remote;
  Env* env = nullptr;
};

TrainingEnv make_training_env(const TrainRunOptions& o, const RunState& s, const LogFn& log) {
  TrainingEnv t;
  if (!o.remote.empty()) {
    // An endpoints file (a server fleet) spreads runs by seed: seed S uses server S mod N.
    FleetEndpoint server{o.remote, ""};
    if (o.remote.find("://") == std::string::npos) {
      const auto fleet = read_endpoints_file(o.remote);
      server = fleet[static_cast<size_t>(s.seed % fleet.size())];
    }
    RemoteEnvOptions options;
    options.curve_server_key = server.curve_server_key;
    t.remote = RemoteEnv::from_config(server.endpoint, s.config.to_json(), options);
    t.env = t.remote.get();
    log("training against " + server.endpoint + (server.curve_server_key.empty() ? "" : " (CURVE)") + " (session " +
        t.remote->session() + ")");
  } else {
    t.local = std::make_unique<PruneEnv>(s.config, PruneEnvHooks{log, nullptr});
    t.env = t.local.get();
  }
  return t;
}

/// Trains from the last recorded episode on; returns false when stopped early.
/// train.greedy_measure "dense": a copy of the environment with dense timing, on which each
/// greedy check's actions are replayed (null for "episode").
std::unique_ptr<PruneEnv> measure_env(const RunState& s, const LogFn& log) {
  if (s.settings.greedy_every == 0 || s.settings.greedy_measure != "dense") return nullptr;
  Config c = s.config;
  c.env.timing = "dense";
  log("greedy checks are measured on a dense-timing copy of the environment (train.greedy_measure)");
  return std::make_unique<PruneEnv>(c, PruneEnvHooks{log, nullptr});
}

bool train_episodes(const TrainRunOptions& o, RunState& s, Env& env, Agent& agent, bool& by_option, PruneEnv* measure) {
  const fs::path checkpoint = s.out / "agent.ckpt";
  std::atomic<bool> stop_now{false};
  const auto t0 = Clock::now();
  const auto start = static_cast<int64_t>(s.records.size());
  RunOptions run;
  run.episodes = s.episodes;
  run.start_episode = start;
  run.seed = s.seed;
  run.stop = &stop_now;
  const int64_t greedy_every = s.settings.greedy_every;
  run.on_episode = [&](const EpisodeRecord& r) {
    s.records.push_back(r);
    if (greedy_every > 0 && (r.episode + 1) % greedy_every == 0) {
      // The policy as it stands, without exploring or learning; its own seed keeps training unchanged.
      const uint64_t seed = episode_seed(s.seed, r.episode, true);
      EpisodeRecord g = run_episode(env, agent, false, seed, r.episode, s.episodes);
      if (measure) {  // the same decisions, judged after a retrain and evaluation at every layer
        const EpisodeRecord m = replay_actions(*measure, g.actions, seed);
        g.accuracy = m.accuracy;
        g.sparsity = m.sparsity;
      }
      g.episode = r.episode;
      g.exploration = 0.0;
      s.greedy.push_back(g);
    }
    const auto ran = static_cast<int64_t>(s.records.size()) - start;
    if (o.stop_after && ran >= *o.stop_after && static_cast<int64_t>(s.records.size()) < s.episodes) by_option = true;
    const fs::path tmp = checkpoint.string() + ".tmp";
    agent.save(tmp.string());
    fs::rename(tmp, checkpoint);
    s.save(false);
    if (by_option || (o.stop && o.stop->load())) stop_now = true;
    if (o.progress) {
      const double elapsed = seconds_since(t0);
      const double left = elapsed / static_cast<double>(ran) * static_cast<double>(s.episodes - r.episode - 1);
      o.progress->update(episode_line(r, s.episodes, elapsed, left), true);
    }
  };
  train_agent(env, agent, run);
  if (o.progress) o.progress->finish();
  return static_cast<int64_t>(s.records.size()) >= s.episodes;
}

std::vector<RunSummary::Layer> layer_rows(PruneEnv& env, const FinalNetwork& f) {
  const auto& net = env.network();
  std::vector<RunSummary::Layer> layers;
  const auto names = env.episode_layers();
  for (size_t i = 0; i < names.size(); ++i) {
    const auto& l = net.prunable_layers()[net.layer_index(names[i])];
    RunSummary::Layer row{names[i], l.sparsity(), l.numel(), l.remaining(), std::nullopt};
    if (env.schedule().replays_by_values()) row.alpha = f.values[i];
    layers.push_back(row);
  }
  return layers;
}

std::vector<RunSummary::ClassAccuracy> class_rows(const EvalResult& e) {
  std::vector<RunSummary::ClassAccuracy> rows;
  for (size_t c = 0; c < e.class_count.size(); ++c)
    rows.push_back(
        {e.class_count[c], e.class_correct[c],
         e.class_count[c] ? static_cast<double>(e.class_correct[c]) / static_cast<double>(e.class_count[c]) : 0.0});
  return rows;
}

/// `dense` is the environment the agent trained on; `env` holds the final network (the same
/// environment, or the rebuilt one of train.final_train).
RunSummary make_summary(const RunState& s, const PruneEnv& dense, PruneEnv& env, const FinalNetwork& f,
                        const RunSummary::Seconds& seconds) {
  const auto& net = env.network();
  const auto& c = s.config;
  RunSummary r;
  r.agent = s.agent;
  r.seed = s.seed;
  r.episodes = s.episodes;
  r.network = c.network.name;
  r.data = env.data().description;
  r.input_mean = env.data().mean;
  r.input_std = env.data().stddev;
  r.criterion = c.env.criterion;
  r.value_name = make_criterion(c.env.criterion, c.env.criterion_options)->value_name();
  r.reward = c.env.reward.name;
  r.target_accuracy = env.reward_setup().target_accuracy;
  r.target_sparsity = env.reward_setup().target_sparsity;
  r.episode = c.env.episode;
  r.layers = layer_rows(env, f);
  r.final_values = f.values;
  r.sparsity = net.sparsity();
  r.remaining = net.remaining_prunable();
  r.total = net.total_prunable();
  r.dense = {dense.dense().validation_accuracy, dense.dense().test_accuracy};
  r.final_network = &dense == &env ? nlohmann::json("the greedy episode on the training environment")
                                   : nlohmann::json({{"rebuilt_with", s.settings.final_train},
                                                     {"dense_validation_accuracy", env.dense().validation_accuracy},
                                                     {"dense_test_accuracy", env.dense().test_accuracy}});
  r.before_finetune = {f.before_val.accuracy, f.before_test.accuracy};
  if (f.one_shot)
    r.one_shot_before_finetune = RunSummary::Accuracy{f.one_shot->first.accuracy, f.one_shot->second.accuracy};
  r.after_finetune = {f.after_val.accuracy, f.after_test.accuracy};
  r.after_finetune_train = f.after_train.accuracy;
  r.test_classes = class_rows(f.after_test);
  r.greedy_episodes = f.policy.episodes;
  r.final_episode = f.episode;
  r.cost = network_cost(net).to_json();
  r.seconds = seconds;
  r.peak_rss_mib = peak_rss_mib();
  r.threads = torch::get_num_threads();
  return r;
}

}  // namespace

TrainRunResult run_train(const TrainRunOptions& o) {
  const auto t_start = Clock::now();
  if (!o.resume.empty() && (!o.agent.empty() || o.seed || !o.out.empty()))
    throw UsageError("--resume takes the run's own settings; drop --agent, --seed and --out");
  RunState s = o.resume.empty() ? new_state(o) : resume_state(o);
  if (o.episodes) s.episodes = *o.episodes;
  if (s.episodes < 1) throw UsageError("--episodes must be >= 1");
  if (o.stop_after && *o.stop_after < 1) throw UsageError("--stop-after must be >= 1");
  if (o.threads) s.config.threads = *o.threads;
  configure_threads(s.config.threads);
  fs::create_directories(s.out);
  const LogFn log = [&](const std::string& line) {
    if (o.progress) o.progress->line(line);
  };

  const auto t_env = Clock::now();
  TrainingEnv training = make_training_env(o, s, log);
  const double env_seconds = seconds_since(t_env);
  auto agent = make_agent(s.agent, s.config.agents, training.env->action_space(), training.env->observation_space(),
                          s.seed, s.config.env.reward.target_sparsity);
  if (!s.records.empty()) {
    agent->load((s.out / "agent.ckpt").string());
    log("resuming " + s.agent + " at episode " + std::to_string(s.records.size() + 1) + " of " +
        std::to_string(s.episodes));
  }
  write_atomic(s.out / "config.json", s.config.to_json().dump(2) + "\n");

  TrainRunResult result;
  result.out = s.out.string();
  result.episodes = s.episodes;
  const auto t_train = Clock::now();
  const auto measure = measure_env(s, log);
  const bool complete = train_episodes(o, s, *training.env, *agent, result.stopped_by_option, measure.get());
  const double train_seconds = seconds_since(t_train);
  result.episodes_done = static_cast<int64_t>(s.records.size());
  if (!complete) return result;

  if (!training.local) training.local = std::make_unique<PruneEnv>(s.config, PruneEnvHooks{log, nullptr});
  std::unique_ptr<PruneEnv> rebuilt;
  if (const auto& settings = s.settings; !settings.final_train.is_null()) {
    log("building the final network with train.final_train (a fresh network, then the greedy rounds)");
    rebuilt =
        std::make_unique<PruneEnv>(final_train_config(s.config, settings.final_train), PruneEnvHooks{log, nullptr});
  }
  PruneEnv& env = rebuilt ? *rebuilt : *training.local;
  const FinalNetwork f = finalize(s.settings, s.seed, o.progress, *training.env, env, *agent);
  const auto exported = env.export_network((s.out / "pruned_model.pt").string(), (s.out / "masked_model.pt").string());
  const RunSummary::Seconds seconds{env_seconds, train_seconds, f.policy_seconds, f.finetune_seconds,
                                    seconds_since(t_start)};
  result.summary = make_summary(s, *training.local, env, f, seconds);
  result.summary.exported = exported;
  write_atomic(s.out / "ratios.json", pruning_ratios(env).dump(2) + "\n");
  write_atomic(s.out / "summary.json", result.summary.to_json().dump(2) + "\n");
  s.save(true);
  result.finished = true;
  if (o.plot)
    result.plot_message = run_python_script(
        "plot_curves.py", {(s.out / "episodes.csv").string(), (s.out / "curves.png").string()}, "curves.png");
  return result;
}

}  // namespace prunegym
