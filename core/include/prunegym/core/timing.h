#pragma once
/// Wall-clock helpers: elapsed time since a start point, and durations for people.

#include <chrono>
#include <string>

namespace prunegym {

using Clock = std::chrono::steady_clock;

/// Milliseconds since t0.
inline double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}
/// Seconds since t0.
inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
/// A duration as "12.3s" below a minute, else "4m05s".
std::string fmt_duration(double seconds);
/// A fraction as a percentage with `precision` decimals: 0.8836 -> "88.36%".
std::string pct(double fraction, int precision = 2);

}  // namespace prunegym
