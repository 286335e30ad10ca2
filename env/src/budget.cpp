#include <prunegym/core/errors.h>
#include <prunegym/env/budget.h>
#include <prunegym/networks/cost.h>
#include <prunegym/networks/latency.h>

#include <cmath>
#include <sstream>

namespace prunegym {

namespace {

/// Masks and weights of every prunable layer, saved once; each trial starts from them and the
/// network gets them back when the guard goes (thrown or not).
class TrialGuard {
 public:
  explicit TrialGuard(NetworkImpl& net) : net_(net) {
    torch::NoGradGuard no_grad;
    for (const auto& l : net.prunable_layers()) saved_.push_back({l.weight.detach().clone(), l.mask.clone()});
  }
  ~TrialGuard() { put_back(); }
  TrialGuard(const TrialGuard&) = delete;
  TrialGuard& operator=(const TrialGuard&) = delete;

  void put_back() {
    torch::NoGradGuard no_grad;
    auto& layers = net_.prunable_layers();
    for (size_t i = 0; i < layers.size(); ++i) {
      layers[i].weight.detach().copy_(saved_[i].first);
      layers[i].mask.copy_(saved_[i].second);
    }
  }

 private:
  NetworkImpl& net_;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> saved_;
};

std::string percent(double x) {
  std::ostringstream os;
  os.precision(3);
  os << 100.0 * x << "%";
  return os.str();
}

}  // namespace

ActionWall::ActionWall(const BudgetOptions& budget, EnvCore& core, std::vector<size_t> layers, double high,
                       const LogFn& log)
    : budget_(budget), layers_(std::move(layers)), high_(high) {
  const auto& criterion = core.criterion();
  if (criterion.meaning() != ActionMeaning::sparsity || criterion.ranks_globally())
    throw ConfigError(
        "env.budget needs a criterion whose action is the share a layer loses (magnitude_target, or "
        "channel_norm with \"action\": \"fraction\"); under '" +
        core.config().env.criterion +
        "' what a later layer loses depends on weights retraining has yet to change, so no action "
        "wall could promise the budget");
  const auto cost = network_cost(core.network());
  if (budget_.resource == "macs" && cost.unknown_layers > 0)
    throw ConfigError("env.budget.resource \"macs\": network '" + core.config().network.name + "' cannot tell the " +
                      "output positions of " + std::to_string(cost.unknown_layers) +
                      " prunable layers, so their MACs are unknown; budget \"params\" instead");
  if (budget_.resource == "latency")
    table_ = std::make_shared<const LatencyTable>(
        load_or_measure_latency_table(core.network(), core.data().shape, budget_.latency_batch, budget_.latency_points,
                                      core.dense().cache_file, log));
  dense_ = budget_.resource == "macs"     ? cost.macs
           : budget_.resource == "params" ? cost.prunable
                                          : resource(core.network());
  limit_ = static_cast<int64_t>(std::floor(budget_.ratio * static_cast<double>(dense_)));
  if (layers_.empty()) throw ConfigError("env.budget: the episode prunes no layer, so no budget can be met");
  int64_t best = 0;
  {
    TrialGuard guard(core.network());
    core.criterion().apply(core.network(), layers_, high_);
    best = resource(core.network());
  }
  if (best > limit_)
    throw ConfigError("env.budget: with every episode layer at the highest action (" + std::to_string(high_) +
                      ") the network keeps " + percent(static_cast<double>(best) / static_cast<double>(dense_)) +
                      " of its dense " + budget_.resource + ", above the budget's " + percent(budget_.ratio) +
                      "; raise env.budget.ratio or env.actions.high, or prune more layers (env.layers)");
}

int64_t ActionWall::resource(const NetworkImpl& net) const {
  if (budget_.resource == "params") return network_cost(net).remaining;
  if (table_) return static_cast<int64_t>(std::llround(table_->predict(net) * 1e9));
  return network_cost(net).remaining_macs;
}

double ActionWall::ratio(const NetworkImpl& net) const {
  return dense_ > 0 ? static_cast<double>(resource(net)) / static_cast<double>(dense_) : 0.0;
}

double ActionWall::ratio(const StepInfo& info, const NetworkImpl& net) const {
  if (table_) return ratio(net);
  const int64_t left = budget_.resource == "params" ? info.remaining : info.macs;
  return dense_ > 0 ? static_cast<double>(left) / static_cast<double>(dense_) : 0.0;
}

double ActionWall::clip(EnvCore& core, size_t k, double requested) const {
  if (k >= layers_.size() || requested >= high_) return requested;
  auto& net = core.network();
  const auto& criterion = core.criterion();
  const std::vector<size_t> later(layers_.begin() + static_cast<std::ptrdiff_t>(k) + 1, layers_.end());
  TrialGuard guard(net);
  // The resource after pruning layer k with `value` and every later layer at the highest action.
  const auto completed = [&](double value) {
    criterion.apply(net, {layers_[k]}, value);
    if (!later.empty()) criterion.apply(net, later, high_);
    const int64_t r = resource(net);
    guard.put_back();
    return r;
  };
  if (completed(requested) <= limit_) return requested;
  // The resource falls as the value rises: bisect for the least value that meets the limit, to
  // well below one unit of any layer (2^-26 of the action range).
  double lo = requested, hi = high_;
  if (completed(hi) > limit_) return hi;  // only if earlier steps were not walled
  for (int i = 0; i < 26; ++i) {
    const double mid = 0.5 * (lo + hi);
    (completed(mid) <= limit_ ? hi : lo) = mid;
  }
  return hi;
}

}  // namespace prunegym
