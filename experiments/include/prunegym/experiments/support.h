#pragma once
/// What every experiment shares: one progress reporter, one CSV writer, one interrupt helper and
/// one way to run the Python plot scripts.

#include <atomic>
#include <csignal>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <string>
#include <vector>

namespace prunegym {

/// Live progress: on a terminal one line rewritten in place (with a bar), otherwise plain lines.
class ProgressReporter {
 public:
  /// `tty` < 0 asks isatty(STDERR) when `out` is std::cerr, else false.
  explicit ProgressReporter(std::ostream& out, int tty = -1);
  /// Replaces the live line (terminal only; elsewhere nothing, unless `always_print`).
  void update(const std::string& text, bool always_print = false);
  /// A permanent line (the live line is cleared first).
  void line(const std::string& text);
  /// Ends the live line, if any.
  void finish();
  bool tty() const { return tty_; }
  /// "[#####.....]" for done of total.
  static std::string bar(int64_t done, int64_t total, int width = 24);

 private:
  std::ostream& out_;
  bool tty_ = false;
  bool live_ = false;
};

/// CSV with RFC 4180 quoting: a field holding a comma, quote or newline is quoted.
class CsvWriter {
 public:
  explicit CsvWriter(std::initializer_list<std::string> header);
  explicit CsvWriter(const std::vector<std::string>& header);
  /// Appends one row; it must have one field per header column.
  void row(const std::vector<std::string>& fields);
  const std::string& str() const { return text_; }
  /// A number with 10 significant digits, as the result files have always used.
  static std::string num(double value);
  static std::string num(int64_t value);
  static std::string quote(const std::string& field);

 private:
  size_t columns_;
  std::string text_;
};

/// Ctrl-C and SIGTERM set stopped() while the guard lives; a second Ctrl-C exits at once (130).
/// The previous handlers come back when it goes.
class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;
  /// The flag experiments poll (global: a signal handler can only reach globals).
  static std::atomic<bool>& flag();
  bool stopped() const { return flag().load(); }

 private:
  using Handler = void (*)(int);
  Handler previous_int_;
  Handler previous_term_;
};

/// The folder holding the Python helpers: $PRUNEGYM_PYTHON_DIR, next to the build tree, or the
/// installed share folder; "" when not found.
std::string python_dir();

/// Runs python/<script> with `args` under /usr/bin/python3 (no shell). "" on success, else a
/// one-line message for the user that names `product` ("curves.png skipped: ...").
std::string run_python_script(const std::string& script, const std::vector<std::string>& args,
                              const std::string& product);

/// Spawns `argv` (argv[0] an absolute path) with stdout and stderr appended to `log`; returns the pid.
int spawn_logged(const std::vector<std::string>& argv, const std::string& log);

/// What a finished command printed (stdout and stderr together) and its exit status (-1 when it
/// did not exit normally).
struct CommandOutput {
  int status = -1;
  std::string output;
};
/// Runs `argv` (argv[0] an absolute path; no shell) to completion; DataError when it cannot start.
CommandOutput run_captured(const std::vector<std::string>& argv);

/// The running executable's path (/proc/self/exe).
std::string self_executable();

}  // namespace prunegym
