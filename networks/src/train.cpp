#include <prunegym/core/cancel.h>
#include <prunegym/core/errors.h>
#include <prunegym/networks/flat_adam.h>
#include <prunegym/networks/train.h>

#include <algorithm>
#include <cstdlib>
#include <numeric>
#include <thread>

namespace prunegym {

namespace {

/// Forward and backward of a plain fully connected stack (flatten, linear, relu) written out by
/// hand: the gradients autograd would compute, into the parameters' .grad(), without building a
/// graph per batch. Retraining runs many small batches, where autograd's bookkeeping and the
/// separate bias and activation kernels cost as much as the products.
class DenseStackPath {
 public:
  /// The path for `net`, or null when its layers are anything but flatten/linear/relu (then
  /// autograd trains it).
  static std::unique_ptr<DenseStackPath> make(NetworkImpl& net) {
    auto* stack = dynamic_cast<LayerStackImpl*>(&net);
    if (!stack) return nullptr;
    using K = LayerSpec::Kind;
    auto params = net.named_parameters();
    auto path = std::make_unique<DenseStackPath>();
    const auto& specs = stack->specs();
    for (size_t i = 0; i < specs.size(); ++i) {
      const auto k = specs[i].kind;
      if (k == K::flatten) {
        if (!path->layers_.empty()) return nullptr;
      } else if (k == K::linear) {
        const std::string name = "fc" + std::to_string(path->layers_.size() + 1);
        if (!params.contains(name + ".weight") || !params.contains(name + ".bias")) return nullptr;
        path->layers_.push_back({params[name + ".weight"], params[name + ".bias"], false});
      } else if (k == K::relu) {
        if (path->layers_.empty() || path->layers_.back().relu) return nullptr;
        path->layers_.back().relu = true;
      } else {
        return nullptr;
      }
    }
    if (path->layers_.empty() || path->layers_.back().relu) return nullptr;
    return path;
  }

  /// Mean cross-entropy of the batch; leaves d(loss)/d(parameter) in every parameter's grad.
  double forward_backward(const torch::Tensor& x, const torch::Tensor& y) {
    torch::NoGradGuard no_grad;
    const int64_t batch = x.size(0);
    const size_t n = layers_.size();
    std::vector<torch::Tensor> acts(n + 1);  // each layer's output (acts[0]: the input)
    acts[0] = x.reshape({batch, -1});
    for (size_t l = 0; l < n; ++l) {
      auto& L = layers_[l];
      acts[l + 1] = torch::addmm(L.bias, acts[l], L.weight.t());
      if (L.relu) acts[l + 1].clamp_min_(0);
    }
    // d(mean CE)/d(logits) = (softmax - one_hot) / batch.
    auto logp = torch::log_softmax(acts[n], 1);
    const double loss = -logp.gather(1, y.unsqueeze(1)).mean().item<double>();
    auto g = logp.exp_();
    g.scatter_add_(1, y.unsqueeze(1), torch::full({batch, 1}, -1.0f, g.options()));
    g.div_(static_cast<double>(batch));
    for (size_t l = n; l-- > 0;) {
      auto& L = layers_[l];
      auto& gw = L.weight.mutable_grad();
      auto& gb = L.bias.mutable_grad();
      if (!gw.defined()) gw = torch::empty_like(L.weight);
      if (!gb.defined()) gb = torch::empty_like(L.bias);
      torch::mm_out(gw, g.t(), acts[l]);
      torch::sum_out(gb, g, {0});
      if (l == 0) break;
      auto next = torch::mm(g, L.weight);
      if (layers_[l - 1].relu) next.mul_(acts[l].gt(0));
      g = next;
    }
    return loss;
  }

 private:
  struct Layer {
    torch::Tensor weight, bias;
    bool relu;
  };
  std::vector<Layer> layers_;
};

/// PRUNEGYM_AUTOGRAD=1 trains every network through autograd (to compare against the hand-written path).
bool autograd_forced() {
  const char* v = std::getenv("PRUNEGYM_AUTOGRAD");
  return v && *v && std::string(v) != "0";
}

}  // namespace

std::unique_ptr<torch::optim::Optimizer> make_optimizer(NetworkImpl& net, const TrainOptions& o) {
  if (!(o.lr > 0)) throw ConfigError("learning rate must be positive (got " + std::to_string(o.lr) + ")");
  if (o.optimizer == "adam") {
    const auto options = torch::optim::AdamOptions(o.lr).weight_decay(o.weight_decay);
    if (flat_adam_enabled()) return std::make_unique<FlatAdam>(net.parameters(), options);
    return std::make_unique<torch::optim::Adam>(net.parameters(), options);
  }
  if (o.optimizer == "sgd") {
    return std::make_unique<torch::optim::SGD>(
        net.parameters(), torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay));
  }
  if (o.optimizer == "adagrad") {
    return std::make_unique<torch::optim::Adagrad>(net.parameters(),
                                                   torch::optim::AdagradOptions(o.lr).weight_decay(o.weight_decay));
  }
  throw ConfigError("optimizer: unknown optimizer '" + o.optimizer + "' (known: adam, sgd, adagrad)");
}

std::vector<int64_t> sample_indices(int64_t n, int64_t k, std::mt19937_64& rng) {
  k = std::min(k, n);
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  // Partial Fisher-Yates with our own draw, so the sequence does not depend on the standard
  // library's distribution implementation.
  for (int64_t i = 0; i < k; ++i) {
    const uint64_t span = static_cast<uint64_t>(n - i);
    const int64_t j = i + static_cast<int64_t>(rng() % span);
    std::swap(idx[static_cast<size_t>(i)], idx[static_cast<size_t>(j)]);
  }
  idx.resize(static_cast<size_t>(k));
  return idx;
}

