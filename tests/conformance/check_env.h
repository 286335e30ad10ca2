#pragma once
// The contract every prunegym::Env keeps, as one reusable check (Gymnasium's check_env, OpenSpiel's
// random simulation test): run it on a new env kind, schedule, criterion or observation and it
// lists every way the env breaks the contract.
//
//   - step() before the first reset() and after the end raise the documented error
//     (prunegym::Error with code "episode_over");
//   - observations lie inside the observation space, at reset and after every step;
//   - the same reset seed and actions give the same trajectory;
//   - an action outside the action space is refused (code "bad_argument") and changes nothing:
//     the trajectory with refused actions in between equals the one without;
//   - terminated and truncated are never both true; rewards are finite; info.step counts steps;
//   - info carries the documented keys with values in range (sparsity and accuracy in [0, 1],
//     remaining <= total, one layer sparsity per prunable layer; an action value is only ever
//     raised, by env.budget's wall, and then info.clipped says so);
//   - save_state()/restore_state() round-trip, where the env supports them.

#include <prunegym/env/env.h>

#include <cstdint>
#include <string>
#include <vector>

namespace prunegym::conformance {

struct CheckOptions {
  uint64_t seed = 3;         ///< reset seed and action-sampling seed
  int64_t max_steps = 64;    ///< an episode longer than this fails the check (a hang guard)
  bool fresh = true;         ///< the env was never reset: check step() before reset() too
  bool pruning_info = true;  ///< info describes masks (remaining, total, layer sparsities)
};

/// What check_env found: one line per broken rule (empty = the env conforms).
struct CheckReport {
  std::vector<std::string> failures;
  int64_t episodes = 0;
  int64_t steps = 0;
  bool restored = false;  ///< the env supports save_state() and the round trip was checked
  bool ok() const { return failures.empty(); }
  std::string text() const;
};

/// Runs every check on `env` (four to five episodes). Exceptions other than the expected ones
/// are reported as failures, not thrown.
CheckReport check_env(Env& env, const CheckOptions& options = {});

}  // namespace prunegym::conformance
