#include <prunegym/core/cancel.h>
#include <prunegym/core/errors.h>
#include <prunegym/core/hash.h>
#include <prunegym/core/json_file.h>
#include <prunegym/core/plugin.h>
#include <prunegym/core/timing.h>

#include <dlfcn.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <sstream>

namespace prunegym {

using json = nlohmann::json;

std::string fmt_duration(double s) {
  std::ostringstream os;
  if (s < 60) {
    os << std::fixed << std::setprecision(1) << s << "s";
  } else {
    os << static_cast<int>(s) / 60 << "m" << std::setw(2) << std::setfill('0') << static_cast<int>(s) % 60 << "s";
  }
  return os.str();
}

std::string pct(double fraction, int precision) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(precision) << 100.0 * fraction << "%";
  return os.str();
}

json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot open config file " + path + ": " + std::strerror(errno));
  try {
    return json::parse(in, nullptr, true, /*ignore_comments=*/true);
  } catch (const json::parse_error& e) {
    throw ConfigError(path + ": invalid JSON: " + e.what());
  }
}

void apply_override(json& doc, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError("an override needs key.path=value, got '" + assignment + "'");
  json value = json::parse(assignment.substr(eq + 1), nullptr, false);
  if (value.is_discarded()) value = assignment.substr(eq + 1);  // a bare word is a string
  std::string pointer = "/" + assignment.substr(0, eq);
  std::replace(pointer.begin(), pointer.end(), '.', '/');
  doc[json::json_pointer(pointer)] = value;
}

void write_atomic(const std::filesystem::path& path, const std::string& content) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw DataError("cannot write " + tmp.string());
    out << content;
    if (!out.flush()) throw DataError("cannot write " + tmp.string() + " (disk full?)");
  }
  std::filesystem::rename(tmp, path);
}

void load_plugin(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw ConfigError("plugin " + path + " does not exist (build it first?)");
  if (!::dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL))
    throw ConfigError("cannot load plugin " + path + ": " + ::dlerror());
}

uint64_t fnv1a(const void* data, size_t size, uint64_t h) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    h ^= bytes[i];
    h *= 1099511628211ULL;
  }
  return h;
}

std::string hex64(uint64_t value) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(value));
  return hex;
}

std::string file_hash(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  uint64_t h = kFnvOffset;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) h = fnv1a(buf, static_cast<size_t>(in.gcount()), h);
  return hex64(h);
}

// ---------------------------------------------------------------------------------------------
// Cancellation

namespace {
thread_local const CancelScope* current_scope = nullptr;
}

CancelScope::CancelScope(std::vector<Flag> flags, std::optional<std::chrono::steady_clock::time_point> deadline,
                         std::string deadline_reason)
    : outer_(current_scope),
      flags_(std::move(flags)),
      deadline_(deadline),
      deadline_reason_(std::move(deadline_reason)) {
  current_scope = this;
}

CancelScope::~CancelScope() { current_scope = outer_; }

void check_cancelled() {
  for (const CancelScope* s = current_scope; s; s = s->outer_) {
    for (const auto& f : s->flags_)
      if (f.set && f.set->load(std::memory_order_relaxed)) throw Cancelled(f.reason);
    if (s->deadline_ && std::chrono::steady_clock::now() > *s->deadline_) throw Cancelled(s->deadline_reason_);
  }
}

}  // namespace prunegym
