// Retraining on the compact network (networks/groups.h train_compact): the same batches, updates,
// batch norm statistics and optimizer state as masked training, in double precision to within
// rounding; and the env's env.retrain.compact switch.

#include "helpers.h"

#include <prunegym/env/criteria.h>
#include <prunegym/env/prune_env.h>
#include <prunegym/networks/groups.h>

#include <catch2/catch.hpp>

#include <sstream>

using namespace prunegym;
using json = nlohmann::json;

namespace {

NetworkPtr network(const std::string& name, double width) {
  NetworkOptions o;
  o.name = name;
  if (width != 1.0) o.options["width"] = width;  // the residual networks' option
  return build_network(o, {1, 28, 28, nullptr}, 10);
}

void prune_channels(NetworkImpl& net, double fraction) {
  const auto crit = make_criterion(
      "channel_norm", CriterionRegistry::instance().parse("channel_norm", {{"action", "fraction"}}, "env.criterion"));
  std::vector<size_t> producers;
  for (const auto& g : checked_channel_groups(net)) producers.push_back(g.producer);
  crit->apply(net, producers, fraction);
}

/// The largest difference between any parameter or buffer of two networks of one architecture.
double max_difference(NetworkImpl& a, NetworkImpl& b) {
  double worst = 0.0;
  const auto pb = b.named_parameters();
  for (const auto& p : a.named_parameters())
    worst = std::max(worst, (p.value() - pb[p.key()]).abs().max().item<double>());
  const auto bb = b.named_buffers();
  for (const auto& x : a.named_buffers())
    worst = std::max(worst, (x.value().to(torch::kDouble) - bb[x.key()].to(torch::kDouble)).abs().max().item<double>());
  return worst;
}

std::unique_ptr<torch::optim::Optimizer> copy_optimizer(torch::optim::Optimizer& from, NetworkImpl& net,
                                                        const TrainOptions& o) {
  torch::serialize::OutputArchive out;
  from.save(out);
  std::ostringstream bytes;
  out.save_to(bytes);
  auto to = make_optimizer(net, o);
  std::istringstream in(bytes.str());
  torch::serialize::InputArchive archive;
  archive.load_from(in);
  to->load(archive);
  return to;
}

}  // namespace

TEST_CASE("compact retraining takes the masked network's steps", "[compact][resnet]") {
  const auto opts = {TrainOptions().set_optimizer("sgd").set_lr(0.05).set_batch_size(8).set_samples(24),
                     TrainOptions().set_optimizer("adam").set_lr(1e-3).set_batch_size(8).set_samples(24),
                     TrainOptions().set_optimizer("adagrad").set_lr(1e-2).set_batch_size(8).set_samples(24)};
  torch::manual_seed(3);
  const Tensors data{torch::randn({40, 1, 28, 28}, torch::kDouble), torch::randint(0, 10, {40}, torch::kLong)};
  for (const auto& [name, width] : std::vector<std::pair<std::string, double>>{
           {"lenet5", 1.0}, {"conv2", 1.0}, {"resnet20", 0.5}, {"mobilenet_v2", 0.25}}) {
    for (auto o : opts) {
      if (o.optimizer == "sgd") {
        o.momentum = 0.9;
        o.weight_decay = 5e-4;
      }
      // Random MobileNet-V2 on random data is chaotic at these rates: masked training alone turns a
      // 1e-13 change of its weights into 5e-5 within three steps, so summation-order rounding
      // between the two forms cannot be compared there. One step per call keeps it below 1e-9.
      if (name == "mobilenet_v2") o.samples = o.batch_size;
      // Its projection batch norms feed only a convolution and another batch norm, which removes any
      // per-channel shift: their betas' gradient is zero but for rounding, and Adagrad's first step
      // (lr * g / (|g| + 1e-10)) turns that rounding into 1e-7 moves. The other three networks
      // cover Adagrad's state slicing, which does not depend on the network.
      if (name == "mobilenet_v2" && o.optimizer == "adagrad") continue;
      INFO(name << " " << o.optimizer);
      auto masked = network(name, width);
      prune_channels(*masked, 0.5);
      masked->to(torch::kDouble);  // rounding stays far below what is compared
      auto opt_masked = make_optimizer(*masked, o);
      std::mt19937_64 rng_masked(11);
      train(*masked, *opt_masked, data, o, rng_masked);  // optimizer state before the compact steps
      auto compact = network(name, width);
      compact->to(torch::kDouble);
      copy_state(*masked, *compact);
      auto opt_compact = copy_optimizer(*opt_masked, *compact, o);
      std::mt19937_64 rng_compact = rng_masked;

      torch::manual_seed(5);  // dropout draws
      const auto a = train(*masked, *opt_masked, data, o, rng_masked);
      torch::manual_seed(5);
      const auto b = train_compact(*compact, *opt_compact, data, o, rng_compact);
      REQUIRE(b.has_value());
      CHECK(b->steps == a.steps);
      CHECK(b->loss == Approx(a.loss).epsilon(1e-9));
      CHECK(max_difference(*masked, *compact) < 1e-9);
      CHECK(rng_masked() == rng_compact());
      // The optimizer state went back too: the next masked step is the same on both.
      torch::manual_seed(6);
      train(*masked, *opt_masked, data, o, rng_masked);
      torch::manual_seed(6);
      train(*compact, *opt_compact, data, o, rng_compact);
      CHECK(max_difference(*masked, *compact) < 1e-9);
    }
  }
}

