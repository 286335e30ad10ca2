#include <prunegym/core/errors.h>
#include <prunegym/env/spaces.h>

#include <cmath>
#include <iomanip>
#include <sstream>

namespace prunegym {

std::string Action::describe() const {
  if (is_discrete()) return std::to_string(index);
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < values.size(); ++i) os << (i ? ", " : "") << values[i];
  os << "]";
  return os.str();
}

Space Space::discrete(std::vector<double> values) {
  if (values.empty()) throw ConfigError("a Discrete space needs at least one action");
  Space s;
  s.kind_ = Kind::discrete;
  s.values_ = std::move(values);
  return s;
}

Space Space::box(std::vector<double> low, std::vector<double> high) {
  if (low.size() != high.size() || low.empty()) throw ConfigError("a Box needs matching, non-empty low and high");
  for (size_t i = 0; i < low.size(); ++i)
    if (!(low[i] <= high[i])) throw ConfigError("a Box needs low <= high in every dimension");
  Space s;
  s.kind_ = Kind::box;
  s.low_ = std::move(low);
  s.high_ = std::move(high);
  return s;
}

std::vector<double> Space::grid(double low, double high, double step) {
  if (!(step > 0) || !(high >= low)) {
    throw ConfigError("env.actions: a grid needs step > 0 and high >= low");
  }
  std::vector<double> out;
  const auto count = static_cast<int64_t>(std::floor((high - low) / step + 1e-9)) + 1;
  for (int64_t i = 0; i < count; ++i) {
    // Round to 1e-9 so 0.30000000000000004 prints and compares as 0.3.
    out.push_back(std::round((low + static_cast<double>(i) * step) * 1e9) / 1e9);
  }
  return out;
}

std::vector<int64_t> Space::shape() const {
  if (kind_ == Kind::discrete) return {};
  return {static_cast<int64_t>(low_.size())};
}

std::string Space::explain(const Action& a) const {
  std::ostringstream os;
  if (kind_ == Kind::discrete) {
    if (!a.is_discrete())
      return "a continuous action was given but the action space is " + describe() + "; send an index";
    if (a.index < 0 || a.index >= n()) {
      os << "action " << a.index << " is outside the action space " << describe() << ": valid indices are 0.."
         << n() - 1;
      return os.str();
    }
    return "";
  }
  if (a.is_discrete()) return "an index was given but the action space is " + describe() + "; send a list of values";
  if (a.values.size() != low_.size()) {
    os << "action has " << a.values.size() << " values but the action space " << describe() << " needs " << low_.size();
    return os.str();
  }
  for (size_t i = 0; i < low_.size(); ++i) {
    if (!std::isfinite(a.values[i]) || a.values[i] < low_[i] || a.values[i] > high_[i]) {
      os << "action value " << a.values[i] << " at position " << i << " is outside [" << low_[i] << ", " << high_[i]
         << "]";
      return os.str();
    }
  }
  return "";
}

bool Space::contains(const Action& a) const { return explain(a).empty(); }

bool Space::contains(const Observation& o) const {
  if (kind_ != Kind::box || o.size() != low_.size()) return false;
  for (size_t i = 0; i < o.size(); ++i) {
    // Observations are float32: compare with float rounding of the bounds.
    if (!std::isfinite(o[i]) || o[i] < static_cast<float>(low_[i]) || o[i] > static_cast<float>(high_[i])) return false;
  }
  return true;
}

double Space::value_of(const Action& a) const {
  const std::string why = explain(a);
  if (!why.empty()) throw ActionError(why);
  return kind_ == Kind::discrete ? values_[static_cast<size_t>(a.index)] : a.values[0];
}

Action Space::sample(std::mt19937_64& gen) const {
  if (kind_ == Kind::discrete) {
    return Action(static_cast<int64_t>(gen() % static_cast<uint64_t>(n())));
  }
  std::vector<double> v(low_.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const double u = static_cast<double>(gen() >> 11) * (1.0 / 9007199254740992.0);
    v[i] = low_[i] + u * (high_[i] - low_[i]);
  }
  return Action::continuous(std::move(v));
}

nlohmann::json Space::to_json() const {
  if (kind_ == Kind::discrete) return {{"type", "Discrete"}, {"n", n()}, {"values", values_}, {"dtype", dtype()}};
  return {{"type", "Box"}, {"low", low_}, {"high", high_}, {"shape", shape()}, {"dtype", dtype()}};
}

Space Space::from_json(const nlohmann::json& j) {
  try {
    const std::string type = j.at("type").get<std::string>();
    if (type == "Discrete") {
      auto values = j.contains("values") ? j.at("values").get<std::vector<double>>() : std::vector<double>{};
      if (values.empty()) {
        for (int64_t i = 0; i < j.at("n").get<int64_t>(); ++i) values.push_back(static_cast<double>(i));
      }
      return discrete(values);
    }
    if (type == "Box") return box(j.at("low").get<std::vector<double>>(), j.at("high").get<std::vector<double>>());
    throw ConfigError("unknown space type '" + type + "' (known: Discrete, Box)");
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError(std::string("malformed space description: ") + e.what());
  }
}

std::string Space::describe() const {
  std::ostringstream os;
  if (kind_ == Kind::discrete) {
    os << "Discrete(" << n() << ", values " << values_.front() << ".." << values_.back() << ")";
  } else {
    os << "Box(" << low_.size() << ")";
  }
  return os.str();
}

bool Space::operator==(const Space& o) const {
  return kind_ == o.kind_ && values_ == o.values_ && low_ == o.low_ && high_ == o.high_;
}

}  // namespace prunegym
