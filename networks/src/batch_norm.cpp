#include <prunegym/networks/batch_norm.h>

#include <algorithm>

namespace prunegym {

int64_t recalibrate_batch_norm(NetworkImpl& net, const Tensors& data, int64_t samples, int64_t batch_size) {
  std::vector<std::shared_ptr<torch::nn::BatchNorm2dImpl>> norms;
  for (const auto& m : net.modules(/*include_self=*/false))
    if (auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(m)) norms.push_back(bn);
  if (norms.empty() || data.size() == 0) return 0;
  std::vector<c10::optional<double>> momentum;
  for (auto& bn : norms) {
    momentum.push_back(bn->options.momentum());
    bn->options.momentum(c10::nullopt);  // a cumulative average over every batch below
    bn->reset_running_stats();
  }
  const bool was_training = net.is_training();
  net.train(true);
  {
    torch::NoGradGuard no_grad;
    const Tensors set = data.head(samples);
    for (int64_t i = 0; i < set.size(); i += batch_size)
      net.forward(set.x.narrow(0, i, std::min(batch_size, set.size() - i)));
  }
  net.train(was_training);
  for (size_t i = 0; i < norms.size(); ++i) norms[i]->options.momentum(momentum[i]);
  return static_cast<int64_t>(norms.size());
}

}  // namespace prunegym
