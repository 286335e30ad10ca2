// FlatAdam (networks/flat_adam.h): the same weights and state as LibTorch's Adam, bit for bit,
// on a residual network with batch norm and channels-last weights and on the hand-trained MLP;
// its state saves, loads and slices like Adam's; what it does not cover falls back to Adam.

#include <prunegym/networks/flat_adam.h>
#include <prunegym/networks/model.h>
#include <prunegym/networks/train.h>

#include <catch2/catch.hpp>

#include <sstream>

using namespace prunegym;

namespace {

NetworkPtr network(const std::string& name, double width) {
  NetworkOptions o;
  o.name = name;
  if (width != 1.0) o.options["width"] = width;  // the residual networks' option
  if (name == "custom") o.options["layers"] = nlohmann::json::array({"flatten", "linear:32", "relu", "linear"});
  return build_network(o, {1, 28, 28, nullptr}, 10);
}

/// The largest difference between the parameters of two networks of one architecture.
double max_difference(NetworkImpl& a, NetworkImpl& b) {
  double worst = 0.0;
  const auto pb = b.named_parameters();
  for (const auto& p : a.named_parameters())
    worst = std::max(worst, (p.value() - pb[p.key()]).abs().max().item<double>());
  return worst;
}

/// The largest difference between the two optimizers' moments, parameter by parameter.
double state_difference(torch::optim::Optimizer& a, torch::optim::Optimizer& b) {
  double worst = 0.0;
  const auto& pa = a.param_groups().at(0).params();
  const auto& pb = b.param_groups().at(0).params();
  for (size_t i = 0; i < pa.size(); ++i) {
    const auto& sa =
        static_cast<torch::optim::AdamParamState&>(*a.state().at(c10::guts::to_string(pa[i].unsafeGetTensorImpl())));
    const auto& sb =
        static_cast<torch::optim::AdamParamState&>(*b.state().at(c10::guts::to_string(pb[i].unsafeGetTensorImpl())));
    REQUIRE(sa.step() == sb.step());
    worst = std::max(worst, (sa.exp_avg() - sb.exp_avg()).abs().max().item<double>());
    worst = std::max(worst, (sa.exp_avg_sq() - sb.exp_avg_sq()).abs().max().item<double>());
  }
  return worst;
}

void copy_weights(NetworkImpl& from, NetworkImpl& to) {
  torch::NoGradGuard no_grad;
  const auto src = from.named_parameters();
  for (auto& p : to.named_parameters()) p.value().copy_(src[p.key()]);
  const auto bsrc = from.named_buffers();
  for (auto& b : to.named_buffers()) b.value().copy_(bsrc[b.key()]);
}

/// Masks the smaller half of the first layer's weights.
void prune_first(NetworkImpl& net) {
  torch::NoGradGuard no_grad;
  auto& l = net.prunable_layers()[0];
  l.mask.copy_(l.weight.abs().gt(l.weight.abs().median()).to(l.mask.dtype()));
  net.apply_masks();
}

}  // namespace

TEST_CASE("FlatAdam takes LibTorch Adam's steps", "[networks][optimizer]") {
  torch::manual_seed(2);
  const Tensors data{torch::randn({48, 1, 28, 28}), torch::randint(0, 10, {48}, torch::kLong)};
  const auto o = TrainOptions().set_optimizer("adam").set_lr(1e-3).set_batch_size(8).set_samples(32);
  for (const auto& [name, width] :
       std::vector<std::pair<std::string, double>>{{"resnet20", 0.5}, {"lenet5", 1.0}, {"custom", 1.0}}) {
    INFO(name);
    auto a = network(name, width);
    auto b = network(name, width);
    copy_weights(*a, *b);
    prune_first(*a);  // masked gradients and weights go through the flat buffers too
    prune_first(*b);
    FlatAdam flat(a->parameters(), torch::optim::AdamOptions(o.lr));
    torch::optim::Adam plain(b->parameters(), torch::optim::AdamOptions(o.lr));
    std::mt19937_64 ra(4), rb(4);
    for (int call = 0; call < 3; ++call) {
      torch::manual_seed(9 + call);
      const auto la = train(*a, flat, data, o, ra);
      torch::manual_seed(9 + call);
      const auto lb = train(*b, plain, data, o, rb);
      CHECK(flat.last_step_flat());
      CHECK(la.loss == lb.loss);
      // The same operations on the same elements in the same order: equal to the bit.
      CHECK(max_difference(*a, *b) == 0.0);
      CHECK(state_difference(flat, plain) == 0.0);
    }
    const auto& la = a->prunable_layers()[0];
    CHECK(la.weight.mul(1 - la.mask).abs().max().item<double>() == 0.0);  // pruned weights stayed zero
  }
}

TEST_CASE("FlatAdam's state saves, loads and continues like Adam's", "[networks][optimizer]") {
  torch::manual_seed(3);
  const Tensors data{torch::randn({32, 1, 28, 28}), torch::randint(0, 10, {32}, torch::kLong)};
  const auto o = TrainOptions().set_optimizer("adam").set_lr(1e-3).set_batch_size(8);
  auto a = network("lenet5", 1.0);
  auto b = network("lenet5", 1.0);
  copy_weights(*a, *b);
  auto first = make_optimizer(*a, o);
  REQUIRE(dynamic_cast<FlatAdam*>(first.get()) != nullptr);
  std::mt19937_64 ra(1);
  train(*a, *first, data, o, ra);
  copy_weights(*a, *b);
  torch::serialize::OutputArchive out;
  first->save(out);
  std::ostringstream bytes;
  out.save_to(bytes);
  auto second = make_optimizer(*b, o);
  std::istringstream in(bytes.str());
  torch::serialize::InputArchive archive;
  archive.load_from(in);
  second->load(archive);
  std::mt19937_64 rb = ra;
  train(*a, *first, data, o, ra);
  train(*b, *second, data, o, rb);
  CHECK(dynamic_cast<FlatAdam&>(*second).last_step_flat());
  CHECK(max_difference(*a, *b) == 0.0);
  CHECK(state_difference(*first, *second) == 0.0);
}

TEST_CASE("FlatAdam falls back to Adam for what it does not cover", "[networks][optimizer]") {
  torch::manual_seed(4);
  const Tensors data{torch::randn({16, 1, 28, 28}), torch::randint(0, 10, {16}, torch::kLong)};
  const auto o = TrainOptions().set_optimizer("adam").set_lr(1e-3).set_batch_size(8);
  auto a = network("lenet5", 1.0);
  auto b = network("lenet5", 1.0);
  copy_weights(*a, *b);
  FlatAdam flat(a->parameters(), torch::optim::AdamOptions(o.lr).weight_decay(1e-3));
  torch::optim::Adam plain(b->parameters(), torch::optim::AdamOptions(o.lr).weight_decay(1e-3));
  std::mt19937_64 ra(2), rb(2);
  train(*a, flat, data, o, ra);
  train(*b, plain, data, o, rb);
  CHECK_FALSE(flat.last_step_flat());
  CHECK(max_difference(*a, *b) == 0.0);
}
