// The cost of one environment step against what the hardware allows, for one config.
//
//   build/bin/bench_step CONFIG.json [steps=30] [key=value ...]   (key=value: config overrides)
//
// Prints one JSON object: the step's median/p90 time and its split (prune, retrain, evaluate),
// reset time, peak memory, and the bound: the step's matrix products (retrain forward and
// backward on retrain.samples images, evaluation forward on the evaluation set), each timed as a
// LibTorch mm at its own shape in this run. step / bound says how close the step comes.
// Graph networks compute on the whole graph at every forward: their products before the node
// rows are picked have the graph's row count whatever the batch, and each graph convolution adds
// a sparse product with the normalised adjacency (timed as LibTorch's sparse mm).
// Residual networks: each convolution as its im2col product at its output positions (batch norm,
// additions and pooling are elementwise and not counted). The roofline is the step's FLOPs at the
// peak sgemm rate measured in this run (a square 2048 product).
#include <prunegym/core/system.h>
#include <prunegym/env/prune_env.h>
#include <prunegym/networks/resnet.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

namespace {

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

/// One matrix product of a layer, per sample: [M, K] x [K, N] (M = output positions).
struct Gemm {
  int64_t m, k, n;
  bool first;                ///< the first layer needs no gradient with respect to its input
  bool whole_graph = false;  ///< graph layers: M rows per forward, whatever the batch
  torch::Tensor adjacency;   ///< set: a sparse product [M, K] x [K, N] instead (adjacency or sparse features)
};

/// Products of a network that is not a layer stack, from its prunable layers' weight shapes and
/// output positions (residual networks); empty when the positions are unknown.
std::vector<Gemm> network_gemms(prunegym::NetworkImpl& net) {
  auto* resnet = dynamic_cast<prunegym::ResNetImpl*>(&net);
  if (!resnet) return {};
  std::vector<Gemm> out;
  const auto& layers = net.prunable_layers();
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& w = layers[i].weight;
    out.push_back({resnet->output_positions()[i], w.numel() / w.size(0), w.size(0), i == 0});
  }
  return out;
}

std::vector<Gemm> layer_gemms(const prunegym::NetworkOptions& options, prunegym::InputShape in, int64_t classes) {
  using K = prunegym::LayerSpec::Kind;
  auto specs = prunegym::network_specs(options);
  std::vector<Gemm> out;
  int64_t c = in.channels, h = in.height, w = in.width, features = 0;
  size_t last_linear = 0, last_gcn = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].kind == K::linear) last_linear = i;
    if (specs[i].kind == K::gcn) last_gcn = i + 1;
  }
  const int64_t nodes = in.graph ? in.graph->nodes() : 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const auto& s = specs[i];
    const bool whole = in.graph && i < last_gcn;
    if (s.kind == K::gcn) {
      if (features == 0) features = c * h * w;
      // The first graph layer reads bag-of-words features in sparse form when mostly zeros.
      auto sparse_input = out.empty() ? prunegym::sparse_if_mostly_zero(in.graph->features) : torch::Tensor();
      if (sparse_input.defined())
        out.push_back({nodes, features, s.out, true, true, sparse_input});
      else
        out.push_back({nodes, features, s.out, out.empty(), true});
      out.push_back({nodes, nodes, s.out, false, true, in.graph->adjacency});
      features = s.out;
    } else if (s.kind == K::conv) {
      const int64_t ho = (h + 2 * s.padding - s.kernel) / s.stride + 1,
                    wo = (w + 2 * s.padding - s.kernel) / s.stride + 1;
      out.push_back({ho * wo, c * s.kernel * s.kernel, s.out, out.empty()});
      c = s.out;
      h = ho;
      w = wo;
    } else if (s.kind == K::maxpool) {
      h /= s.kernel;
      w /= s.kernel;
    } else if (s.kind == K::linear) {
      if (features == 0) features = c * h * w;
      const int64_t n = (i == last_linear && s.out == 0) ? classes : s.out;
      out.push_back({whole ? nodes : 1, features, n, out.empty(), whole});
      features = n;
    }
  }
  return out;
}

/// Median milliseconds of five calls of `fn`, after one warm-up call; each result is freed after
/// the clock stops.
template <typename Fn>
double median_ms(Fn&& fn) {
  fn();
  std::vector<double> t;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = Clock::now();
    const auto result = fn();
    t.push_back(ms_since(t0));
  }
  return quantile(t, 0.5);
}

