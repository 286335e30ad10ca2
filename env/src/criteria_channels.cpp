// The structured criterion: whole output channels (convolution filters, linear neurons) go, with
// the input columns of their consumers (networks/groups.h), ranked by the channel's weight norm or
// its batch norm's scale. Config: "criterion": {"name": "channel_norm", "rank": "l1",
// "action": "alpha", "round_to": 1, "min_keep": 1}.

#include <prunegym/core/errors.h>
#include <prunegym/core/registry.h>
#include <prunegym/env/criteria.h>
#include <prunegym/networks/groups.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace prunegym {

namespace {

struct ChannelNormOptions {
  std::string rank = "l1";       ///< l1 | l2 (the filter's weights) | bn_scale (|gamma|, network slimming)
  std::string action = "alpha";  ///< alpha: below alpha x std of the channel scores; fraction: of the channels
  int64_t round_to = 1;          ///< channels kept are a multiple of this (Torch-Pruning's round_to)
  int64_t min_keep = 1;          ///< never fewer channels than this

  void read(ObjectReader& r) {
    r.get("rank", rank);
    r.get("action", action);
    r.get("round_to", round_to);
    r.get("min_keep", min_keep);
    if (rank != "l1" && rank != "l2" && rank != "bn_scale")
      throw ConfigError("config key '" + r.key_path("rank") + "' must be \"l1\", \"l2\" or \"bn_scale\", not \"" +
                        rank + "\"");
    if (action != "alpha" && action != "fraction")
      throw ConfigError("config key '" + r.key_path("action") + "' must be \"alpha\" (PuRL's threshold on the " +
                        "channel scores) or \"fraction\" (of the layer's channels), not \"" + action + "\"");
    if (round_to < 1) throw ConfigError("config key '" + r.key_path("round_to") + "' must be >= 1");
    if (min_keep < 1) throw ConfigError("config key '" + r.key_path("min_keep") + "' must be >= 1");
  }
  nlohmann::json to_json() const {
    return {{"rank", rank}, {"action", action}, {"round_to", round_to}, {"min_keep", min_keep}};
  }
};

class ChannelNormCriterion : public PruningCriterion {
 public:
  explicit ChannelNormCriterion(ChannelNormOptions o) : o_(std::move(o)) {}
  std::string name() const override { return "channel_norm"; }
  bool structured() const override { return true; }
  ActionMeaning meaning() const override {
    return o_.action == "alpha" ? ActionMeaning::alpha : ActionMeaning::sparsity;
  }
  ActionGrid default_grid() const override {
    return o_.action == "alpha" ? ActionGrid{0.0, 2.2, 0.1} : ActionGrid{0.0, 0.9, 0.1};
  }

  void apply(NetworkImpl& net, const std::vector<size_t>& layers, double value) const override {
    const auto groups = checked_channel_groups(net);
    for (size_t layer : layers) {
      const auto g = std::find_if(groups.begin(), groups.end(), [&](const auto& x) { return x.producer == layer; });
      if (g == groups.end()) continue;  // no channel group (residual ties, the classifier): nothing goes
      check_round_to(net, *g);
      remove_channels(net, *g, chosen(net, *g, value));
    }
  }

 private:
  void check_round_to(const NetworkImpl& net, const ChannelGroup& g) const {
    if (o_.round_to > g.channels || o_.min_keep > g.channels)
      throw ConfigError("config keys 'env.criterion.round_to' (" + std::to_string(o_.round_to) + ") and " +
                        "'env.criterion.min_keep' (" + std::to_string(o_.min_keep) + ") must not exceed the " +
                        std::to_string(g.channels) + " channels of " + net.prunable_layers()[g.producer].name);
  }

  /// One score per surviving channel, in `alive` order.
  std::vector<double> scores(const NetworkImpl& net, const ChannelGroup& g, const std::vector<int64_t>& alive) const {
    torch::NoGradGuard no_grad;
    torch::Tensor s;
    if (o_.rank == "bn_scale") {
      if (g.batch_norms.empty())
        throw ConfigError("config key 'env.criterion.rank': \"bn_scale\" ranks by the following batch norm, and " +
                          net.prunable_layers()[g.producer].name + " has none (use \"l1\" or \"l2\")");
      // Built-in networks register "layer1.0.bn1.weight"; TorchScript imports "layer1_0_bn1_weight".
      // A coupled group sums the scales of its producers' batch norms (listed first).
      const auto parameters = net.named_parameters(/*recurse=*/true);
      const size_t own = std::min(g.batch_norms.size(), 1 + g.tied.size());
      for (size_t i = 0; i < own; ++i) {
        const std::string gamma = g.batch_norms[i] + ".weight";
        const auto* found = parameters.find(gamma);
        if (!found) found = parameters.find(script_name(gamma));
        if (!found) throw std::logic_error("no batch-norm scale " + gamma + " in the network");
        s = s.defined() ? s + found->abs() : found->abs();
      }
    } else {
      // A coupled group's channel is the rows of all its producers: one norm over all of them.
      for (size_t producer : group_producers(g)) {
        const auto& w = net.prunable_layers()[producer].weight;
        const auto rows = w.reshape({w.size(0), -1});
        const auto part = o_.rank == "l1" ? rows.abs().sum(1) : rows.pow(2).sum(1);
        s = s.defined() ? s + part : part;
      }
      if (o_.rank == "l2") s = s.sqrt();
    }
    s = s.to(torch::kCPU, torch::kDouble).contiguous();
    std::vector<double> out;
    for (int64_t c : alive) out.push_back(s[c].item<double>());
    return out;
  }

  /// The channels to remove for action `value`, lowest score first, after min_keep and round_to.
  std::vector<int64_t> chosen(const NetworkImpl& net, const ChannelGroup& g, double value) const {
    const auto alive = surviving_channels(net, g);
    if (alive.empty()) return {};
    const auto s = scores(net, g, alive);
    const auto n = static_cast<int64_t>(alive.size());
    int64_t remove = 0;
    if (o_.action == "alpha") {
      const double mean = std::accumulate(s.begin(), s.end(), 0.0) / static_cast<double>(n);
      double var = 0.0;
      for (double x : s) var += (x - mean) * (x - mean);
      const double sd = n > 1 ? std::sqrt(var / static_cast<double>(n - 1)) : 0.0;
      remove = static_cast<int64_t>(std::count_if(s.begin(), s.end(), [&](double x) { return x < value * sd; }));
    } else {
      const int64_t gone = g.channels - n;  // removed by earlier steps
      remove = std::max<int64_t>(0, std::llround(value * static_cast<double>(g.channels)) - gone);
    }
    int64_t keep = std::max(n - remove, std::min(o_.min_keep, n));
    keep = std::min(n, (keep + o_.round_to - 1) / o_.round_to * o_.round_to);
    std::vector<size_t> order(alive.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s[a] < s[b]; });
    std::vector<int64_t> out;
    for (int64_t i = 0; i < n - keep; ++i) out.push_back(alive[order[static_cast<size_t>(i)]]);
    std::sort(out.begin(), out.end());
    return out;
  }

  ChannelNormOptions o_;
};

}  // namespace

PRUNEGYM_REGISTER(CriterionRegistry, "channel_norm",
                  (part<ChannelNormCriterion, ChannelNormOptions, PruningCriterion>()),
                  "structured: whole output channels with their consumers' inputs, by filter norm or batch-norm "
                  "scale (options rank, action, round_to, min_keep)");

}  // namespace prunegym
