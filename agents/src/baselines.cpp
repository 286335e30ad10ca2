#include <prunegym/agents/baselines.h>
#include <prunegym/agents/factory.h>
#include <prunegym/core/errors.h>
#include <prunegym/core/json_reader.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <sstream>

namespace prunegym {

RandomAgent::RandomAgent(const Space& action_space, uint64_t seed) : action_space_(action_space), rng_(seed) {}

Action RandomAgent::act(const Observation&, bool) { return action_space_.sample(rng_); }

void RandomAgent::save(const std::string& path) const {
  std::ostringstream rng;
  rng << rng_;
  write_checkpoint_json(path, {{"agent", "random"}, {"rng", rng.str()}});
}

void RandomAgent::load(const std::string& path) {
  auto j = read_checkpoint_json(path, "random");
  std::istringstream rng(j.value("rng", std::string()));
  rng >> rng_;
}

UniformAgent::UniformAgent(const Space& action_space, UniformOptions options)
    : action_space_(action_space), options_(options) {
  if (action_space_.kind() == Space::Kind::discrete) {
    const auto& v = action_space_.values();
    for (size_t i = 1; i < v.size(); ++i)
      if (!(v[i] > v[i - 1])) throw ConfigError("the uniform baseline needs action values in increasing order");
    lo_ = 0;
    hi_ = static_cast<double>(action_space_.n() - 1);
  } else {
    lo_ = action_space_.low()[0];
    hi_ = action_space_.high()[0];
  }
  trial_ = hi_;
}

Action UniformAgent::action_for(double position) const {
  if (action_space_.kind() == Space::Kind::discrete) return Action(static_cast<int64_t>(std::llround(position)));
  return Action::continuous({position});
}

double UniformAgent::chosen_value() const {
  return action_space_.kind() == Space::Kind::discrete ? action_space_.values()[static_cast<size_t>(std::llround(hi_))]
                                                       : hi_;
}

void UniformAgent::begin_episode(int64_t, int64_t) {
  if (converged()) {
    trial_ = hi_;
  } else if (action_space_.kind() == Space::Kind::discrete) {
    trial_ = std::floor((lo_ + hi_) / 2.0);
  } else {
    trial_ = 0.5 * (lo_ + hi_);
  }
  last_sparsity_ = 0.0;
}

Action UniformAgent::act(const Observation&, bool explore) { return action_for(explore ? trial_ : hi_); }

void UniformAgent::observe(const Transition& t) { last_sparsity_ = t.info.sparsity; }

void UniformAgent::end_episode() {
  if (converged()) return;
  const bool feasible = last_sparsity_ >= options_.target_sparsity;
  if (action_space_.kind() == Space::Kind::discrete) {
    if (feasible) {
      hi_ = trial_;
      hi_feasible_ = true;
    } else {
      lo_ = std::min(trial_ + 1, hi_);
    }
  } else {
    (feasible ? hi_ : lo_) = trial_;
    hi_feasible_ = hi_feasible_ || feasible;
    if (hi_ - lo_ < 1e-3 * (action_space_.high()[0] - action_space_.low()[0])) lo_ = hi_;
  }
}

void UniformAgent::save(const std::string& path) const {
  write_checkpoint_json(path, {{"agent", "uniform"},
                               {"lo", lo_},
                               {"hi", hi_},
                               {"hi_feasible", hi_feasible_},
                               {"target_sparsity", options_.target_sparsity}});
}

void UniformAgent::load(const std::string& path) {
  auto j = read_checkpoint_json(path, "uniform");
  lo_ = j.at("lo").get<double>();
  hi_ = j.at("hi").get<double>();
  hi_feasible_ = j.value("hi_feasible", false);
}

namespace {

std::unique_ptr<Agent> make_random(const AgentContext& c) {
  ObjectReader(c.options, c.path).finish();
  return std::make_unique<RandomAgent>(c.action_space, c.seed);
}

std::unique_ptr<Agent> make_uniform(const AgentContext& c) {
  UniformOptions o;
  o.target_sparsity = c.target_sparsity;
  ObjectReader r(c.options, c.path);
  r.get("target_sparsity", o.target_sparsity);
  r.finish();
  return std::make_unique<UniformAgent>(c.action_space, o);
}

}  // namespace

PRUNEGYM_REGISTER(AgentRegistry, "random", make_random, "uniformly random actions");
// The bisection over a 23-value grid settles within 5-6 episodes: 8 is its episode budget at most.
PRUNEGYM_REGISTER(AgentRegistry, "uniform", make_uniform,
                  "one alpha for every layer, bisected to reach the target sparsity (PuRL's baseline)", {},
                  {{"max_episodes", 8}});

}  // namespace prunegym
