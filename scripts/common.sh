# Shared by scripts/demo, scripts/test and scripts/bench: install what is missing, then build.
# Sourced, not run. Idempotent: with everything in place it only runs an incremental build.

set -euo pipefail

PRUNEGYM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${PRUNEGYM_BUILD_DIR:-$PRUNEGYM_ROOT/build}"

# Debian packages the project needs. libopenblas0-openmp matters for speed: without it LibTorch
# runs on the reference BLAS, about 10x slower.
PRUNEGYM_PACKAGES=(
  cmake g++ make pkg-config zlib1g-dev
  libtorch-dev libopenblas0-openmp
  libzmq3-dev cppzmq-dev libboost-dev nlohmann-json3-dev catch2 libcli11-dev
  dataset-fashion-mnist
  python3-zmq python3-numpy python3-torch python3-torchvision python3-matplotlib python3-pytest
)

# What only scripts/test needs: clang and libFuzzer for the bridge's fuzz target, clang-format for
# the style check; python3-onnx for the ONNX export check; Slurm and munge
# for the single-node cluster the Slurm back-end test starts.
PRUNEGYM_TEST_PACKAGES=(clang clang-format libclang-rt-dev slurmctld slurmd slurm-client munge python3-onnx)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# install_missing [test]: the project's packages, plus the test-only ones with "test".
install_missing() {
  local missing=() wanted=("${PRUNEGYM_PACKAGES[@]}")
  if [ "${1:-}" = test ]; then wanted+=("${PRUNEGYM_TEST_PACKAGES[@]}"); fi
  for p in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  log "installing missing Debian packages: ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then sudo=(sudo); else
      echo "error: packages ${missing[*]} are missing and this user is not root and has no sudo." >&2
      echo "Install them as root: apt-get install ${missing[*]}" >&2
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
    log "apt-get install failed; refreshing the package lists and trying once more"
    "${sudo[@]}" apt-get update
    "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
  fi
}

# build_project [TARGET...]: configures once, then builds the named targets (all when none): the
# demo builds only the command-line tool, the tests build everything.
build_project() {
  local jobs targets=()
  jobs="$(nproc 2>/dev/null || echo 2)"
  if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
    log "configuring (Release) in $BUILD_DIR"
    cmake -S "$PRUNEGYM_ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
  fi
  if [ $# -gt 0 ]; then targets=(--target "$@"); fi
  log "building ${*:-everything} (the first build takes several minutes: LibTorch headers are heavy)"
  cmake --build "$BUILD_DIR" -j "$jobs" "${targets[@]}"
}
