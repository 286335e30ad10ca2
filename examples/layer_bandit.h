#pragma once
// A small agent of your own: every layer is a separate multi-armed bandit whose arms are the alpha
// grid, picked by UCB1. Used in-process by custom_agent.cpp and registered by agent_plugin.cpp.
#include <prunegym/agents/agent.h>

#include <cmath>
#include <vector>

class LayerBanditAgent : public prunegym::Agent {
 public:
  /// `layers`: steps of an episode (the compact observation's first entry indexes them).
  LayerBanditAgent(const prunegym::Space& actions, int64_t layers, double exploration = 2.0)
      : n_(actions.n()),
        c_(exploration),
        sums_(static_cast<size_t>(layers), std::vector<double>(static_cast<size_t>(n_), 0.0)),
        counts_(sums_) {}

  std::string name() const override { return "layer_bandit"; }

  prunegym::Action act(const prunegym::Observation& obs, bool explore) override {
    const size_t layer = std::min(static_cast<size_t>(obs[0]), sums_.size() - 1);  // (layer, accuracy, sparsity)
    double total = 1.0;
    for (double c : counts_[layer]) total += c;
    int64_t best = 0;
    double best_score = -1e300;
    for (int64_t a = 0; a < n_; ++a) {
      const double c = counts_[layer][static_cast<size_t>(a)];
      const double mean = c > 0 ? sums_[layer][static_cast<size_t>(a)] / c : 0.0;
      const double bonus = explore ? (c > 0 ? std::sqrt(c_ * std::log(total) / c) : 1e9) : 0.0;
      if (mean + bonus > best_score) {
        best_score = mean + bonus;
        best = a;
      }
    }
    return prunegym::Action(best);
  }

  void observe(const prunegym::Transition& t) override {
    const size_t layer = std::min(static_cast<size_t>(t.observation[0]), sums_.size() - 1);
    sums_[layer][static_cast<size_t>(t.action.index)] += t.reward;  // dense rewards: credit each layer's own step
    counts_[layer][static_cast<size_t>(t.action.index)] += 1.0;
  }

  // Checkpoints hold the whole table, so `prunegym train --resume` continues exactly.
  void save(const std::string& path) const override {
    prunegym::write_checkpoint_json(path, {{"agent", name()}, {"sums", sums_}, {"counts", counts_}});
  }
  void load(const std::string& path) override {
    const auto j = prunegym::read_checkpoint_json(path, name());
    sums_ = j.at("sums").get<std::vector<std::vector<double>>>();
    counts_ = j.at("counts").get<std::vector<std::vector<double>>>();
  }

 private:
  int64_t n_;
  double c_;
  std::vector<std::vector<double>> sums_, counts_;
};
