// `prunegym train`: train an agent, extract PuRL's final policy, fine-tune, write the results.

#include "cli.h"
#include "commands.h"

#include <prunegym/agents/factory.h>
#include <prunegym/agents/runner.h>
#include <prunegym/env/prune_env.h>
#include <prunegym/env/system.h>
#include <prunegym/networks/errors.h>
#include <prunegym/server/remote_env.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace fs = std::filesystem;

namespace prunegym::cli {

const char* const kTrainHelp = R"(usage: prunegym train --config F --agent NAME [options]
       prunegym train --resume DIR [--episodes N]

Trains an agent on the pruning environment, then, as PuRL does, takes the mean action value per
layer over a few greedy episodes as the final policy, applies it to the dense model and fine-tunes
on the whole training set.

agents:
  dqn       DQN (PuRL's agent and defaults: 55 episodes, buffer 400, gamma 0.982, ...)
  q         tabular Q-learning over discretised observations (seed 000's eq3/eq6 rules)
  ppo       PPO with a categorical policy
  random    uniformly random actions
  uniform   one alpha for every layer, bisected to reach the target sparsity (PuRL's baseline)

options:
  --episodes N     training episodes (default: agents.NAME.episodes, else train.episodes = 55)
  --seed S         seed of the agent and of every episode (default: the config's seed)
  --out DIR        results folder (default: runs/<config>-<agent>-s<seed>)
  --resume DIR     continue an interrupted run from its checkpoint (same config, agent, seed)
  --stop-after N   stop (as Ctrl-C would, but exit 0) after N more episodes; --resume continues
  --remote E       train against a prunegym server at endpoint E (prunegym serve); the final
                   fine-tuning runs locally on the same config
  --force          overwrite a finished or interrupted run in --out
  --set K=V        override a config key (repeatable), e.g. --set agents.dqn.lr=0.0005
  --threads N      LibTorch threads (0 = one per core)

writes to DIR:
  episodes.csv     one row per training episode (reward, accuracy, sparsity, epsilon, alphas)
  summary.json     final alphas, per-layer and global sparsity, accuracy before/after fine-tuning,
                   dense accuracy, wall time per phase, peak memory
  agent.ckpt       the agent (resumable), pruned_model.pt (weights and masks), config.json
  curves.png       reward, accuracy and sparsity per episode (needs python3-matplotlib)

Ctrl-C stops after the current episode and saves everything; --resume DIR continues.

example:
  prunegym train --config configs/lenet300-fashion.json --agent dqn --seed 1
)";

namespace {

using Clock = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};

extern "C" void on_interrupt(int) {
  if (g_stop.exchange(true)) std::_Exit(130);  // a second Ctrl-C leaves at once
}


nlohmann::json record_json(const EpisodeRecord& r) {
  return {{"episode", r.episode},   {"total_reward", r.total_reward}, {"steps", r.steps},
          {"accuracy", r.accuracy}, {"sparsity", r.sparsity},         {"early_stop", r.early_stop},
          {"truncated", r.truncated}, {"values", r.values},           {"exploration", r.exploration},
          {"seconds", r.seconds}};
}

EpisodeRecord record_from_json(const nlohmann::json& j) {
  EpisodeRecord r;
  r.episode = j.at("episode").get<int64_t>();
  r.total_reward = j.at("total_reward").get<double>();
  r.steps = j.at("steps").get<int64_t>();
  r.accuracy = j.at("accuracy").get<double>();
  r.sparsity = j.at("sparsity").get<double>();
  r.early_stop = j.at("early_stop").get<bool>();
  r.truncated = j.value("truncated", false);
  r.values = j.at("values").get<std::vector<double>>();
  r.exploration = j.at("exploration").is_number() ? j.at("exploration").get<double>() : 0.0;
  r.seconds = j.at("seconds").get<double>();
  return r;
}

void write_csv(const fs::path& path, const std::vector<EpisodeRecord>& records) {
  std::ostringstream os;
  os << "episode,total_reward,accuracy,sparsity,steps,early_stop,exploration,seconds,values\n";
  os << std::setprecision(10);
  for (const auto& r : records) {
    os << r.episode << "," << r.total_reward << "," << r.accuracy << "," << r.sparsity << "," << r.steps << ","
       << (r.early_stop ? 1 : 0) << "," << r.exploration << "," << r.seconds << ",";
    for (size_t i = 0; i < r.values.size(); ++i) os << (i ? ";" : "") << r.values[i];
    os << "\n";
  }
  write_atomic(path, os.str());
}

/// Draws curves.png with matplotlib; returns a message for the user when it cannot.
std::string plot_curves(const fs::path& out) {
  return run_plot("plot_curves.py", {(out / "episodes.csv").string(), (out / "curves.png").string()}, "curves.png");
}

class Progress {
 public:
  Progress(int64_t total, int64_t done) : total_(total), start_done_(done), tty_(::isatty(STDERR_FILENO)), t0_(Clock::now()) {}
  void update(const EpisodeRecord& r) {
    const int64_t done = r.episode + 1;
    const double elapsed = seconds_since(t0_);
    const double rate = elapsed / static_cast<double>(std::max<int64_t>(done - start_done_, 1));
    const double remaining = rate * static_cast<double>(total_ - done);
    std::ostringstream os;
    os << "episode " << std::setw(3) << done << "/" << total_ << "  reward " << std::fixed << std::setprecision(3)
       << std::setw(7) << r.total_reward << "  acc " << pct(r.accuracy) << "  sparsity " << pct(r.sparsity);
    if (!std::isnan(r.exploration)) os << "  eps " << std::setprecision(2) << r.exploration;
    os << "  " << fmt_duration(elapsed) << " elapsed, " << fmt_duration(remaining) << " left";
    if (tty_) {
      const int width = 24;
      const int filled = static_cast<int>(width * done / std::max<int64_t>(total_, 1));
      std::cerr << "\r[" << std::string(filled, '#') << std::string(width - filled, '.') << "] " << os.str() << "\033[K"
                << std::flush;
      if (done == total_) std::cerr << "\n";
    } else {
      std::cerr << os.str() << "\n";
    }
  }
  void finish_line() {
    if (tty_) std::cerr << "\n";
  }

 private:
  int64_t total_, start_done_;
  bool tty_;
  Clock::time_point t0_;
};

}  // namespace

int run_train(const std::vector<std::string>& argv) {
  Args args(argv, {"config", "agent", "episodes", "seed", "out", "resume", "threads", "stop-after", "remote"}, {"force"}, {"set"});
  const auto t_start = Clock::now();

  // --- Resolve the run: a new one, or a resumed one from its folder.
  nlohmann::json state;
  Config config;
  std::string agent_name;
  uint64_t seed = 0;
  fs::path out;
  std::vector<EpisodeRecord> records;
  if (args.has("resume")) {
    for (const char* o : {"config", "agent", "seed", "out", "set"})
      if (args.has(o)) throw UsageError(std::string("--resume takes the run's own settings; drop --") + o);
    out = args.get("resume");
    if (!fs::exists(out / "run.json")) throw UsageError("--resume " + out.string() + ": no run.json there (not a prunegym train folder)");
    state = read_json_file((out / "run.json").string());
    config = Config::from_json(state.at("config"));
    agent_name = state.at("agent").get<std::string>();
    seed = state.at("seed").get<uint64_t>();
    for (const auto& r : state.at("records")) records.push_back(record_from_json(r));
  } else {
    config = load_config(args);
    agent_name = args.require("agent");
    const auto names = agent_names();
    if (std::find(names.begin(), names.end(), agent_name) == names.end())
      throw UsageError("--agent: unknown agent '" + agent_name + "' (known: q, dqn, ppo, random, uniform)");
    const int64_t s = args.get_int("seed", static_cast<int64_t>(config.seed));
    if (s < 0) throw UsageError("--seed must be >= 0");
    seed = static_cast<uint64_t>(s);
    const std::string stem = fs::path(args.require("config")).stem().string();
    out = args.get("out", "runs/" + stem + "-" + agent_name + "-s" + std::to_string(seed));
    if (fs::exists(out / "run.json") && !args.flag("force")) {
      throw UsageError("the folder " + out.string() + " already holds a run; continue it with --resume " + out.string() +
                       ", or pass --force to start over, or choose --out");
    }
  }
  if (args.has("threads")) config.threads = args.get_int("threads", 0);
  configure_threads(config.threads);

  const TrainSettings settings = parse_train_settings(config.train);
  int64_t episodes = agent_episodes(agent_name, config.agents, settings);
  if (state.contains("episodes")) episodes = state["episodes"].get<int64_t>();
  if (args.has("episodes")) episodes = args.get_int("episodes", episodes);
  if (episodes < 1) throw UsageError("--episodes must be >= 1");
  const int64_t stop_after = args.get_int("stop-after", -1);
  if (args.has("stop-after") && stop_after < 1) throw UsageError("--stop-after must be >= 1");
  fs::create_directories(out);

  // --- Environment (pretrains or loads the dense model) and agent.
  auto log = [](const std::string& line) { std::cerr << line << std::endl; };
  const auto t_env = Clock::now();
  std::unique_ptr<PruneEnv> local;
  std::unique_ptr<RemoteEnv> remote;
  Env* training_env = nullptr;
  if (args.has("remote")) {
    remote = RemoteEnv::from_config(args.get("remote"), config.to_json());
    training_env = remote.get();
    std::cerr << "training against " << args.get("remote") << " (session " << remote->session() << ")\n";
  } else {
    local = std::make_unique<PruneEnv>(config, PruneEnvHooks{log, nullptr});
    training_env = local.get();
  }
  const double env_seconds = seconds_since(t_env);
  auto agent = make_agent(agent_name, config.agents, training_env->action_space(), training_env->observation_space(), seed,
                          config.env.reward.target_sparsity);
  const fs::path checkpoint = out / "agent.ckpt";
  if (!records.empty()) {
    agent->load(checkpoint.string());
    std::cerr << "resuming " << agent_name << " at episode " << records.size() + 1 << " of " << episodes << "\n";
  }
  write_atomic(out / "config.json", config.to_json().dump(2) + "\n");

  auto save_state = [&](bool finished) {
    nlohmann::json recs = nlohmann::json::array();
    for (const auto& r : records) recs.push_back(record_json(r));
    const nlohmann::json st{{"agent", agent_name}, {"seed", seed},           {"episodes", episodes},
                            {"finished", finished}, {"config", config.to_json()}, {"records", recs}};
    write_atomic(out / "run.json", st.dump() + "\n");
    write_csv(out / "episodes.csv", records);
  };

  // --- Training, checkpointed after every episode.
  g_stop = false;
  auto previous = std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  const auto t_train = Clock::now();
  Progress progress(episodes, static_cast<int64_t>(records.size()));
  RunOptions run;
  run.episodes = episodes;
  run.start_episode = static_cast<int64_t>(records.size());
  run.seed = seed;
  run.stop = &g_stop;
  const size_t records_at_start = records.size();
  bool stopped_by_option = false;
  run.on_episode = [&](const EpisodeRecord& r) {
    records.push_back(r);
    if (stop_after > 0 && static_cast<int64_t>(records.size() - records_at_start) >= stop_after &&
        static_cast<int64_t>(records.size()) < episodes) {
      stopped_by_option = true;
      g_stop = true;
    }
    const fs::path tmp = checkpoint.string() + ".tmp";
    agent->save(tmp.string());
    fs::rename(tmp, checkpoint);
    save_state(false);
    progress.update(r);
  };
  train_agent(*training_env, *agent, run);
  const double train_seconds = seconds_since(t_train);
  std::signal(SIGINT, previous);
  std::signal(SIGTERM, SIG_DFL);
  if (g_stop) {
    progress.finish_line();
    std::cerr << (stopped_by_option ? "stopped (--stop-after)" : "interrupted") << " after " << records.size() << " of " << episodes << " episodes; everything is saved in "
              << out.string() << "\ncontinue with: prunegym train --resume " << out.string() << "\n";
    return stopped_by_option ? 0 : 130;
  }

  // --- PuRL's final policy, applied to the dense model, then fine-tuned.
  const auto t_policy = Clock::now();
  const GreedyPolicy policy = greedy_policy(*training_env, *agent, settings.policy_episodes, seed);
  if (!local) local = std::make_unique<PruneEnv>(config, PruneEnvHooks{log, nullptr});
  PruneEnv& env = *local;
  std::vector<double> final_values = policy.mean_values;
  if (env.rounds_mode()) {
    // Rounds episodes prune, reset and retrain as they go: the final network is what one
    // greedy episode leaves, and its actions are the per-round pruning values.
    final_values = run_episode(env, *agent, false, episode_seed(seed, 0, true)).values;
  } else {
    env.apply_values(policy.mean_values);
  }
  const auto before_val = env.evaluate_split("validation");
  const auto before_test = env.evaluate_split("test");
  const double policy_seconds = seconds_since(t_policy);

  const auto t_ft = Clock::now();
  env.finetune(settings.finetune, [&](int64_t epoch, int64_t total, double loss) {
    std::cerr << "fine-tune epoch " << epoch + 1 << "/" << total << "  loss " << std::fixed << std::setprecision(4) << loss
              << "  " << fmt_duration(seconds_since(t_ft)) << "\n";
  });
  const auto after_val = env.evaluate_split("validation");
  const auto after_test = env.evaluate_split("test");
  const double finetune_seconds = seconds_since(t_ft);
  env.save_network((out / "pruned_model.pt").string());

  // --- Results.
  const auto& net = env.network();
  nlohmann::json layers = nlohmann::json::array();
  const auto names = env.episode_layers();
  for (size_t i = 0; i < names.size(); ++i) {
    const auto& l = net.prunable_layers()[net.layer_index(names[i])];
    nlohmann::json row{{"layer", names[i]}, {"sparsity", l.sparsity()}, {"weights", l.numel()}, {"remaining", l.remaining()}};
    if (!env.rounds_mode()) row["alpha"] = final_values[i];
    layers.push_back(row);
  }
  nlohmann::json greedy = nlohmann::json::array();
  for (const auto& r : policy.episodes) greedy.push_back(record_json(r));
  const double total_seconds = seconds_since(t_start);
  const nlohmann::json summary{
      {"agent", agent_name},
      {"seed", seed},
      {"episodes", episodes},
      {"network", config.network.name},
      {"data", env.data().description},
      {"criterion", config.env.criterion},
      {"reward", config.env.reward.name},
      {"target_accuracy", env.reward_setup().target_accuracy},
      {"target_sparsity", env.reward_setup().target_sparsity},
      {"episode", config.env.episode},
      {"layers", layers},
      {"final_values", final_values},
      {"sparsity", net.sparsity()},
      {"remaining", net.remaining_prunable()},
      {"total", net.total_prunable()},
      {"dense", {{"validation_accuracy", env.dense().validation_accuracy}, {"test_accuracy", env.dense().test_accuracy}}},
      {"before_finetune", {{"validation_accuracy", before_val.accuracy}, {"test_accuracy", before_test.accuracy}}},
      {"after_finetune", {{"validation_accuracy", after_val.accuracy}, {"test_accuracy", after_test.accuracy}}},
      {"greedy_episodes", greedy},
      {"seconds",
       {{"environment", env_seconds}, {"training", train_seconds}, {"policy", policy_seconds},
        {"finetune", finetune_seconds}, {"total", total_seconds}}},
      {"peak_rss_mib", peak_rss_mib()},
      {"threads", torch::get_num_threads()}};
  write_atomic(out / "summary.json", summary.dump(2) + "\n");
  save_state(true);
  const std::string plot_message = plot_curves(out);
  if (!plot_message.empty()) std::cerr << plot_message << "\n";

  std::cout << "\n" << agent_name << " on " << config.network.name << " (" << episodes << " episodes, seed " << seed << ")\n";
  if (env.rounds_mode()) {
    std::cout << "  rounds of the greedy episode, pruning values:";
    for (double v : final_values) std::cout << " " << std::fixed << std::setprecision(2) << v;
    std::cout << "\n";
  }
  std::cout << "  " << std::left << std::setw(14) << "layer" << std::right << std::setw(8)
            << (env.rounds_mode() ? "" : "alpha") << std::setw(11) << "sparsity" << "\n";
  for (const auto& l : layers) {
    std::cout << "  " << std::left << std::setw(14) << l["layer"].get<std::string>() << std::right << std::fixed
              << std::setprecision(2) << std::setw(8);
    if (l.contains("alpha"))
      std::cout << l["alpha"].get<double>();
    else
      std::cout << "";
    std::cout << std::setw(11) << pct(l["sparsity"].get<double>()) << "\n";
  }
  std::cout << "  global sparsity        " << pct(net.sparsity()) << " (" << net.remaining_prunable() << " of "
            << net.total_prunable() << " weights remain)\n"
            << "  test accuracy          dense " << pct(env.dense().test_accuracy) << ", pruned " << pct(before_test.accuracy)
            << ", fine-tuned " << pct(after_test.accuracy) << "\n"
            << "  validation accuracy    dense " << pct(env.dense().validation_accuracy) << ", fine-tuned "
            << pct(after_val.accuracy) << "\n"
            << "  wall time              " << fmt_duration(total_seconds) << " (training " << fmt_duration(train_seconds)
            << ", fine-tuning " << fmt_duration(finetune_seconds) << ")\n"
            << "  peak memory            " << std::setprecision(0) << peak_rss_mib() << " MiB\n"
            << "  results                " << out.string() << "/summary.json, episodes.csv"
            << (plot_message.empty() ? ", curves.png" : "") << "\n";
  return 0;
}

}  // namespace prunegym::cli
