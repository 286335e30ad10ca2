#include <prunegym/networks/flat_adam.h>

#include <cmath>
#include <cstdlib>
#include <string>

namespace prunegym {

namespace {

using torch::optim::AdamOptions;
using torch::optim::AdamParamState;

std::string state_key(const torch::Tensor& t) { return c10::guts::to_string(t.unsafeGetTensorImpl()); }

bool dense_memory(const torch::Tensor& t) { return t.is_non_overlapping_and_dense() && !t.is_sparse(); }

/// `t` is the view `expected` (same memory, same layout).
bool same_view(const torch::Tensor& t, const torch::Tensor& expected) {
  return t.defined() && t.data_ptr() == expected.data_ptr() && t.strides() == expected.strides() &&
         t.sizes() == expected.sizes();
}

}  // namespace

bool flat_adam_enabled() {
  const char* v = std::getenv("PRUNEGYM_FLAT_ADAM");
  return !(v && std::string(v) == "0");
}

FlatAdam::FlatAdam(std::vector<torch::Tensor> params, AdamOptions options)
    : torch::optim::Adam(std::move(params), std::move(options)) {}

bool FlatAdam::covers() const {
  if (param_groups_.size() != 1) return false;
  const auto& o = static_cast<const AdamOptions&>(param_groups_[0].options());
  if (o.weight_decay() != 0 || o.amsgrad()) return false;
  const auto& params = param_groups_[0].params();
  if (params.empty()) return false;
  for (const auto& p : params) {
    const auto& g = p.grad();
    if (!g.defined() || g.is_sparse() || !dense_memory(p) || p.scalar_type() != params[0].scalar_type() ||
        p.device() != params[0].device() || g.scalar_type() != p.scalar_type())
      return false;
  }
  return true;
}

bool FlatAdam::layout_current() {
  const auto& params = param_groups_[0].params();
  if (slots_.size() != params.size()) return false;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& s = slots_[i];
    const auto& p = params[i];
    if (p.unsafeGetTensorImpl() != s.param.unsafeGetTensorImpl() || p.sizes() != s.sizes || p.strides() != s.strides)
      return false;
    const auto it = state_.find(state_key(p));
    if (it == state_.end()) return false;
    auto& st = static_cast<AdamParamState&>(*it->second);
    if (!same_view(st.exp_avg(), s.exp_avg) || !same_view(st.exp_avg_sq(), s.exp_avg_sq)) return false;
    slots_[i].state = &st;
  }
  return true;
}

void FlatAdam::build() {
  const auto& params = param_groups_[0].params();
  int64_t total = 0;
  for (const auto& p : params) total += p.numel();
  const auto options = params[0].options();
  grads_ = torch::zeros({total}, options);
  exp_avg_ = torch::zeros({total}, options);
  exp_avg_sq_ = torch::zeros({total}, options);
  denom_ = torch::empty({total}, options);
  slots_.clear();
  int64_t offset = 0;
  for (const auto& p : params) {
    Slot s;
    s.param = p;
    s.sizes = p.sizes().vec();
    s.strides = p.strides().vec();
    // Tensors that share the flat buffer's storage at the parameter's place and layout (set_, not
    // a view op: autograd must not treat them as views, or zero_grad's detach_ refuses them).
    const auto view = [&](const torch::Tensor& flat) {
      return torch::empty({0}, flat.options()).set_(flat.storage(), offset, p.sizes(), p.strides());
    };
    s.grad_view = view(grads_);
    s.exp_avg = view(exp_avg_);
    s.exp_avg_sq = view(exp_avg_sq_);
    s.denom = view(denom_);
    auto& slot = state_[state_key(p)];
    if (!slot) slot = std::make_unique<AdamParamState>();
    auto& st = static_cast<AdamParamState&>(*slot);
    if (st.exp_avg().defined()) s.exp_avg.copy_(st.exp_avg());
    if (st.exp_avg_sq().defined()) s.exp_avg_sq.copy_(st.exp_avg_sq());
    st.exp_avg(s.exp_avg);
    st.exp_avg_sq(s.exp_avg_sq);
    s.state = &st;
    offset += p.numel();
    slots_.push_back(std::move(s));
  }
}

torch::Tensor FlatAdam::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  last_flat_ = false;
  torch::Tensor loss;
  if (closure) {  // first, as Adam does: it makes the gradients
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  if (!covers()) {
    torch::optim::Adam::step();
    return loss;
  }
  if (!layout_current()) build();
  // The flat step advances every parameter together: parameters at different step counts (Adam's
  // own steps skipped some) keep taking Adam's steps.
  const int64_t step = slots_[0].state->step() + 1;
  for (const auto& s : slots_)
    if (s.state->step() + 1 != step) {
      torch::optim::Adam::step();
      return loss;
    }
  // The gradients: autograd and the hand-written paths accumulate into the flat views once they
  // are the parameters' gradients; a gradient made elsewhere is copied in and replaced by its view.
  for (auto& s : slots_) {
    auto& g = s.param.mutable_grad();
    if (same_view(g, s.grad_view)) continue;
    s.grad_view.copy_(g);
    g = s.grad_view;
  }
  const auto& o = static_cast<const AdamOptions&>(param_groups_[0].options());
  const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
  for (auto& s : slots_) s.state->step(step);
  const double bias_correction1 = 1 - std::pow(beta1, static_cast<double>(step));
  const double bias_correction2 = 1 - std::pow(beta2, static_cast<double>(step));
  // Adam's update (torch::optim::Adam::step), element for element, over every parameter at once.
  exp_avg_.mul_(beta1).add_(grads_, 1 - beta1);
  exp_avg_sq_.mul_(beta2).addcmul_(grads_, grads_, 1 - beta2);
  torch::sqrt_out(denom_, exp_avg_sq_);
  denom_.div_(std::sqrt(bias_correction2)).add_(o.eps());
  const double step_size = o.lr() / bias_correction1;
  for (auto& s : slots_) s.param.addcdiv_(s.exp_avg, s.denom, -step_size);
  last_flat_ = true;
  return loss;
}

}  // namespace prunegym
