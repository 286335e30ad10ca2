#include <prunegym/core/errors.h>
#include <prunegym/experiments/support.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

extern char** environ;

namespace fs = std::filesystem;

namespace prunegym {

// --- ProgressReporter

ProgressReporter::ProgressReporter(std::ostream& out, int tty)
    : out_(out), tty_(tty < 0 ? (&out == &std::cerr && ::isatty(STDERR_FILENO)) : tty > 0) {}

void ProgressReporter::update(const std::string& text, bool always_print) {
  if (tty_) {
    out_ << "\r" << text << "\033[K" << std::flush;
    live_ = true;
  } else if (always_print) {
    out_ << text << "\n";
  }
}

void ProgressReporter::line(const std::string& text) {
  if (live_) out_ << "\r\033[K";
  live_ = false;
  out_ << text << "\n";
}

void ProgressReporter::finish() {
  if (live_) out_ << "\n";
  live_ = false;
}

std::string ProgressReporter::bar(int64_t done, int64_t total, int width) {
  const int64_t filled = total > 0 ? std::min<int64_t>(width, width * done / total) : width;
  return "[" + std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(width - filled), '.') +
         "]";
}

// --- CsvWriter

CsvWriter::CsvWriter(std::initializer_list<std::string> header) : CsvWriter(std::vector<std::string>(header)) {}

CsvWriter::CsvWriter(const std::vector<std::string>& header) : columns_(header.size()) { row(header); }

void CsvWriter::row(const std::vector<std::string>& fields) {
  if (fields.size() != columns_)
    throw Error("CSV row has " + std::to_string(fields.size()) + " fields, the header " + std::to_string(columns_));
  for (size_t i = 0; i < fields.size(); ++i) text_ += (i ? "," : "") + quote(fields[i]);
  text_ += "\n";
}

std::string CsvWriter::num(double value) {
  std::ostringstream os;
  os << std::setprecision(10) << value;
  return os.str();
}

std::string CsvWriter::num(int64_t value) { return std::to_string(value); }

std::string CsvWriter::quote(const std::string& field) {
  if (field.find_first_of(",\"\n\r") == std::string::npos) return field;
  std::string out = "\"";
  for (char c : field) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// --- InterruptGuard

namespace {

extern "C" void on_interrupt(int signal) {
  if (InterruptGuard::flag().exchange(true) && signal == SIGINT) std::_Exit(130);  // a second Ctrl-C leaves at once
}

}  // namespace

std::atomic<bool>& InterruptGuard::flag() {
  static std::atomic<bool> stop{false};
  return stop;
}

InterruptGuard::InterruptGuard() {
  flag() = false;
  previous_int_ = std::signal(SIGINT, on_interrupt);
  previous_term_ = std::signal(SIGTERM, on_interrupt);
}

InterruptGuard::~InterruptGuard() {
  std::signal(SIGINT, previous_int_);
  std::signal(SIGTERM, previous_term_);
}

// --- Processes

std::string self_executable() {
  std::error_code ec;
  const auto p = fs::canonical("/proc/self/exe", ec);
  if (ec) throw DataError("cannot find the running executable (/proc/self/exe): " + ec.message());
  return p.string();
}

std::string python_dir() {
  if (const char* p = std::getenv("PRUNEGYM_PYTHON_DIR"); p && *p) return p;
  std::error_code ec;
  const fs::path exe = fs::canonical("/proc/self/exe", ec).parent_path();
  for (const fs::path& candidate : {exe / "../../python", exe / "../share/prunegym/python"}) {
    if (fs::exists(candidate / "plot_curves.py", ec)) return fs::canonical(candidate).string();
  }
  return "";
}

namespace {

/// Spawns argv with stdout and stderr going to `fd_target` (opened by the file actions).
pid_t spawn_with(const std::vector<std::string>& argv, posix_spawn_file_actions_t& fa) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0].c_str(), &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw DataError("cannot start " + argv[0] + ": " + std::strerror(rc));
  return pid;
}

}  // namespace

int spawn_logged(const std::vector<std::string>& argv, const std::string& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
  return spawn_with(argv, fa);
}

CommandOutput run_captured(const std::vector<std::string>& argv) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) throw DataError("cannot create a pipe: " + std::string(std::strerror(errno)));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&fa, pipe_fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&fa, pipe_fds[0]);
  pid_t pid = 0;
  try {
    pid = spawn_with(argv, fa);
  } catch (...) {
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    throw;
  }
  ::close(pipe_fds[1]);
  CommandOutput out;
  char buf[512];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    out.output.append(buf, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  out.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

std::string run_python_script(const std::string& script, const std::vector<std::string>& args,
                              const std::string& product) {
  const std::string dir = python_dir();
  if (dir.empty()) return product + " skipped: python/" + script + " not found (set PRUNEGYM_PYTHON_DIR)";
  const std::string python = fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "/usr/local/bin/python3";
  std::vector<std::string> argv{python, dir + "/" + script};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandOutput run;
  try {
    run = run_captured(argv);
  } catch (const std::exception& e) {
    return product + " skipped: " + e.what();
  }
  const std::string& output = run.output;
  if (run.status == 0) return "";
  if (output.find("matplotlib") != std::string::npos)
    return product + " skipped: matplotlib is missing (apt-get install python3-matplotlib)";
  return product + " skipped: the plot script failed: " + output.substr(0, 300);
}

}  // namespace prunegym
