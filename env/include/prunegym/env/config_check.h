#pragma once
/// Checks of config sections that another layer owns ("train", "agents"): the agents library
/// registers its own, so every program that links it validates those sections when a config is
/// loaded (Config::from_json), not when they are first used.

#include <prunegym/env/config.h>

#include <functional>
#include <string>

namespace prunegym {

/// Throws ConfigError naming the offending key.
using ConfigCheck = std::function<void(const Config&)>;
/// Adds (or replaces) the check `name`; returns true so it can initialise a static.
bool register_config_check(const std::string& name, ConfigCheck check);

}  // namespace prunegym
