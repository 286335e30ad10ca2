#include <prunegym/core/timing.h>
#include <prunegym/experiments/run_summary.h>
#include <prunegym/experiments/train_run.h>
#include <prunegym/networks/cost.h>

#include <iomanip>
#include <sstream>

namespace prunegym {

using nlohmann::json;

void to_json(json& j, const EpisodeRecord& r) {
  j = json{{"episode", r.episode},
           {"total_reward", r.total_reward},
           {"steps", r.steps},
           {"accuracy", r.accuracy},
           {"sparsity", r.sparsity},
           {"early_stop", r.early_stop},
           {"truncated", r.truncated},
           {"values", r.values},
           {"exploration", r.exploration},
           {"seconds", r.seconds}};
  if (r.known_steps) j["known_steps"] = *r.known_steps;
}

void from_json(const json& j, EpisodeRecord& r) {
  r.episode = j.at("episode").get<int64_t>();
  r.total_reward = j.at("total_reward").get<double>();
  r.steps = j.at("steps").get<int64_t>();
  r.accuracy = j.at("accuracy").get<double>();
  r.sparsity = j.at("sparsity").get<double>();
  r.early_stop = j.at("early_stop").get<bool>();
  r.truncated = j.value("truncated", false);
  r.values = j.at("values").get<std::vector<double>>();
  // A NaN exploration rate (an agent without one) is written as null.
  r.exploration = j.at("exploration").is_number() ? j.at("exploration").get<double>() : 0.0;
  r.seconds = j.at("seconds").get<double>();
  if (j.contains("known_steps")) r.known_steps = j.at("known_steps").get<int64_t>();
}

namespace {

json accuracy_json(const RunSummary::Accuracy& a) {
  return {{"validation_accuracy", a.validation}, {"test_accuracy", a.test}};
}

RunSummary::Accuracy accuracy_from(const json& j) {
  return {j.at("validation_accuracy").get<double>(), j.at("test_accuracy").get<double>()};
}

}  // namespace

json RunSummary::to_json() const {
  json rows = json::array();
  for (const auto& l : layers) {
    json row{{"layer", l.layer}, {"sparsity", l.sparsity}, {"weights", l.weights}, {"remaining", l.remaining}};
    if (l.alpha) row["alpha"] = *l.alpha;
    rows.push_back(row);
  }
  json classes = json::array();
  for (size_t c = 0; c < test_classes.size(); ++c) {
    const auto& k = test_classes[c];
    classes.push_back({{"class", c}, {"samples", k.samples}, {"correct", k.correct}, {"accuracy", k.accuracy}});
  }
  json after = accuracy_json(after_finetune);
  if (after_finetune_train) after["train_accuracy"] = *after_finetune_train;
  if (!test_classes.empty()) after["test_classes"] = classes;
  json j{{"agent", agent},
         {"seed", seed},
         {"episodes", episodes},
         {"network", network},
         {"data", data},
         {"input_normalization", {{"mean", input_mean}, {"std", input_std}}},
         {"criterion", criterion},
         {"value_name", value_name},
         {"reward", reward},
         {"target_accuracy", target_accuracy},
         {"target_sparsity", target_sparsity},
         {"episode", episode},
         {"layers", rows},
         {"final_values", final_values},
         {"sparsity", sparsity},
         {"remaining", remaining},
         {"total", total},
         {"dense", accuracy_json(dense)},
         {"final_network", final_network},
         {"before_finetune", accuracy_json(before_finetune)},
         {"after_finetune", after},
         {"greedy_episodes", greedy_episodes},
         {"seconds",
          {{"environment", seconds.environment},
           {"training", seconds.training},
           {"policy", seconds.policy},
           {"finetune", seconds.finetune},
           {"total", seconds.total}}},
         {"peak_rss_mib", peak_rss_mib},
         {"threads", threads}};
  if (final_episode) j["final_episode"] = *final_episode;
  if (one_shot_before_finetune) j["one_shot_before_finetune"] = accuracy_json(*one_shot_before_finetune);
  if (!cost.is_null()) j["cost"] = cost;
  if (!exported.is_null()) j["export"] = exported;
  return j;
}

RunSummary RunSummary::from_json(const json& j) {
  RunSummary s;
  s.agent = j.at("agent").get<std::string>();
  s.seed = j.at("seed").get<uint64_t>();
  s.episodes = j.at("episodes").get<int64_t>();
  s.network = j.at("network").get<std::string>();
  s.data = j.at("data").get<std::string>();
  // Runs written before input_normalization, final_network and the training accuracy were
  // recorded still read (the committed raw runs include some).
  if (j.contains("input_normalization")) {
    s.input_mean = j.at("input_normalization").at("mean").get<double>();
    s.input_std = j.at("input_normalization").at("std").get<double>();
  }
  s.criterion = j.at("criterion").get<std::string>();
  s.value_name = j.value("value_name", std::string("alpha"));  // older summaries: every criterion took alphas
  s.reward = j.at("reward").get<std::string>();
  s.target_accuracy = j.at("target_accuracy").get<double>();
  s.target_sparsity = j.at("target_sparsity").get<double>();
  s.episode = j.at("episode").get<std::string>();
  for (const auto& row : j.at("layers")) {
    Layer l{row.at("layer").get<std::string>(), row.at("sparsity").get<double>(), row.at("weights").get<int64_t>(),
            row.at("remaining").get<int64_t>(), std::nullopt};
    if (row.contains("alpha")) l.alpha = row.at("alpha").get<double>();
    s.layers.push_back(l);
  }
  s.final_values = j.at("final_values").get<std::vector<double>>();
  s.sparsity = j.at("sparsity").get<double>();
  s.remaining = j.at("remaining").get<int64_t>();
  s.total = j.at("total").get<int64_t>();
  s.dense = accuracy_from(j.at("dense"));
  s.final_network = j.value("final_network", json());
  s.before_finetune = accuracy_from(j.at("before_finetune"));
  if (j.contains("one_shot_before_finetune"))
    s.one_shot_before_finetune = accuracy_from(j.at("one_shot_before_finetune"));
  const auto& after = j.at("after_finetune");
  s.after_finetune = accuracy_from(after);
  if (after.contains("train_accuracy")) s.after_finetune_train = after.at("train_accuracy").get<double>();
  for (const auto& c : after.value("test_classes", json::array()))
    s.test_classes.push_back(
        {c.at("samples").get<int64_t>(), c.at("correct").get<int64_t>(), c.at("accuracy").get<double>()});
  s.greedy_episodes = j.at("greedy_episodes").get<std::vector<EpisodeRecord>>();
  if (j.contains("final_episode")) s.final_episode = j.at("final_episode").get<EpisodeRecord>();
  s.cost = j.value("cost", json());
  s.exported = j.value("export", json());
  const auto& secs = j.at("seconds");
  s.seconds = {secs.at("environment").get<double>(), secs.at("training").get<double>(), secs.at("policy").get<double>(),
               secs.at("finetune").get<double>(), secs.at("total").get<double>()};
  s.peak_rss_mib = j.at("peak_rss_mib").get<double>();
  s.threads = j.at("threads").get<int64_t>();
  return s;
}

std::string train_report(const TrainRunResult& r) {
  const auto& s = r.summary;
  // Schedules replayed by values report a value per layer (an alpha, or the target a sparsity or
  // channel-fraction criterion was given); the others the values of their steps.
  const bool by_values = !s.layers.empty() && s.layers[0].alpha.has_value();
  std::ostringstream os;
  os << "\n" << s.agent << " on " << s.network << " (" << r.episodes << " episodes, seed " << s.seed << ")\n";
  if (!by_values) {
    os << "  rounds of the greedy episode, pruning values:";
    for (double v : s.final_values) os << " " << std::fixed << std::setprecision(2) << v;
    os << "\n";
  }
  os << "  " << std::left << std::setw(14) << "layer" << std::right << std::setw(9)
     << (!by_values                ? ""
         : s.value_name == "alpha" ? "alpha"
                                   : "target")
     << std::setw(11) << "sparsity"
     << "\n";
  for (const auto& l : s.layers) {
    os << "  " << std::left << std::setw(14) << l.layer << std::right << std::fixed << std::setprecision(2)
       << std::setw(9);
    if (l.alpha)
      os << *l.alpha;
    else
      os << "";
    os << std::setw(11) << pct(l.sparsity) << "\n";
  }
  os << "  global sparsity        " << pct(s.sparsity) << " (" << s.remaining << " of " << s.total
     << " weights remain)\n"
     << "  test accuracy          dense " << pct(s.dense.test) << ", pruned " << pct(s.before_finetune.test)
     << ", fine-tuned " << pct(s.after_finetune.test) << "\n"
     << (s.one_shot_before_finetune ? "  one-shot instead       " + pct(s.one_shot_before_finetune->test) +
                                          " test before fine-tuning (the mean values at once, batch norm "
                                          "re-estimated)\n"
                                    : std::string())
     << "  validation accuracy    dense " << pct(s.dense.validation) << ", fine-tuned "
     << pct(s.after_finetune.validation) << "\n"
     << "  wall time              " << fmt_duration(s.seconds.total) << " (training "
     << fmt_duration(s.seconds.training) << ", fine-tuning " << fmt_duration(s.seconds.finetune) << ")\n"
     << "  peak memory            " << std::setprecision(0) << s.peak_rss_mib << " MiB\n";
  if (const auto& e = s.exported; e.value("compact", false))
    os << "  compact model          " << si_count(e.at("parameters").get<double>()) << " of "
       << si_count(e.at("dense_parameters").get<double>()) << " parameters, " << si_count(e.at("macs").get<double>())
       << " of " << si_count(e.at("dense_macs").get<double>()) << " MACs per sample (pruned_model.pt)\n";
  os << "  results                " << r.out << "/summary.json, episodes.csv"
     << (r.plot_message.empty() ? ", curves.png" : "") << "\n";
  return os.str();
}

}  // namespace prunegym
