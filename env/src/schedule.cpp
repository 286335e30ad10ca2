#include <prunegym/core/errors.h>
#include <prunegym/core/timing.h>
#include <prunegym/env/lottery.h>
#include <prunegym/env/schedule.h>
#include <prunegym/networks/groups.h>
#include <prunegym/networks/train.h>

#include <cmath>
#include <set>

namespace prunegym {

namespace {

/// PuRL: one step per layer. The step prunes its layer; with dense timing every step retrains and
/// evaluates, with sparse timing only the last one does.
class LayerwiseSchedule : public EpisodeSchedule {
 public:
  explicit LayerwiseSchedule(EnvCore& core)
      : dense_timing_(core.config().env.timing == "dense"),
        max_steps_(core.config().env.max_steps),
        grid_(core.criterion().default_grid()) {
    const auto& names = core.config().env.layers;
    const auto& net = core.network();
    if (core.criterion().structured()) {
      step_over_groups(core, names);
      return;
    }
    if (names.empty()) {
      for (size_t i = 0; i < net.prunable_layers().size(); ++i) layers_.push_back(i);
    }
    for (const auto& name : names) layers_.push_back(named_layer(net, name));
  }

  int64_t length() const override { return static_cast<int64_t>(layers_.size()); }
  int64_t step_limit() const override { return max_steps_; }
  ActionGrid default_grid() const override { return grid_; }
  bool replays_by_values() const override { return true; }

 private:
  static size_t named_layer(const NetworkImpl& net, const std::string& name) {
    try {
      return net.layer_index(name);
    } catch (const ConfigError& e) {
      throw ConfigError(std::string("env.layers: ") + e.what());
    }
  }

  /// A structured criterion removes a group's channels through its producer: the episode steps
  /// over the producers (network order, or env.layers), never over a layer that removes nothing.
  void step_over_groups(const EnvCore& core, const std::vector<std::string>& names) {
    const auto& net = core.network();
    std::set<size_t> producers;
    for (const auto& g : checked_channel_groups(net)) producers.insert(g.producer);
    const std::string criterion = core.config().env.criterion;
    if (producers.empty())
      throw ConfigError("env.criterion: '" + criterion + "' removes channel groups, and network '" +
                        core.config().network.name +
                        "' has none ('prunegym info' says why); use an unstructured criterion such as std_threshold");
    if (names.empty()) layers_.assign(producers.begin(), producers.end());
    for (const auto& name : names) {
      const size_t layer = named_layer(net, name);
      if (!producers.count(layer))
        throw ConfigError("env.layers: '" + name + "' produces no channel group, so the structured criterion '" +
                          criterion +
                          "' would remove nothing there; name group producers ('prunegym info' lists them)");
      layers_.push_back(layer);
    }
  }

 public:
  ScheduleStep step(EnvCore& core, const EpisodeState& episode, double value, double) override {
    const auto k = static_cast<size_t>(episode.step);
    const size_t layer = layers_[k];
    const double prune_ms = core.prune({layer}, value);
    const bool last = k + 1 == layers_.size();
    const bool measure = dense_timing_ || last;
    double retrain_ms = 0.0, eval_ms = 0.0;
    if (measure) {
      retrain_ms = core.retrain();
      eval_ms = core.evaluate();
    }
    ScheduleStep s;
    s.info = core.counts();
    const double layer_sparsity = s.info.layer_sparsities[layer];
    s.pruned = {k};
    s.info.layer = core.network().prunable_layers()[layer].name;
    s.info.layer_index = static_cast<int64_t>(layer);
    s.info.value = value;
    s.info.step_sparsity = layer_sparsity;
    s.info.evaluated = measure;
    s.info.prune_ms = prune_ms;
    s.info.retrain_ms = retrain_ms;
    s.info.eval_ms = eval_ms;
    s.observed_sparsity = s.info.sparsity;
    s.finished = last;
    return s;
  }

 private:
  bool dense_timing_;
  int64_t max_steps_;
  ActionGrid grid_;
};

/// Seed 000: one lottery-ticket round per step. The action sets the round's pruning (a threshold
/// factor, or a rate for magnitude criteria); survivors are reset by the configured strategy and
/// retrained with a fresh optimizer. The episode ends when the pruned group reaches T_P.
class RoundsSchedule : public EpisodeSchedule {
 public:
  explicit RoundsSchedule(EnvCore& core) : options_(core.config().lottery) {
    const auto& config = core.config();
    if (!config.env.layers.empty()) options_.layers = config.env.layers;
    threshold_ = core.criterion().meaning() == ActionMeaning::alpha;
    if (core.criterion().ranks_globally()) options_.scope = "global";  // one ranking over the layers
    strategy_ = parse_strategy(options_.strategy);
    max_rounds_ = config.env.max_steps > 0 ? config.env.max_steps : 15;
    build_references(core);
    layers_ = lottery_layers(core.network(), options_);
  }

