// `prunegym lottery`: iterative magnitude pruning with a choice of what the survivors are reset
// to after each round, compared strategy by strategy from the same initialisation.

#include "cli.h"
#include "commands.h"

#include <prunegym/env/lottery.h>
#include <prunegym/env/pretrain.h>
#include <prunegym/env/system.h>
#include <prunegym/networks/errors.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace fs = std::filesystem;

namespace prunegym::cli {

const char* const kLotteryHelp = R"(usage: prunegym lottery --config F [--strategies S1,S2,...] [--out DIR] [options]

Lottery-ticket experiments. The network is trained from its initialisation W0, then each round
prunes the smallest-magnitude surviving weights to the next sparsity of the schedule, resets the
survivors by the strategy and trains again. Every strategy starts from the same initialisation
and the same first training run, so rows differ only by the reset.

strategies (--strategies, default: the config's lottery.strategies = rewind_init,reinit,keep):
)";

const char* const kLotteryHelpTail = R"(
the config's "lottery" section (docs/config.md):
  scope            "layerwise" (each layer to the target) or "global" (one threshold over the
                   pruned layers, seed 003)
  rate, rounds     prune rate of the survivors per round (default 0.2 for 5 rounds); with
  output_rate      a separate rate for the output layer (the lottery-ticket paper: rate / 2)
  sparsities       or an explicit cumulative schedule, e.g. [0.2, 0.52, 0.8, 0.96, 0.9996]
  one_shot         or one round straight to this sparsity
  layers           the layers to prune (default: all), e.g. ["conv1.weight", "conv2.weight"]
  train            optimizer, lr, batch_size, epochs (and samples) of every training run
  eval_every       iterations between validation checks (they give the early-stop iteration)

options:
  --out DIR        results folder (default: runs/<config>-lottery). Rerunning the same command
                   resumes: finished rounds are read back, never recomputed.
  --force          start over in DIR even if it holds another experiment
  --set K=V        override a config key, e.g. --set lottery.train.epochs=5
  --threads N      LibTorch threads (0 = one per core)

writes to DIR:
  lottery.csv      one row per strategy and round: target and remaining weights (%), test
                   accuracy at the end and at the early-stop iteration, best validation accuracy,
                   early-stop iteration (minimum validation loss), iterations, seconds
  lottery.md       the same as Markdown tables, one column group per strategy
  lottery.json     rows, config, dense accuracy, wall time per strategy
  lottery.png      test accuracy and early-stop iteration against remaining weights (log scale)
  state/           per-round checkpoints used to resume

example:
  prunegym lottery --config configs/lottery-lenet300.json --strategies rewind_init,reinit
)";