TrainStats train_batches(const Tensors& data, const TrainOptions& o, std::mt19937_64& rng, const BatchStep& step,
                         const EpochCallback& on_epoch, const StepCallback& on_step) {
  if (o.batch_size <= 0) throw ConfigError("batch_size must be positive");
  if (data.size() == 0) throw DataError("cannot train on an empty dataset");
  Tensors subset = data;
  if (o.samples > 0 && o.samples < data.size()) {
    const auto idx = sample_indices(data.size(), o.samples, rng);
    auto t = torch::tensor(idx, torch::kInt64).to(data.x.device());
    subset = {data.x.index_select(0, t), data.y.index_select(0, t)};
  }
  const int64_t n = subset.size();
  TrainStats stats;
  for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    const auto order = sample_indices(n, n, rng);
    auto perm = torch::tensor(order, torch::kInt64).to(subset.x.device());
    auto xs = subset.x.index_select(0, perm);
    auto ys = subset.y.index_select(0, perm);
    double loss_sum = 0.0;
    int64_t batches = 0;
    for (int64_t start = 0; start < n; start += o.batch_size) {
      check_cancelled();  // a closed session or a stopping server ends the work between batches
      const int64_t len = std::min(o.batch_size, n - start);
      loss_sum += step(xs.narrow(0, start, len), ys.narrow(0, start, len));
      ++batches;
      ++stats.steps;
      if (on_step) on_step(stats.steps);
    }
    stats.loss = batches ? loss_sum / static_cast<double>(batches) : 0.0;
    if (on_epoch) on_epoch(epoch, o.epochs, stats.loss);
  }
  return stats;
}

bool trains_by_hand(NetworkImpl& net) { return !autograd_forced() && DenseStackPath::make(net) != nullptr; }

TrainStats train(NetworkImpl& net, torch::optim::Optimizer& optimizer, const Tensors& data, const TrainOptions& o,
                 std::mt19937_64& rng, const EpochCallback& on_epoch, const StepCallback& on_step) {
  net.train();
  // Graph networks take node ids, not features: autograd trains them.
  const auto fast = autograd_forced() || !data.x.is_floating_point() ? nullptr : DenseStackPath::make(net);
  const auto step = [&](const torch::Tensor& xb, const torch::Tensor& yb) {
    double loss;
    if (fast) {
      loss = fast->forward_backward(xb, yb);  // overwrites every gradient: no zero_grad needed
    } else {
      optimizer.zero_grad();
      auto l = torch::nn::functional::cross_entropy(net.forward(xb), yb);
      l.backward();
      loss = l.item<double>();
    }
    net.mask_gradients();
    optimizer.step();
    net.apply_masks();
    return loss;
  };
  return train_batches(data, o, rng, step, on_epoch, on_step);
}

EvalResult evaluate(NetworkImpl& net, const Tensors& data, int64_t batch_size) {
  torch::InferenceMode guard;
  const bool was_training = net.is_training();
  net.eval();
  auto r = evaluate_forward([&](const torch::Tensor& x) { return net.forward(x); }, data, batch_size,
                            net.activation_floats_per_sample());
  net.train(was_training);
  return r;
}

EvalResult evaluate_forward(const std::function<torch::Tensor(const torch::Tensor&)>& forward, const Tensors& data,
                            int64_t batch_size, int64_t floats_per_sample) {
  EvalResult r;
  const int64_t n = data.size();
  if (n == 0) return r;
  if (batch_size <= 0) batch_size = n;
  // Keep each activation under ~16 MB: larger buffers bypass the allocator's reuse (glibc maps
  // and unmaps them per call), and page faults then cost more than the convolutions (Conv-2 on
  // 500 images: 1.3 s in one batch, 0.27 s in batches of 100).
  if (floats_per_sample > 0)
    batch_size = std::min(batch_size, std::max<int64_t>(1, (int64_t{4} << 20) / floats_per_sample));
  torch::InferenceMode guard;
  int64_t correct = 0;
  double loss_sum = 0.0;
  for (int64_t start = 0; start < n; start += batch_size) {
    check_cancelled();
    const int64_t len = std::min(batch_size, n - start);
    auto logits = forward(data.x.narrow(0, start, len));
    auto yb = data.y.narrow(0, start, len);
    // One tally per (class, hit) pair gives the per-class counts (seed 000's Table 2) and, summed,
    // the overall hits, with a single pass and a single read back.
    const int64_t classes = logits.size(1);
    if (r.class_count.empty()) {
      r.class_count.assign(static_cast<size_t>(classes), 0);
      r.class_correct.assign(static_cast<size_t>(classes), 0);
    }
    const auto hits = logits.argmax(1).eq(yb).to(torch::kLong);
    const auto tally = torch::bincount(yb * 2 + hits, {}, 2 * classes).contiguous();
    const auto t = tally.accessor<int64_t, 1>();
    for (int64_t c = 0; c < classes; ++c) {
      r.class_count[static_cast<size_t>(c)] += t[2 * c] + t[2 * c + 1];
      r.class_correct[static_cast<size_t>(c)] += t[2 * c + 1];
      correct += t[2 * c + 1];
    }
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, yb, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
  }
  r.accuracy = static_cast<double>(correct) / static_cast<double>(n);
  r.loss = loss_sum / static_cast<double>(n);
  return r;
}

int configure_threads(long requested) {
  long n = requested;
  if (n <= 0) n = static_cast<long>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(static_cast<int>(n));
  return torch::get_num_threads();
}

}  // namespace prunegym
