#pragma once
/// One registration mechanism for every extension point: rewards, criteria, observation builders,
/// episode schedules, networks, agents and env kinds are each a Registry<Product, Args...> that
/// maps a name to a factory. Built-ins register when the registry is first used; users add their
/// own with PRUNEGYM_REGISTER (in their program or in a plugin loaded with --plugin lib.so).
///
/// Each registry has exactly one instance per process: its instance() is declared here and
/// defined (with the built-in entries) in the library that owns the product type.

#include <prunegym/core/errors.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace prunegym {

template <class Product, class... Args>
class Registry {
 public:
  using Factory = std::function<std::unique_ptr<Product>(Args...)>;

  struct Entry {
    Factory factory;
    std::string description;
  };

  /// The process-wide registry (defined by the library that owns Product).
  static Registry& instance();

  /// `kind` names the extension point in errors ("reward", "agent", ...); `config_key` is the
  /// config key that selects an entry ("env.reward.name"), "" when none does.
  Registry(std::string kind, std::string config_key) : kind_(std::move(kind)), config_key_(std::move(config_key)) {}

  /// Registers (or replaces) `name`. Returns true so it can initialise a static.
  bool add(const std::string& name, Factory factory, std::string description = "") {
    if (name.empty()) throw ConfigError("a " + kind_ + " needs a non-empty name");
    if (!factory) throw ConfigError(kind_ + " '" + name + "': the factory is empty");
    entries_[name] = Entry{std::move(factory), std::move(description)};
    return true;
  }

  /// Builds `name`; ConfigError lists the registered names when it is unknown.
  std::unique_ptr<Product> make(const std::string& name, Args... args) const {
    auto product = find(name).factory(std::forward<Args>(args)...);
    if (!product) throw Error(kind_ + " '" + name + "': its factory returned nothing");
    return product;
  }

  bool contains(const std::string& name) const { return entries_.count(name) > 0; }
  /// Throws the same ConfigError as make() when `name` is not registered.
  void check(const std::string& name) const { find(name); }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [n, e] : entries_) out.push_back(n);
    return out;
  }

  std::string description(const std::string& name) const {
    auto it = entries_.find(name);
    return it == entries_.end() ? "" : it->second.description;
  }

  /// "a, b, c": for help texts and errors.
  std::string joined_names() const {
    std::string known;
    for (const auto& [n, e] : entries_) known += (known.empty() ? "" : ", ") + n;
    return known;
  }

  const std::string& kind() const { return kind_; }

 private:
  const Entry& find(const std::string& name) const {
    auto it = entries_.find(name);
    if (it == entries_.end()) {
      const std::string where = config_key_.empty() ? "" : config_key_ + ": ";
      throw ConfigError(where + "unknown " + kind_ + " '" + name + "' (registered: " + joined_names() +
                        "; add your own with PRUNEGYM_REGISTER, see docs/architecture.md)");
    }
    return it->second;
  }

  std::string kind_;
  std::string config_key_;
  std::map<std::string, Entry> entries_;
};

/// The factory of a part that takes no options (a registry whose first argument is the part's
/// options): it rejects any and builds Concrete from the other arguments. `what` names the part in
/// the error ("criterion 'std_threshold'").
template <class Concrete, class Product, class... Rest>
std::function<std::unique_ptr<Product>(const nlohmann::json&, Rest...)> without_options(const std::string& what) {
  return [what](const nlohmann::json& options, Rest... rest) -> std::unique_ptr<Product> {
    if (!options.empty()) throw ConfigError(what + " takes no options");
    return std::make_unique<Concrete>(std::forward<Rest>(rest)...);
  };
}

}  // namespace prunegym

#define PRUNEGYM_CONCAT_INNER(a, b) a##b
#define PRUNEGYM_CONCAT(a, b) PRUNEGYM_CONCAT_INNER(a, b)

/// Registers a factory at load time, in a program or a plugin:
///   PRUNEGYM_REGISTER(prunegym::AgentRegistry, "greedy", make_greedy, "always the smallest alpha");
#define PRUNEGYM_REGISTER(RegistryType, name, factory, description)                                   \
  static const bool PRUNEGYM_CONCAT(prunegym_registered_, __LINE__) [[maybe_unused]] = \
      RegistryType::instance().add(name, factory, description)
