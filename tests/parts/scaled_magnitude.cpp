// A criterion with options of its own, in one file: the action is a layer sparsity, scaled by
// "scale" before the smallest weights go. Config: "criterion": {"name": "test_scaled_magnitude",
// "scale": 0.5}. Used by test_parts.cpp (and checked by the conformance suite like every part).

#include <prunegym/core/registry.h>
#include <prunegym/env/criteria.h>

namespace prunegym::test {

namespace {

struct ScaledMagnitudeOptions {
  double scale = 1.0;  ///< the sparsity applied is action * scale
  void read(ObjectReader& r) {
    r.get("scale", scale);
    if (!(scale > 0 && scale <= 1)) throw ConfigError("config key '" + r.key_path("scale") + "' must be in (0, 1]");
  }
  nlohmann::json to_json() const { return {{"scale", scale}}; }
};

class ScaledMagnitude : public PruningCriterion {
 public:
  explicit ScaledMagnitude(ScaledMagnitudeOptions o) : o_(o) {}
  std::string name() const override { return "test_scaled_magnitude"; }
  ActionMeaning meaning() const override { return ActionMeaning::sparsity; }
  ActionGrid default_grid() const override { return {0.0, 1.0, 0.25}; }
  void apply(NetworkImpl& net, const std::vector<size_t>& layers, double sparsity) const override {
    MagnitudeTargetCriterion().apply(net, layers, sparsity * o_.scale);
  }

 private:
  ScaledMagnitudeOptions o_;
};

}  // namespace

PRUNEGYM_REGISTER(CriterionRegistry, "test_scaled_magnitude",
                  (part<ScaledMagnitude, ScaledMagnitudeOptions, PruningCriterion>()),
                  "test: magnitude pruning to action x scale");

}  // namespace prunegym::test