namespace {

struct Row {
  std::string strategy;
  int64_t round = 0;
  double target = 0.0;          ///< cumulative target sparsity of the pruned layers
  double remaining_pct = 100;   ///< of the pruned layers
  double remaining_total_pct = 100;
  std::vector<double> layer_remaining_pct;
  RoundTraining t;
};

nlohmann::json row_json(const Row& r) {
  return {{"strategy", r.strategy},
          {"round", r.round},
          {"target_sparsity", r.target},
          {"remaining_pct", r.remaining_pct},
          {"remaining_total_pct", r.remaining_total_pct},
          {"layer_remaining_pct", r.layer_remaining_pct},
          {"test_accuracy", r.t.test_accuracy},
          {"early_stop_test_accuracy", r.t.early_stop_test_accuracy},
          {"best_validation_accuracy", r.t.best_validation_accuracy},
          {"validation_accuracy", r.t.validation_accuracy},
          {"early_stop_iteration", r.t.early_stop_iteration},
          {"min_validation_loss", r.t.min_validation_loss},
          {"iterations", r.t.iterations},
          {"seconds", r.t.seconds}};
}

Row row_from_json(const nlohmann::json& j) {
  Row r;
  r.strategy = j.at("strategy").get<std::string>();
  r.round = j.at("round").get<int64_t>();
  r.target = j.at("target_sparsity").get<double>();
  r.remaining_pct = j.at("remaining_pct").get<double>();
  r.remaining_total_pct = j.at("remaining_total_pct").get<double>();
  r.layer_remaining_pct = j.at("layer_remaining_pct").get<std::vector<double>>();
  r.t.test_accuracy = j.at("test_accuracy").get<double>();
  r.t.early_stop_test_accuracy = j.at("early_stop_test_accuracy").get<double>();
  r.t.best_validation_accuracy = j.at("best_validation_accuracy").get<double>();
  r.t.validation_accuracy = j.at("validation_accuracy").get<double>();
  r.t.early_stop_iteration = j.at("early_stop_iteration").get<int64_t>();
  r.t.min_validation_loss = j.at("min_validation_loss").get<double>();
  r.t.iterations = j.at("iterations").get<int64_t>();
  r.t.seconds = j.at("seconds").get<double>();
  return r;
}

/// Remaining-weight figures of the network for a row.
void measure(const NetworkImpl& net, const std::vector<size_t>& layers, Row& row) {
  int64_t total = 0, remaining = 0;
  row.layer_remaining_pct.clear();
  for (size_t i : layers) {
    const auto& l = net.prunable_layers()[i];
    total += l.numel();
    remaining += l.remaining();
  }
  for (const auto& l : net.prunable_layers())
    row.layer_remaining_pct.push_back(100.0 * static_cast<double>(l.remaining()) / static_cast<double>(l.numel()));
  row.remaining_pct = 100.0 * static_cast<double>(remaining) / static_cast<double>(std::max<int64_t>(total, 1));
  row.remaining_total_pct =
      100.0 * static_cast<double>(net.remaining_prunable()) / static_cast<double>(std::max<int64_t>(net.total_prunable(), 1));
}

/// Live progress on a terminal (one rewritten line), plain lines otherwise.
class RoundProgress {
 public:
  RoundProgress() : tty_(::isatty(STDERR_FILENO)) {}
  void check(const std::string& label, int64_t it, int64_t total) {
    if (!tty_) return;
    std::cerr << "\r" << label << "  iteration " << it << "/" << total << "   " << std::flush;
  }
  void done(const std::string& label, const Row& r) {
    if (tty_) std::cerr << "\r" << std::string(100, ' ') << "\r";
    std::cerr << label << "  " << std::fixed << std::setprecision(2) << r.remaining_pct << "% remaining  test "
              << pct(r.t.test_accuracy) << " (at early stop " << pct(r.t.early_stop_test_accuracy) << ", iteration "
              << r.t.early_stop_iteration << ")  " << fmt_duration(r.t.seconds) << "\n";
  }

 private:
  bool tty_;
};

std::string fmt(double v, int precision) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(precision) << v;
  return os.str();
}

void write_outputs(const fs::path& out, const std::vector<std::string>& strategies, const std::vector<Row>& rows,
                   const nlohmann::json& meta) {
  std::ostringstream csv;
  csv << "strategy,round,target_sparsity,remaining_pct,remaining_total_pct,test_accuracy,early_stop_test_accuracy,"
         "best_validation_accuracy,early_stop_iteration,iterations,min_validation_loss,seconds\n";
  csv << std::setprecision(10);
  for (const auto& r : rows)
    csv << r.strategy << "," << r.round << "," << r.target << "," << r.remaining_pct << "," << r.remaining_total_pct << ","
        << r.t.test_accuracy << "," << r.t.early_stop_test_accuracy << "," << r.t.best_validation_accuracy << ","
        << r.t.early_stop_iteration << "," << r.t.iterations << "," << r.t.min_validation_loss << "," << r.t.seconds << "\n";
  write_atomic(out / "lottery.csv", csv.str());

  std::ostringstream md;
  md << "# Lottery-ticket rounds\n\n"
     << "Config `" << meta.value("config_path", "") << "`, network " << meta.value("network", "") << ", data "
     << meta.value("data", "") << ", seed " << meta.value("seed", 0) << ", scope " << meta.value("scope", "")
     << ". Accuracy is test accuracy at the early-stop iteration (minimum validation loss); in brackets the\n"
     << "early-stop iteration.\n\n";
  md << "| round | remaining % |";
  for (const auto& s : strategies) md << " " << s << " |";
  md << "\n|---|---|";
  for (size_t i = 0; i < strategies.size(); ++i) md << "---|";
  md << "\n";
  int64_t max_round = -1;
  for (const auto& r : rows) max_round = std::max(max_round, r.round);
  for (int64_t round = 0; round <= max_round; ++round) {
    const Row* first = nullptr;
    for (const auto& r : rows)
      if (r.round == round) {
        first = &r;
        break;
      }
    if (!first) continue;
    md << "| " << round << " | " << fmt(first->remaining_pct, 2) << " |";
    for (const auto& s : strategies) {
      const Row* hit = nullptr;
      for (const auto& r : rows)
        if (r.round == round && r.strategy == s) hit = &r;
      md << " " << (hit ? fmt(100 * hit->t.early_stop_test_accuracy, 2) + "% (" + std::to_string(hit->t.early_stop_iteration) + ")" : "-")
         << " |";
    }
    md << "\n";
  }
  md << "\nTraining time (every round of every strategy, the shared dense run once): "
     << fmt_duration(meta.value("training_seconds", 0.0)) << " on " << meta.value("threads", 0) << " threads.\n";
  write_atomic(out / "lottery.md", md.str());

  nlohmann::json j = meta;
  j["rows"] = nlohmann::json::array();
  for (const auto& r : rows) j["rows"].push_back(row_json(r));
  write_atomic(out / "lottery.json", j.dump(2) + "\n");
}

