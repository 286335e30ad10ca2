// The compact export against the masked one: inference latency, parameters and file size of a
// network with about half of its MACs removed by whole channels.
//
//   build/bin/bench_compact NETWORK [width=1] [side=28] [channels=1] [reps=20] [target=0.5] [stem|-] [coupled]
//
// Builds the network (deterministic initial weights: latency does not depend on training),
// removes the same fraction of every channel group's channels by filter L1 norm, the smallest
// fraction (in steps of 0.02) that leaves at most `target` of the dense MACs, exports the masked
// network (dense shapes, zeros) and the compact one, loads both back with torch::jit::load and
// times their forward passes at batch 1 and 64, interleaved, in this one process. Prints one JSON
// object with both timings, their ratios, parameter counts, MACs and file sizes, and the
// environment's evaluation (1,000 samples) on the masked network against evaluate_compact (which
// slices and compiles the compact copy on every call; its cost alone is `compact_build_ms`), then
// retraining masked against compact and the environment's step at this pruning against the dense
// step (`retraining`, `step`).
#include <prunegym/env/criteria.h>
#include <prunegym/networks/cost.h>
#include <prunegym/networks/groups.h>

#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
using namespace prunegym;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

NetworkPtr pruned_network(const NetworkOptions& o, InputShape in, double fraction) {
  auto net = build_network(o, in, 10);
  const auto crit = make_criterion(
      "channel_norm", CriterionRegistry::instance().parse("channel_norm", {{"action", "fraction"}}, "criterion"));
  std::vector<size_t> producers;
  for (const auto& g : checked_channel_groups(*net)) producers.push_back(g.producer);
  crit->apply(*net, producers, fraction);
  net->eval();
  return net;
}

/// Median milliseconds of a forward pass of each module at this batch, interleaved.
std::pair<double, double> time_pair(torch::jit::Module& a, torch::jit::Module& b, InputShape in, int64_t batch,
                                    int reps) {
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({batch, in.channels, in.height, in.width});
  std::vector<double> ta, tb;
  for (int r = -2; r < reps; ++r) {  // two warm-up rounds
    for (auto* m : {&a, &b}) {
      const auto t0 = Clock::now();
      m->forward({x});
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      if (r >= 0) (m == &a ? ta : tb).push_back(ms);
    }
  }
  return {median(ta), median(tb)};
}

/// The environment's evaluation, masked against compact, interleaved (median milliseconds).
json time_evaluation(NetworkImpl& net, InputShape in, int reps) {
  const int64_t n = 1000;
  const Tensors data{torch::randn({n, in.channels, in.height, in.width}), torch::randint(0, 10, {n})};
  const Tensors one{data.x.narrow(0, 0, 1), data.y.narrow(0, 0, 1)};
  std::vector<double> masked, compact, build;
  for (int r = -1; r < reps; ++r) {
    const auto t0 = Clock::now();
    const double a = evaluate(net, data, 5000).accuracy;
    const auto t1 = Clock::now();
    const double b = evaluate_compact(net, data, 5000)->accuracy;
    const auto t2 = Clock::now();
    evaluate_compact(net, one, 5000);
    const auto t3 = Clock::now();
    if (std::abs(a - b) > 2.0 / n) throw std::logic_error("the compact evaluation disagrees with the masked one");
    if (r < 0) continue;
    masked.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    compact.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
    build.push_back(std::chrono::duration<double, std::milli>(t3 - t2).count());
  }
  return {{"samples", n},
          {"masked_ms", median(masked)},
          {"compact_ms", median(compact)},
          {"compact_build_ms", median(build)},
          {"speedup", median(masked) / median(compact)}};
}

double ms(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

/// Retraining as the environment's default step does it (Adam, 1,000 samples in batches of 100),
/// interleaved: the dense network, the pruned one masked, and the pruned one through its compact
/// copy (train_compact); then the whole step (retraining plus the evaluation of 1,000 samples)
/// of the dense network against the pruned one with the environment's "auto" choices.
json time_training(NetworkImpl& dense, NetworkImpl& pruned, InputShape in, int reps) {
  const int64_t n = 1000;
  const Tensors data{torch::randn({n, in.channels, in.height, in.width}), torch::randint(0, 10, {n})};
  const auto o = TrainOptions().set_optimizer("adam").set_lr(1e-3).set_batch_size(100).set_samples(n);
  auto opt_dense = make_optimizer(dense, o), opt_pruned = make_optimizer(pruned, o);
  std::mt19937_64 rng(0);
  const bool train_compact_auto = !trains_by_hand(pruned), eval_compact_auto = !pruned.evaluates_faster_masked();
  std::vector<double> t_dense, t_masked, t_compact, e_dense, e_auto;
  for (int r = -1; r < reps; ++r) {
    const auto t0 = Clock::now();
    train(dense, *opt_dense, data, o, rng);
    const auto t1 = Clock::now();
    train(pruned, *opt_pruned, data, o, rng);
    const auto t2 = Clock::now();
    if (!train_compact(pruned, *opt_pruned, data, o, rng)) throw std::logic_error("nothing to train compact");
    const auto t3 = Clock::now();
    evaluate(dense, data, 5000);
    const auto t4 = Clock::now();
    if (eval_compact_auto)
      evaluate_compact(pruned, data, 5000);
    else
      evaluate(pruned, data, 5000);
    const auto t5 = Clock::now();
    pruned.train();
    dense.train();
    if (r < 0) continue;
    t_dense.push_back(ms(t0, t1));
    t_masked.push_back(ms(t1, t2));
    t_compact.push_back(ms(t2, t3));
    e_dense.push_back(ms(t3, t4));
    e_auto.push_back(ms(t4, t5));
  }
  const double dense_step = median(t_dense) + median(e_dense);
  const double step = (train_compact_auto ? median(t_compact) : median(t_masked)) + median(e_auto);
  return {{"retraining",
           {{"samples", n},
            {"dense_ms", median(t_dense)},
            {"masked_ms", median(t_masked)},
            {"compact_ms", median(t_compact)},
            {"speedup", median(t_masked) / median(t_compact)}}},
          {"step",
           {{"dense_ms", dense_step},
            {"structured_ms", step},
            {"compact_retraining", train_compact_auto},
            {"compact_evaluation", eval_compact_auto},
            {"ratio", step / dense_step},
            {"goal", 0.65}}}};
}

}  // namespace

