#include <prunegym/agents/agent.h>
#include <prunegym/core/errors.h>

#include <fstream>

#include <cmath>
#include <limits>

namespace prunegym {

nlohmann::json read_checkpoint_json(const std::string& path, const std::string& agent) {
  std::ifstream in(path);
  if (!in) throw DataError("cannot read the checkpoint " + path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw DataError(path + ": not a checkpoint (" + e.what() + ")");
  }
  if (!j.is_object() || j.value("agent", "") != agent)
    throw DataError(path + ": checkpoint of agent '" + (j.is_object() ? j.value("agent", "?") : "?") + "', not " +
                    agent);
  return j;
}

void write_checkpoint_json(const std::string& path, const nlohmann::json& j) {
  std::ofstream out(path);
  if (!out) throw DataError("cannot write the checkpoint " + path);
  out << j.dump() << "\n";
}

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
