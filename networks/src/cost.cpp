#include <prunegym/networks/cost.h>

#include <cmath>
#include <cstdio>

namespace prunegym {

NetworkCost network_cost(const NetworkImpl& network) {
  NetworkCost c;
  for (const auto& p : network.parameters(/*recurse=*/true)) c.parameters += p.numel();
  const auto positions = network.output_positions();
  const auto& layers = network.prunable_layers();
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& l = layers[i];
    LayerCost r;
    r.name = l.name;
    r.shape = l.weight.sizes().vec();
    r.weights = l.numel();
    r.remaining = l.remaining();
    r.positions = i < positions.size() ? positions[i] : -1;
    if (r.positions >= 0) {
      r.macs = r.positions * r.weights;
      r.remaining_macs = r.positions * r.remaining;
    } else {
      ++c.unknown_layers;
    }
    c.prunable += r.weights;
    c.remaining += r.remaining;
    c.macs += r.macs;
    c.remaining_macs += r.remaining_macs;
    c.layers.push_back(std::move(r));
  }
  return c;
}

nlohmann::json NetworkCost::to_json(bool per_layer) const {
  nlohmann::json j{{"parameters", parameters},         {"prunable", prunable},
                   {"remaining", remaining},           {"macs", macs},
                   {"remaining_macs", remaining_macs}, {"unknown_layers", unknown_layers}};
  if (per_layer) {
    auto rows = nlohmann::json::array();
    for (const auto& l : layers)
      rows.push_back({{"name", l.name},
                      {"shape", l.shape},
                      {"positions", l.positions},
                      {"weights", l.weights},
                      {"remaining", l.remaining},
                      {"macs", l.macs},
                      {"remaining_macs", l.remaining_macs}});
    j["layers"] = rows;
  }
  return j;
}

std::string si_count(double value) {
  static const char* prefixes[] = {"", " k", " M", " G", " T"};
  int p = 0;
  while (std::fabs(value) >= 1000.0 && p < 4) {
    value /= 1000.0;
    ++p;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, p ? "%.2f%s" : "%.0f%s", value, prefixes[p]);
  return buf;
}

}  // namespace prunegym
