#pragma once
/// Plugins: shared libraries whose static initialisers add entries to prunegym's registries
/// (rewards, criteria, observations, schedules, networks, agents, env kinds).

#include <string>

namespace prunegym {

/// Loads `path` (RTLD_NOW | RTLD_GLOBAL); ConfigError names the file and the loader's message.
void load_plugin(const std::string& path);

}  // namespace prunegym
