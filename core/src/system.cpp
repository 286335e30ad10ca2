#include <prunegym/core/system.h>

#include <dlfcn.h>
#include <link.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace prunegym {

namespace {

int collect_blas(struct dl_phdr_info* info, size_t, void* data) {
  const std::string name = info->dlpi_name ? info->dlpi_name : "";
  if (name.find("libblas.so") != std::string::npos) *static_cast<std::string*>(data) = name;
  return 0;
}

double status_mib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::strtod(line.c_str() + key.size(), nullptr) / 1024.0;
  }
  return 0.0;
}

}  // namespace

BlasInfo detect_blas() {
  BlasInfo info;
  std::string loaded;
  dl_iterate_phdr(collect_blas, &loaded);
  if (loaded.empty()) {
    // LibTorch built against MKL or a static BLAS: ask the process itself.
    info.vendor = dlsym(RTLD_DEFAULT, "mkl_get_version") ? "mkl" : "unknown";
    return info;
  }
  std::error_code ec;
  info.library = std::filesystem::canonical(loaded, ec).string();
  if (ec) info.library = loaded;
  void* handle = dlopen(loaded.c_str(), RTLD_LAZY | RTLD_NOLOAD);
  auto has = [&](const char* symbol) { return handle && dlsym(handle, symbol) != nullptr; };
  if (has("openblas_get_config")) {
    info.vendor = "openblas";
  } else if (has("bli_info_get_version_str")) {
    info.vendor = "blis";
  } else if (has("mkl_get_version") || has("MKL_Get_Version")) {
    info.vendor = "mkl";
  } else {
    info.vendor = "reference";
    info.reference = true;
  }
  if (handle) dlclose(handle);
  return info;
}

std::string blas_warning(const BlasInfo& info) {
  if (!info.reference) return "";
  return "warning: LibTorch is running on the reference BLAS (" + info.library +
         "), about 10x slower than OpenBLAS. Fix: apt-get install libopenblas0-openmp "
         "(or select it with update-alternatives --config libblas.so.3-x86_64-linux-gnu).";
}

double peak_rss_mib() { return status_mib("VmHWM"); }
double current_rss_mib() { return status_mib("VmRSS"); }

}  // namespace prunegym
