#pragma once
/// One registration mechanism for every extension point: rewards, criteria, observation builders,
/// episode schedules, networks, agents and env kinds are each a Registry<Product, Args...> that
/// maps a name to a factory. Built-ins register when the registry is first used; users add their
/// own with PRUNEGYM_REGISTER (in their program or in a plugin loaded with --plugin lib.so).
///
/// Each registry has exactly one instance per process: its instance() is declared here and
/// defined (with the built-in entries) in the library that owns the product type.
///
/// Parts with options: an entry may carry a Parser that validates the part's options (its config
/// slot without "name") once, when the config is loaded, and returns them complete (defaults
/// filled in) as canonical JSON; the factory then receives that canonical JSON. A part declares
/// `struct Options { void read(ObjectReader&); nlohmann::json to_json() const; }` next to its
/// class and registers with `part<Concrete, Options, Product, Args...>()` (see below).

#include <prunegym/core/errors.h>
#include <prunegym/core/json_reader.h>

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
  /// (options, key path for errors) -> the canonical options; throws ConfigError.
  using Parser = std::function<nlohmann::json(const nlohmann::json&, const std::string&)>;

  struct Entry {
    Factory factory;
    std::string description;
    Parser parse;                                      ///< empty: the factory checks its own options
    nlohmann::json traits = nlohmann::json::object();  ///< facts other parts ask before building it
  };

  /// A factory and its parser, as part<...>() returns them.
  struct PartEntry {
    Factory factory;
    Parser parse;
  };

  /// The process-wide registry (defined by the library that owns Product).
  static Registry& instance();

  /// `kind` names the extension point in errors ("reward", "agent", ...); `config_key` is the
  /// config key that selects an entry ("env.reward.name"), "" when none does.
  Registry(std::string kind, std::string config_key) : kind_(std::move(kind)), config_key_(std::move(config_key)) {}

  /// Registers (or replaces) `name`. Returns true so it can initialise a static.
  bool add(const std::string& name, Factory factory, std::string description = "", Parser parse = {},
           nlohmann::json traits = nlohmann::json::object()) {
    if (name.empty()) throw ConfigError("a " + kind_ + " needs a non-empty name");
    if (!factory) throw ConfigError(kind_ + " '" + name + "': the factory is empty");
    entries_[name] = Entry{std::move(factory), std::move(description), std::move(parse), std::move(traits)};
    return true;
  }
  /// Registers a part with options (part<...>()).
  bool add(const std::string& name, PartEntry part, std::string description = "",
           nlohmann::json traits = nlohmann::json::object()) {
    return add(name, std::move(part.factory), std::move(description), std::move(part.parse), std::move(traits));
  }

  /// True when `name` validates its options with a parser (they are then stored canonical).
  bool has_parser(const std::string& name) const { return static_cast<bool>(find(name).parse); }
  /// The canonical options of `name` for `options` (its config slot without "name"); `path` is
  /// the slot's key path. Parts without a parser get their options back unchanged.
  nlohmann::json parse(const std::string& name, const nlohmann::json& options, const std::string& path) const {
    const Entry& e = find(name);
    return e.parse ? e.parse(options, path) : options;
  }
  /// What the part says of itself before it is built ({} when nothing).
  const nlohmann::json& traits(const std::string& name) const { return find(name).traits; }

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

/// A part with options: the parser reads `Options` strictly under the slot's key path and returns
/// its to_json(); the factory rebuilds the Options from that canonical JSON and constructs
/// Concrete(options, rest...).
template <class Options>
Options read_options(const nlohmann::json& j, const std::string& path) {
  Options o;
  ObjectReader r(j, path);
  o.read(r);
  r.finish();
  return o;
}

template <class Concrete, class Options, class Product, class... Rest>
typename Registry<Product, const nlohmann::json&, Rest...>::PartEntry part() {
  typename Registry<Product, const nlohmann::json&, Rest...>::PartEntry e;
  e.parse = [](const nlohmann::json& j, const std::string& path) { return read_options<Options>(j, path).to_json(); };
  e.factory = [](const nlohmann::json& j, Rest... rest) -> std::unique_ptr<Product> {
    return std::make_unique<Concrete>(read_options<Options>(j, ""), std::forward<Rest>(rest)...);
  };
  return e;
}

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

/// Registers a factory (or a part<...>() with its parser) at load time, in a program or a plugin;
/// the arguments after the name are Registry::add's:
///   PRUNEGYM_REGISTER(prunegym::AgentRegistry, "greedy", make_greedy, "always the smallest alpha");
///   PRUNEGYM_REGISTER(prunegym::CriterionRegistry, "scaled", (part<Scaled, ScaledOptions, PruningCriterion>()),
///   "...");
#define PRUNEGYM_REGISTER(RegistryType, name, ...)                                     \
  static const bool PRUNEGYM_CONCAT(prunegym_registered_, __LINE__) [[maybe_unused]] = \
      RegistryType::instance().add(name, __VA_ARGS__)
