#pragma once
/// Small command-line helpers shared by the prunegym subcommands.

#include <prunegym/env/config.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace prunegym::cli {

/// Bad command-line input: printed as one line, exit code 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Parsed `--key value` / `--flag` options plus positionals. Options are declared up front so
/// a typo is an error, not a silently ignored flag.
class Args {
 public:
  /// `valued` options take a value; `flags` do not. Repeatable options collect all values.
  Args(const std::vector<std::string>& argv, const std::vector<std::string>& valued,
       const std::vector<std::string>& flags, const std::vector<std::string>& repeatable = {});
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback = "") const;
  std::vector<std::string> all(const std::string& name) const;
  int64_t get_int(const std::string& name, int64_t fallback) const;
  double get_double(const std::string& name, double fallback) const;
  bool flag(const std::string& name) const { return has(name); }
  std::string require(const std::string& name) const;

 private:
  std::map<std::string, std::vector<std::string>> values_;
};

/// Loads `--config F` and applies every `--set key.path=value` (value parsed as JSON, else a string).
Config load_config(const Args& args);
/// A fraction as a percentage with `precision` decimals: 0.8836 -> "88.36%".
std::string pct(double fraction, int precision = 2);

/// Splits "3,5,7" into integers; UsageError naming the bad item.
std::vector<int64_t> parse_int_list(const std::string& text, const std::string& option);

/// Loads a shared library whose static initialisers register rewards (or anything else) with
/// prunegym's registries; throws UsageError naming the file and the loader's message.
void load_plugin(const std::string& path);

/// Seconds since t0, and a duration as "12.3s" or "4m05s".
double seconds_since(std::chrono::steady_clock::time_point t0);
std::string fmt_duration(double seconds);

/// Writes a file through a temporary and a rename, so an interruption never leaves half a file.
void write_atomic(const std::filesystem::path& path, const std::string& content);

/// The folder holding the Python helpers (plot scripts): $PRUNEGYM_PYTHON_DIR, next to the build
/// tree, or the installed share dir; "" when not found.
std::string python_dir();
/// Runs python/<script> with `args` under /usr/bin/python3. Returns "" on success, else a
/// one-line message for the user that names `product` (e.g. "curves.png skipped: ...").
std::string run_plot(const std::string& script, const std::vector<std::string>& args, const std::string& product);

}  // namespace prunegym::cli
