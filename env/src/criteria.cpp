#include <prunegym/core/errors.h>
#include <prunegym/env/criteria.h>

#include <cmath>

namespace prunegym {

namespace {

void check_layers(const NetworkImpl& net, const std::vector<size_t>& layers) {
  for (size_t i : layers)
    if (i >= net.prunable_layers().size())
      throw ActionError("layer index " + std::to_string(i) + " is out of range (the network has " +
                        std::to_string(net.prunable_layers().size()) + " prunable layers)");
}

void check_fraction(double v, const std::string& who) {
  if (!(v >= 0.0 && v <= 1.0)) throw ActionError(who + ": sparsity " + std::to_string(v) + " is outside [0, 1]");
}

/// Removes from the mask every surviving weight whose magnitude is below `threshold`.
void prune_below(PrunableLayer& l, const torch::Tensor& threshold) {
  torch::NoGradGuard no_grad;
  l.mask.mul_(l.weight.abs().ge(threshold).to(l.mask.scalar_type()));
  l.weight.mul_(l.mask);
}

/// Masks the k smallest-magnitude surviving weights of a flat score vector (pruned entries
/// scored -1 so they sort first).
void prune_smallest(PrunableLayer& l, int64_t target_pruned) {
  torch::NoGradGuard no_grad;
  const int64_t n = l.numel();
  target_pruned = std::min(target_pruned, n);
  const int64_t already = n - l.remaining();
  if (target_pruned <= already) return;
  auto scores =
      torch::where(l.mask.flatten().gt(0), l.weight.abs().flatten(), torch::full({}, -1.0, l.weight.options()));
  auto idx = std::get<1>(scores.topk(target_pruned, /*dim=*/0, /*largest=*/false, /*sorted=*/false));
  auto flat_mask = l.mask.view({-1});
  flat_mask.index_fill_(0, idx, 0.0);
  l.weight.mul_(l.mask);
}

}  // namespace

void StdThresholdCriterion::apply(NetworkImpl& net, const std::vector<size_t>& layers, double alpha) const {
  if (!(alpha >= 0.0) || !std::isfinite(alpha))
    throw ActionError("std_threshold: alpha must be >= 0, got " + std::to_string(alpha));
  check_layers(net, layers);
  torch::NoGradGuard no_grad;
  for (size_t i : layers) {
    auto& l = net.prunable_layers()[i];
    auto alive = l.weight.masked_select(l.mask.gt(0));
    if (alive.numel() < 2) continue;  // nothing left whose spread could define a threshold
    prune_below(l, alive.std() * alpha);
  }
}

void MagnitudeTargetCriterion::apply(NetworkImpl& net, const std::vector<size_t>& layers, double sparsity) const {
  check_fraction(sparsity, "magnitude_target");
  check_layers(net, layers);
  for (size_t i : layers) {
    auto& l = net.prunable_layers()[i];
    prune_smallest(l, static_cast<int64_t>(std::llround(sparsity * static_cast<double>(l.numel()))));
  }
}

void GlobalMagnitudeCriterion::apply(NetworkImpl& net, const std::vector<size_t>& layers, double sparsity) const {
  check_fraction(sparsity, "global_magnitude");
  check_layers(net, layers);
  torch::NoGradGuard no_grad;
  auto& all = net.prunable_layers();
  std::vector<torch::Tensor> scores;
  for (const auto& l : all)
    scores.push_back(
        torch::where(l.mask.flatten().gt(0), l.weight.abs().flatten(), torch::full({}, -1.0, l.weight.options())));
  auto flat = torch::cat(scores);
  const int64_t k = std::min<int64_t>(flat.numel(), std::llround(sparsity * static_cast<double>(flat.numel())));
  if (k <= 0) return;
  // The k-th smallest score is the threshold: weights at or below it go (ties included).
  const auto kth = std::get<0>(flat.kthvalue(k));
  const double threshold = kth.item<double>();
  if (threshold < 0) return;  // the target is already met by earlier pruning
  for (size_t i : layers) {
    auto& l = all[i];
    auto below = l.weight.abs().le(threshold).logical_and(l.mask.gt(0));
    l.mask.masked_fill_(below, 0.0);
    l.weight.mul_(l.mask);
  }
}

template <>
CriterionRegistry& CriterionRegistry::instance() {
  static CriterionRegistry registry = [] {
    CriterionRegistry r("criterion", "env.criterion");
    r.add("std_threshold", without_options<StdThresholdCriterion, PruningCriterion>("criterion 'std_threshold'"),
          "PuRL: prune |w| < alpha * std(layer)");
    r.add("magnitude_target",
          without_options<MagnitudeTargetCriterion, PruningCriterion>("criterion 'magnitude_target'"),
          "the action is a layer sparsity: the smallest weights go");
    r.add("global_magnitude",
          without_options<GlobalMagnitudeCriterion, PruningCriterion>("criterion 'global_magnitude'"),
          "the action is a global sparsity: one magnitude threshold over all layers");
    return r;
  }();
  return registry;
}

std::unique_ptr<PruningCriterion> make_criterion(const std::string& name, const nlohmann::json& options) {
  return CriterionRegistry::instance().make(name, options);
}

}  // namespace prunegym
