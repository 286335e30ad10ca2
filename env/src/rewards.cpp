#include <prunegym/core/errors.h>
#include <prunegym/env/rewards.h>

#include <algorithm>
#include <cmath>

namespace prunegym {

namespace {

double ratio(double value, double target) { return target > 0 ? value / target : 0.0; }
double sparsity_penalty(double p, const RewardSetup& s) { return std::max(1.0 - ratio(p, s.target_sparsity), 0.0); }

/// Wraps a stateless formula of (input, setup) as a RewardFn.
class FormulaReward : public RewardFn {
 public:
  using Formula = double (*)(const RewardInput&, const RewardSetup&);
  explicit FormulaReward(Formula f) : f_(f) {}
  double compute(const RewardInput& in) override { return f_(in, setup_); }
  std::unique_ptr<RewardFn> clone() const override { return std::make_unique<FormulaReward>(*this); }

 private:
  Formula f_;
};

void add_formula(RewardRegistry& r, const std::string& name, FormulaReward::Formula f, const std::string& description) {
  r.add(
      name,
      [name, f](const nlohmann::json& params) -> std::unique_ptr<RewardFn> {
        if (!params.empty())
          throw ConfigError("unknown config key 'env.reward." + params.begin().key() + "' (reward '" + name +
                            "' takes only name, beta, target_accuracy, target_accuracy_drop, target_sparsity)");
        return std::make_unique<FormulaReward>(f);
      },
      description);
}

}  // namespace

double purl_reward(double a, double p, const RewardSetup& s) {
  return -s.beta * (std::max(1.0 - ratio(a, s.target_accuracy), 0.0) + sparsity_penalty(p, s));
}

double purl_upside_reward(double a, double p, const RewardSetup& s) {
  return -s.beta * ((1.0 - ratio(a, s.target_accuracy)) + sparsity_penalty(p, s));
}

double purl_cubic_reward(double a, double p, const RewardSetup& s) {
  return -s.beta * ((1.0 - std::pow(ratio(a, s.target_accuracy), 3.0)) + sparsity_penalty(p, s));
}

double lottery_q_reward(double a, int64_t remaining, int64_t total) {
  return total > 0 ? -(1.0 - a) * static_cast<double>(remaining) / static_cast<double>(total) : 0.0;
}

double amc_log_reward(double a, int64_t remaining) {
  return -(1.0 - a) * std::log(static_cast<double>(std::max<int64_t>(remaining, 1)));
}

namespace {

void add_builtin_rewards(RewardRegistry& r) {
  add_formula(
      r, "purl", [](const RewardInput& in, const RewardSetup& s) { return purl_reward(in.accuracy, in.sparsity, s); },
      "PuRL Eq. 3: -beta*(max(1-A/T_A,0) + max(1-P/T_P,0))");
  add_formula(
      r, "purl_upside",
      [](const RewardInput& in, const RewardSetup& s) { return purl_upside_reward(in.accuracy, in.sparsity, s); },
      "PuRL Eq. 4: -beta*((1-A/T_A) + max(1-P/T_P,0)), positive above the accuracy target");
  add_formula(
      r, "purl_cubic",
      [](const RewardInput& in, const RewardSetup& s) { return purl_cubic_reward(in.accuracy, in.sparsity, s); },
      "PuRL Eq. 5: -beta*((1-(A/T_A)^3) + max(1-P/T_P,0))");
  add_formula(
      r, "lottery_q",
      [](const RewardInput& in, const RewardSetup&) { return lottery_q_reward(in.accuracy, in.remaining, in.total); },
      "Q-learning over lottery rounds: -(1-A)*remaining/total");
  add_formula(
      r, "amc_log", [](const RewardInput& in, const RewardSetup&) { return amc_log_reward(in.accuracy, in.remaining); },
      "AMC-style: -(1-A)*log(remaining weights)");
}

/// AMC's rewards: -error for a budgeted search, or -error x log(the resource left). AMC scores
/// the pruned network once, so by default the reward comes at the episode's last step and is 0
/// before; "every_step": true gives it at every evaluated step (PuRL's dense timing).
class AmcReward : public RewardFn {
 public:
  enum class Resource { none, macs, params };
  AmcReward(Resource resource, bool every_step) : resource_(resource), every_step_(every_step) {}

  void reset(const RewardSetup& setup) override {
    if (resource_ == Resource::macs && setup.dense_macs <= 0)
      throw ConfigError(
          "env.reward 'amc_macs' needs MAC counts, and this network cannot tell its output positions "
          "('prunegym info' shows them); use amc_params or amc_error");
    setup_ = setup;
  }
  double compute(const RewardInput& in) override {
    if (!in.last && !every_step_) return 0.0;
    switch (resource_) {
      case Resource::macs:
        return amc_log_reward(in.accuracy, in.macs);
      case Resource::params:
        return amc_log_reward(in.accuracy, in.remaining);
      default:
        return -(1.0 - in.accuracy);
    }
  }
  std::unique_ptr<RewardFn> clone() const override { return std::make_unique<AmcReward>(*this); }

 private:
  Resource resource_;
  bool every_step_;
};

void add_amc(RewardRegistry& r, const std::string& name, AmcReward::Resource resource, const std::string& what) {
  r.add(
      name,
      [name, resource](const nlohmann::json& params) -> std::unique_ptr<RewardFn> {
        bool every_step = false;
        for (auto it = params.begin(); it != params.end(); ++it) {
          if (it.key() != "every_step")
            throw ConfigError("unknown config key 'env.reward." + it.key() + "' (reward '" + name +
                              "' takes every_step besides name, beta, target_accuracy, target_sparsity)");
          if (!it->is_boolean()) throw ConfigError("config key 'env.reward.every_step' must be true or false");
          every_step = it->get<bool>();
        }
        return std::make_unique<AmcReward>(resource, every_step);
      },
      "AMC: " + what + "; at the episode's last step only (every_step: true for every evaluated step)");
}

void add_amc_rewards(RewardRegistry& r) {
  add_amc(r, "amc_error", AmcReward::Resource::none, "-error (1 - A), for a search under env.budget");
  add_amc(r, "amc_macs", AmcReward::Resource::macs, "-error x log(MACs left)");
  add_amc(r, "amc_params", AmcReward::Resource::params, "-error x log(weights left)");
}

}  // namespace

template <>
RewardRegistry& RewardRegistry::instance() {
  static RewardRegistry registry = [] {
    RewardRegistry r("reward", "env.reward.name");
    add_builtin_rewards(r);
    add_amc_rewards(r);
    return r;
  }();
  return registry;
}

}  // namespace prunegym
