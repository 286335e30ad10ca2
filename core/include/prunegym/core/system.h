#pragma once
/// Facts about the running process that change performance: BLAS and memory. (LibTorch
/// threads are set by configure_threads in prunegym/networks/train.h.)

#include <string>

namespace prunegym {

struct BlasInfo {
  std::string library;     ///< resolved path of the loaded libblas, "" if none was found
  std::string vendor;      ///< "openblas", "reference", "mkl", "blis" or "unknown"
  bool reference = false;  ///< the slow netlib reference implementation
};

/// Inspects the BLAS LibTorch loaded.
BlasInfo detect_blas();
/// Returns the warning to print when the BLAS is the reference one, else "".
std::string blas_warning(const BlasInfo& info);
/// Peak resident memory of this process in MiB (VmHWM).
double peak_rss_mib();
/// Current resident memory in MiB (VmRSS).
double current_rss_mib();

}  // namespace prunegym
