// `prunegym bench`: every variant of a grid x every seed, J runs at a time as separate
// `prunegym train` processes; finished runs are cached by the hash of their resolved config.

#include "bench_grid.h"
#include "cli.h"
#include "commands.h"

#include <prunegym/networks/errors.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

extern char** environ;

namespace fs = std::filesystem;

namespace prunegym::cli {

const char* const kBenchHelp = R"(usage: prunegym bench --grid F [--seeds N] [--jobs J] [--out DIR]

Compares MDP design choices: runs `prunegym train` for every variant of a grid and every seed, J
at a time as separate processes, then tabulates final accuracy and sparsity as mean +- standard
error over seeds and plots learning curves and the accuracy/sparsity Pareto front.

the grid file (JSON, comments allowed; see configs/bench/):
  {
    "base": "../lenet300-fashion.json",     // a config file (relative to the grid) or object
    "agent": "dqn",                          // default agent of every variant
    "seeds": 3,                              // default --seeds
    "episodes": 55,                          // optional: overrides the config's budget
    "plugins": ["../../build/lib/libmy_reward.so"],  // optional: libraries adding rewards
    "variants": [
      {"name": "baseline", "patch": {}},
      {"name": "sparse", "description": "rewards at the end only",
       "patch": {"env": {"timing": "sparse"}}},
      {"name": "q-eq3", "agent": "q", "patch": {"agents": {"q": {"update": "eq3"}}}}
    ]
  }
  A patch is a JSON merge patch over the base config: any env, agent, train or network key.
  Every variant is validated before anything runs; errors name the variant and the key.

options:
  --seeds N      seeds 0..N-1 per variant (default: the grid's "seeds", else 3)
  --jobs J       runs at a time (default 1); each gets cores/J LibTorch threads
  --out DIR      results folder (default: runs/bench-<grid name>)
  --only A,B     run only these variants (the tables still cover every finished run)
  --dry-run      validate the grid and list the runs (cached or to do), run nothing

caching and resuming: each run lives in DIR/runs/<variant>-s<seed>-<hash>, the hash covering the
resolved config, agent, seed, episodes and plugins. A finished run is never recomputed; an
interrupted one (Ctrl-C, crash, reboot) continues from its last episode when the bench is rerun.
Changing a variant's patch gives it a new hash, so stale results are never mixed in.

writes to DIR:
  results.csv    one row per run: accuracy (test, after and before fine-tuning), validation
                 accuracy, sparsity, episodes to reach both targets, episodes, seconds
  results.md     one row per variant: mean +- standard error over seeds; * marks the Pareto front
  results.json   everything above plus per-episode learning curves (mean and standard error)
  curves.png     total reward per episode, mean over seeds with a +-1 SE band, per variant
  pareto.png     final accuracy against sparsity, runs and variant means, Pareto front marked

example:
  prunegym bench --grid configs/bench/purl-table1.json --jobs 2
)";

namespace {

std::atomic<bool> g_bench_stop{false};
extern "C" void on_bench_interrupt(int) { g_bench_stop = true; }

std::string self_exe() {
  std::error_code ec;
  const auto p = fs::canonical("/proc/self/exe", ec);
  if (ec) throw DataError("cannot find the prunegym executable (/proc/self/exe): " + ec.message());
  return p.string();
}

pid_t spawn(const std::vector<std::string>& argv, const fs::path& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0].c_str(), &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw DataError("cannot start " + argv[0] + ": " + std::strerror(rc));
  return pid;
}

std::string fmt_ms(const bench::MeanSe& m, double scale, int precision, const std::string& unit = "") {
  std::ostringstream os;
  os << std::fixed << std::setprecision(precision) << m.mean * scale << unit << " +- " << m.se * scale << unit;
  return os.str();
}

/// Episodes of a run recorded so far (for progress), from its run.json.
int64_t episodes_done(const fs::path& dir) {
  std::ifstream in(dir / "run.json");
  if (!in) return 0;
  const auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.contains("records")) return 0;
  return static_cast<int64_t>(j["records"].size());
}

}  // namespace

