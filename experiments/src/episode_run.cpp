#include <prunegym/core/errors.h>
#include <prunegym/core/system.h>
#include <prunegym/core/timing.h>
#include <prunegym/env/prune_env.h>
#include <prunegym/experiments/episode_run.h>

#include <algorithm>
#include <cmath>
#include <sstream>

namespace prunegym {

namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// Index of the grid value nearest `alpha`; UsageError when none is within half a grid step.
int64_t nearest_action(const Space& space, double alpha) {
  const auto& values = space.values();
  size_t best = 0;
  for (size_t i = 1; i < values.size(); ++i)
    if (std::abs(values[i] - alpha) < std::abs(values[best] - alpha)) best = i;
  const double tolerance = values.size() > 1 ? 0.5 * std::abs(values[1] - values[0]) + 1e-9 : 1e-9;
  if (std::abs(values[best] - alpha) > tolerance) {
    std::ostringstream os;
    os << "--alpha " << alpha << " is not near any action value (the grid runs " << values.front() << ".."
       << values.back() << ")";
    throw UsageError(os.str());
  }
  return static_cast<int64_t>(best);
}

/// The action list from the options. Schedules replayed by values take one action per layer;
/// others (rounds) up to the episode length, and may end earlier.
std::vector<Action> episode_actions(const EpisodeRunOptions& o, const PruneEnv& env) {
  const auto& space = env.action_space();
  const auto layers = env.episode_layers();
  const bool per_layer = env.schedule().replays_by_values();
  const size_t steps = per_layer ? layers.size() : static_cast<size_t>(env.episode_length());
  if (o.actions.empty() == !o.alpha) throw UsageError("give exactly one of --actions or --alpha");
  if (o.alpha) {
    if (space.kind() == Space::Kind::box) return std::vector<Action>(steps, Action::continuous({*o.alpha}));
    return std::vector<Action>(steps, Action(nearest_action(space, *o.alpha)));
  }
  if (space.kind() == Space::Kind::box)
    throw UsageError("--actions takes indices but the action space is a Box; use --alpha");
  std::vector<Action> actions(o.actions.begin(), o.actions.end());
  if (!per_layer && actions.size() <= steps) return actions;
  if (actions.size() != steps) {
    std::string names;
    for (const auto& n : layers) names += (names.empty() ? "" : ", ") + n;
    throw UsageError("--actions has " + std::to_string(actions.size()) + " values but the episode has " +
                     std::to_string(steps) + " steps (layers " + names + ")");
  }
  return actions;
}

nlohmann::json summarize(PruneEnv& env, const EpisodeRunResult& r, double reset_ms,
                         const std::vector<double>& step_ms) {
  std::vector<double> prune, retrain, eval, values;
  double total_reward = 0.0;
  for (const auto& s : r.steps) {
    prune.push_back(s.info.prune_ms);
    retrain.push_back(s.info.retrain_ms);
    eval.push_back(s.info.eval_ms);
    values.push_back(s.info.value);
    total_reward += s.reward;
  }
  const StepResult& last = r.steps.back();
  return {{"steps", last.info.step},
          {"total_reward", total_reward},
          {"terminated", last.terminated},
          {"truncated", last.truncated},
          {"early_stop", last.info.early_stop},
          {"alphas", values},
          {"accuracy", last.info.accuracy},
          {"test_accuracy", env.test_accuracy()},
          {"dense_accuracy", env.dense_accuracy()},
          {"dense_test_accuracy", env.dense().test_accuracy},
          {"sparsity", last.info.sparsity},
          {"layer_sparsities", last.info.layer_sparsities},
          {"remaining", last.info.remaining},
          {"total", last.info.total},
          {"median_step_ms", median(step_ms)},
          {"median_prune_ms", median(prune)},
          {"median_retrain_ms", median(retrain)},
          {"median_eval_ms", median(eval)},
          {"reset_ms", reset_ms},
          {"peak_rss_mib", peak_rss_mib()},
          {"threads", torch::get_num_threads()}};
}

}  // namespace

EpisodeRunResult play_episode(const EpisodeRunOptions& o, const std::function<void(const EpisodeRunResult&)>& on_start,
                              const std::function<void(const StepResult&)>& on_step) {
  PruneEnv env(o.config, {o.log, nullptr});
  const auto actions = episode_actions(o, env);
  for (size_t i = 0; i < actions.size(); ++i) {
    const std::string why = env.action_space().explain(actions[i]);
    if (!why.empty()) throw ActionError("--actions position " + std::to_string(i + 1) + ": " + why);
  }
  EpisodeRunResult r;
  r.env = {{"dense_validation_accuracy", env.dense().validation_accuracy},
           {"dense_test_accuracy", env.dense().test_accuracy},
           {"split", o.config.env.evaluation.split}};
  auto t0 = Clock::now();
  r.start = env.reset(ResetOptions{o.seed, nlohmann::json::object()});
  const double reset_ms = ms_since(t0);
  if (on_start) on_start(r);
  std::vector<double> step_ms;
  for (const auto& action : actions) {
    t0 = Clock::now();
    r.steps.push_back(env.step(action));
    step_ms.push_back(ms_since(t0));
    if (on_step) on_step(r.steps.back());
    if (r.steps.back().terminated || r.steps.back().truncated) break;
  }
  r.summary = summarize(env, r, reset_ms, step_ms);
  return r;
}

}  // namespace prunegym
