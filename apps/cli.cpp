#include "cli.h"

#include <prunegym/networks/errors.h>

#include <dlfcn.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <sstream>

namespace prunegym::cli {

Args::Args(const std::vector<std::string>& argv, const std::vector<std::string>& valued,
           const std::vector<std::string>& flags, const std::vector<std::string>& repeatable) {
  auto contains = [](const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  for (size_t i = 0; i < argv.size(); ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + a + "'");
    std::string name = a.substr(2), value;
    const auto eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (contains(flags, name)) {
      if (inline_value) throw UsageError("option --" + name + " takes no value");
      values_[name].push_back("1");
    } else if (contains(valued, name) || contains(repeatable, name)) {
      if (!inline_value) {
        if (i + 1 >= argv.size()) throw UsageError("option --" + name + " needs a value");
        value = argv[++i];
      }
      if (values_.count(name) && !contains(repeatable, name)) throw UsageError("option --" + name + " given twice");
      values_[name].push_back(value);
    } else {
      std::string known;
      for (const auto& v : valued) known += " --" + v;
      for (const auto& v : repeatable) known += " --" + v;
      for (const auto& f : flags) known += " --" + f;
      throw UsageError("unknown option --" + name + " (options here:" + known + ")");
    }
  }
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second.back();
}

std::vector<std::string> Args::all(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::string Args::require(const std::string& name) const {
  if (!has(name)) throw UsageError("missing required option --" + name);
  return get(name);
}

int64_t Args::get_int(const std::string& name, int64_t fallback) const {
  if (!has(name)) return fallback;
  const std::string v = get(name);
  try {
    size_t used = 0;
    const long long x = std::stoll(v, &used);
    if (used == v.size()) return x;
  } catch (const std::exception&) {
  }
  throw UsageError("option --" + name + " needs an integer, got '" + v + "'");
}

double Args::get_double(const std::string& name, double fallback) const {
  if (!has(name)) return fallback;
  const std::string v = get(name);
  try {
    size_t used = 0;
    const double x = std::stod(v, &used);
    if (used == v.size()) return x;
  } catch (const std::exception&) {
  }
  throw UsageError("option --" + name + " needs a number, got '" + v + "'");
}

std::string pct(double fraction, int precision) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(precision) << 100.0 * fraction << "%";
  return os.str();
}

std::vector<int64_t> parse_int_list(const std::string& text, const std::string& option) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      const long long v = std::stoll(item, &used);
      if (used != item.size()) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (const std::exception&) {
      throw UsageError("option --" + option + ": '" + item + "' is not an integer (expected a list like 3,5,7)");
    }
  }
  if (out.empty()) throw UsageError("option --" + option + " needs at least one value");
  return out;
}

Config load_config(const Args& args) {
  const std::string path = args.require("config");
  nlohmann::json doc = read_json_file(path);
  for (const std::string& assignment : args.all("set")) {
    if (assignment.find('=') == std::string::npos || assignment[0] == '=')
      throw UsageError("--set needs key.path=value, got '" + assignment + "'");
    apply_override(doc, assignment);
  }
  try {
    return Config::from_json(doc);
  } catch (const ConfigError& e) {
    throw ConfigError(path + ": " + e.what());
  }
}

void load_plugin(const std::string& path) {
  if (!std::filesystem::exists(path)) throw UsageError("plugin " + path + " does not exist (build it first?)");
  if (!::dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL)) throw UsageError("cannot load plugin " + path + ": " + ::dlerror());
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string fmt_duration(double s) {
  std::ostringstream os;
  if (s < 60) {
    os << std::fixed << std::setprecision(1) << s << "s";
  } else {
    os << static_cast<int>(s) / 60 << "m" << std::setw(2) << std::setfill('0') << static_cast<int>(s) % 60 << "s";
  }
  return os.str();
}

void write_atomic(const std::filesystem::path& path, const std::string& content) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw DataError("cannot write " + tmp.string());
    out << content;
  }
  std::filesystem::rename(tmp, path);
}

std::string python_dir() {
  namespace fs = std::filesystem;
  if (const char* p = std::getenv("PRUNEGYM_PYTHON_DIR"); p && *p) return p;
  std::error_code ec;
  const fs::path exe = fs::canonical("/proc/self/exe", ec).parent_path();
  for (const fs::path& candidate : {exe / "../../python", exe / "../share/prunegym/python"}) {
    if (fs::exists(candidate / "plot_curves.py")) return fs::canonical(candidate).string();
  }
  return "";
}

std::string run_plot(const std::string& script, const std::vector<std::string>& args, const std::string& product) {
  const std::string dir = python_dir();
  if (dir.empty()) return product + " skipped: python/" + script + " not found (set PRUNEGYM_PYTHON_DIR)";
  const std::string python = std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  std::string cmd = python + " '" + dir + "/" + script + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " 2>&1";
  std::string output;
  if (FILE* pipe = popen(cmd.c_str(), "r")) {
    char buf[512];
    while (fgets(buf, sizeof buf, pipe)) output += buf;
    const int rc = pclose(pipe);
    if (rc == 0) return "";
    if (output.find("matplotlib") != std::string::npos)
      return product + " skipped: matplotlib is missing (apt-get install python3-matplotlib)";
    return product + " skipped: the plot script failed: " + output.substr(0, 300);
  }
  return product + " skipped: cannot start " + python;
}

}  // namespace prunegym::cli
