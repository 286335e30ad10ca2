#include <prunegym/core/errors.h>
#include <prunegym/env/lottery.h>

#include <chrono>
#include <cmath>
#include <limits>

namespace prunegym {

namespace {

const std::vector<std::pair<ResetStrategy, const char*>>& strategy_table() {
  static const std::vector<std::pair<ResetStrategy, const char*>> table{{ResetStrategy::keep, "keep"},
                                                                        {ResetStrategy::rewind_init, "rewind_init"},
                                                                        {ResetStrategy::rewind_iter, "rewind_iter"},
                                                                        {ResetStrategy::reinit, "reinit"},
                                                                        {ResetStrategy::random_mask, "random_mask"}};
  return table;
}

int64_t pruned_count(const PrunableLayer& l) { return l.numel() - l.remaining(); }

/// |w| for surviving weights, +inf for pruned ones: the k smallest scores are k survivors.
torch::Tensor survivor_scores(const PrunableLayer& l) {
  return torch::where(l.mask.flatten().gt(0), l.weight.abs().flatten(),
                      torch::full({}, std::numeric_limits<float>::infinity(), l.weight.options()));
}

int64_t count_for(double sparsity, int64_t n) {
  return std::min<int64_t>(n, std::max<int64_t>(0, std::llround(sparsity * static_cast<double>(n))));
}

}  // namespace

ResetStrategy parse_strategy(const std::string& name) {
  for (const auto& [s, n] : strategy_table())
    if (name == n) return s;
  throw ConfigError("unknown reset strategy '" + name +
                    "' (known: keep, rewind_init, rewind_iter, reinit, random_mask)");
}

std::string strategy_help() {
  return "  keep          plain iterative pruning: keep training the trained survivors\n"
         "  rewind_init   winning ticket: survivors go back to their initial values\n"
         "  rewind_iter   late rewinding: survivors go back to their values at iteration\n"
         "                lottery.rewind_iteration of the first training\n"
         "  reinit        same mask, freshly drawn random initial values\n"
         "  random_mask   control: a random mask with the same per-layer sparsity, rewound to init\n";
}

namespace {

/// Parameters and the buffers a network learns (batch-norm running statistics); masks excluded,
/// so rewinding resets the statistics with the weights but keeps the pruning.
std::vector<torch::Tensor> learned_tensors(const NetworkImpl& net) {
  std::vector<torch::Tensor> out = net.parameters();
  for (const auto& b : net.named_buffers())
    if (!is_mask_buffer(b.key())) out.push_back(b.value());
  return out;
}

}  // namespace

std::vector<torch::Tensor> clone_parameters(const NetworkImpl& net) {
  std::vector<torch::Tensor> out;
  for (const auto& p : learned_tensors(net)) out.push_back(p.detach().clone());
  return out;
}

void load_parameters(NetworkImpl& net, const std::vector<torch::Tensor>& params) {
  auto mine = learned_tensors(net);
  if (mine.size() != params.size())
    throw ConfigError("load_parameters: the saved parameters belong to another network");
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < mine.size(); ++i) mine[i].copy_(params[i]);
  net.apply_masks();
}

std::vector<int64_t> prune_to_target(NetworkImpl& net, const RoundTarget& target) {
  torch::NoGradGuard no_grad;
  auto& all = net.prunable_layers();
  std::vector<int64_t> counts;
  if (!target.global_scope) {
    for (size_t k = 0; k < target.layers.size(); ++k) {
      auto& l = all.at(target.layers[k]);
      const int64_t goal = count_for(target.sparsity.at(k), l.numel());
      const int64_t more = goal - pruned_count(l);
      if (more > 0) {
        auto idx = std::get<1>(survivor_scores(l).topk(more, 0, /*largest=*/false, /*sorted=*/false));
        l.mask.view({-1}).index_fill_(0, idx, 0.0);
        l.weight.mul_(l.mask);
      }
      counts.push_back(pruned_count(l));
    }
    return counts;
  }
  // Global: one ranking over all listed layers.
  std::vector<torch::Tensor> scores;
  int64_t total = 0, pruned = 0;
  for (size_t i : target.layers) {
    auto& l = all.at(i);
    scores.push_back(survivor_scores(l));
    total += l.numel();
    pruned += pruned_count(l);
  }
  const int64_t more = count_for(target.global, total) - pruned;
  if (more > 0) {
    auto flat = torch::cat(scores);
    auto idx = std::get<1>(flat.topk(more, 0, /*largest=*/false, /*sorted=*/false));
    auto drop = torch::zeros({total}, torch::kBool).index_fill_(0, idx, true);
    int64_t offset = 0;
    for (size_t i : target.layers) {
      auto& l = all.at(i);
      auto mine = drop.narrow(0, offset, l.numel()).view(l.mask.sizes());
      l.mask.masked_fill_(mine, 0.0);
      l.weight.mul_(l.mask);
      offset += l.numel();
    }
  }
  for (size_t i : target.layers) counts.push_back(pruned_count(all.at(i)));
  return counts;
}