namespace {

const char* const kUsage =
    "usage: bench_compact NETWORK [width=1] [side=28] [channels=1] [reps=20] [target=0.5] [stem|-] [coupled]\n"
    "  prunes channels of NETWORK (a built-in name) until its MACs are at most target of the dense\n"
    "  ones, then times the masked and the compact model (evaluation, retraining, the env step);\n"
    "  stem - keeps the network's own, coupled also prunes channels tied by residual additions\n";

int run(int argc, char** argv);

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help") {
    std::cerr << kUsage;
    return argc < 2 ? 2 : 0;
  }
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "bench_compact: " << e.what() << "\n" << kUsage;
    return 2;
  }
}

namespace {

int run(int argc, char** argv) {
  NetworkOptions o;
  o.name = argv[1];
  if (argc > 2 && std::stod(argv[2]) != 1.0) o.options["width"] = std::stod(argv[2]);
  const int64_t side = argc > 3 ? std::stoll(argv[3]) : 28;
  const InputShape in{argc > 4 ? std::stoll(argv[4]) : 1, side, side, nullptr};
  const int reps = argc > 5 ? std::stoi(argv[5]) : 20;
  const double target = argc > 6 ? std::stod(argv[6]) : 0.5;
  if (argc > 7 && std::string(argv[7]) != "-") o.options["stem"] = argv[7];
  if (argc > 8) {
    if (std::string(argv[8]) != "coupled") throw std::invalid_argument("the 8th argument must be 'coupled'");
    o.options["coupled"] = true;
  }
  torch::manual_seed(0);

  double fraction = 0.0;
  NetworkPtr net;
  for (int step = 1; step <= 48; ++step) {
    fraction = 0.02 * step;
    net = pruned_network(o, in, fraction);
    if (network_cost(*net).macs_fraction() <= target) break;
  }
  const auto dir = std::filesystem::temp_directory_path() / ("prunegym-bench-compact-" + o.name);
  std::filesystem::create_directories(dir);
  const auto masked_path = (dir / "masked.pt").string(), compact_path = (dir / "compact.pt").string();
  net->save_model(masked_path);
  const auto compact = save_compact_model(*net, compact_path);
  if (!compact) {
    std::cerr << o.name << " has no TorchScript form to compact\n";
    return 1;
  }
  auto masked = torch::jit::load(masked_path), small = torch::jit::load(compact_path);
  masked.eval();
  small.eval();
  const auto cost = network_cost(*net);
  json j{{"network", o.name},
         {"width", o.options.value("width", 1.0)},
         {"stem", o.options.value("stem", "")},
         {"coupled", o.options.value("coupled", false)},
         {"input", {in.channels, in.height, in.width}},
         {"threads", torch::get_num_threads()},
         {"fraction_removed", fraction},
         {"removed_channels", compact->removed_channels},
         {"dense_macs", cost.macs},
         {"compact_macs", compact->macs},
         {"macs_ratio", static_cast<double>(compact->macs) / static_cast<double>(cost.macs)},
         {"dense_parameters", cost.parameters},
         {"compact_parameters", compact->parameters},
         {"dense_file_bytes", std::filesystem::file_size(masked_path)},
         {"compact_file_bytes", std::filesystem::file_size(compact_path)}};
  j["file_ratio"] = j["compact_file_bytes"].get<double>() / j["dense_file_bytes"].get<double>();
  for (int64_t batch : {1, 64}) {
    const auto [dense_ms, compact_ms] = time_pair(masked, small, in, batch, batch == 1 ? reps * 5 : reps);
    j["batch" + std::to_string(batch)] = {
        {"dense_ms", dense_ms}, {"compact_ms", compact_ms}, {"speedup", dense_ms / compact_ms}};
  }
  j["evaluation"] = time_evaluation(*net, in, std::max(3, reps / 4));
  torch::manual_seed(0);
  auto dense = build_network(o, in, 10);
  net->train();
  j.update(time_training(*dense, *net, in, std::max(3, reps / 4)));
  std::filesystem::remove_all(dir);
  std::cout << j.dump() << "\n";
  return 0;
}

}  // namespace
