// Per-step round trip over the ZeroMQ bridge on loopback against the same step in-process, in one
// run. The environment is the toy env with a 108-dim observation (PuRL's per-layer state for a
// 54-layer network), so the step itself costs almost nothing and the figures are the bridge's.
//
//   build/bin/bench_bridge_latency [steps=20000] [observation_size=108]
#include <prunegym/env/toy_env.h>
#include <prunegym/server/env_server.h>
#include <prunegym/server/remote_env.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

using Clock = std::chrono::steady_clock;

namespace {

struct Stats {
  double p50, p99, mean;
};

Stats stats(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double v : us) sum += v;
  return {us[us.size() / 2], us[std::min(us.size() - 1, us.size() * 99 / 100)], sum / static_cast<double>(us.size())};
}

template <class Env>
std::vector<double> time_steps(Env& env, int64_t n, int64_t episode_steps) {
  std::vector<double> out;
  out.reserve(static_cast<size_t>(n));
  env.reset();
  int64_t t = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (t == episode_steps) {
      env.reset();
      t = 0;
    }
    const auto t0 = Clock::now();
    env.step(prunegym::Action(1));
    out.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    ++t;
  }
  return out;
}

}  // namespace

namespace {

/// Remote step timings against a server with `workers` worker threads (0 = inline).
Stats remote_run(int workers, int64_t n, int64_t obs, int64_t episode, double& rate) {
  prunegym::ServerOptions o;
  o.bind = "tcp://127.0.0.1:*";
  o.handle_signals = false;
  o.workers = workers;
  prunegym::EnvServer server(o);
  const std::string endpoint = server.bind();
  std::thread serving([&] { server.run(); });
  Stats s{};
  {
    prunegym::RemoteEnv env(endpoint, {{"kind", "toy"}, {"toy", {{"steps", episode}, {"observation_size", obs}}}});
    time_steps(env, n / 10, episode);
    const auto t0 = Clock::now();
    s = stats(time_steps(env, n, episode));
    rate = static_cast<double>(n) / std::chrono::duration<double>(Clock::now() - t0).count();
  }
  server.stop();
  serving.join();
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t n = argc > 1 ? std::stoll(argv[1]) : 20000;
  const int64_t obs = argc > 2 ? std::stoll(argv[2]) : 108;
  const int64_t episode = 1000000;  // long episodes: resets stay out of the timed steps
  const auto toy = prunegym::ToyEnvOptions().set_steps(episode).set_observation_size(obs);

  prunegym::ToyEnv local(toy);
  time_steps(local, n / 10, episode);  // warm-up
  const auto in_process = stats(time_steps(local, n, episode));

  double pool_rate = 0, inline_rate = 0;
  const Stats pooled = remote_run(2, n, obs, episode, pool_rate);
  const Stats inlined = remote_run(0, n, obs, episode, inline_rate);
  std::printf("bridge latency: %lld steps, %lld-dim observation, loopback tcp, 1 client\n",
              static_cast<long long>(n), static_cast<long long>(obs));
  std::printf("%-22s %10s %10s %10s\n", "", "p50 us", "p99 us", "mean us");
  std::printf("%-22s %10.1f %10.1f %10.1f\n", "in-process step", in_process.p50, in_process.p99, in_process.mean);
  for (const auto& [name, r, rate] : {std::tuple<const char*, Stats, double>{"remote, 2 workers", pooled, pool_rate},
                                      std::tuple<const char*, Stats, double>{"remote, inline", inlined, inline_rate}}) {
    std::printf("%-22s %10.1f %10.1f %10.1f   overhead p50 %.1f us (%.2fx the 50 us target), %.0f round trips/s "
                "(%.2fx the 20000 target)\n",
                name, r.p50, r.p99, r.mean, r.p50 - in_process.p50, (r.p50 - in_process.p50) / 50.0, rate, rate / 20000.0);
  }
  return 0;
}