TEST_CASE("compact retraining declines what it cannot do", "[compact]") {
  const Tensors data{torch::randn({16, 1, 28, 28}), torch::randint(0, 10, {16}, torch::kLong)};
  const auto o = TrainOptions().set_batch_size(8);
  auto dense = network("lenet5", 1.0);
  auto opt = make_optimizer(*dense, o);
  std::mt19937_64 rng(1);
  const auto before = dense->named_parameters()["conv1.weight"].clone();
  CHECK_FALSE(train_compact(*dense, *opt, data, o, rng).has_value());  // no channel removed
  CHECK(torch::equal(before, dense->named_parameters()["conv1.weight"]));
  CHECK(rng() == std::mt19937_64(1)());  // and no batch drawn
  auto net = network("lenet5", 1.0);
  prune_channels(*net, 0.5);
  auto rms = torch::optim::RMSprop(net->parameters(), torch::optim::RMSpropOptions(1e-3));
  CHECK_FALSE(train_compact(*net, rms, data, o, rng).has_value());  // an optimizer it cannot slice
}

TEST_CASE("env.retrain.compact retrains structured episodes on the compact network", "[compact][env]") {
  const json structured = {{"env", {{"criterion", {{"name", "channel_norm"}, {"action", "fraction"}}}}}};
  const auto run = [&](const std::string& mode) {
    auto patch = structured;
    patch["env"]["retrain"] = {{"compact", mode}};
    PruneEnv env(test::tiny_config(patch));
    env.reset();
    std::vector<double> accuracy;
    for (int i = 0; i < 2; ++i) accuracy.push_back(env.step(Action(5)).info.accuracy);  // half of each layer
    return accuracy;
  };
  const auto masked = run("never"), compact = run("always");
  REQUIRE(masked.size() == compact.size());
  for (size_t i = 0; i < masked.size(); ++i) CHECK(compact[i] == Approx(masked[i]).margin(0.01));
  // The default is not recorded (run keys stay), a set mode is, a bad one names the key.
  CHECK(test::tiny_config(structured).to_json()["env"]["retrain"].count("compact") == 0);
  auto never = structured;
  never["env"]["retrain"] = {{"compact", "never"}};
  CHECK(test::tiny_config(never).to_json()["env"]["retrain"]["compact"] == "never");
  auto bad = structured;
  bad["env"]["retrain"] = {{"compact", "sometimes"}};
  CHECK_THROWS_WITH(test::tiny_config(bad), Catch::Contains("env.retrain.compact"));
}