int run_bench(const std::vector<std::string>& argv) {
  Args args(argv, {"grid", "seeds", "jobs", "out", "only"}, {"dry-run"});
  const std::string grid_path = args.require("grid");
  const bench::Grid grid = bench::load_grid(grid_path);
  const int64_t seeds = args.get_int("seeds", grid.seeds);
  if (seeds < 1) throw UsageError("--seeds must be >= 1");
  const int64_t jobs = args.get_int("jobs", 1);
  if (jobs < 1) throw UsageError("--jobs must be >= 1");
  const fs::path out = args.get("out", "runs/bench-" + fs::path(grid_path).stem().string());
  std::set<std::string> only;
  if (args.has("only")) {
    std::stringstream ss(args.get("only"));
    std::string item;
    while (std::getline(ss, item, ',')) {
      bool known = false;
      for (const auto& v : grid.variants) known = known || v.name == item;
      if (!known) throw UsageError("--only: the grid has no variant '" + item + "'");
      only.insert(item);
    }
  }

  const auto runs = bench::plan_runs(grid, seeds);
  std::vector<size_t> todo;
  for (size_t i = 0; i < runs.size(); ++i) {
    const auto& r = runs[i];
    if (!only.empty() && !only.count(grid.variants[r.variant].name)) continue;
    if (!fs::exists(out / r.dir / "summary.json")) todo.push_back(i);
  }
  std::cerr << "bench " << grid_path << ": " << grid.variants.size() << " variants x " << seeds << " seeds = " << runs.size()
            << " runs, " << runs.size() - todo.size() << " cached, " << todo.size() << " to run, " << jobs << " at a time\n";
  if (args.flag("dry-run")) {
    for (size_t i = 0; i < runs.size(); ++i) {
      const bool pending = std::find(todo.begin(), todo.end(), i) != todo.end();
      std::cout << (pending ? "todo   " : "cached ") << (out / runs[i].dir).string() << "\n";
    }
    return 0;
  }

  // --- Run what is missing, `jobs` at a time.
  fs::create_directories(out / "runs");
  const std::string exe = self_exe();
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const int64_t threads = std::max<int64_t>(1, static_cast<int64_t>(cores) / jobs);
  g_bench_stop = false;
  auto prev_int = std::signal(SIGINT, on_bench_interrupt);
  auto prev_term = std::signal(SIGTERM, on_bench_interrupt);
  std::map<pid_t, size_t> running;
  std::vector<std::string> failed;
  size_t next = 0, finished = 0;
  const bool tty = ::isatty(STDERR_FILENO);
  const auto t0 = std::chrono::steady_clock::now();
  double run_seconds_sum = 0.0;
  auto draw = [&](bool force_line) {
    const double elapsed = seconds_since(t0);
    std::ostringstream os;
    const size_t width = 30, total = todo.size();
    const size_t filled = total ? width * finished / total : width;
    os << "[" << std::string(filled, '#') << std::string(width - filled, '.') << "] " << finished << "/" << total
       << " runs";
    if (!running.empty()) {
      os << ", running:";
      for (const auto& [pid, i] : running) os << " " << grid.variants[runs[i].variant].name << "-s" << runs[i].seed
                                             << " (ep " << episodes_done(out / runs[i].dir) << ")";
    }
    os << "  " << fmt_duration(elapsed);
    if (finished > 0 && finished < total)
      os << ", ~" << fmt_duration(run_seconds_sum / static_cast<double>(finished) * static_cast<double>(total - finished) /
                                   static_cast<double>(jobs))
         << " left";
    if (tty)
      std::cerr << "\r" << os.str() << "\033[K" << std::flush;
    else if (force_line)
      std::cerr << os.str() << "\n";
  };
  std::map<pid_t, std::chrono::steady_clock::time_point> started;
  auto last_draw = std::chrono::steady_clock::now();
  while ((next < todo.size() && !g_bench_stop) || !running.empty()) {
    while (!g_bench_stop && next < todo.size() && static_cast<int64_t>(running.size()) < jobs) {
      const auto& r = runs[todo[next]];
      const auto& v = grid.variants[r.variant];
      const fs::path dir = out / r.dir;
      fs::create_directories(dir);
      std::vector<std::string> cmd{exe};
      for (const auto& p : grid.plugins) {
        cmd.push_back("--plugin");
        cmd.push_back(p);
      }
      if (fs::exists(dir / "run.json")) {
        cmd.insert(cmd.end(), {"train", "--resume", dir.string(), "--threads", std::to_string(threads)});
      } else {
        write_atomic(dir / "input.json", v.config.dump(2) + "\n");
        cmd.insert(cmd.end(), {"train", "--config", (dir / "input.json").string(), "--agent", v.agent, "--seed",
                               std::to_string(r.seed), "--out", dir.string(), "--force", "--threads", std::to_string(threads)});
        if (grid.episodes) cmd.insert(cmd.end(), {"--episodes", std::to_string(*grid.episodes)});
      }
      const pid_t pid = spawn(cmd, dir / "log.txt");
      running[pid] = todo[next];
      started[pid] = std::chrono::steady_clock::now();
      ++next;
    }
    int status = 0;
    const pid_t done = ::waitpid(-1, &status, WNOHANG);
    if (done > 0 && running.count(done)) {
      const auto& r = runs[running[done]];
      const fs::path dir = out / r.dir;
      const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && fs::exists(dir / "summary.json");
      if (!ok && !g_bench_stop) failed.push_back(grid.variants[r.variant].name + " seed " + std::to_string(r.seed) + ": see " +
                                                 (dir / "log.txt").string());
      run_seconds_sum += seconds_since(started[done]);
      if (ok) ++finished;
      running.erase(done);
      started.erase(done);
      draw(true);
      continue;
    }
    if (done < 0 && errno == ECHILD) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (std::chrono::steady_clock::now() - last_draw > std::chrono::seconds(1)) {
      draw(false);
      last_draw = std::chrono::steady_clock::now();
    }
  }
  if (tty) std::cerr << "\n";
  std::signal(SIGINT, prev_int);
  std::signal(SIGTERM, prev_term);
  if (g_bench_stop) {
    std::cerr << "interrupted: " << finished << " runs finished in this session; rerun the same command to continue "
              << "(finished runs are kept, interrupted ones resume from their last episode)\n";
    return 130;
  }

  // --- Tables and plots from every finished run.
  std::vector<bench::RunResult> results;
  for (const auto& r : runs) {
    const fs::path dir = out / r.dir;
    if (fs::exists(dir / "summary.json"))
      results.push_back(bench::read_run(dir.string(), grid.variants[r.variant].name, r.seed));
  }
  std::ostringstream csv;
  csv << "variant,seed,test_accuracy,test_accuracy_before_finetune,validation_accuracy,sparsity,episodes_to_target,episodes,"
         "seconds,run\n"
      << std::setprecision(10);
  for (const auto& r : results) {
    csv << r.variant << "," << r.seed << "," << r.test_accuracy << "," << r.test_before_finetune << "," << r.validation_accuracy
        << "," << r.sparsity << "," << (r.episodes_to_target ? std::to_string(*r.episodes_to_target) : "") << ","
        << r.episodes << "," << r.seconds << "," << fs::relative(r.dir, out).string() << "\n";
  }
  write_atomic(out / "results.csv", csv.str());

  nlohmann::json variants = nlohmann::json::array();
  std::vector<std::pair<double, double>> means;
  std::vector<size_t> with_runs;
  for (size_t v = 0; v < grid.variants.size(); ++v) {
    std::vector<double> acc, sp, before, secs, reached;
    std::vector<const bench::RunResult*> mine;
    for (const auto& r : results)
      if (r.variant == grid.variants[v].name) {
        mine.push_back(&r);
        acc.push_back(r.test_accuracy);
        sp.push_back(r.sparsity);
        before.push_back(r.test_before_finetune);
        secs.push_back(r.seconds);
        if (r.episodes_to_target) reached.push_back(static_cast<double>(*r.episodes_to_target));
      }
    if (mine.empty()) continue;
    // Learning curve: mean and SE of the total reward at each episode over the seeds.
    size_t length = 0;
    for (const auto* r : mine) length = std::max(length, r->episode_rewards.size());
    nlohmann::json curve_mean = nlohmann::json::array(), curve_se = nlohmann::json::array();
    for (size_t e = 0; e < length; ++e) {
      std::vector<double> at;
      for (const auto* r : mine)
        if (e < r->episode_rewards.size()) at.push_back(r->episode_rewards[e]);
      const auto m = bench::mean_se(at);
      curve_mean.push_back(m.mean);
      curve_se.push_back(m.se);
    }
    const auto a = bench::mean_se(acc), s = bench::mean_se(sp), b = bench::mean_se(before), t = bench::mean_se(secs),
               e = bench::mean_se(reached);
    nlohmann::json points = nlohmann::json::array();
    for (const auto* r : mine) points.push_back({{"seed", r->seed}, {"accuracy", r->test_accuracy}, {"sparsity", r->sparsity}});
    variants.push_back({{"name", grid.variants[v].name},
                        {"description", grid.variants[v].description},
                        {"agent", grid.variants[v].agent},
                        {"runs", a.n},
                        {"accuracy", {{"mean", a.mean}, {"se", a.se}}},
                        {"sparsity", {{"mean", s.mean}, {"se", s.se}}},
                        {"accuracy_before_finetune", {{"mean", b.mean}, {"se", b.se}}},
                        {"episodes_to_target", {{"mean", e.n ? nlohmann::json(e.mean) : nlohmann::json()}, {"reached", e.n}}},
                        {"seconds", {{"mean", t.mean}, {"se", t.se}}},
                        {"points", points},
                        {"curve", {{"mean", curve_mean}, {"se", curve_se}}}});
    means.emplace_back(a.mean, s.mean);
  }
  const auto front = bench::pareto_front(means);
  for (size_t i = 0; i < variants.size(); ++i)
    variants[i]["pareto"] = std::find(front.begin(), front.end(), i) != front.end();

  std::ostringstream md;
  md << "# Bench: " << grid_path << "\n\n"
     << "Agent " << grid.agent << ", seeds 0.." << seeds - 1 << "; mean +- standard error over seeds. Accuracy is test "
     << "accuracy after fine-tuning; * marks the Pareto front of the variant means (accuracy, sparsity).\n\n"
     << "| variant | accuracy | sparsity | accuracy before fine-tuning | episodes to both targets | time per run | runs |\n"
     << "|---|---|---|---|---|---|---|\n";
  for (const auto& v : variants) {
    const auto& e = v["episodes_to_target"];
    std::ostringstream ep;
    if (e["reached"].get<int64_t>() > 0)
      ep << std::fixed << std::setprecision(1) << e["mean"].get<double>() << " (" << e["reached"] << "/" << v["runs"] << ")";
    else
      ep << "never (0/" << v["runs"] << ")";
    auto ms = [&](const char* key) {
      return bench::MeanSe{v[key]["mean"].get<double>(), v[key]["se"].get<double>(), v["runs"].get<int64_t>()};
    };
    md << "| " << (v["pareto"].get<bool>() ? "*" : "") << v["name"].get<std::string>() << " | " << fmt_ms(ms("accuracy"), 100, 2, "%")
       << " | " << fmt_ms(ms("sparsity"), 100, 2, "%") << " | " << fmt_ms(ms("accuracy_before_finetune"), 100, 2, "%") << " | "
       << ep.str() << " | " << fmt_duration(v["seconds"]["mean"].get<double>()) << " | " << v["runs"] << " |\n";
  }
  double total_seconds = 0.0;
  for (const auto& r : results) total_seconds += r.seconds;
  md << "\nCompute: " << results.size() << " runs, " << fmt_duration(total_seconds) << " of run time in total";
  if (!todo.empty()) md << "; this session's wall time " << fmt_duration(seconds_since(t0)) << " with " << jobs << " jobs";
  md << ".\n";
  if (!failed.empty()) md << "\n" << failed.size() << " runs failed and are missing from the table.\n";
  write_atomic(out / "results.md", md.str());
  write_atomic(out / "results.json", nlohmann::json{{"grid", grid_path},
                                                    {"agent", grid.agent},
                                                    {"seeds", seeds},
                                                    {"variants", variants},
                                                    {"run_seconds_total", total_seconds},
                                                    {"wall_seconds", seconds_since(t0)},
                                                    {"jobs", jobs}}
                                         .dump(2) +
                                         "\n");
  const std::string plot_message = run_plot("plot_bench.py", {(out / "results.json").string(), out.string()}, "curves.png/pareto.png");
  if (!plot_message.empty()) std::cerr << plot_message << "\n";
  std::cout << md.str();
  std::cout << "results in " << out.string() << " (results.csv, results.md, results.json"
            << (plot_message.empty() ? ", curves.png, pareto.png" : "") << ")\n";
  if (!failed.empty()) {
    std::cerr << failed.size() << " runs failed:\n";
    for (const auto& f : failed) std::cerr << "  " << f << "\n";
    return 1;
  }
  return 0;
}

}  // namespace prunegym::cli
