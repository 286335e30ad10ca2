#pragma once
/// env.budget, AMC's action wall: before a layer-wise step prunes its layer, its action is raised
/// just enough that pruning every later episode layer at the highest action would bring the
/// budget's resource down to its limit; so an episode never ends above its budget, and when the
/// wall holds the last step it ends on the limit to within that layer's unit (a channel, a weight).
///
/// The wall finds the value by trial on the network itself (masks and weights are put back), so
/// it is exact for any network. It needs a criterion whose action fixes how much a layer loses (a
/// fraction: magnitude_target, channel_norm with "action": "fraction"): then what the later layers
/// will lose does not depend on the weights that retraining changes meanwhile.

#include <prunegym/core/log.h>
#include <prunegym/env/config.h>
#include <prunegym/env/env.h>
#include <prunegym/env/env_core.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace prunegym {

struct LatencyTable;  // networks/latency.h

class ActionWall {
 public:
  /// `layers`: the episode's layers in order; `high`: the highest action value. Throws
  /// ConfigError when the budget does not apply to the criterion or network, or cannot be met even
  /// with every episode layer at `high`.
  /// Resource "latency" loads the latency table cached beside the dense model, or measures it
  /// (progress to `log`).
  ActionWall(const BudgetOptions& budget, EnvCore& core, std::vector<size_t> layers, double high,
             const LogFn& log = {});

  /// The budget's resource under the current masks: MACs per sample, remaining prunable weights,
  /// or the latency table's prediction in nanoseconds per batch.
  int64_t resource(const NetworkImpl& net) const;
  /// resource / the dense network's.
  double ratio(const NetworkImpl& net) const;
  /// The same from a step's counts (StepInfo::macs, remaining), with no recount; latency is
  /// predicted from `net`'s masks (a look-up per layer).
  double ratio(const StepInfo& info, const NetworkImpl& net) const;
  /// The latency table (resource "latency"), else null.
  const LatencyTable* latency_table() const { return table_.get(); }
  int64_t limit() const { return limit_; }

  /// The value to apply at episode position `k` (k steps done) for the agent's `requested` value:
  /// itself when the layers from k on can still meet the limit, else the least value in
  /// (requested, high] that lets them. The network is left as it was.
  double clip(EnvCore& core, size_t k, double requested) const;

 private:
  BudgetOptions budget_;
  std::vector<size_t> layers_;
  double high_ = 1.0;
  int64_t dense_ = 0;
  int64_t limit_ = 0;
  std::shared_ptr<const LatencyTable> table_;
};

}  // namespace prunegym
