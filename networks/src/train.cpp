#include <prunegym/networks/errors.h>
#include <prunegym/networks/train.h>

#include <numeric>

namespace prunegym {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(NetworkImpl& net, const TrainOptions& o) {
  if (!(o.lr > 0)) throw ConfigError("learning rate must be positive (got " + std::to_string(o.lr) + ")");
  if (o.optimizer == "adam") {
    return std::make_unique<torch::optim::Adam>(net.parameters(),
                                                torch::optim::AdamOptions(o.lr).weight_decay(o.weight_decay));
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

TrainStats train(NetworkImpl& net, torch::optim::Optimizer& optimizer, const Tensors& data,
                 const TrainOptions& o, std::mt19937_64& rng, const EpochCallback& on_epoch,
                 const StepCallback& on_step) {
  if (o.batch_size <= 0) throw ConfigError("batch_size must be positive");
  if (data.size() == 0) throw DataError("cannot train on an empty dataset");
  Tensors subset = data;
  if (o.samples > 0 && o.samples < data.size()) {
    const auto idx = sample_indices(data.size(), o.samples, rng);
    auto t = torch::tensor(idx, torch::kInt64).to(data.x.device());
    subset = {data.x.index_select(0, t), data.y.index_select(0, t)};
  }
  const int64_t n = subset.size();
  net.train();
  TrainStats stats;
  for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    const auto order = sample_indices(n, n, rng);
    auto perm = torch::tensor(order, torch::kInt64).to(subset.x.device());
    auto xs = subset.x.index_select(0, perm);
    auto ys = subset.y.index_select(0, perm);
    double loss_sum = 0.0;
    int64_t batches = 0;
    for (int64_t start = 0; start < n; start += o.batch_size) {
      const int64_t len = std::min(o.batch_size, n - start);
      auto xb = xs.narrow(0, start, len);
      auto yb = ys.narrow(0, start, len);
      optimizer.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(net.forward(xb), yb);
      loss.backward();
      net.mask_gradients();
      optimizer.step();
      net.apply_masks();
      loss_sum += loss.item<double>();
      ++batches;
      ++stats.steps;
      if (on_step) on_step(stats.steps);
    }
    stats.loss = batches ? loss_sum / static_cast<double>(batches) : 0.0;
    if (on_epoch) on_epoch(epoch, o.epochs, stats.loss);
  }
  return stats;
}

EvalResult evaluate(NetworkImpl& net, const Tensors& data, int64_t batch_size) {
  EvalResult r;
  const int64_t n = data.size();
  if (n == 0) return r;
  if (batch_size <= 0) batch_size = n;
  torch::InferenceMode guard;
  const bool was_training = net.is_training();
  net.eval();
  int64_t correct = 0;
  double loss_sum = 0.0;
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t len = std::min(batch_size, n - start);
    auto logits = net.forward(data.x.narrow(0, start, len));
    auto yb = data.y.narrow(0, start, len);
    correct += logits.argmax(1).eq(yb).sum().item<int64_t>();
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, yb, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
  }
  net.train(was_training);
  r.accuracy = static_cast<double>(correct) / static_cast<double>(n);
  r.loss = loss_sum / static_cast<double>(n);
  return r;
}

}  // namespace prunegym
