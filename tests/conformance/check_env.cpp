#include "check_env.h"

#include <prunegym/core/errors.h>

#include <cmath>
#include <functional>
#include <random>
#include <sstream>

namespace prunegym::conformance {

namespace {

struct Trajectory {
  ResetResult start;
  std::vector<Action> actions;
  std::vector<StepResult> steps;
  bool complete = false;  ///< ran to terminated or truncated
};

class Checker {
 public:
  Checker(Env& env, const CheckOptions& o, CheckReport& r) : env_(env), o_(o), r_(r) {}

  void fail(const std::string& what) { r_.failures.push_back(what); }

  /// Runs `call`, expecting a prunegym::Error with `code`; reports anything else.
  void expect_error(const std::string& what, const std::string& code, const std::function<void()>& call) {
    try {
      call();
      fail(what + ": no error was raised (expected code '" + code + "')");
    } catch (const Error& e) {
      if (e.code() != code) fail(what + ": raised code '" + e.code() + "' (expected '" + code + "'): " + e.what());
    } catch (const std::exception& e) {
      fail(what + ": raised a non-prunegym exception: " + e.what());
    }
  }

  /// Actions outside the action space: an index past the end and a negative one, or a box value
  /// above its bound and one of the wrong length.
  std::vector<Action> invalid_actions() const {
    const Space& a = env_.action_space();
    if (a.kind() == Space::Kind::discrete) return {Action(a.n()), Action(-1)};
    std::vector<double> above = a.high();
    for (double& v : above) v += 1.0 + std::abs(v);
    std::vector<double> wrong_size(a.high().size() + 1, a.low().empty() ? 0.0 : a.low()[0]);
    return {Action::continuous(above), Action::continuous(wrong_size)};
  }

  void check_observation(const Observation& obs, const std::string& where) {
    if (!env_.observation_space().contains(obs)) {
      std::ostringstream os;
      os << where << ": the observation (" << obs.size() << " values";
      if (!obs.empty()) os << ", first " << obs[0];
      os << ") is outside the observation space " << env_.observation_space().to_json().dump();
      fail(os.str());
    }
  }

  void check_info(const StepInfo& info, int64_t step, const std::string& where) {
    if (info.step != step)
      fail(where + ": info.step is " + std::to_string(info.step) + ", expected " + std::to_string(step));
    if (!o_.pruning_info) return;
    if (!(info.total > 0)) fail(where + ": info.total is not positive");
    if (info.remaining < 0 || info.remaining > info.total) fail(where + ": info.remaining is outside [0, total]");
    if (!(info.sparsity >= 0 && info.sparsity <= 1)) fail(where + ": info.sparsity is outside [0, 1]");
    if (!(info.accuracy >= 0 && info.accuracy <= 1)) fail(where + ": info.accuracy is outside [0, 1]");
    if (info.total > 0) {
      const double implied = 1.0 - static_cast<double>(info.remaining) / static_cast<double>(info.total);
      if (std::abs(implied - info.sparsity) > 1e-6) fail(where + ": info.sparsity disagrees with remaining/total");
    }
    if (info.layer_sparsities.empty()) fail(where + ": info.layer_sparsities is empty");
    for (double s : info.layer_sparsities)
      if (!(s >= 0 && s <= 1)) fail(where + ": a layer sparsity is outside [0, 1]");
    if (info.macs < 0 || info.macs > info.dense_macs) fail(where + ": info.macs is outside [0, dense_macs]");
    if (info.dense_macs > 0 && info.remaining == info.total && info.macs != info.dense_macs)
      fail(where + ": nothing is pruned but info.macs differs from dense_macs");
    if (step > 0 && info.clipped != (info.requested != info.value))
      fail(where + ": info.clipped disagrees with requested vs applied value");
    if (info.clipped && !(info.value > info.requested)) fail(where + ": a clipped value was lowered, not raised");
    if (!(info.resource_ratio >= 0 && info.resource_ratio <= 1))
      fail(where + ": info.resource_ratio is outside [0, 1]");
  }

  void check_step(const StepResult& s, int64_t step, const std::string& where) {
    check_observation(s.observation, where);
    if (s.terminated && s.truncated) fail(where + ": terminated and truncated are both true");
    if (!std::isfinite(s.reward)) fail(where + ": the reward is not finite");
    check_info(s.info, step, where);
  }