void prune_random_to_counts(NetworkImpl& net, const std::vector<size_t>& layers, const std::vector<int64_t>& pruned,
                            std::mt19937_64& rng) {
  torch::NoGradGuard no_grad;
  for (size_t k = 0; k < layers.size(); ++k) {
    auto& l = net.prunable_layers().at(layers[k]);
    const int64_t more = pruned.at(k) - pruned_count(l);
    if (more <= 0) continue;
    auto alive = l.mask.flatten().nonzero().flatten();
    const auto pick = sample_indices(alive.numel(), more, rng);
    auto idx = alive.index_select(0, torch::tensor(pick, torch::kInt64));
    l.mask.view({-1}).index_fill_(0, idx, 0.0);
    l.weight.mul_(l.mask);
  }
}

std::vector<size_t> lottery_layers(const NetworkImpl& net, const LotteryOptions& o) {
  std::vector<size_t> out;
  if (o.layers.empty()) {
    for (size_t i = 0; i < net.prunable_layers().size(); ++i) out.push_back(i);
    return out;
  }
  for (const auto& name : o.layers) {
    try {
      out.push_back(net.layer_index(name));
    } catch (const ConfigError& e) {
      throw ConfigError(std::string("lottery.layers: ") + e.what());
    }
  }
  return out;
}

namespace {

/// The per-round rate a layer is pruned at: the output layer's own rate, else the convolutions' own
/// rate, else the schedule's.
std::optional<double> own_rate(const NetworkImpl& net, const LotteryOptions& o, size_t i) {
  if (o.output_rate && i == net.prunable_layers().size() - 1) return o.output_rate;
  if (o.conv_rate && net.prunable_layers()[i].weight.dim() > 2) return o.conv_rate;
  return std::nullopt;
}

}  // namespace

RoundTarget round_target(const NetworkImpl& net, const LotteryOptions& o, int64_t round) {
  const auto schedule = o.schedule();
  if (round < 1 || round > static_cast<int64_t>(schedule.size()))
    throw ConfigError("round " + std::to_string(round) + " is outside the schedule (1.." +
                      std::to_string(schedule.size()) + ")");
  RoundTarget t;
  t.layers = lottery_layers(net, o);
  t.global_scope = o.scope == "global";
  t.global = schedule[static_cast<size_t>(round - 1)];
  for (size_t i : t.layers) {
    const auto own = own_rate(net, o, i);
    t.sparsity.push_back(own ? 1.0 - std::pow(1.0 - *own, static_cast<double>(round)) : t.global);
  }
  return t;
}

RoundTarget rate_target(const NetworkImpl& net, const LotteryOptions& o, double rate) {
  if (!(rate >= 0 && rate <= 1)) throw ActionError("a pruning rate must be in [0, 1], got " + std::to_string(rate));
  RoundTarget t;
  t.layers = lottery_layers(net, o);
  t.global_scope = o.scope == "global";
  int64_t total = 0, remaining = 0;
  for (size_t i : t.layers) {
    const auto& l = net.prunable_layers()[i];
    const auto own = own_rate(net, o, i);
    const double r = own ? rate * *own / o.rate : rate;
    t.sparsity.push_back(1.0 - (1.0 - l.sparsity()) * (1.0 - r));
    total += l.numel();
    remaining += l.remaining();
  }
  t.global = total ? 1.0 - static_cast<double>(remaining) / static_cast<double>(total) * (1.0 - rate) : 0.0;
  return t;
}

