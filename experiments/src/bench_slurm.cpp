// `prunegym bench --backend slurm`: the grid's pending cells as one Slurm job array, each task
// running `prunegym bench --cell INDEX` into the shared run folder; then progress from squeue and
// the run folder, and the same tables as the local back end.

#include "bench_internal.h"

#include <prunegym/core/errors.h>
#include <prunegym/core/json_file.h>
#include <prunegym/core/timing.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;

namespace prunegym::bench_detail {

namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// A Slurm tool on PATH, or "" (PRUNEGYM_SLURM_BIN names another folder for all of them).
std::string slurm_tool(const std::string& name) {
  std::vector<std::string> dirs;
  if (const char* bin = std::getenv("PRUNEGYM_SLURM_BIN"); bin && *bin) dirs.emplace_back(bin);
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    for (std::string d; std::getline(ss, d, ':');) dirs.push_back(d);
  }
  for (const auto& d : dirs)
    if (!d.empty() && ::access((fs::path(d) / name).c_str(), X_OK) == 0) return (fs::path(d) / name).string();
  return "";
}

/// "0-3,7,9-10" for sorted indices: Slurm's --array syntax.
std::string index_ranges(const std::vector<size_t>& cells) {
  std::ostringstream os;
  for (size_t i = 0; i < cells.size();) {
    size_t j = i;
    while (j + 1 < cells.size() && cells[j + 1] == cells[j] + 1) ++j;
    os << (i ? "," : "") << cells[i];
    if (j > i) os << "-" << cells[j];
    i = j + 1;
  }
  return os.str();
}

nlohmann::json read_jobs(const fs::path& out) {
  const fs::path path = out / "slurm" / "jobs.json";
  if (!fs::exists(path)) return {{"jobs", nlohmann::json::array()}};
  std::ifstream in(path);
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.contains("jobs") || !j["jobs"].is_array())
    throw ConfigError(path.string() + " is damaged; delete it if no job of this bench is still queued");
  return j;
}

/// squeue's view of this user's array tasks: "JOBID_TASK" -> state (PENDING, RUNNING, ...).
std::map<std::string, std::string> squeue_tasks() {
  std::map<std::string, std::string> tasks;
  const std::string squeue = slurm_tool("squeue");
  if (squeue.empty()) return tasks;
  const auto c = run_captured({squeue, "--noheader", "--array", "--me", "--format=%i|%T"});
  if (c.status != 0) throw Error("squeue failed: " + c.output);
  std::istringstream in(c.output);
  for (std::string line; std::getline(in, line);) {
    const auto bar = line.find('|');
    if (bar != std::string::npos) tasks[line.substr(0, bar)] = line.substr(bar + 1);
  }
  return tasks;
}

/// Per cell of earlier submissions: its squeue state, or absent when squeue no longer lists it.
std::map<size_t, std::string> queued_states(const nlohmann::json& jobs, std::set<std::string>* job_ids) {
  std::map<size_t, std::string> states;
  if (jobs["jobs"].empty()) return states;
  const auto tasks = squeue_tasks();
  for (const auto& job : jobs["jobs"]) {
    const std::string id = job["job"].get<std::string>();
    for (const auto& cell : job["cells"]) {
      auto it = tasks.find(id + "_" + std::to_string(cell.get<size_t>()));
      if (it == tasks.end()) continue;
      states[cell.get<size_t>()] = it->second;
      if (job_ids) job_ids->insert(id);
    }
  }
  return states;
}

std::string write_batch_script(const BenchOptions& o, const Plan& plan, size_t serial) {
  const fs::path dir = fs::absolute(plan.out) / "slurm";
  const fs::path script = dir / ("submit-" + std::to_string(serial) + ".sh");
  std::ostringstream s;
  s << "#!/bin/bash\n"
    << "# Written by `prunegym bench --backend slurm`: array task N runs cell N of the grid.\n"
    << "#SBATCH --job-name=prunegym-bench-" << plan.grid.path.substr(plan.grid.path.find_last_of('/') + 1) << "\n"
    << "#SBATCH --output=" << (dir / "%A_%a.out").string() << "\n"
    << "#SBATCH --open-mode=append\n"
    << "#SBATCH --requeue\n"
    << "exec " << shell_quote(o.executable.empty() ? self_executable() : o.executable) << " bench --grid "
    << shell_quote(fs::absolute(o.grid_path).string()) << " --out " << shell_quote(fs::absolute(plan.out).string())
    << " --seeds " << plan.seeds << " --cell \"$SLURM_ARRAY_TASK_ID\" --threads \"${SLURM_CPUS_PER_TASK:-1}\"\n";
  write_atomic(script, s.str());
  fs::permissions(script, fs::perms::owner_exec, fs::perm_options::add);
  return script.string();
}

