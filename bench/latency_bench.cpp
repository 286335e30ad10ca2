// The latency table's prediction against the measured latency of the exported compact model.
//
//   build/bin/bench_latency NETWORK [width=1] [side=28] [channels=1] [batch=1] [points=8] [stem|-]
//
// Measures the per-layer latency table of NETWORK (networks/latency.h; deterministic initial
// weights: latency does not depend on training) at this batch size and the current LibTorch
// threads, then removes 0%, 25%, 50% and 75% of every channel group's channels by filter L1 norm,
// exports each network compact (the removed channels gone), loads it back with torch::jit::load
// and times its forward pass the way the table times its entries. Prints one JSON object: the
// table's measuring time, and per level the predicted and measured milliseconds and the relative
// error against the goal (within 15%).
#include <prunegym/core/timing.h>
#include <prunegym/env/criteria.h>
#include <prunegym/networks/cost.h>
#include <prunegym/networks/groups.h>
#include <prunegym/networks/latency.h>

#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

using json = nlohmann::json;
using namespace prunegym;

namespace {

const char* const kUsage =
    "usage: bench_latency NETWORK [width=1] [side=28] [channels=1] [batch=1] [points=8] [stem|-]\n"
    "  measures NETWORK's latency table, then compares its prediction with the measured latency of\n"
    "  the compact export at 0, 25, 50 and 75% of every group's channels removed\n";

constexpr double kGoal = 0.15;

/// The fraction of every group's channels removed, by filter L1 norm.
void remove_share(NetworkImpl& net, double share) {
  std::vector<size_t> steps;
  for (const auto& group : checked_channel_groups(net)) steps.push_back(group.producer);
  const json options{{"action", "fraction"}, {"rank", "l1"}};
  make_criterion("channel_norm", CriterionRegistry::instance().parse("channel_norm", options, "criterion"))
      ->apply(net, steps, share);
}

int run(int argc, char** argv) {
  NetworkOptions o;
  o.name = argv[1];
  if (argc > 2 && std::stod(argv[2]) != 1.0) o.options["width"] = std::stod(argv[2]);
  const int64_t side = argc > 3 ? std::stoll(argv[3]) : 28;
  const InputShape in{argc > 4 ? std::stoll(argv[4]) : 1, side, side, nullptr};
  const int64_t batch = argc > 5 ? std::stoll(argv[5]) : 1;
  const int64_t points = argc > 6 ? std::stoll(argv[6]) : 8;
  if (argc > 7 && std::string(argv[7]) != "-") o.options["stem"] = argv[7];
  torch::manual_seed(0);
  auto net = build_network(o, in, 10);
  const auto t0 = Clock::now();
  const LatencyTable table = measure_latency_table(*net, in, batch, points);
  const double table_seconds = seconds_since(t0);
  const auto dir = std::filesystem::temp_directory_path() / ("prunegym-bench-latency-" + o.name);
  std::filesystem::create_directories(dir);
  int64_t entries = 0;
  for (const auto& l : table.layers) entries += static_cast<int64_t>(l.seconds.size());
  json rows = json::array();
  double worst = 0.0;
  for (double share : {0.0, 0.25, 0.5, 0.75}) {
    torch::manual_seed(0);
    auto pruned = build_network(o, in, 10);
    if (share > 0) remove_share(*pruned, share);
    const std::string path = (dir / ("compact-" + std::to_string(static_cast<int>(share * 100)) + ".pt")).string();
    if (!save_compact_model(*pruned, path)) throw std::runtime_error(o.name + " has no TorchScript form to compact");
    auto module = torch::jit::load(path);
    module.eval();
    auto x = torch::randn({batch, in.channels, in.height, in.width});
    const double measured = fastest_seconds([&] {
      torch::NoGradGuard no_grad;
      module.forward({x});
    });
    const double predicted = table.predict(*pruned);
    const double error = predicted / measured - 1.0;
    worst = std::max(worst, std::fabs(error));
    rows.push_back({{"removed", share},
                    {"macs_ratio", network_cost(*pruned).macs_fraction()},
                    {"predicted_ms", predicted * 1e3},
                    {"measured_ms", measured * 1e3},
                    {"error", error},
                    {"within_goal", std::fabs(error) <= kGoal}});
  }
  if (!std::getenv("PRUNEGYM_BENCH_KEEP")) std::filesystem::remove_all(dir);
  json j{{"network", o.name},
         {"width", o.options.value("width", 1.0)},
         {"stem", o.options.value("stem", "")},
         {"input", {in.channels, in.height, in.width}},
         {"batch", batch},
         {"points", points},
         {"threads", torch::get_num_threads()},
         {"machine", table.machine},
         {"table_seconds", table_seconds},
         {"table_entries", entries},
         {"dense_ms", table.dense_seconds * 1e3},
         {"rest_ms", table.rest_seconds * 1e3},
         {"levels", rows},
         {"worst_error", worst},
         {"goal", kGoal},
         {"within_goal", worst <= kGoal}};
  std::cout << j.dump() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help") {
    std::cerr << kUsage;
    return argc < 2 ? 2 : 0;
  }
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "bench_latency: " << e.what() << "\n" << kUsage;
    return 2;
  }
}
