#pragma once
/// The logging callback every long-running part accepts: one line of progress or a warning.

#include <functional>
#include <string>

namespace prunegym {

/// Receives one line (no trailing newline). An empty LogFn means "stay quiet".
using LogFn = std::function<void(const std::string&)>;

}  // namespace prunegym