/// Submits `cells` as one array job; returns the job id.
std::string submit(const BenchOptions& o, const Plan& plan, const std::vector<size_t>& cells, nlohmann::json& jobs) {
  const std::string sbatch = slurm_tool("sbatch");
  const std::string script = write_batch_script(o, plan, jobs["jobs"].size() + 1);
  std::vector<std::string> argv{sbatch, "--parsable", "--array=" + index_ranges(cells)};
  for (const auto& opt : o.slurm_options) argv.push_back(opt.rfind("-", 0) == 0 ? opt : "--" + opt);
  argv.push_back(script);
  const auto c = run_captured(argv);
  const std::string id = c.output.substr(0, c.output.find_first_of(";\n"));
  if (c.status != 0 || id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
    throw Error("sbatch refused the job array (exit " + std::to_string(c.status) + "): " + c.output);
  const std::time_t now = std::time(nullptr);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  jobs["jobs"].push_back({{"job", id}, {"cells", cells}, {"script", script}, {"submitted", when}});
  write_atomic(plan.out / "slurm" / "jobs.json", jobs.dump(2) + "\n");
  return id;
}

/// Polls until no submitted cell is queued; fills result.failed.
void wait_for(const BenchOptions& o, const Plan& plan, const nlohmann::json& jobs, const std::vector<size_t>& cells,
              BenchResult& result) {
  const auto t0 = Clock::now();
  auto stopped = [&] { return o.stop && o.stop->load(); };
  while (true) {
    const auto states = queued_states(jobs, nullptr);
    int64_t pending = 0, running = 0, done = 0, failed = 0;
    for (size_t cell : cells) {
      auto it = states.find(cell);
      if (fs::exists(plan.out / plan.runs[cell].dir / "summary.json"))
        ++done;
      else if (it == states.end())
        ++failed;
      else if (it->second == "RUNNING" || it->second == "COMPLETING")
        ++running;
      else
        ++pending;
    }
    if (o.progress) {
      std::ostringstream os;
      os << ProgressReporter::bar(done, static_cast<int64_t>(cells.size()), 30) << " slurm: " << pending << " pending, "
         << running << " running, " << done << " done, " << failed << " failed  " << fmt_duration(seconds_since(t0));
      o.progress->update(os.str(), pending + running == 0);
    }
    if (pending + running == 0) break;
    if (stopped()) {
      result.interrupted = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(o.poll_seconds));
  }
  if (o.progress) o.progress->finish();
  if (result.interrupted) return;
  std::map<size_t, std::string> job_of;
  for (const auto& job : jobs["jobs"])
    for (const auto& cell : job["cells"]) job_of[cell.get<size_t>()] = job["job"].get<std::string>();
  for (size_t cell : cells)
    if (!fs::exists(plan.out / plan.runs[cell].dir / "summary.json"))
      result.failed.push_back(failure_line(
          plan, cell, (plan.out / "slurm" / (job_of[cell] + "_" + std::to_string(cell) + ".out")).string()));
}

}  // namespace

std::set<size_t> slurm_queued_cells(const fs::path& out, std::set<std::string>* jobs) {
  std::set<size_t> cells;
  if (!fs::exists(out / "slurm" / "jobs.json") || slurm_tool("squeue").empty()) return cells;
  for (const auto& [cell, state] : queued_states(read_jobs(out), jobs)) cells.insert(cell);
  return cells;
}

void check_slurm_tools() {
  for (const char* tool : {"sbatch", "squeue"})
    if (slurm_tool(tool).empty())
      throw UsageError(std::string("--backend slurm: ") + tool +
                       " is not on PATH; run this on a Slurm login node (Debian: slurm-client)");
}

void run_slurm(const BenchOptions& o, Plan& plan, BenchResult& result) {
  fs::create_directories(plan.out / "slurm");
  nlohmann::json jobs = read_jobs(plan.out);
  std::set<std::string> earlier;
  const auto queued = queued_states(jobs, &earlier);
  std::vector<size_t> fresh, watched;
  for (size_t cell : plan.todo) {
    (queued.count(cell) ? watched : fresh).push_back(cell);
    if (!queued.count(cell)) fs::create_directories(plan.out / plan.runs[cell].dir);
  }
  for (const auto& id : earlier) result.slurm_jobs.push_back(id);
  if (o.progress && !watched.empty())
    o.progress->line(std::to_string(watched.size()) + " cells are still queued in earlier job(s); not resubmitted");
  if (!fresh.empty()) {
    const std::string id = submit(o, plan, fresh, jobs);
    result.slurm_jobs.push_back(id);
    if (o.progress)
      o.progress->line("submitted Slurm job " + id + ": array of " + std::to_string(fresh.size()) + " cells (" +
                       index_ranges(fresh) + "), logs in " + (plan.out / "slurm").string());
  }
  if (!o.wait) return;
  const auto t0 = Clock::now();
  wait_for(o, plan, jobs, plan.todo, result);
  if (result.interrupted) return;
  write_tables(o, plan, seconds_since(t0), result);
}

}  // namespace prunegym::bench_detail
