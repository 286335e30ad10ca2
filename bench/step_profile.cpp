// Where an environment step's time goes, operator by operator.
//
//   build/bin/bench_profile CONFIG.json [steps=4] [key.path=value ...]   (key=value: config overrides)
//
// Runs warm-up steps, then `steps` steps under LibTorch's profiler (CPU events of the calling
// thread; OpenMP workers run inside the operators that spawn them). Prints one JSON object: the
// step time with and without the profiler, the operator calls per step, and per operator its calls,
// self time (its own time minus the operators it called) per step, share of the profiled step and
// mean time per call, and the top-level call (an operator or autograd node) holding most of that
// time; `small_call_share` is the share of the step spent in calls of under 20 us
// of self time, the dispatch-bound part. Render with bench/profile_report.py.
#include <prunegym/core/json_file.h>
#include <prunegym/core/system.h>
#include <prunegym/env/prune_env.h>

#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
namespace prof = torch::autograd::profiler;

namespace {

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

struct OpTally {
  int64_t calls = 0;
  double self_us = 0, small_us = 0;
  std::map<std::string, double> under;  ///< self time by the top-level call it ran inside
};

struct Profile {
  std::map<std::string, OpTally> ops;
  int64_t calls = 0, top_level = 0;
  double self_us = 0;
};

/// Pairs push and pop events per thread and charges each range its self time.
Profile tally(const prof::thread_event_lists& lists) {
  Profile p;
  for (const auto& events : lists) {
    struct Open {
      const prof::LegacyEvent* push;
      double child_us = 0;
    };
    std::vector<Open> stack;
    for (const auto& e : events) {
      if (e.kindStr() == "push") {
        stack.push_back({&e});
        continue;
      }
      if (e.kindStr() != "pop" || stack.empty()) continue;
      const Open open = stack.back();
      stack.pop_back();
      const double elapsed = open.push->cpuElapsedUs(e);
      const double self = std::max(0.0, elapsed - open.child_us);
      auto& t = p.ops[open.push->name()];
      ++t.calls;
      t.self_us += self;
      t.under[stack.empty() ? std::string("(itself)") : std::string(stack.front().push->name())] += self;
      if (self < 20.0) t.small_us += self;
      ++p.calls;
      p.self_us += self;
      if (stack.empty())
        ++p.top_level;
      else
        stack.back().child_us += elapsed;
    }
  }
  return p;
}

prunegym::Action mid_action(prunegym::PruneEnv& env) {
  return prunegym::Action(static_cast<int64_t>(env.action_space().values().size() / 2));
}

/// Wall times of `steps` steps (resetting at episode ends).
std::vector<double> run_steps(prunegym::PruneEnv& env, int64_t steps) {
  std::vector<double> out;
  const auto action = mid_action(env);
  while (static_cast<int64_t>(out.size()) < steps) {
    const auto t0 = Clock::now();
    const auto r = env.step(action);
    out.push_back(ms_since(t0));
    if (r.terminated || r.truncated) env.reset();
  }
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

json render(const Profile& p, int64_t steps, double step_ms) {
  json ops = json::array();
  std::vector<std::pair<std::string, OpTally>> sorted(p.ops.begin(), p.ops.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.second.self_us > b.second.self_us; });
  double small_us = 0;
  for (const auto& [name, t] : sorted) {
    small_us += t.small_us;
    const auto top = std::max_element(t.under.begin(), t.under.end(),
                                      [](const auto& a, const auto& b) { return a.second < b.second; });
    ops.push_back({{"name", name},
                   {"calls_per_step", static_cast<double>(t.calls) / static_cast<double>(steps)},
                   {"self_ms_per_step", t.self_us / 1e3 / static_cast<double>(steps)},
                   {"share", t.self_us / std::max(p.self_us, 1e-9)},
                   {"us_per_call", t.self_us / static_cast<double>(std::max<int64_t>(t.calls, 1))},
                   {"mostly_under", top->first},
                   {"mostly_under_share", top->second / std::max(t.self_us, 1e-9)}});
  }
  const double per_step = static_cast<double>(steps);
  return {{"profiled_step_ms", step_ms},
          {"op_ms_per_step", p.self_us / 1e3 / per_step},
          {"calls_per_step", static_cast<double>(p.calls) / per_step},
          {"top_level_calls_per_step", static_cast<double>(p.top_level) / per_step},
          {"small_call_share", small_us / std::max(p.self_us, 1e-9)},
          {"operators", ops}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cerr << "usage: bench_profile CONFIG.json [steps=4] [key.path=value ...]\n"
                 "  profiles `steps` environment steps operator by operator (after warm-up) and prints\n"
                 "  one JSON object; render it with bench/profile_report.py\n";
    return argc < 2 ? 2 : 0;
  }
  try {
    auto doc = prunegym::read_json_file(argv[1]);
    const int64_t steps = argc > 2 ? std::stoll(argv[2]) : 4;
    if (steps < 1) throw std::invalid_argument("steps must be at least 1, got " + std::to_string(steps));
    for (int i = 3; i < argc; ++i) prunegym::apply_override(doc, argv[i]);
    const auto config = prunegym::Config::from_json(doc);
    const int threads = prunegym::configure_threads(config.threads);
    prunegym::PruneEnv env(config);
    env.reset();
    run_steps(env, 3);  // warm-up: allocator pools and optimizer state exist
    const double plain_ms = median(run_steps(env, steps));
    Profile profile;
    double profiled_ms = 0;
    {
      prof::TLSLegacyProfilerGuard guard(
          torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU),
          [&](const prof::thread_event_lists& lists) { profile = tally(lists); });
      profiled_ms = median(run_steps(env, steps));
    }
    json out = render(profile, steps, profiled_ms);
    out["config"] = argv[1];
    out["network"] = config.network.name;
    out["threads"] = threads;
    out["steps"] = steps;
    out["step_ms"] = plain_ms;
    out["layers"] = env.network().prunable_layers().size();
    out["parameter_tensors"] = env.network().parameters().size();
    std::cout << out.dump() << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_profile: " << e.what() << "\n";
    return 2;
  }
}
