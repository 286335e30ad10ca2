#pragma once
/// Batch-norm statistics after pruning: a network pruned in one shot still carries the running
/// means and variances of the dense network, which no longer match its activations.

#include <prunegym/networks/data.h>
#include <prunegym/networks/model.h>

namespace prunegym {

/// Re-estimates every batch norm's running statistics from `samples` training samples (all when
/// 0 or more than there are) with the current weights, as a cumulative average over batches of
/// `batch_size`; weights and masks are not touched. Returns how many batch norms were refreshed
/// (0 for networks without any, and for TorchScript imports, whose modules are not visible).
int64_t recalibrate_batch_norm(NetworkImpl& net, const Tensors& data, int64_t samples, int64_t batch_size = 250);

}  // namespace prunegym
