#pragma once
/// RunSummary: what a finished train run reports (its summary.json), as one typed result. The
/// train run writes it, the bench grid and the Slurm back end read it, `train_report` prints it;
/// to_json/from_json are the one place its keys are spelled.

#include <prunegym/agents/runner.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace prunegym {

void to_json(nlohmann::json& j, const EpisodeRecord& r);
void from_json(const nlohmann::json& j, EpisodeRecord& r);

struct RunSummary {
  struct Layer {
    std::string layer;
    double sparsity = 0.0;
    int64_t weights = 0;
    int64_t remaining = 0;
    std::optional<double> alpha;  ///< the final policy's value (layerwise schedules)
  };
  struct ClassAccuracy {
    int64_t samples = 0;
    int64_t correct = 0;
    double accuracy = 0.0;
  };
  struct Accuracy {
    double validation = 0.0;
    double test = 0.0;
  };
  struct Seconds {
    double environment = 0.0, training = 0.0, policy = 0.0, finetune = 0.0, total = 0.0;
  };

  std::string agent;
  uint64_t seed = 0;
  int64_t episodes = 0;
  std::string network;
  std::string data;  ///< the data's description
  double input_mean = 0.0, input_std = 1.0;
  std::string criterion, reward, episode;  ///< the registered names of the parts
  /// What the criterion's action values are ("alpha" or "sparsity"): Layer::alpha holds one.
  std::string value_name = "alpha";
  double target_accuracy = 0.0, target_sparsity = 0.0;
  std::vector<Layer> layers;         ///< the episode's layers in order
  std::vector<double> final_values;  ///< the final policy: a value per layer, or per round
  double sparsity = 0.0;             ///< over all prunable weights
  int64_t remaining = 0, total = 0;
  Accuracy dense;  ///< the dense model the agent trained on
  /// "the greedy episode on the training environment", or the rebuilt network of train.final_train
  /// ({"rebuilt_with", "dense_validation_accuracy", "dense_test_accuracy"}).
  nlohmann::json final_network;
  Accuracy before_finetune;
  /// With train.final_policy "episode": the other reading of the final policy, its mean values
  /// applied at once to the dense model with batch-norm statistics re-estimated (2,000 training
  /// samples; nothing to re-estimate without batch norm), measured before fine-tuning.
  std::optional<Accuracy> one_shot_before_finetune;
  Accuracy after_finetune;
  std::optional<double> after_finetune_train;  ///< training-split accuracy after fine-tuning
  std::vector<ClassAccuracy> test_classes;     ///< per class, after fine-tuning
  std::vector<EpisodeRecord> greedy_episodes;  ///< the episodes averaged into the final policy
  /// The episode stepped on the final network (schedules that do not replay by values, e.g.
  /// rounds): its values and, for a tabular agent, how many of its steps met a known state.
  std::optional<EpisodeRecord> final_episode;
  /// The final network's parameters and MACs per sample, dense and remaining (NetworkCost::to_json);
  /// null in summaries written before it was recorded.
  nlohmann::json cost;
  /// What pruned_model.pt holds (PruneEnv::export_network): compact or masked, its parameters,
  /// MACs and file size against the dense ones; null in summaries written before it was recorded.
  nlohmann::json exported;
  Seconds seconds;
  double peak_rss_mib = 0.0;
  int64_t threads = 0;

  nlohmann::json to_json() const;
  /// Throws nlohmann::json::exception when a key is missing or mistyped (callers name the file).
  static RunSummary from_json(const nlohmann::json& j);
};

}  // namespace prunegym
