#pragma once
/// The per-layer ratios a run learned, in the forms deployment pruners read (ratios.json):
/// prunegym's own list keyed by parameter name, Torch-Pruning's pruning_ratio_dict keyed by module
/// name, and an NNI config_list (docs/structured.md shows the lines that apply each).

#include <prunegym/env/prune_env.h>

#include <nlohmann/json.hpp>

namespace prunegym {

/// The current network's ratios: under a structured criterion the share of each channel group's
/// channels removed (by producer, tied producers listed), otherwise each prunable layer's sparsity.
nlohmann::json pruning_ratios(const PruneEnv& env);

}  // namespace prunegym
