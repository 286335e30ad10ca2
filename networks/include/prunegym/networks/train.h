#pragma once
/// Train and evaluate loops. Masked weights stay exactly zero through every update.

#include <prunegym/networks/data.h>
#include <prunegym/networks/model.h>

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace prunegym {

struct TrainOptions {
  std::string optimizer = "adam";  ///< "adam", "sgd" or "adagrad"
  double lr = 1e-3;
  double momentum = 0.0;  ///< sgd only
  double weight_decay = 0.0;
  int64_t batch_size = 64;
  int64_t epochs = 1;   ///< passes over the (sub)set
  int64_t samples = 0;  ///< train on this many random samples per call (0 = the whole set)

  TrainOptions& set_optimizer(std::string v) {
    optimizer = std::move(v);
    return *this;
  }
  TrainOptions& set_lr(double v) {
    lr = v;
    return *this;
  }
  TrainOptions& set_batch_size(int64_t v) {
    batch_size = v;
    return *this;
  }
  TrainOptions& set_epochs(int64_t v) {
    epochs = v;
    return *this;
  }
  TrainOptions& set_samples(int64_t v) {
    samples = v;
    return *this;
  }
};

/// Builds the optimizer the options name over the network's parameters.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(NetworkImpl& net, const TrainOptions& options);

struct TrainStats {
  double loss = 0.0;  ///< mean loss of the last epoch
  int64_t steps = 0;  ///< optimizer steps taken
};

/// Called after each epoch with (epoch index, epochs, mean loss).
using EpochCallback = std::function<void(int64_t, int64_t, double)>;
/// Called after each optimizer step with the number of steps taken so far in this call.
using StepCallback = std::function<void(int64_t)>;

/// Trains with cross-entropy. `samples` > 0 draws a random subset (without replacement) from
/// `data` with `rng`; batches are shuffled with `rng` each epoch.
TrainStats train(NetworkImpl& net, torch::optim::Optimizer& optimizer, const Tensors& data, const TrainOptions& options,
                 std::mt19937_64& rng, const EpochCallback& on_epoch = {}, const StepCallback& on_step = {});

/// One optimizer step on a batch (inputs, labels); returns the batch's mean loss.
using BatchStep = std::function<double(const torch::Tensor&, const torch::Tensor&)>;
/// The batches train() visits, drawn from `rng` the same way (the subset, then each epoch's
/// order), each handed to `step`: any model trained through it sees what train() would show it.
TrainStats train_batches(const Tensors& data, const TrainOptions& options, std::mt19937_64& rng, const BatchStep& step,
                         const EpochCallback& on_epoch = {}, const StepCallback& on_step = {});

/// True when train() runs `net` through its hand-written fully connected path (no autograd):
/// faster than any other form of the same network, compacted or not.
bool trains_by_hand(NetworkImpl& net);

struct EvalResult {
  double accuracy = 0.0;  ///< fraction in [0, 1]
  double loss = 0.0;
  std::vector<int64_t> class_count;    ///< samples of each class (index = label)
  std::vector<int64_t> class_correct;  ///< correctly classified samples of each class
};

/// Accuracy and mean cross-entropy under inference mode, in batches of `batch_size` (0 = all).
EvalResult evaluate(NetworkImpl& net, const Tensors& data, int64_t batch_size = 2000);
/// The same over any forward function (a compact copy of the network, networks/groups.h);
/// `floats_per_sample` caps the batch as evaluate does (0 = no cap).
EvalResult evaluate_forward(const std::function<torch::Tensor(const torch::Tensor&)>& forward, const Tensors& data,
                            int64_t batch_size, int64_t floats_per_sample);

/// Sets LibTorch's intra-op threads (0 = one per core); returns the count in use.
int configure_threads(long requested);

/// Uniform sample of k distinct indices from [0, n), deterministic given rng.
std::vector<int64_t> sample_indices(int64_t n, int64_t k, std::mt19937_64& rng);

}  // namespace prunegym