void save_tensors(const fs::path& path, const std::vector<torch::Tensor>& tensors) {
  const fs::path tmp = path.string() + ".tmp";
  torch::save(tensors, tmp.string());
  fs::rename(tmp, path);
}

std::vector<torch::Tensor> load_tensors(const fs::path& path) {
  std::vector<torch::Tensor> t;
  try {
    torch::load(t, path.string());
  } catch (const c10::Error&) {
    throw DataError("cannot read the checkpoint " + path.string() + "; rerun with --force to start over");
  }
  return t;
}


}  // namespace

std::string lottery_help() { return std::string(kLotteryHelp) + strategy_help() + kLotteryHelpTail; }

int run_lottery(const std::vector<std::string>& argv) {
  Args args(argv, {"config", "strategies", "out", "threads"}, {"force"}, {"set"});
  Config config = load_config(args);
  if (args.has("threads")) config.threads = args.get_int("threads", 0);
  if (config.threads < 0) throw UsageError("--threads must be >= 0");
  if (args.has("strategies")) {
    config.lottery.strategies.clear();
    std::stringstream ss(args.get("strategies"));
    std::string item;
    while (std::getline(ss, item, ','))
      if (!item.empty()) config.lottery.strategies.push_back(item);
    if (config.lottery.strategies.empty()) throw UsageError("--strategies needs at least one name");
  }
  std::vector<ResetStrategy> strategies;
  for (const auto& s : config.lottery.strategies) {
    try {
      strategies.push_back(parse_strategy(s));
    } catch (const ConfigError& e) {
      throw UsageError(std::string("--strategies: ") + e.what());
    }
  }
  const auto& lo = config.lottery;
  const auto schedule = lo.schedule();
  const int threads = configure_threads(config.threads);

  const std::string stem = fs::path(args.get("config")).stem().string();
  const fs::path out = args.get("out", "runs/" + stem + "-lottery");
  const fs::path state = out / "state";
  nlohmann::json key = config.to_json();
  key.erase("cache_dir");
  key.erase("threads");
  key["lottery"].erase("strategies");  // adding a strategy later reuses the finished ones
  if (fs::exists(state / "experiment.json")) {
    const auto saved = read_json_file((state / "experiment.json").string());
    if (saved != key) {
      if (!args.flag("force"))
        throw UsageError(out.string() + " holds a lottery experiment with a different config; use --force to start over "
                         "or --out for a new folder");
    }
    if (args.flag("force") || saved != key) fs::remove_all(state);
  } else if (args.flag("force")) {
    fs::remove_all(state);
  }
  fs::create_directories(state);
  write_atomic(state / "experiment.json", key.dump(2) + "\n");

  const auto t_start = std::chrono::steady_clock::now();
  std::cerr << "loading data (" << config.data.source << ")...\n";
  const DataSplits data = load_data(config.data);
  auto net = build_network(config.network, data.shape, data.classes);
  ResetReferences refs;
  refs.init = clone_parameters(*net);
  refs.network = config.network;
  refs.input = data.shape;
  refs.classes = data.classes;
  const auto layers = lottery_layers(*net, lo);
  const bool need_rewind = std::find(strategies.begin(), strategies.end(), ResetStrategy::rewind_iter) != strategies.end();
  auto round_seed = [&](int64_t round) { return config.seed * 1000003ULL + static_cast<uint64_t>(round); };
  RoundProgress progress;

  std::cerr << "lottery: " << config.network.name << " on " << data.description << ", " << schedule.size()
            << " rounds after the dense run, strategies " << nlohmann::json(lo.strategies).dump() << ", scope " << lo.scope
            << "\n";

  // Round 0: the dense training run every strategy shares.
  Row dense;
  if (fs::exists(state / "round0.json") && fs::exists(state / "round0.pt") &&
      (!need_rewind || fs::exists(state / "rewind.pt"))) {
    dense = row_from_json(read_json_file((state / "round0.json").string()));
    if (need_rewind) refs.rewind = load_tensors(state / "rewind.pt");
    std::cerr << "dense run: read back from " << (state / "round0.json").string() << "\n";
  } else {
    std::mt19937_64 rng(round_seed(0));
    const std::string label = "dense run";
    dense.t = train_round(
        *net, data, lo.train, lo.eval_every, rng, [&](int64_t it, int64_t total) { progress.check(label, it, total); },
        need_rewind ? lo.rewind_iteration : 0, need_rewind ? &refs.rewind : nullptr);
    measure(*net, layers, dense);
    progress.done(label, dense);
    save_tensors(state / "round0.pt", clone_state(*net));
    if (need_rewind) save_tensors(state / "rewind.pt", refs.rewind);
    write_atomic(state / "round0.json", row_json(dense).dump(2) + "\n");
  }
  const auto dense_state = load_tensors(state / "round0.pt");

  std::vector<Row> rows;
  double training_seconds = dense.t.seconds;
  nlohmann::json strategy_seconds = nlohmann::json::object();
  auto meta = [&]() {
    return nlohmann::json{{"config_path", args.get("config")},
                          {"config", config.to_json()},
                          {"network", config.network.name},
                          {"data", data.description},
                          {"seed", config.seed},
                          {"scope", lo.scope},
                          {"schedule", schedule},
                          {"strategies", lo.strategies},
                          {"strategy_seconds", strategy_seconds},
                          {"seconds", seconds_since(t_start)},
                          {"training_seconds", training_seconds},
                          {"threads", threads},
                          {"peak_rss_mib", peak_rss_mib()}};
  };

  for (size_t si = 0; si < strategies.size(); ++si) {
    const std::string name = lo.strategies[si];
    Row first = dense;
    first.strategy = name;
    rows.push_back(first);
    double seconds = dense.t.seconds;
    const int64_t rounds = static_cast<int64_t>(schedule.size());
    auto row_file = [&](int64_t r) { return state / (name + "-r" + std::to_string(r) + ".json"); };
    auto net_file = [&](int64_t r) { return state / (name + "-r" + std::to_string(r) + ".pt"); };
    // Resume after the last finished round whose network was kept; otherwise start over.
    int64_t done = 0;
    while (done < rounds && fs::exists(row_file(done + 1))) ++done;
    if (done > 0 && !fs::exists(net_file(done))) {
      std::cerr << "[" << name << "] the network of round " << done << " is missing; redoing this strategy\n";
      for (int64_t r = 1; r <= done; ++r) fs::remove(row_file(r));
      done = 0;
    }
    for (int64_t r = 1; r <= done; ++r) {
      rows.push_back(row_from_json(read_json_file(row_file(r).string())));
      seconds += rows.back().t.seconds;
    }
    if (done > 0) std::cerr << "[" << name << "] rounds 1-" << done << " read back from " << state.string() << "\n";
    load_state(*net, done > 0 ? load_tensors(net_file(done)) : dense_state);
    for (int64_t round = done + 1; round <= rounds; ++round) {
      Row row;
      std::mt19937_64 rng(round_seed(round));
      const auto target = round_target(*net, lo, round);
      prune_and_reset(*net, target, strategies[si], refs, config.network.init_seed + 7919ULL * static_cast<uint64_t>(round), rng);
      const std::string label = "[" + name + "] round " + std::to_string(round) + "/" + std::to_string(rounds);
      row.t = train_round(*net, data, lo.train, lo.eval_every, rng,
                          [&](int64_t it, int64_t total) { progress.check(label, it, total); });
      row.strategy = name;
      row.round = round;
      row.target = target.global;
      measure(*net, layers, row);
      progress.done(label, row);
      save_tensors(net_file(round), clone_state(*net));
      write_atomic(row_file(round), row_json(row).dump(2) + "\n");
      // Only the newest network of a strategy is needed to resume.
      std::error_code ec;
      fs::remove(net_file(round - 1), ec);
      seconds += row.t.seconds;
      rows.push_back(row);
    }
    strategy_seconds[name] = seconds;
    training_seconds += seconds - dense.t.seconds;
    write_outputs(out, lo.strategies, rows, meta());
  }
  write_outputs(out, lo.strategies, rows, meta());
  const std::string plot_message = run_plot("plot_lottery.py", {(out / "lottery.csv").string(), (out / "lottery.png").string()}, "lottery.png");
  if (!plot_message.empty()) std::cerr << plot_message << "\n";

  std::cout << "lottery results in " << out.string() << " (lottery.csv, lottery.md, lottery.json"
            << (plot_message.empty() ? ", lottery.png" : "") << "), wall time " << fmt_duration(seconds_since(t_start))
            << "\n";
  std::ifstream md(out / "lottery.md");
  std::cout << md.rdbuf();
  return 0;
}

}  // namespace prunegym::cli
