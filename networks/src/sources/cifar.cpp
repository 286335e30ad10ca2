// CIFAR-10 and CIFAR-100 in their binary form (the "binary version" archives):
//   CIFAR-10:  data_batch_1.bin .. data_batch_5.bin, test_batch.bin; records of 1 label byte + 3072 pixels
//   CIFAR-100: train.bin, test.bin; records of a coarse and a fine label byte + 3072 pixels
// Pixels are stored plane by plane (1024 red, 1024 green, 1024 blue), row-major 32x32.
// The "cifar10" and "cifar100" sources (data.coarse_labels: CIFAR-100's 20 superclasses).

#include <prunegym/core/errors.h>
#include <prunegym/networks/data_source.h>

#include <algorithm>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace prunegym {

namespace {

constexpr int64_t kPixels = 3 * 32 * 32;

std::string missing_hint(bool hundred, const std::string& folder) {
  return std::string(hundred ? "CIFAR-100" : "CIFAR-10") +
         " is not packaged on this machine: download the binary version (" +
         (hundred ? "cifar-100-binary.tar.gz" : "cifar-10-binary.tar.gz") +
         " from https://www.cs.toronto.edu/~kriz/cifar.html), unpack it and point data.path at the folder holding " +
         (hundred ? "train.bin and test.bin" : "data_batch_1.bin .. data_batch_5.bin and test_batch.bin") +
         " (looked in " + folder + ")";
}

/// One binary file: pixels as uint8 [N, 3, 32, 32] and labels (the fine ones for CIFAR-100 unless `coarse`).
Tensors read_cifar_file(const fs::path& path, bool hundred, bool coarse) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError("cannot open " + path.string());
  const int64_t label_bytes = hundred ? 2 : 1, record = label_bytes + kPixels;
  std::error_code ec;
  const auto size = static_cast<int64_t>(fs::file_size(path, ec));
  if (ec || size == 0 || size % record != 0)
    throw DataError(path.string() + ": " + std::to_string(size) + " bytes is not a whole number of " +
                    std::to_string(record) + "-byte CIFAR records (truncated, or the Python/Matlab version?)");
  const int64_t n = size / record;
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (!in.read(reinterpret_cast<char*>(bytes.data()), size)) throw DataError("cannot read " + path.string());
  auto x = torch::empty({n, 3, 32, 32}, torch::kUInt8);
  auto y = torch::empty({n}, torch::kInt64);
  auto* px = x.data_ptr<uint8_t>();
  auto* py = y.data_ptr<int64_t>();
  const int64_t classes = hundred ? (coarse ? 20 : 100) : 10;
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* r = bytes.data() + i * record;
    const int64_t label = hundred ? r[coarse ? 0 : 1] : r[0];
    if (label >= classes)
      throw DataError(path.string() + ": record " + std::to_string(i) + " has label " + std::to_string(label) +
                      " (expected 0.." + std::to_string(classes - 1) + ")");
    py[i] = label;
    std::copy(r + label_bytes, r + record, px + i * kPixels);
  }
  return {x, y};
}

Tensors read_all(const std::vector<fs::path>& files, bool hundred, bool coarse) {
  std::vector<torch::Tensor> xs, ys;
  for (const auto& f : files) {
    auto t = read_cifar_file(f, hundred, coarse);
    xs.push_back(t.x);
    ys.push_back(t.y);
  }
  return {torch::cat(xs), torch::cat(ys)};
}

}  // namespace

std::pair<Tensors, Tensors> read_cifar(const std::string& folder, bool hundred, bool coarse) {
  std::vector<fs::path> train_files;
  fs::path test_file;
  if (hundred) {
    train_files = {fs::path(folder) / "train.bin"};
    test_file = fs::path(folder) / "test.bin";
  } else {
    for (int b = 1; b <= 5; ++b) train_files.push_back(fs::path(folder) / ("data_batch_" + std::to_string(b) + ".bin"));
    test_file = fs::path(folder) / "test_batch.bin";
  }
  for (const auto& f : train_files)
    if (!fs::exists(f)) throw DataError(f.filename().string() + " not found. " + missing_hint(hundred, folder));
  if (!fs::exists(test_file))
    throw DataError(test_file.filename().string() + " not found. " + missing_hint(hundred, folder));
  return {read_all(train_files, hundred, coarse), read_all({test_file}, hundred, coarse)};
}

namespace {

class CifarSource : public PoolSource {
 public:
  explicit CifarSource(bool hundred) : hundred_(hundred) {}
  std::string default_path() const override { return hundred_ ? "data/cifar-100-binary" : "data/cifar-10-batches-bin"; }
  bool reads_files() const override { return true; }

  Pool read(const DataOptions& o) const override {
    Pool pool;
    std::tie(pool.train, pool.test) = read_cifar(o.path, hundred_, o.coarse_labels);
    pool.test = bytes_to_float(pool.test.head(o.test_limit));
    pool.classes = hundred_ ? (o.coarse_labels ? 20 : 100) : 10;
    pool.description = (hundred_ ? "CIFAR-100 " : "CIFAR-10 ") + o.path;
    return pool;
  }

  std::string fingerprint(const DataOptions& o) const override {
    std::ostringstream os;
    os << ";path=" << o.path << ";coarse=" << o.coarse_labels;
    std::error_code ec;
    std::vector<std::string> files;  // sorted: directory order is not
    for (const auto& entry : fs::directory_iterator(o.path, ec))
      if (entry.path().extension() == ".bin")
        files.push_back(entry.path().filename().string() + "=" + std::to_string(entry.file_size(ec)));
    std::sort(files.begin(), files.end());
    for (const auto& f : files) os << ";" << f;
    return os.str();
  }

 private:
  bool hundred_;
};

}  // namespace

PRUNEGYM_REGISTER(
    DataSourceRegistry, "cifar10", [] { return std::make_unique<CifarSource>(false); },
    "CIFAR-10, binary version (data_batch_1..5.bin, test_batch.bin)");
PRUNEGYM_REGISTER(
    DataSourceRegistry, "cifar100", [] { return std::make_unique<CifarSource>(true); },
    "CIFAR-100, binary version (train.bin, test.bin)");

}  // namespace prunegym
