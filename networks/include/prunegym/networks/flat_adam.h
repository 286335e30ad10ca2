#pragma once
// Adam whose moments live in two flat buffers: one update is a handful of operations over every
// parameter at once instead of about ten per parameter tensor (ResNet-50 has 161).

#include <torch/torch.h>

namespace prunegym {

/// torch::optim::Adam with the same arithmetic, element for element, and the same state: each
/// parameter's AdamParamState holds views into the flat moment buffers, so saving, loading and
/// slicing the state (compact retraining) work as for Adam. The gradients are gathered into one
/// flat buffer, the moments and the denominator are updated there, and each parameter takes its
/// step from its views. Falls back to Adam's own step for what it does not cover (weight decay,
/// AMSGrad, several parameter groups, a missing or sparse gradient, a parameter whose memory is
/// not dense) and rebuilds its buffers when the state was replaced (a loaded checkpoint).
class FlatAdam : public torch::optim::Adam {
 public:
  FlatAdam(std::vector<torch::Tensor> params, torch::optim::AdamOptions options);
  torch::Tensor step(LossClosure closure = nullptr) override;

  /// Whether the last step took the flat path (for tests and benchmarks).
  bool last_step_flat() const { return last_flat_; }

 private:
  struct Slot {
    torch::Tensor param, grad_view, exp_avg, exp_avg_sq, denom;  ///< views into the flat buffers
    std::vector<int64_t> sizes, strides;
    torch::optim::AdamParamState* state = nullptr;  ///< the parameter's entry in state_
  };
  bool covers() const;
  bool layout_current();  ///< also points each slot at its state entry
  void build();
  std::vector<Slot> slots_;
  torch::Tensor grads_, exp_avg_, exp_avg_sq_, denom_;
  bool last_flat_ = false;
};

/// PRUNEGYM_FLAT_ADAM=0 makes make_optimizer build LibTorch's own Adam (to compare the two).
bool flat_adam_enabled();

}  // namespace prunegym
