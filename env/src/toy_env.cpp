#include <prunegym/core/errors.h>
#include <prunegym/env/toy_env.h>

#include <algorithm>

namespace prunegym {

namespace {

Space toy_observation_space(const ToyEnvOptions& o) {
  if (o.steps < 1 || o.actions < 1 || o.observation_size < 2)
    throw ConfigError("toy env: steps and actions must be >= 1 and observation_size >= 2");
  std::vector<double> low(static_cast<size_t>(o.observation_size), 0.0), high(low.size(), 1.0);
  high[0] = static_cast<double>(o.steps);
  return Space::box(low, high);
}

}  // namespace

ToyEnv::ToyEnv(ToyEnvOptions o)
    : options_(o),
      action_space_(Space::discrete(Space::grid(0.0, static_cast<double>(std::max<int64_t>(o.actions, 1) - 1), 1.0))),
      observation_space_(toy_observation_space(o)) {}

ResetResult ToyEnv::reset(const ResetOptions&) {
  t_ = 0;
  correct_ = 0;
  done_ = false;
  started_ = true;
  StepInfo info;
  return {Observation(static_cast<size_t>(options_.observation_size), 0.0f), info};
}

StepResult ToyEnv::step(const Action& action) {
  if (!started_) throw EpisodeError("ToyEnv: step() called before reset(): call reset() to start an episode");
  if (done_) throw EpisodeError("ToyEnv: step() called after the episode ended; call reset() to start a new one");
  const double value = action_space_.value_of(action);
  const bool right = action.index == best_action(t_);
  correct_ += right ? 1 : 0;
  ++t_;
  StepResult r;
  r.terminated = t_ == options_.steps;
  done_ = r.terminated;
  if (options_.sparse) {
    r.reward = r.terminated ? static_cast<double>(correct_) / static_cast<double>(options_.steps) : 0.0;
  } else {
    r.reward = right ? 1.0 : 0.0;
  }
  r.observation.assign(static_cast<size_t>(options_.observation_size), 0.0f);
  r.observation[0] = static_cast<float>(t_);
  r.observation[1] = right ? 1.0f : 0.0f;
  r.info.step = t_;
  r.info.value = value;
  return r;
}

}  // namespace prunegym
