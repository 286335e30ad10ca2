#pragma once
/// Pruning criteria: which weights an action removes. Masks only ever lose ones.

#include <prunegym/core/registry.h>
#include <prunegym/networks/model.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace prunegym {

/// Default action grid of a criterion (used when the config gives none).
struct ActionGrid {
  double low = 0.0;
  double high = 2.2;
  double step = 0.1;
};

/// What an action value stands for: a threshold factor on the layer's standard deviation, or a
/// fraction of weights to remove.
enum class ActionMeaning { alpha, sparsity };

class PruningCriterion {
 public:
  virtual ~PruningCriterion() = default;
  virtual std::string name() const = 0;
  /// What the action value means.
  virtual ActionMeaning meaning() const = 0;
  /// The meaning as a word, for help texts and the wire ("alpha", "sparsity").
  std::string value_name() const { return meaning() == ActionMeaning::alpha ? "alpha" : "sparsity"; }
  virtual ActionGrid default_grid() const = 0;
  /// True when the criterion ranks weights over all the listed layers together (one threshold),
  /// so lottery rounds prune them as one group.
  virtual bool ranks_globally() const { return false; }
  /// True when the criterion removes whole channels with their consumers' inputs
  /// (networks/groups.h), so that the exported network can drop them physically.
  virtual bool structured() const { return false; }
  /// Prunes the listed layers for action value `value`, updating masks and zeroing weights.
  virtual void apply(NetworkImpl& net, const std::vector<size_t>& layers, double value) const = 0;
};

/// |w| < alpha * std of the layer's surviving weights (PuRL, Eq. 2).
class StdThresholdCriterion : public PruningCriterion {
 public:
  std::string name() const override { return "std_threshold"; }
  ActionMeaning meaning() const override { return ActionMeaning::alpha; }
  ActionGrid default_grid() const override { return {0.0, 2.2, 0.1}; }
  void apply(NetworkImpl& net, const std::vector<size_t>& layers, double alpha) const override;
};

/// The action is a layer sparsity; the smallest surviving weights go until it is reached.
class MagnitudeTargetCriterion : public PruningCriterion {
 public:
  std::string name() const override { return "magnitude_target"; }
  ActionMeaning meaning() const override { return ActionMeaning::sparsity; }
  ActionGrid default_grid() const override { return {0.0, 1.0, 0.05}; }
  void apply(NetworkImpl& net, const std::vector<size_t>& layers, double sparsity) const override;
};

/// The action is a global sparsity: one magnitude threshold, chosen over all prunable layers so
/// that pruning everything below it leaves that sparsity, is applied to the listed layers.
class GlobalMagnitudeCriterion : public PruningCriterion {
 public:
  std::string name() const override { return "global_magnitude"; }
  ActionMeaning meaning() const override { return ActionMeaning::sparsity; }
  ActionGrid default_grid() const override { return {0.0, 1.0, 0.05}; }
  bool ranks_globally() const override { return true; }
  void apply(NetworkImpl& net, const std::vector<size_t>& layers, double sparsity) const override;
};

/// Criteria by name (config key env.criterion); the factory gets the criterion's canonical options.
using CriterionRegistry = Registry<PruningCriterion, const nlohmann::json&>;
template <>
CriterionRegistry& CriterionRegistry::instance();

/// Builds a registered criterion by name with its canonical options; throws ConfigError listing
/// the registered names.
std::unique_ptr<PruningCriterion> make_criterion(const std::string& name,
                                                 const nlohmann::json& options = nlohmann::json::object());

}  // namespace prunegym
