#include <prunegym/core/errors.h>
#include <prunegym/core/json_file.h>
#include <prunegym/core/timing.h>
#include <prunegym/experiments/bench_run.h>

#include "bench_internal.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;

namespace prunegym {

using bench::Grid;
using bench::MeanSe;
using bench::RunResult;
using bench::RunSpec;
using bench_detail::Plan;

namespace {

std::string fmt_ms(const MeanSe& m, double scale, int precision, const std::string& unit = "") {
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

/// Runs the pending cells, `jobs` at a time, until done or stopped.
void run_pool(const BenchOptions& o, const Plan& plan, BenchResult& result) {
  const Grid& grid = plan.grid;
  const auto& runs = plan.runs;
  const auto& todo = plan.todo;
  const fs::path& out = plan.out;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const int64_t threads = o.threads > 0 ? o.threads : std::max<int64_t>(1, static_cast<int64_t>(cores) / o.jobs);
  auto stopped = [&] { return o.stop && o.stop->load(); };
  std::map<pid_t, std::pair<size_t, Clock::time_point>> running;
  size_t next = 0, finished = 0;
  double run_seconds_sum = 0.0;
  const auto t0 = Clock::now();
  auto draw = [&](bool always) {
    if (!o.progress) return;
    std::ostringstream os;
    os << ProgressReporter::bar(static_cast<int64_t>(finished), static_cast<int64_t>(todo.size()), 30) << " "
       << finished << "/" << todo.size() << " runs";
    if (!running.empty()) os << ", running:";
    for (const auto& [pid, slot] : running)
      os << " " << grid.variants[runs[slot.first].variant].name << "-s" << runs[slot.first].seed << " (ep "
         << episodes_done(out / runs[slot.first].dir) << ")";
    os << "  " << fmt_duration(seconds_since(t0));
    if (finished > 0 && finished < todo.size())
      os << ", ~"
         << fmt_duration(run_seconds_sum / static_cast<double>(finished) * static_cast<double>(todo.size() - finished) /
                         static_cast<double>(o.jobs))
         << " left";
    o.progress->update(os.str(), always);
  };
  auto last_draw = Clock::now();
  while ((next < todo.size() && !stopped()) || !running.empty()) {
    while (!stopped() && next < todo.size() && static_cast<int64_t>(running.size()) < o.jobs) {
      const auto& r = runs[todo[next]];
      const fs::path dir = out / r.dir;
      fs::create_directories(dir);
      const pid_t pid = spawn_logged(bench_detail::cell_command(o, grid, r, dir, threads), (dir / "log.txt").string());
      running[pid] = {todo[next++], Clock::now()};
    }
    int status = 0;
    const pid_t done = ::waitpid(-1, &status, WNOHANG);
    if (done > 0 && running.count(done)) {
      const auto& r = runs[running[done].first];
      const fs::path dir = out / r.dir;
      const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && fs::exists(dir / "summary.json");
      if (!ok && !stopped()) result.failed.push_back(bench_detail::failure_line(plan, running[done].first));
      run_seconds_sum += seconds_since(running[done].second);
      if (ok) ++finished;
      running.erase(done);
      draw(true);
      continue;
    }
    if (done < 0 && errno == ECHILD) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (Clock::now() - last_draw > std::chrono::seconds(1)) {
      draw(false);
      last_draw = Clock::now();
    }
  }
  if (o.progress) o.progress->finish();
  result.interrupted = stopped();
}

std::string results_csv(const std::vector<RunResult>& results, const fs::path& out) {
  CsvWriter csv({"variant", "seed", "test_accuracy", "test_accuracy_before_finetune", "validation_accuracy", "sparsity",
                 "episodes_to_target", "episodes", "seconds", "run", "macs_fraction"});
  for (const auto& r : results)
    csv.row({r.variant, std::to_string(r.seed), CsvWriter::num(r.test_accuracy), CsvWriter::num(r.test_before_finetune),
             CsvWriter::num(r.validation_accuracy), CsvWriter::num(r.sparsity),
             r.episodes_to_target ? std::to_string(*r.episodes_to_target) : "", CsvWriter::num(r.episodes),
             CsvWriter::num(r.seconds), fs::relative(r.dir, out).string(),
             r.macs_fraction ? CsvWriter::num(*r.macs_fraction) : ""});
  return csv.str();
}

/// Mean and SE of the total reward at each episode over the runs.
nlohmann::json learning_curve(const std::vector<const RunResult*>& mine) {
  size_t length = 0;
  for (const auto* r : mine) length = std::max(length, r->episode_rewards.size());
  nlohmann::json mean = nlohmann::json::array(), se = nlohmann::json::array();
  for (size_t e = 0; e < length; ++e) {
    std::vector<double> at;
    for (const auto* r : mine)
      if (e < r->episode_rewards.size()) at.push_back(r->episode_rewards[e]);
    const auto m = bench::mean_se(at);
    mean.push_back(m.mean);
    se.push_back(m.se);
  }
  return {{"mean", mean}, {"se", se}};
}

/// One entry per variant with finished runs: mean +- SE of every figure, points, curve, Pareto flag.
nlohmann::json variant_stats(const Grid& grid, const std::vector<RunResult>& results) {
  nlohmann::json variants = nlohmann::json::array();
  std::vector<std::pair<double, double>> means;
  for (const auto& var : grid.variants) {
    std::vector<double> acc, sp, before, secs, reached, macs;
    std::vector<const RunResult*> mine;
    nlohmann::json points = nlohmann::json::array();
    for (const auto& r : results) {
      if (r.variant != var.name) continue;
      mine.push_back(&r);
      acc.push_back(r.test_accuracy);
      sp.push_back(r.sparsity);
      before.push_back(r.test_before_finetune);
      secs.push_back(r.seconds);
      if (r.episodes_to_target) reached.push_back(static_cast<double>(*r.episodes_to_target));
      if (r.macs_fraction) macs.push_back(*r.macs_fraction);
      points.push_back({{"seed", r.seed}, {"accuracy", r.test_accuracy}, {"sparsity", r.sparsity}});
    }
    if (mine.empty()) continue;
    const auto a = bench::mean_se(acc), s = bench::mean_se(sp), b = bench::mean_se(before), t = bench::mean_se(secs),
               e = bench::mean_se(reached);
    variants.push_back(
        {{"name", var.name},
         {"description", var.description},
         {"agent", var.agent},
         {"runs", a.n},
         {"accuracy", {{"mean", a.mean}, {"se", a.se}}},
         {"sparsity", {{"mean", s.mean}, {"se", s.se}}},
         {"accuracy_before_finetune", {{"mean", b.mean}, {"se", b.se}}},
         {"episodes_to_target", {{"mean", e.n ? nlohmann::json(e.mean) : nlohmann::json()}, {"reached", e.n}}},
         {"seconds", {{"mean", t.mean}, {"se", t.se}}},
         // Over the runs only when every run counted its MACs: a mean over some of them would not
         // describe the variant.
         {"macs_fraction", macs.size() == mine.size()
                               ? nlohmann::json{{"mean", bench::mean_se(macs).mean}, {"se", bench::mean_se(macs).se}}
                               : nlohmann::json()},
         {"points", points},
         {"curve", learning_curve(mine)}});
    means.emplace_back(a.mean, s.mean);
  }
  const auto front = bench::pareto_front(means);
  for (size_t i = 0; i < variants.size(); ++i)
    variants[i]["pareto"] = std::find(front.begin(), front.end(), i) != front.end();
  return variants;
}

std::string results_markdown(const BenchOptions& o, const Grid& grid, int64_t seeds, const nlohmann::json& variants,
                             const std::string& compute) {
  std::ostringstream md;
  md << "# Bench: " << o.grid_path << "\n\n"
     << "Agent " << grid.agent << ", seeds 0.." << seeds - 1 << "; mean +- standard error over seeds. Accuracy is test "
     << "accuracy after fine-tuning; * marks the Pareto front of the variant means (accuracy, sparsity).\n\n"
     << "| variant | accuracy | sparsity | MACs left | accuracy before fine-tuning | episodes to both targets | "
        "time per run | runs |\n"
     << "|---|---|---|---|---|---|---|---|\n";
  for (const auto& v : variants) {
    const auto& e = v["episodes_to_target"];
    std::ostringstream ep;
    if (e["reached"].get<int64_t>() > 0)
      ep << std::fixed << std::setprecision(1) << e["mean"].get<double>() << " (" << e["reached"] << "/" << v["runs"]
         << ")";
    else
      ep << "never (0/" << v["runs"] << ")";
    auto ms = [&](const char* key) {
      return MeanSe{v[key]["mean"].get<double>(), v[key]["se"].get<double>(), v["runs"].get<int64_t>()};
    };
    md << "| " << (v["pareto"].get<bool>() ? "*" : "") << v["name"].get<std::string>() << " | "
       << fmt_ms(ms("accuracy"), 100, 2, "%") << " | " << fmt_ms(ms("sparsity"), 100, 2, "%") << " | "
       << (v["macs_fraction"].is_null() ? std::string("n/a") : fmt_ms(ms("macs_fraction"), 100, 1, "%")) << " | "
       << fmt_ms(ms("accuracy_before_finetune"), 100, 2, "%") << " | " << ep.str() << " | "
       << fmt_duration(v["seconds"]["mean"].get<double>()) << " | " << v["runs"] << " |\n";
  }
  md << compute;
  return md.str();
}

}  // namespace

namespace bench_detail {

/// The command that runs (or resumes) one cell.
std::vector<std::string> cell_command(const BenchOptions& o, const Grid& grid, const RunSpec& r, const fs::path& dir,
                                      int64_t threads) {
  std::vector<std::string> cmd{o.executable.empty() ? self_executable() : o.executable};
  for (const auto& p : grid.plugins) cmd.insert(cmd.end(), {"--plugin", p});
  if (fs::exists(dir / "run.json")) {
    cmd.insert(cmd.end(), {"train", "--resume", dir.string(), "--threads", std::to_string(threads)});
    return cmd;
  }
  const auto& v = grid.variants[r.variant];
  write_atomic(dir / "input.json", v.config.dump(2) + "\n");
  cmd.insert(cmd.end(),
             {"train", "--config", (dir / "input.json").string(), "--agent", v.agent, "--seed", std::to_string(r.seed),
              "--out", dir.string(), "--force", "--threads", std::to_string(threads)});
  if (grid.episodes) cmd.insert(cmd.end(), {"--episodes", std::to_string(*grid.episodes)});
  return cmd;
}

/// results.csv, results.md, results.json and the plots from every finished run of the grid.
void write_tables(const BenchOptions& o, const Plan& plan, double wall_seconds, BenchResult& result) {
  const Grid& grid = plan.grid;
  const auto& runs = plan.runs;
  const fs::path& out = plan.out;
  const int64_t seeds = plan.seeds;
  std::vector<RunResult> results;
  for (const auto& r : runs) {
    const fs::path dir = out / r.dir;
    if (fs::exists(dir / "summary.json"))
      results.push_back(bench::read_run(dir.string(), grid.variants[r.variant].name, r.seed));
  }
  write_atomic(out / "results.csv", results_csv(results, out));
  const nlohmann::json variants = variant_stats(grid, results);
  double total_seconds = 0.0;
  for (const auto& r : results) total_seconds += r.seconds;
  std::ostringstream compute;
  compute << "\nCompute: " << results.size() << " runs, " << fmt_duration(total_seconds) << " of run time in total";
  if (result.todo > 0 && o.backend == "slurm")
    compute << "; this session's wall time " << fmt_duration(wall_seconds) << " on Slurm";
  else if (result.todo > 0)
    compute << "; this session's wall time " << fmt_duration(wall_seconds) << " with " << o.jobs << " jobs";
  compute << ".\n";
  if (!result.failed.empty())
    compute << "\n" << result.failed.size() << " runs failed and are missing from the table.\n";
  result.markdown = results_markdown(o, grid, seeds, variants, compute.str());
  write_atomic(out / "results.md", result.markdown);
  const nlohmann::json doc{{"grid", o.grid_path},
                           {"agent", grid.agent},
                           {"seeds", seeds},
                           {"variants", variants},
                           {"run_seconds_total", total_seconds},
                           {"wall_seconds", wall_seconds},
                           {"jobs", o.jobs},
                           {"backend", o.backend}};
  write_atomic(out / "results.json", doc.dump(2) + "\n");
  if (o.plot)
    result.plot_message =
        run_python_script("plot_bench.py", {(out / "results.json").string(), out.string()}, "curves.png/pareto.png");
}

std::string failure_line(const Plan& plan, size_t cell, const std::string& extra_log) {
  const auto& r = plan.runs[cell];
  return plan.grid.variants[r.variant].name + " seed " + std::to_string(r.seed) + ": see " +
         (plan.out / r.dir / "log.txt").string() + (extra_log.empty() ? "" : " and " + extra_log);
}

}  // namespace bench_detail

namespace {

/// Runs one cell in the foreground (a Slurm array task): its `prunegym train` child logs to the
/// run's log.txt; a stop request (SIGTERM from Slurm on preemption) reaches the child, which
/// saves its state, so a requeued task resumes.
int run_cell(const BenchOptions& o, const Plan& plan, BenchResult& result) {
  const int64_t cell = *o.cell;
  if (cell < 0 || cell >= static_cast<int64_t>(plan.runs.size()))
    throw UsageError("--cell " + std::to_string(cell) + ": the grid has " + std::to_string(plan.runs.size()) +
                     " cells (0.." + std::to_string(plan.runs.size() - 1) + ") with these seeds");
  const auto& r = plan.runs[static_cast<size_t>(cell)];
  const fs::path dir = plan.out / r.dir;
  const std::string name = plan.grid.variants[r.variant].name + " seed " + std::to_string(r.seed);
  if (fs::exists(dir / "summary.json")) {
    if (o.progress)
      o.progress->line("cell " + std::to_string(cell) + " (" + name + ") is finished already: " + dir.string());
    return 0;
  }
  int64_t threads = o.threads;
  if (threads <= 0)
    if (const char* env = std::getenv("SLURM_CPUS_PER_TASK"); env && std::atoll(env) > 0) threads = std::atoll(env);
  if (threads <= 0) threads = std::max(1u, std::thread::hardware_concurrency());
  fs::create_directories(dir);
  if (o.progress)
    o.progress->line("cell " + std::to_string(cell) + ": " + name + " in " + dir.string() + " with " +
                     std::to_string(threads) + " threads (log: " + (dir / "log.txt").string() + ")");
  const pid_t pid = spawn_logged(bench_detail::cell_command(o, plan.grid, r, dir, threads), (dir / "log.txt").string());
  int status = 0;
  bool forwarded = false;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (o.stop && o.stop->load() && !forwarded) {
      ::kill(pid, SIGTERM);
      forwarded = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  result.cell_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  if (!fs::exists(dir / "summary.json")) {
    result.failed.push_back(bench_detail::failure_line(plan, static_cast<size_t>(cell)));
    if (result.cell_status == 0) result.cell_status = 1;
  }
  return result.cell_status;
}

}  // namespace

BenchResult run_bench(const BenchOptions& o) {
  const Grid grid = bench::load_grid(o.grid_path);
  const int64_t seeds = o.seeds.value_or(grid.seeds);
  if (seeds < 1) throw UsageError("--seeds must be >= 1");
  if (o.jobs < 1) throw UsageError("--jobs must be >= 1");
  for (const auto& name : o.only) {
    bool known = false;
    for (const auto& v : grid.variants) known = known || v.name == name;
    if (!known) throw UsageError("--only: the grid has no variant '" + name + "'");
  }
  if (o.backend != "local" && o.backend != "slurm")
    throw UsageError("--backend must be local or slurm, got '" + o.backend + "'");
  if (o.backend == "slurm" && !o.cell && !o.dry_run) bench_detail::check_slurm_tools();
  BenchResult result;
  Plan plan{grid,
            seeds,
            bench::plan_runs(grid, seeds),
            o.out.empty() ? "runs/bench-" + fs::path(o.grid_path).stem().string() : o.out,
            {}};
  const fs::path& out = plan.out;
  result.out = out.string();
  if (o.cell) {
    run_cell(o, plan, result);
    return result;
  }
  // Cells an earlier `--backend slurm` left queued are Slurm's: never run twice.
  std::set<std::string> slurm_jobs;
  const auto in_slurm = o.backend == "local" ? bench_detail::slurm_queued_cells(out, &slurm_jobs) : std::set<size_t>{};
  const auto& runs = plan.runs;
  for (size_t i = 0; i < runs.size(); ++i) {
    const bool selected = o.only.empty() || o.only.count(grid.variants[runs[i].variant].name);
    const bool pending = !fs::exists(out / runs[i].dir / "summary.json");
    if (selected && pending && !in_slurm.count(i)) plan.todo.push_back(i);
    result.listing.emplace_back((out / runs[i].dir).string(), pending);
  }
  result.planned = static_cast<int64_t>(runs.size());
  result.todo = static_cast<int64_t>(plan.todo.size());
  result.cached = result.planned - result.todo - static_cast<int64_t>(in_slurm.size());
  if (o.progress) {
    o.progress->line("bench " + o.grid_path + ": " + std::to_string(grid.variants.size()) + " variants x " +
                     std::to_string(seeds) + " seeds = " + std::to_string(runs.size()) + " runs, " +
                     std::to_string(result.cached) + " cached, " + std::to_string(result.todo) + " to run" +
                     (o.backend == "slurm" ? " on Slurm" : ", " + std::to_string(o.jobs) + " at a time"));
    if (!in_slurm.empty()) {
      std::string ids;
      for (const auto& id : slurm_jobs) ids += (ids.empty() ? "" : ",") + id;
      o.progress->line(std::to_string(in_slurm.size()) + " runs are queued in Slurm job " + ids +
                       ": left to Slurm (watch with --backend slurm; scancel " + ids + " to take them back)");
    }
  }
  if (o.dry_run) return result;

  fs::create_directories(out / "runs");
  if (o.backend == "slurm") {
    bench_detail::run_slurm(o, plan, result);
    return result;
  }
  const auto t0 = Clock::now();
  run_pool(o, plan, result);
  if (result.interrupted) return result;
  bench_detail::write_tables(o, plan, seconds_since(t0), result);
  return result;
}

}  // namespace prunegym