  int64_t length() const override { return max_rounds_; }
  int64_t step_limit() const override { return max_rounds_; }
  /// A magnitude criterion's action is the round's pruning rate here.
  ActionGrid default_grid() const override { return threshold_ ? ActionGrid{} : ActionGrid{0.1, 0.5, 0.1}; }

  ScheduleStep step(EnvCore& core, const EpisodeState& episode, double value, double target_sparsity) override {
    auto& net = core.network();
    auto t0 = Clock::now();
    prune_and_reset(net, round_target(core, value), strategy_, refs_, core.rng()(), core.rng());
    const double prune_ms = ms_since(t0);
    const double retrain_ms = options_.train.epochs > 0 ? core.retrain_with(options_.train) : 0.0;
    const double eval_ms = core.evaluate();

    ScheduleStep s;
    s.info = core.counts();
    const double group = group_sparsity(net, s.info);
    for (size_t k = 0; k < layers_.size(); ++k) s.pruned.push_back(k);
    s.info.round = episode.step + 1;
    s.info.value = value;
    s.info.step_sparsity = group;
    s.info.evaluated = true;
    s.info.prune_ms = prune_ms;
    s.info.retrain_ms = retrain_ms;
    s.info.eval_ms = eval_ms;
    s.observed_sparsity = group;
    s.finished = group >= target_sparsity - 1e-9;
    return s;
  }

 private:
  /// W0 (the dense model's own initialisation: build_network is deterministic in init_seed) and,
  /// for rewind_iter, W_k: that initialisation trained k iterations with the pretraining settings.
  void build_references(EnvCore& core) {
    const auto& config = core.config();
    const auto& data = core.data();
    auto fresh = build_network(config.network, data.shape, data.classes);
    fresh->to(core.device());
    refs_.init = clone_parameters(*fresh);
    refs_.network = config.network;
    refs_.input = data.shape;
    refs_.classes = data.classes;
    if (strategy_ != ResetStrategy::rewind_iter) return;
    const int64_t k = options_.rewind_iteration;
    TrainOptions o = config.pretrain;
    o.epochs = 1;
    o.samples = k * o.batch_size;
    if (o.samples > data.train.size())
      throw ConfigError("lottery.rewind_iteration " + std::to_string(k) + " needs " + std::to_string(o.samples) +
                        " training samples in one pass; the training split has " + std::to_string(data.train.size()));
    if (k > 0) {
      std::mt19937_64 rng(config.seed);
      auto optimizer = make_optimizer(*fresh, o);
      train(*fresh, *optimizer, data.train, o, rng);
    }
    refs_.rewind = clone_parameters(*fresh);
  }

  /// A threshold decides each layer's new sparsity (found on a copy, then pruned to exactly
  /// that); a magnitude criterion's value is the round's rate.
  RoundTarget round_target(EnvCore& core, double value) const {
    auto& net = core.network();
    if (!threshold_) return rate_target(net, options_, value);
    RoundTarget target;
    const auto saved = clone_state(net);
    core.criterion().apply(net, layers_, value);
    target.layers = layers_;
    for (size_t i : layers_) target.sparsity.push_back(net.prunable_layers()[i].sparsity());
    load_state(net, saved);
    return target;
  }

  double group_sparsity(const NetworkImpl& net, const StepInfo& counts) const {
    int64_t total = 0, pruned = 0;
    for (size_t i : layers_) {
      const int64_t n = net.prunable_layers()[i].numel();
      total += n;
      pruned += std::llround(counts.layer_sparsities[i] * static_cast<double>(n));
    }
    return total ? static_cast<double>(pruned) / static_cast<double>(total) : 0.0;
  }

  LotteryOptions options_;
  bool threshold_ = true;
  ResetStrategy strategy_ = ResetStrategy::rewind_init;
  int64_t max_rounds_ = 15;
  ResetReferences refs_;
};

}  // namespace

template <>
ScheduleRegistry& ScheduleRegistry::instance() {
  static ScheduleRegistry registry = [] {
    ScheduleRegistry r("episode schedule", "env.episode");
    r.add("layerwise", without_options<LayerwiseSchedule, EpisodeSchedule, EnvCore&>("episode schedule 'layerwise'"),
          "one step per prunable layer (PuRL)");
    r.add("rounds", without_options<RoundsSchedule, EpisodeSchedule, EnvCore&>("episode schedule 'rounds'"),
          "one lottery-ticket round per step (prune, reset the survivors, retrain), with tabular Q-learning's "
          "lottery_q reward by default",
          {}, {{"default_reward", "lottery_q"}});
    return r;
  }();
  return registry;
}

}  // namespace prunegym