  /// A seeded episode with sampled actions (`given` replays a recorded list instead); with
  /// `refuse`, invalid actions are offered before every step and must change nothing.
  Trajectory run(const std::string& label, bool refuse, const std::vector<Action>* given = nullptr) {
    Trajectory t;
    ResetOptions ro;
    ro.seed = o_.seed;
    t.start = env_.reset(ro);
    ++r_.episodes;
    check_observation(t.start.observation, label + " reset");
    check_info(t.start.info, 0, label + " reset");
    std::mt19937_64 gen(o_.seed);
    for (int64_t k = 0; k < o_.max_steps; ++k) {
      const std::string where = label + " step " + std::to_string(k + 1);
      if (refuse)
        for (const Action& bad : invalid_actions())
          expect_error(where + ", action " + bad.describe() + " outside the space", "bad_argument",
                       [&] { env_.step(bad); });
      if (given && static_cast<size_t>(k) >= given->size()) break;
      const Action a = given ? (*given)[static_cast<size_t>(k)] : env_.action_space().sample(gen);
      if (!env_.action_space().contains(a)) fail(where + ": action_space().sample() gave an action outside the space");
      t.actions.push_back(a);
      t.steps.push_back(env_.step(a));
      ++r_.steps;
      check_step(t.steps.back(), k + 1, where);
      if (t.steps.back().terminated || t.steps.back().truncated) {
        t.complete = true;
        return t;
      }
    }
    if (!given) fail(label + ": the episode did not end within " + std::to_string(o_.max_steps) + " steps");
    return t;
  }

  bool same_step(const StepResult& a, const StepResult& b) const {
    return a.observation == b.observation && a.reward == b.reward && a.terminated == b.terminated &&
           a.truncated == b.truncated && a.info.sparsity == b.info.sparsity && a.info.accuracy == b.info.accuracy &&
           a.info.remaining == b.info.remaining && a.info.layer_sparsities == b.info.layer_sparsities &&
           a.info.value == b.info.value;
  }

  void compare(const Trajectory& a, const Trajectory& b, size_t from, const std::string& what) {
    if (a.steps.size() - from != b.steps.size()) {
      fail(what + ": the episodes have " + std::to_string(a.steps.size() - from) + " and " +
           std::to_string(b.steps.size()) + " steps");
      return;
    }
    for (size_t k = 0; k < b.steps.size(); ++k)
      if (!same_step(a.steps[from + k], b.steps[k])) {
        fail(what + ": the trajectories differ at step " + std::to_string(from + k + 1));
        return;
      }
  }

  /// Saves after the first step (after the reset for one-step episodes), runs on, restores and
  /// runs the same actions again: both continuations and the seeded episode must agree.
  void check_restore(const Trajectory& reference) {
    if (reference.actions.empty()) return;
    const size_t at = reference.actions.size() >= 2 ? 1 : 0;
    ResetOptions ro;
    ro.seed = o_.seed;
    env_.reset(ro);
    for (size_t k = 0; k < at; ++k) env_.step(reference.actions[k]);
    const auto state = env_.save_state();
    if (!state) return;
    const std::vector<Action> rest(reference.actions.begin() + static_cast<std::ptrdiff_t>(at),
                                   reference.actions.end());
    Trajectory ahead;
    for (const Action& a : rest) ahead.steps.push_back(env_.step(a));
    env_.restore_state(*state);
    Trajectory again;
    for (const Action& a : rest) again.steps.push_back(env_.step(a));
    r_.restored = true;
    compare(ahead, again, 0, "save_state()/restore_state()");
    compare(reference, again, at, "after restore_state(), against the seeded episode");
  }

  void run_all() {
    if (o_.fresh)
      expect_error("step() before the first reset()", "episode_over",
                   [&] { env_.step(env_.action_space().sample(gen_)); });
    const Trajectory first = run("episode 1", false);
    if (first.complete) expect_error("step() after the end", "episode_over", [&] { env_.step(first.actions.back()); });
    const Trajectory second = run("episode 2 (same seed)", false, &first.actions);
    compare(first, second, 0, "the same reset seed and actions");
    const Trajectory refused = run("episode 3 (refused actions in between)", true, &first.actions);
    compare(first, refused, 0, "refused actions changed the episode");
    check_restore(first);
  }

 private:
  Env& env_;
  const CheckOptions& o_;
  CheckReport& r_;
  std::mt19937_64 gen_{7};
};

}  // namespace

std::string CheckReport::text() const {
  std::string out = std::to_string(episodes) + " episodes, " + std::to_string(steps) + " steps" +
                    (restored ? ", save/restore checked" : ", no save_state()");
  for (const auto& f : failures) out += "\n  - " + f;
  return out;
}

CheckReport check_env(Env& env, const CheckOptions& options) {
  CheckReport report;
  Checker checker(env, options, report);
  try {
    checker.run_all();
  } catch (const std::exception& e) {
    report.failures.push_back(std::string("unexpected exception: ") + e.what());
  }
  return report;
}

}  // namespace prunegym::conformance