/// Milliseconds of one torch::mm of [m, k] x [k, n] (median of a few). Products with more than
/// kMaxRows rows (a convolution's im2col matrix over a whole batch) are timed on kMaxRows rows and
/// scaled: sgemm reaches its throughput long before that, and a single multi-gigabyte operand
/// would measure memory traffic that the convolution itself never has.
constexpr int64_t kMaxRows = 8192;
double time_mm(int64_t m, int64_t k, int64_t n) {
  if (m > kMaxRows) return time_mm(kMaxRows, k, n) * static_cast<double>(m) / static_cast<double>(kMaxRows);
  if (k > kMaxRows) return time_mm(m, kMaxRows, n) * static_cast<double>(k) / static_cast<double>(kMaxRows);
  auto a = torch::randn({m, k}), b = torch::randn({k, n});
  return median_ms([&] { return torch::mm(a, b); });
}

/// Milliseconds of one sparse [m, k] x dense [k, n] product (median of a few).
double time_spmm(const torch::Tensor& sparse, int64_t n) {
  auto b = torch::randn({sparse.size(1), n});
  return median_ms([&] { return torch::mm(sparse, b); });
}

struct Bound {
  double ms = 0.0;
  double flops = 0.0;
};

/// Time of the step's products: retrain (forward, grad input, grad weight) on `train_samples` in
/// batches of `train_batch` x epochs, then evaluation (forward) on `eval_samples` in `eval_batch`.
Bound step_bound(const std::vector<Gemm>& gemms, int64_t train_samples, int64_t train_batch, int64_t epochs,
                 int64_t eval_samples, int64_t eval_batch) {
  Bound b;
  auto add = [&](int64_t batch, int64_t count, bool backward) {
    if (count <= 0 || batch <= 0) return;
    for (const auto& g : gemms) {
      if (g.adjacency.defined()) {
        // Forward and, in training, the backward product of the same size (through the aggregation
        // towards the weights; X^T G for the weight gradient of a sparse first layer).
        const double ms = time_spmm(g.adjacency, g.n) * (backward ? 2 : 1);
        b.ms += ms * static_cast<double>(count);
        b.flops += 2.0 * static_cast<double>(g.adjacency._nnz()) * static_cast<double>(g.n) * (backward ? 2 : 1) *
                   static_cast<double>(count);
        continue;
      }
      const int64_t rows = g.whole_graph ? g.m : batch * g.m;
      double ms = time_mm(rows, g.k, g.n);
      double flops = 2.0 * static_cast<double>(rows) * static_cast<double>(g.k) * static_cast<double>(g.n);
      if (backward) {
        ms += time_mm(g.k, rows, g.n);  // grad weight: [K, rows] x [rows, N]
        flops *= 2;
        if (!g.first) {
          ms += time_mm(rows, g.n, g.k);  // grad input: [rows, N] x [N, K]
          flops += 2.0 * static_cast<double>(rows) * static_cast<double>(g.k) * static_cast<double>(g.n);
        }
      }
      b.ms += ms * static_cast<double>(count);
      b.flops += flops * static_cast<double>(count);
    }
  };
  const int64_t full = train_batch > 0 ? train_samples / train_batch : 0;
  const int64_t rest = train_batch > 0 ? train_samples % train_batch : 0;
  add(train_batch, full * epochs, true);
  add(rest, epochs, true);
  const int64_t efull = eval_samples / eval_batch, erest = eval_samples % eval_batch;
  add(eval_batch, efull, false);
  add(erest, 1, false);
  return b;
}

/// Step times over episodes with a fixed mid-range action (every step prunes, retrains and
/// evaluates), after a warm-up.
struct StepTimes {
  std::vector<double> total, prune, retrain, eval, reset;
};

