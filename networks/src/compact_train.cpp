// Retraining on the compact form of a network (groups.h train_compact): a TorchScript copy without
// the removed channels takes the steps train() would take, then hands weights, batch norm
// statistics and optimizer state back to the masked network.

#include <prunegym/networks/groups.h>

#include <torch/csrc/jit/runtime/graph_executor.h>

#include <cmath>

namespace prunegym {

namespace {

using Slices = std::vector<std::pair<int64_t, std::vector<int64_t>>>;

const Slices kWhole;

/// The entries of `full` that the slices keep, as a new tensor.
torch::Tensor cut(const torch::Tensor& full, const Slices& slices) {
  auto t = full;
  for (const auto& [dim, keep] : slices) t = t.index_select(dim, torch::tensor(keep, torch::kLong).to(t.device()));
  return slices.empty() ? t.clone() : t;
}

/// Writes `part` into the entries of `full` that cut(full, slices) reads.
void put(torch::Tensor& full, const Slices& slices, const torch::Tensor& part) {
  if (slices.empty()) {
    full.copy_(part);
    return;
  }
  std::map<int64_t, const std::vector<int64_t>*> by_dim;
  for (const auto& [dim, keep] : slices) by_dim[dim] = &keep;
  const int64_t last = by_dim.rbegin()->first;
  const bool two = by_dim.size() > 1;  // dims 0 and 1: broadcast [n0, 1] against [n1]
  std::vector<at::indexing::TensorIndex> index;
  for (int64_t d = 0; d <= last; ++d) {
    const auto it = by_dim.find(d);
    if (it == by_dim.end()) {
      index.emplace_back(at::indexing::Slice());
      continue;
    }
    auto i = torch::tensor(*it->second, torch::kLong).to(full.device());
    index.emplace_back(two && d < last ? i.unsqueeze(1) : i);
  }
  full.index_put_(index, part);
}

std::string state_key(const torch::Tensor& t) { return c10::guts::to_string(t.unsafeGetTensorImpl()); }

/// A full tensor of the network and its compact counterpart in the scripted copy.
struct Pair {
  std::string name;
  torch::Tensor full, part;
  const Slices* slices;
};

/// The per-parameter state of Adam, SGD and Adagrad as its tensors, cut or put back together.
template <typename State>
using Fields = std::vector<std::pair<torch::Tensor (*)(const State&), void (*)(State&, torch::Tensor)>>;

template <typename State>
Fields<State> fields();
template <>
Fields<torch::optim::AdamParamState> fields() {
  using S = torch::optim::AdamParamState;
  return {
      {[](const S& s) { return s.exp_avg(); }, [](S& s, torch::Tensor t) { s.exp_avg(std::move(t)); }},
      {[](const S& s) { return s.exp_avg_sq(); }, [](S& s, torch::Tensor t) { s.exp_avg_sq(std::move(t)); }},
      {[](const S& s) { return s.max_exp_avg_sq(); }, [](S& s, torch::Tensor t) { s.max_exp_avg_sq(std::move(t)); }}};
}
template <>
Fields<torch::optim::SGDParamState> fields() {
  using S = torch::optim::SGDParamState;
  return {
      {[](const S& s) { return s.momentum_buffer(); }, [](S& s, torch::Tensor t) { s.momentum_buffer(std::move(t)); }}};
}
template <>
Fields<torch::optim::AdagradParamState> fields() {
  using S = torch::optim::AdagradParamState;
  return {{[](const S& s) { return s.sum(); }, [](S& s, torch::Tensor t) { s.sum(std::move(t)); }}};
}

template <typename State>
void copy_step(State& to, const State& from) {
  if constexpr (std::is_same_v<State, torch::optim::SGDParamState>) {
    (void)to, (void)from;
  } else {
    to.step(from.step());
  }
}

/// The optimizer over the compact parameters: `Opt`'s options, the sliced state of `full`.
template <typename Opt, typename Options, typename State>
std::unique_ptr<torch::optim::Optimizer> sliced_optimizer(Opt& full, const std::vector<Pair>& params) {
  std::vector<torch::Tensor> parts;
  for (const auto& p : params) parts.push_back(p.part);
  auto out = std::make_unique<Opt>(parts, static_cast<const Options&>(full.param_groups().at(0).options()));
  for (const auto& p : params) {
    const auto it = full.state().find(state_key(p.full));
    if (it == full.state().end()) continue;
    const auto& from = static_cast<const State&>(*it->second);
    auto to = std::make_unique<State>();
    copy_step(*to, from);
    for (const auto& [get, set] : fields<State>())
      if (get(from).defined()) set(*to, cut(get(from), *p.slices));
    out->state()[state_key(p.part)] = std::move(to);
  }
  return out;
}

/// Puts the compact optimizer's state back into `full`'s (created where `full` had none yet,
/// zero for the removed entries, as a masked step leaves them).
template <typename State>
void put_state(torch::optim::Optimizer& full, torch::optim::Optimizer& compact, const std::vector<Pair>& params) {
  for (const auto& p : params) {
    const auto it = compact.state().find(state_key(p.part));
    if (it == compact.state().end()) continue;
    const auto& from = static_cast<const State&>(*it->second);
    auto& slot = full.state()[state_key(p.full)];
    if (!slot) slot = std::make_unique<State>();
    auto& to = static_cast<State&>(*slot);
    copy_step(to, from);
    for (const auto& [get, set] : fields<State>()) {
      if (!get(from).defined()) continue;
      auto t = get(to);
      if (!t.defined()) t = torch::zeros_like(p.full, torch::MemoryFormat::Preserve);
      put(t, *p.slices, get(from));
      set(to, t);
    }
  }
}

/// The compact optimizer for the kinds make_optimizer builds, with a function that writes its
/// state back; null for any other optimizer.
std::pair<std::unique_ptr<torch::optim::Optimizer>,
          void (*)(torch::optim::Optimizer&, torch::optim::Optimizer&, const std::vector<Pair>&)>
compact_optimizer(torch::optim::Optimizer& full, const std::vector<Pair>& params) {
  using namespace torch::optim;
  if (auto* a = dynamic_cast<Adam*>(&full))
    return {sliced_optimizer<Adam, AdamOptions, AdamParamState>(*a, params), put_state<AdamParamState>};
  if (auto* s = dynamic_cast<SGD*>(&full))
    return {sliced_optimizer<SGD, SGDOptions, SGDParamState>(*s, params), put_state<SGDParamState>};
  if (auto* g = dynamic_cast<Adagrad*>(&full))
    return {sliced_optimizer<Adagrad, AdagradOptions, AdagradParamState>(*g, params), put_state<AdagradParamState>};
  return {nullptr, nullptr};
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

/// Writes the copy's parameters and batch norm statistics back into the network. A removed
/// channel's running statistics decay as a masked step's zero input makes them decay (momentum
/// 0.1 per step), and every batch norm counts the steps taken.
void write_back(const std::vector<Pair>& params, const std::vector<Pair>& buffers, int64_t steps) {
  torch::NoGradGuard no_grad;
  for (const auto& p : params) {
    auto full = p.full;
    put(full, *p.slices, p.part.detach());
  }
  const double decay = std::pow(0.9, static_cast<double>(steps));
  for (const auto& b : buffers) {
    auto full = b.full;
    if (ends_with(b.name, ".num_batches_tracked")) {
      full.add_(steps);
      continue;
    }
    if (!b.slices->empty() && (ends_with(b.name, ".running_mean") || ends_with(b.name, ".running_var")))
      full.mul_(decay);
    put(full, *b.slices, b.part);
  }
}

/// Moves the entries the compact copy does not hold (a removed channel's bias and batch norm
/// scale, its masked rows and columns) as `steps` masked steps move them: their gradient is zero
/// there, so only weight decay and optimizer momentum act. Full optimizer steps on zero gradients
/// of the sliced parameters do exactly that (the kept entries are overwritten afterwards).
void replay_removed(NetworkImpl& net, torch::optim::Optimizer& optimizer, const std::vector<Pair>& params,
                    int64_t steps) {
  torch::NoGradGuard no_grad;
  for (const auto& p : params) {
    auto full = p.full;
    full.mutable_grad() = p.slices->empty() ? torch::Tensor() : torch::zeros_like(full);
  }
  for (int64_t i = 0; i < steps; ++i) {
    optimizer.step();
    net.apply_masks();
  }
  for (const auto& p : params) {
    auto full = p.full;
    full.mutable_grad() = torch::Tensor();
  }
}

}  // namespace

std::optional<TrainStats> train_compact(NetworkImpl& net, torch::optim::Optimizer& optimizer, const Tensors& data,
                                        const TrainOptions& o, std::mt19937_64& rng, const EpochCallback& on_epoch,
                                        const StepCallback& on_step) {
  if (!data.x.is_floating_point()) return std::nullopt;
  const std::string source = net.script_forward();
  if (source.empty()) return std::nullopt;
  const auto compact = compact_network(net);
  if (compact.removed_channels == 0) return std::nullopt;
  auto module = scripted_module(net, source, compact.tensors);
  const auto slices_of = [&](const std::string& name) -> const Slices* {
    const auto it = compact.slices.find(name);
    return it == compact.slices.end() ? &kWhole : &it->second;
  };
  std::vector<Pair> params, buffers;
  std::map<std::string, torch::Tensor> parts;
  for (const auto& p : net.named_parameters()) {
    auto part = module.attr(script_name(p.key())).toTensor();
    part.requires_grad_(true);
    params.push_back({p.key(), p.value(), part, slices_of(p.key())});
    parts[p.key()] = part;
  }
  for (const auto& b : net.named_buffers())
    if (!is_mask_buffer(b.key()))
      buffers.push_back({b.key(), b.value(), module.attr(script_name(b.key())).toTensor(), slices_of(b.key())});
  auto [opt, put_back] = compact_optimizer(optimizer, params);
  if (!opt) return std::nullopt;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> masks;  // (compact weight, its sliced mask)
  for (const auto& l : net.prunable_layers()) {
    auto m = cut(l.mask, *slices_of(l.name)).to(parts.at(l.name).dtype());
    if (!m.eq(1).all().item<bool>()) masks.emplace_back(parts.at(l.name), m);
  }
  module.train();
  // One module per call: the profiling executor would profile and re-optimize it every time.
  torch::jit::GraphOptimizerEnabledGuard plain(false);
  const auto step = [&](const torch::Tensor& xb, const torch::Tensor& yb) {
    opt->zero_grad();
    auto loss = torch::nn::functional::cross_entropy(module.forward({xb}).toTensor(), yb);
    loss.backward();
    for (auto& [w, m] : masks)
      if (w.grad().defined()) w.mutable_grad().mul_(m);
    opt->step();
    {
      torch::NoGradGuard no_grad;
      for (auto& [w, m] : masks) w.mul_(m);
    }
    return loss.item<double>();
  };
  const auto stats = train_batches(data, o, rng, step, on_epoch, on_step);
  replay_removed(net, optimizer, params, stats.steps);
  write_back(params, buffers, stats.steps);
  put_back(optimizer, *opt, params);
  net.train();
  return stats;
}

}  // namespace prunegym