void prune_and_reset(NetworkImpl& net, const RoundTarget& target, ResetStrategy strategy, const ResetReferences& refs,
                     uint64_t reinit_seed, std::mt19937_64& rng) {
  if (strategy == ResetStrategy::random_mask) {
    // The magnitude mask only tells how many weights each layer loses; which ones is random.
    std::vector<torch::Tensor> masks;
    for (size_t i : target.layers) masks.push_back(net.prunable_layers()[i].mask.clone());
    auto weights = clone_parameters(net);
    const auto counts = prune_to_target(net, target);
    {
      torch::NoGradGuard no_grad;
      for (size_t k = 0; k < target.layers.size(); ++k) net.prunable_layers()[target.layers[k]].mask.copy_(masks[k]);
    }
    load_parameters(net, weights);
    prune_random_to_counts(net, target.layers, counts, rng);
  } else {
    prune_to_target(net, target);
  }
  switch (strategy) {
    case ResetStrategy::keep:
      break;
    case ResetStrategy::rewind_init:
    case ResetStrategy::random_mask:
      load_parameters(net, refs.init);
      break;
    case ResetStrategy::rewind_iter:
      if (refs.rewind.empty()) throw ConfigError("rewind_iter needs the weights of iteration k; none were captured");
      load_parameters(net, refs.rewind);
      break;
    case ResetStrategy::reinit: {
      NetworkOptions fresh = refs.network;
      fresh.init_seed = reinit_seed;
      auto other = build_network(fresh, refs.input, refs.classes);
      load_parameters(net, clone_parameters(*other));
      break;
    }
  }
}

RoundTraining train_round(NetworkImpl& net, const DataSplits& data, const TrainOptions& options, int64_t eval_every,
                          std::mt19937_64& rng, const CheckCallback& on_check, int64_t capture_at,
                          std::vector<torch::Tensor>* captured) {
  if (data.validation.size() == 0)
    throw ConfigError(
        "lottery training needs a validation split for the early-stop iteration: set data.validation > 0");
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t n = options.samples > 0 ? std::min(options.samples, data.train.size()) : data.train.size();
  const int64_t total = options.epochs * ((n + options.batch_size - 1) / options.batch_size);
  RoundTraining r;
  int64_t last_checked = -1, test_checked = -1;
  r.min_validation_loss = std::numeric_limits<double>::infinity();
  // The test set is only needed where the validation loss reaches a new minimum (the early-stop
  // figure) and at the end: evaluating it at every check took about a quarter of an 8-epoch LeNet
  // training (seed 001 config, 100-iteration checks).
  auto check = [&](int64_t it) {
    const auto v = evaluate(net, data.validation);
    r.best_validation_accuracy = std::max(r.best_validation_accuracy, v.accuracy);
    if (v.loss < r.min_validation_loss) {
      r.min_validation_loss = v.loss;
      r.early_stop_iteration = it;
      r.test_accuracy = evaluate(net, data.test).accuracy;
      r.early_stop_test_accuracy = r.test_accuracy;
      test_checked = it;
    }
    r.validation_accuracy = v.accuracy;
    last_checked = it;
    if (on_check) on_check(it, total);
  };
  if (capture_at == 0 && captured) *captured = clone_parameters(net);
  auto optimizer = make_optimizer(net, options);
  const auto stats = train(net, *optimizer, data.train, options, rng, {}, [&](int64_t step) {
    if (captured && step == capture_at) *captured = clone_parameters(net);
    if (step % eval_every == 0 || step == total) check(step);
  });
  r.iterations = stats.steps;
  if (last_checked != r.iterations) check(r.iterations);
  if (test_checked != r.iterations) r.test_accuracy = evaluate(net, data.test).accuracy;  // the final network's
  if (captured && capture_at > r.iterations)
    throw ConfigError("lottery.rewind_iteration " + std::to_string(capture_at) + " is beyond the " +
                      std::to_string(r.iterations) + " iterations of a training run");
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace prunegym
