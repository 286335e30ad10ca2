#pragma once
/// Action and observation spaces in Gymnasium's sense: Discrete (with the value each index
/// stands for) and Box (per-dimension bounds, float32).

#include <nlohmann/json.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace prunegym {

using Observation = std::vector<float>;

/// An action: an index into a Discrete space, or a vector of values inside a Box.
struct Action {
  int64_t index = -1;
  std::vector<double> values;

  Action() = default;
  Action(int64_t discrete_index) : index(discrete_index) {}  // NOLINT: `env.step(3)` reads well
  static Action discrete(int64_t i) { return Action(i); }
  static Action continuous(std::vector<double> v) {
    Action a;
    a.values = std::move(v);
    return a;
  }
  bool is_discrete() const { return values.empty(); }
  std::string describe() const;
};

class Space {
 public:
  enum class Kind { discrete, box };

  /// n = values.size(); index i stands for values[i] (an alpha, a sparsity, ...).
  static Space discrete(std::vector<double> values);
  /// A flat box; low and high have the same size.
  static Space box(std::vector<double> low, std::vector<double> high);
  /// Evenly spaced values low, low+step, ..., high (inclusive, up to rounding).
  static std::vector<double> grid(double low, double high, double step);

  Kind kind() const { return kind_; }
  int64_t n() const { return static_cast<int64_t>(values_.size()); }
  const std::vector<double>& values() const { return values_; }
  const std::vector<double>& low() const { return low_; }
  const std::vector<double>& high() const { return high_; }
  std::vector<int64_t> shape() const;
  std::string dtype() const { return kind_ == Kind::discrete ? "int64" : "float32"; }

  bool contains(const Action& action) const;
  bool contains(const Observation& observation) const;
  /// Why `action` is not in the space, or "" when it is.
  std::string explain(const Action& action) const;
  /// The value a discrete index stands for, or the first value of a box action.
  double value_of(const Action& action) const;
  Action sample(std::mt19937_64& gen) const;

  nlohmann::json to_json() const;
  static Space from_json(const nlohmann::json& j);
  std::string describe() const;  ///< "Discrete(23, 0.0..2.2)" / "Box(3)"

  bool operator==(const Space& other) const;

 private:
  Kind kind_ = Kind::discrete;
  std::vector<double> values_;
  std::vector<double> low_, high_;
};

}  // namespace prunegym
