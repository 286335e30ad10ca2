#include <prunegym/core/errors.h>
#include <prunegym/core/json_file.h>
#include <prunegym/core/system.h>
#include <prunegym/core/timing.h>
#include <prunegym/env/lottery.h>
#include <prunegym/env/pretrain.h>
#include <prunegym/experiments/lottery_run.h>
#include <prunegym/networks/train.h>

#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <random>
#include <sstream>

namespace fs = std::filesystem;

namespace prunegym {

namespace {

struct Row {
  std::string strategy;
  int64_t round = 0;
  double target = 0.0;         ///< cumulative target sparsity of the pruned layers
  double remaining_pct = 100;  ///< of the pruned layers
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
  row.remaining_total_pct = 100.0 * static_cast<double>(net.remaining_prunable()) /
                            static_cast<double>(std::max<int64_t>(net.total_prunable(), 1));
}

std::string fmt(double v, int precision) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(precision) << v;
  return os.str();
}

std::string write_outputs(const fs::path& out, const std::vector<std::string>& strategies, const std::vector<Row>& rows,
                          const nlohmann::json& meta) {
  CsvWriter csv({"strategy", "round", "target_sparsity", "remaining_pct", "remaining_total_pct", "test_accuracy",
                 "early_stop_test_accuracy", "best_validation_accuracy", "early_stop_iteration", "iterations",
                 "min_validation_loss", "seconds"});
  for (const auto& r : rows)
    csv.row({r.strategy, CsvWriter::num(r.round), CsvWriter::num(r.target), CsvWriter::num(r.remaining_pct),
             CsvWriter::num(r.remaining_total_pct), CsvWriter::num(r.t.test_accuracy),
             CsvWriter::num(r.t.early_stop_test_accuracy), CsvWriter::num(r.t.best_validation_accuracy),
             CsvWriter::num(r.t.early_stop_iteration), CsvWriter::num(r.t.iterations),
             CsvWriter::num(r.t.min_validation_loss), CsvWriter::num(r.t.seconds)});
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
      md << " "
         << (hit ? fmt(100 * hit->t.early_stop_test_accuracy, 2) + "% (" + std::to_string(hit->t.early_stop_iteration) +
                       ")"
                 : "-")
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
  return md.str();
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

/// The folder's state/ matches this config, or is cleared (with --force) and started anew.
fs::path prepare_state(const fs::path& out, const Config& config, bool force) {
  const fs::path state = out / "state";
  nlohmann::json key = config.to_json();
  key.erase("cache_dir");
  key.erase("threads");
  key["lottery"].erase("strategies");  // adding a strategy later reuses the finished ones
  if (fs::exists(state / "experiment.json")) {
    const auto saved = read_json_file((state / "experiment.json").string());
    if (saved != key && !force)
      throw UsageError(out.string() +
                       " holds a lottery experiment with a different config; use --force to start over "
                       "or --out for a new folder");
    if (force || saved != key) fs::remove_all(state);
  } else if (force) {
    fs::remove_all(state);
  }
  fs::create_directories(state);
  write_atomic(state / "experiment.json", key.dump(2) + "\n");
  return state;
}

uint64_t round_seed(const Config& config, int64_t round) {
  return config.seed * 1000003ULL + static_cast<uint64_t>(round);
}

/// Everything one experiment shares between its strategies.
struct Experiment {
  const LotteryRunOptions& options;
  const Config& config;
  fs::path state;
  DataSplits data;
  NetworkPtr net;
  ResetReferences refs;
  std::vector<size_t> layers;
  std::vector<std::string> names;
  std::vector<ResetStrategy> strategies;
  bool need_rewind = false;

  void note(const std::string& line) const {
    if (options.progress) options.progress->line(line);
  }
  CheckCallback check(const std::string& label) const {
    return [this, label](int64_t it, int64_t total) {
      if (options.progress)
        options.progress->update(label + "  iteration " + std::to_string(it) + "/" + std::to_string(total));
    };
  }
  void done(const std::string& label, const Row& r) const {
    std::ostringstream os;
    os << label << "  " << std::fixed << std::setprecision(2) << r.remaining_pct << "% remaining  test "
       << pct(r.t.test_accuracy) << " (at early stop " << pct(r.t.early_stop_test_accuracy) << ", iteration "
       << r.t.early_stop_iteration << ")  " << fmt_duration(r.t.seconds);
    note(os.str());
  }
};

/// Round 0: the dense training run every strategy shares (read back when it was finished).
Row dense_round(Experiment& x) {
  const auto& lo = x.config.lottery;
  const fs::path& state = x.state;
  Row dense;
  if (fs::exists(state / "round0.json") && fs::exists(state / "round0.pt") &&
      (!x.need_rewind || fs::exists(state / "rewind.pt"))) {
    dense = row_from_json(read_json_file((state / "round0.json").string()));
    if (x.need_rewind) x.refs.rewind = load_tensors(state / "rewind.pt");
    x.note("dense run: read back from " + (state / "round0.json").string());
    return dense;
  }
  std::mt19937_64 rng(round_seed(x.config, 0));
  dense.t = train_round(*x.net, x.data, lo.train, lo.eval_every, rng, x.check("dense run"),
                        x.need_rewind ? lo.rewind_iteration : 0, x.need_rewind ? &x.refs.rewind : nullptr);
  measure(*x.net, x.layers, dense);
  x.done("dense run", dense);
  save_tensors(state / "round0.pt", clone_state(*x.net));
  if (x.need_rewind) save_tensors(state / "rewind.pt", x.refs.rewind);
  write_atomic(state / "round0.json", row_json(dense).dump(2) + "\n");
  return dense;
}

/// Every round of one strategy, resuming after its last finished round; appends to `rows`.
double run_strategy(Experiment& x, size_t si, const Row& dense, const std::vector<torch::Tensor>& dense_state,
                    std::vector<Row>& rows) {
  const auto& lo = x.config.lottery;
  const std::string& name = x.names[si];
  Row first = dense;
  first.strategy = name;
  rows.push_back(first);
  double seconds = dense.t.seconds;
  const auto rounds = static_cast<int64_t>(lo.schedule().size());
  auto row_file = [&](int64_t r) { return x.state / (name + "-r" + std::to_string(r) + ".json"); };
  auto net_file = [&](int64_t r) { return x.state / (name + "-r" + std::to_string(r) + ".pt"); };
  int64_t done = 0;
  while (done < rounds && fs::exists(row_file(done + 1))) ++done;
  if (done > 0 && !fs::exists(net_file(done))) {
    x.note("[" + name + "] the network of round " + std::to_string(done) + " is missing; redoing this strategy");
    for (int64_t r = 1; r <= done; ++r) fs::remove(row_file(r));
    done = 0;
  }
  for (int64_t r = 1; r <= done; ++r) {
    rows.push_back(row_from_json(read_json_file(row_file(r).string())));
    seconds += rows.back().t.seconds;
  }
  if (done > 0) x.note("[" + name + "] rounds 1-" + std::to_string(done) + " read back from " + x.state.string());
  load_state(*x.net, done > 0 ? load_tensors(net_file(done)) : dense_state);
  for (int64_t round = done + 1; round <= rounds; ++round) {
    Row row;
    std::mt19937_64 rng(round_seed(x.config, round));
    const auto target = round_target(*x.net, lo, round);
    prune_and_reset(*x.net, target, x.strategies[si], x.refs,
                    x.config.network.init_seed + 7919ULL * static_cast<uint64_t>(round), rng);
    const std::string label = "[" + name + "] round " + std::to_string(round) + "/" + std::to_string(rounds);
    row.t = train_round(*x.net, x.data, lo.train, lo.eval_every, rng, x.check(label));
    row.strategy = name;
    row.round = round;
    row.target = target.global;
    measure(*x.net, x.layers, row);
    x.done(label, row);
    save_tensors(net_file(round), clone_state(*x.net));
    write_atomic(row_file(round), row_json(row).dump(2) + "\n");
    std::error_code ec;
    fs::remove(net_file(round - 1), ec);  // only the newest network of a strategy is needed to resume
    seconds += row.t.seconds;
    rows.push_back(row);
  }
  return seconds;
}

}  // namespace

LotteryRunResult run_lottery(const LotteryRunOptions& o) {
  Config config = o.config;
  if (o.threads) config.threads = *o.threads;
  if (config.threads < 0) throw UsageError("--threads must be >= 0");
  std::vector<ResetStrategy> strategies;
  for (const auto& s : config.lottery.strategies) strategies.push_back(parse_strategy(s));
  if (strategies.empty()) throw UsageError("--strategies needs at least one name");
  const int threads = configure_threads(config.threads);
  const std::string stem = fs::path(o.config_path.empty() ? "experiment" : o.config_path).stem().string();
  const fs::path out = o.out.empty() ? "runs/" + stem + "-lottery" : o.out;
  const auto t_start = Clock::now();

  Experiment x{o,  config, prepare_state(out, config, o.force), {},        nullptr,
               {}, {},     config.lottery.strategies,           strategies};
  x.note("loading data (" + config.data.source + ")...");
  x.data = load_data(config.data);
  x.net = build_network(config.network, x.data.shape, x.data.classes);
  x.refs.init = clone_parameters(*x.net);
  x.refs.network = config.network;
  x.refs.input = x.data.shape;
  x.refs.classes = x.data.classes;
  x.layers = lottery_layers(*x.net, config.lottery);
  x.need_rewind = std::find(strategies.begin(), strategies.end(), ResetStrategy::rewind_iter) != strategies.end();
  const auto& lo = config.lottery;
  x.note("lottery: " + config.network.name + " on " + x.data.description + ", " + std::to_string(lo.schedule().size()) +
         " rounds after the dense run, strategies " + nlohmann::json(lo.strategies).dump() + ", scope " + lo.scope);

  const Row dense = dense_round(x);
  const auto dense_state = load_tensors(x.state / "round0.pt");
  std::vector<Row> rows;
  double training_seconds = dense.t.seconds;
  nlohmann::json strategy_seconds = nlohmann::json::object();
  auto meta = [&]() {
    return nlohmann::json{{"config_path", o.config_path},
                          {"config", config.to_json()},
                          {"network", config.network.name},
                          {"data", x.data.description},
                          {"seed", config.seed},
                          {"scope", lo.scope},
                          {"schedule", lo.schedule()},
                          {"strategies", lo.strategies},
                          {"strategy_seconds", strategy_seconds},
                          {"seconds", seconds_since(t_start)},
                          {"training_seconds", training_seconds},
                          {"threads", threads},
                          {"peak_rss_mib", peak_rss_mib()}};
  };
  LotteryRunResult result;
  result.out = out.string();
  for (size_t si = 0; si < strategies.size(); ++si) {
    const double seconds = run_strategy(x, si, dense, dense_state, rows);
    strategy_seconds[x.names[si]] = seconds;
    training_seconds += seconds - dense.t.seconds;
    write_outputs(out, lo.strategies, rows, meta());
  }
  result.markdown = write_outputs(out, lo.strategies, rows, meta());
  result.table = read_json_file((out / "lottery.json").string());
  if (o.plot)
    result.plot_message = run_python_script(
        "plot_lottery.py", {(out / "lottery.csv").string(), (out / "lottery.png").string()}, "lottery.png");
  result.seconds = seconds_since(t_start);
  return result;
}

}  // namespace prunegym
