// An observation with options of its own, in one file: the fraction of episode layers pruned so
// far, and with "with_accuracy" the last accuracy too. Config: "observation": {"name":
// "test_progress", "with_accuracy": true}. Used by test_parts.cpp.

#include <prunegym/core/registry.h>
#include <prunegym/env/observation.h>

namespace prunegym::test {

namespace {

struct ProgressOptions {
  bool with_accuracy = false;
  void read(ObjectReader& r) { r.get("with_accuracy", with_accuracy); }
  nlohmann::json to_json() const { return {{"with_accuracy", with_accuracy}}; }
};

class ProgressObservation : public ObservationBuilder {
 public:
  explicit ProgressObservation(ProgressOptions o) : o_(o) {}
  Space space(const ObservationShape&) const override {
    const size_t n = o_.with_accuracy ? 2 : 1;
    return Space::box(std::vector<double>(n, 0.0), std::vector<double>(n, 1.0));
  }
  Observation build(const EpisodeState& e, const NetworkImpl&) const override {
    size_t pruned = 0;
    for (const auto& l : e.layers) pruned += l.pruned ? 1 : 0;
    Observation out{e.layers.empty() ? 0.0f : static_cast<float>(pruned) / static_cast<float>(e.layers.size())};
    if (o_.with_accuracy) out.push_back(static_cast<float>(e.accuracy));
    return out;
  }

 private:
  ProgressOptions o_;
};

}  // namespace

PRUNEGYM_REGISTER(ObservationRegistry, "test_progress",
                  (part<ProgressObservation, ProgressOptions, ObservationBuilder>()),
                  "test: fraction of layers pruned (and the accuracy)");

}  // namespace prunegym::test