StepTimes measure_steps(prunegym::PruneEnv& env, int64_t steps) {
  const auto& space = env.action_space();
  const prunegym::Action action(static_cast<int64_t>(space.values().size() / 2));
  StepTimes t;
  auto& [total, prune, retrain, eval, reset] = t;
  // Warm-up: six steps (two LeNet episodes), so allocator pools and optimizer state exist.
  env.reset();
  for (int w = 0; w < 6; ++w) {
    auto r = env.step(action);
    if (r.terminated || r.truncated) env.reset();
  }
  uint64_t seed = 1;
  while (static_cast<int64_t>(total.size()) < steps) {
    prunegym::ResetOptions o;
    o.seed = seed++;
    auto t0 = Clock::now();
    env.reset(o);
    reset.push_back(ms_since(t0));
    for (bool done = false; !done && static_cast<int64_t>(total.size()) < steps;) {
      t0 = Clock::now();
      auto r = env.step(action);
      total.push_back(ms_since(t0));
      prune.push_back(r.info.prune_ms);
      retrain.push_back(r.info.retrain_ms);
      eval.push_back(r.info.eval_ms);
      done = r.terminated || r.truncated;
    }
  }
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: bench_step CONFIG.json [steps=30] [key.path=value ...]\n";
    return 2;
  }
  try {
    auto doc = prunegym::read_json_file(argv[1]);
    const int64_t steps = argc > 2 ? std::stoll(argv[2]) : 30;
    for (int i = 3; i < argc; ++i) prunegym::apply_override(doc, argv[i]);
    const auto config = prunegym::Config::from_json(doc);
    const int threads = prunegym::configure_threads(config.threads);
    prunegym::PruneEnv env(config);
    const auto& eo = config.env;

    const auto t = measure_steps(env, steps);
    const auto& [total, prune, retrain, eval, reset] = t;

    const auto& data = env.data();
    const int64_t train_samples =
        eo.retrain.samples > 0 ? std::min(eo.retrain.samples, data.train.size()) : data.train.size();
    const int64_t eval_samples =
        eo.evaluation.samples > 0
            ? std::min(eo.evaluation.samples, eo.evaluation.split == "test" ? data.test.size() : data.validation.size())
            : (eo.evaluation.split == "test" ? data.test.size() : data.validation.size());
    const auto gemms = prunegym::is_layer_stack(config.network) ? layer_gemms(config.network, data.shape, data.classes)
                                                                : network_gemms(env.network());
    if (gemms.empty()) throw std::runtime_error("no bound for network '" + config.network.name + "'");
    const double peak_ms = time_mm(2048, 2048, 2048);
    const double peak_gflops = 2.0 * 2048 * 2048 * 2048 / 1e6 / peak_ms;
    const Bound retrain_bound = step_bound(gemms, train_samples, eo.retrain.batch_size, eo.retrain.epochs, 0, 1);
    const Bound eval_bound = step_bound(gemms, 0, eo.retrain.batch_size, 0, eval_samples, eo.evaluation.batch_size);
    const Bound bound{retrain_bound.ms + eval_bound.ms, retrain_bound.flops + eval_bound.flops};
    const double step_ms = quantile(total, 0.5);
    const json out{{"config", argv[1]},
                   {"network", config.network.name},
                   {"threads", threads},
                   {"blas", prunegym::detect_blas().vendor},
                   {"steps", total.size()},
                   {"retrain_samples", train_samples},
                   {"retrain_batch", eo.retrain.batch_size},
                   {"eval_samples", eval_samples},
                   {"eval_batch", eo.evaluation.batch_size},
                   {"step_ms", {{"median", step_ms}, {"p90", quantile(total, 0.9)}}},
                   {"prune_ms", {{"median", quantile(prune, 0.5)}, {"p90", quantile(prune, 0.9)}}},
                   {"retrain_ms", {{"median", quantile(retrain, 0.5)}, {"p90", quantile(retrain, 0.9)}}},
                   {"eval_ms", {{"median", quantile(eval, 0.5)}, {"p90", quantile(eval, 0.9)}}},
                   {"reset_ms", {{"median", quantile(reset, 0.5)}, {"p90", quantile(reset, 0.9)}}},
                   {"bound_ms", bound.ms},
                   {"retrain_bound_ms", retrain_bound.ms},
                   {"eval_bound_ms", eval_bound.ms},
                   {"step_gflop", bound.flops / 1e9},
                   {"bound_gflops", bound.flops / 1e6 / std::max(bound.ms, 1e-9)},
                   {"step_over_bound", step_ms / std::max(bound.ms, 1e-9)},
                   {"peak_gflops", peak_gflops},
                   {"roofline_ms", bound.flops / 1e6 / peak_gflops},
                   {"retrain_roofline_ms", retrain_bound.flops / 1e6 / peak_gflops},
                   {"eval_roofline_ms", eval_bound.flops / 1e6 / peak_gflops},
                   {"step_over_roofline", step_ms / std::max(bound.flops / 1e6 / peak_gflops, 1e-9)},
                   {"layers", env.network().prunable_layers().size()},
                   {"peak_rss_mib", prunegym::peak_rss_mib()}};
    std::cout << out.dump() << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_step: " << e.what() << "\n";
    return 2;
  }
}
