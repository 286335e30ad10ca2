#include <prunegym/core/errors.h>
#include <prunegym/env/env.h>

namespace prunegym {

void Env::restore_state(const EnvState&) {
  throw ConfigError("this env kind cannot restore a saved state (save_state() returned nothing)");
}

void to_json(nlohmann::json& j, const StepInfo& i) {
  j = nlohmann::json{{"step", i.step},
                     {"layer", i.layer},
                     {"layer_index", i.layer_index},
                     {"round", i.round},
                     {"alpha", i.value},
                     {"requested", i.requested},
                     {"clipped", i.clipped},
                     {"resource_ratio", i.resource_ratio},
                     {"layer_sparsity", i.step_sparsity},
                     {"sparsity", i.sparsity},
                     {"accuracy", i.accuracy},
                     {"evaluated", i.evaluated},
                     {"remaining", i.remaining},
                     {"total", i.total},
                     {"macs", i.macs},
                     {"dense_macs", i.dense_macs},
                     {"layer_sparsities", i.layer_sparsities},
                     {"prune_ms", i.prune_ms},
                     {"retrain_ms", i.retrain_ms},
                     {"eval_ms", i.eval_ms},
                     {"early_stop", i.early_stop}};
}

void from_json(const nlohmann::json& j, StepInfo& i) {
  StepInfo d;
  i.step = j.value("step", d.step);
  i.layer = j.value("layer", d.layer);
  i.layer_index = j.value("layer_index", d.layer_index);
  i.round = j.value("round", d.round);
  i.value = j.value("alpha", d.value);
  i.requested = j.value("requested", i.value);
  i.clipped = j.value("clipped", d.clipped);
  i.resource_ratio = j.value("resource_ratio", d.resource_ratio);
  i.step_sparsity = j.value("layer_sparsity", d.step_sparsity);
  i.sparsity = j.value("sparsity", d.sparsity);
  i.accuracy = j.value("accuracy", d.accuracy);
  i.evaluated = j.value("evaluated", d.evaluated);
  i.remaining = j.value("remaining", d.remaining);
  i.total = j.value("total", d.total);
  i.macs = j.value("macs", d.macs);
  i.dense_macs = j.value("dense_macs", d.dense_macs);
  i.layer_sparsities = j.value("layer_sparsities", d.layer_sparsities);
  i.prune_ms = j.value("prune_ms", d.prune_ms);
  i.retrain_ms = j.value("retrain_ms", d.retrain_ms);
  i.eval_ms = j.value("eval_ms", d.eval_ms);
  i.early_stop = j.value("early_stop", d.early_stop);
}

}  // namespace prunegym
