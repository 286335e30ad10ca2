// Your own agent as a plugin: build it as a shared library, then every command can use it.
//
//   prunegym --plugin build/lib/libprunegym_agent_plugin.so train --config configs/tiny-synthetic.json
//       --agent layer_bandit --episodes 40
//   bench grids: "plugins": ["build/lib/libprunegym_agent_plugin.so"], "agent": "layer_bandit"
//
// The factory reads the agent's own config section (agents.layer_bandit) strictly, so a typo is an
// error that names the key.
#include "layer_bandit.h"

#include <prunegym/agents/factory.h>
#include <prunegym/core/json_reader.h>

namespace {

std::unique_ptr<prunegym::Agent> make_layer_bandit(const prunegym::AgentContext& c) {
  double exploration = 2.0;
  prunegym::ObjectReader r(c.options, c.path);
  r.get("exploration", exploration);
  r.finish();
  if (c.action_space.kind() != prunegym::Space::Kind::discrete)
    throw prunegym::ConfigError("agent layer_bandit needs a discrete action grid (env.actions.type = \"discrete\")");
  // The compact observation's first bound is the episode length: one bandit per step.
  const auto layers = static_cast<int64_t>(c.observation_space.high().at(0));
  return std::make_unique<LayerBanditAgent>(c.action_space, std::max<int64_t>(layers, 1), exploration);
}

}  // namespace

PRUNEGYM_REGISTER(prunegym::AgentRegistry, "layer_bandit", make_layer_bandit,
                  "UCB1 bandit per layer over the alpha grid (examples/agent_plugin.cpp)");
