#include <prunegym/experiments/ratios.h>
#include <prunegym/networks/groups.h>

namespace prunegym {

namespace {

/// "layer1.0.conv1.weight" -> "layer1.0.conv1": the module a deployment pruner addresses.
std::string module_of(const std::string& parameter) {
  const std::string suffix = ".weight";
  if (parameter.size() > suffix.size() &&
      parameter.compare(parameter.size() - suffix.size(), suffix.size(), suffix) == 0)
    return parameter.substr(0, parameter.size() - suffix.size());
  return parameter;
}

}  // namespace

nlohmann::json pruning_ratios(const PruneEnv& env) {
  const auto& net = env.network();
  const auto& layers = net.prunable_layers();
  const bool structured = env.criterion().structured();
  auto rows = nlohmann::json::array();
  nlohmann::json torch_pruning = nlohmann::json::object();
  auto nni = nlohmann::json::array();
  const auto add = [&](const std::string& name, double ratio, nlohmann::json row) {
    row["name"] = name;
    row["module"] = module_of(name);
    row["ratio"] = ratio;
    rows.push_back(row);
    torch_pruning[module_of(name)] = ratio;
    nni.push_back({{"op_names", nlohmann::json::array({module_of(name)})}, {"sparse_ratio", ratio}});
  };
  if (structured) {
    for (const auto& g : checked_channel_groups(net)) {
      const auto kept = static_cast<int64_t>(surviving_channels(net, g).size());
      auto tied = nlohmann::json::array();
      for (size_t t : g.tied) tied.push_back(layers[t].name);
      add(layers[g.producer].name, 1.0 - static_cast<double>(kept) / static_cast<double>(g.channels),
          {{"channels", g.channels}, {"kept", kept}, {"tied", tied}});
    }
  } else {
    for (const auto& l : layers) add(l.name, l.sparsity(), {{"weights", l.numel()}, {"kept", l.remaining()}});
  }
  return {{"criterion", env.config().env.criterion},
          {"structured", structured},
          {"unit", structured ? "output channels removed" : "weights removed"},
          {"layers", rows},
          {"torch_pruning", {{"pruning_ratio_dict", torch_pruning}}},
          {"nni", {{"config_list", nni}}}};
}

}  // namespace prunegym
