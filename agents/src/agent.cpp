#include <prunegym/agents/agent.h>

#include <cmath>
#include <limits>

namespace prunegym {

double Agent::exploration() const { return std::numeric_limits<double>::quiet_NaN(); }

std::vector<float> normalize_observation(const Observation& observation, const Space& space) {
  std::vector<float> out(observation.begin(), observation.end());
  if (space.kind() != Space::Kind::box || space.low().size() != out.size()) return out;
  for (size_t i = 0; i < out.size(); ++i) {
    const double lo = space.low()[i], hi = space.high()[i];
    if (std::isfinite(lo) && std::isfinite(hi) && hi > lo) out[i] = static_cast<float>((out[i] - lo) / (hi - lo));
  }
  return out;
}

}  // namespace prunegym
