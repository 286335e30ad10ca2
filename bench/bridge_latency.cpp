// Per-step round trip over the ZeroMQ bridge on loopback against the same step in-process, in one
// run. The environment is the toy env with a 108-dim observation (PuRL's per-layer state for a
// 54-layer network), so the step itself costs almost nothing and the figures are the bridge's.
//
//   build/bin/bench_bridge_latency [steps=20000] [observation_size=108]
#include <prunegym/env/toy_env.h>
#include <prunegym/server/env_server.h>
#include <prunegym/server/protocol.h>
#include <prunegym/server/remote_env.h>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
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

/// The transport floor: a bare ROUTER/DEALER ping-pong over loopback TCP carrying a request and a
/// reply of the bridge's sizes, with no JSON and no environment.
Stats zmq_floor(int64_t n, size_t request_bytes, size_t reply_bytes, double& rate) {
  zmq::context_t ctx;
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.bind("tcp://127.0.0.1:*");
  const std::string endpoint = router.get(zmq::sockopt::last_endpoint);
  const std::string reply(reply_bytes, 'r'), request(request_bytes, 'q');
  std::thread echo([&] {
    for (int64_t i = 0; i < n + n / 10; ++i) {
      std::vector<zmq::message_t> parts;
      if (!zmq::recv_multipart(router, std::back_inserter(parts))) return;
      std::array<zmq::const_buffer, 2> out{zmq::buffer(parts[0].data(), parts[0].size()), zmq::buffer(reply)};
      zmq::send_multipart(router, out);
    }
  });
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.connect(endpoint);
  std::vector<double> us;
  Clock::time_point started;
  for (int64_t i = 0; i < n + n / 10; ++i) {
    if (i == n / 10) started = Clock::now();
    const auto t0 = Clock::now();
    dealer.send(zmq::buffer(request), zmq::send_flags::none);
    zmq::message_t m;
    if (!dealer.recv(m)) break;
    if (i >= n / 10) us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  rate = static_cast<double>(n) / std::chrono::duration<double>(Clock::now() - started).count();
  echo.join();
  return stats(us);
}

/// Remote step timings against a server with `workers` worker threads (0 = inline).
Stats remote_run(int workers, int64_t n, int64_t obs, int64_t episode, double& rate,
                 const prunegym::RemoteEnvOptions& client) {
  prunegym::ServerOptions o;
  o.bind = "tcp://127.0.0.1:*";
  o.handle_signals = false;
  o.workers = workers;
  prunegym::EnvServer server(o);
  const std::string endpoint = server.bind();
  std::thread serving([&] { server.run(); });
  Stats s{};
  {
    prunegym::RemoteEnv env(endpoint, {{"kind", "toy"}, {"toy", {{"steps", episode}, {"observation_size", obs}}}},
                            client);
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

  // Message sizes of one step exchange, for the transport floor.
  local.reset();
  const auto sample = local.step(prunegym::Action(1));
  const size_t request_bytes =
      nlohmann::json{{"cmd", "step"}, {"session", std::string(32, 'f')}, {"action", 1}, {"id", 1}, {"v", 1}}
          .dump()
          .size();
  const size_t json_reply = prunegym::to_wire(sample).dump().size();
  const size_t f32_reply = prunegym::to_wire(sample, prunegym::ObservationEncoding::f32).dump().size();

  struct Row {
    std::string name;
    Stats s;
    double rate;
  };
  std::vector<Row> rows;
  double rate = 0;
  Stats floor_s = zmq_floor(n, request_bytes, f32_reply, rate);
  rows.push_back({"zmq floor (no JSON)", floor_s, rate});
  const auto json_client = prunegym::RemoteEnvOptions().set_encoding("json");
  const auto f32_client = prunegym::RemoteEnvOptions().set_encoding("f32");
  const auto spin_client = prunegym::RemoteEnvOptions().set_encoding("f32").set_spin_us(200);
  Stats s = remote_run(2, n, obs, episode, rate, json_client);
  rows.push_back({"2 workers, json", s, rate});
  s = remote_run(0, n, obs, episode, rate, json_client);
  rows.push_back({"inline, json", s, rate});
  s = remote_run(0, n, obs, episode, rate, f32_client);
  rows.push_back({"inline, f32", s, rate});
  s = remote_run(2, n, obs, episode, rate, spin_client);
  rows.push_back({"2 workers, f32+spin", s, rate});
  s = remote_run(0, n, obs, episode, rate, spin_client);
  rows.push_back({"inline, f32+spin", s, rate});

  std::printf("bridge latency: %lld steps, %lld-dim observation, loopback tcp, 1 client\n", static_cast<long long>(n),
              static_cast<long long>(obs));
  std::printf("step reply: %zu bytes as json, %zu as f32; request %zu bytes\n", json_reply, f32_reply, request_bytes);
  std::printf("%-22s %9s %9s %9s %12s %14s %14s %12s\n", "", "p50 us", "p99 us", "mean us", "overhead p50",
              "vs 50us goal", "round trips/s", "vs 20k goal");
  std::printf("%-22s %9.1f %9.1f %9.1f\n", "in-process step", in_process.p50, in_process.p99, in_process.mean);
  for (const auto& r : rows) {
    const double over = r.s.p50 - in_process.p50;
    std::printf("%-22s %9.1f %9.1f %9.1f %12.1f %13.2fx %14.0f %11.2fx\n", r.name.c_str(), r.s.p50, r.s.p99, r.s.mean,
                over, over / 50.0, r.rate, r.rate / 20000.0);
  }
  // Serialisation alone, for a PruneEnv-like observation (values in [0, 1] with full float precision,
  // unlike the toy env's round numbers): encode on the server, decode on the client.
  prunegym::StepResult real = sample;
  for (size_t i = 0; i < real.observation.size(); ++i)
    real.observation[i] = static_cast<float>(std::sin(1.0 + i) * 0.5 + 0.5);
  for (const auto enc : {prunegym::ObservationEncoding::json, prunegym::ObservationEncoding::f32}) {
    const int reps = 5000;
    size_t bytes = 0;
    const auto t0 = Clock::now();
    for (int i = 0; i < reps; ++i) {
      const std::string text = prunegym::to_wire(real, enc).dump();
      bytes = text.size();
      const auto back = prunegym::step_from_wire(nlohmann::json::parse(text));
      if (back.observation.size() != real.observation.size()) return 1;
    }
    std::printf("serialise+parse a %lld-dim step reply with full-precision values, %s: %.1f us, %zu bytes\n",
                static_cast<long long>(obs), enc == prunegym::ObservationEncoding::f32 ? "f32 " : "json",
                std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / reps, bytes);
  }
  std::printf("bridge cost above the transport floor (p50, inline f32+spin): %.1f us\n",
              rows.back().s.p50 - floor_s.p50);
  return 0;
}
