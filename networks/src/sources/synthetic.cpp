// The "synthetic" source: smooth class prototypes plus Gaussian noise (data.synthetic), generated
// deterministically in milliseconds; the tests' data.

#include <prunegym/core/errors.h>
#include <prunegym/networks/data_source.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <sstream>

namespace prunegym {

void SyntheticOptions::read(ObjectReader& r) {
  r.get("train", train);
  r.get("test", test);
  r.get("classes", classes);
  r.get("channels", shape.channels);
  r.get("height", shape.height);
  r.get("width", shape.width);
  r.get("signal", signal);
  r.get("seed", seed);
  if (shape.channels <= 0 || shape.height <= 0 || shape.width <= 0)
    throw ConfigError("config keys '" + r.key_path("channels/height/width") + "' must be positive");
}

nlohmann::json SyntheticOptions::to_json() const {
  return {{"train", train},         {"test", test},         {"classes", classes}, {"channels", shape.channels},
          {"height", shape.height}, {"width", shape.width}, {"signal", signal},   {"seed", seed}};
}

std::pair<Tensors, Tensors> make_synthetic(const SyntheticOptions& o) {
  if (o.classes < 2) throw ConfigError("data.synthetic.classes must be at least 2");
  if (o.train < o.classes || o.test < 1) {
    throw ConfigError("data.synthetic.train must be >= classes and data.synthetic.test >= 1");
  }
  auto gen = at::detail::createCPUGenerator(o.seed);
  const auto& s = o.shape;
  // Smooth class prototypes: random low-resolution patterns upsampled to the image size, so
  // convolutions have local structure to find.
  const int64_t low_h = std::max<int64_t>(2, s.height / 3), low_w = std::max<int64_t>(2, s.width / 3);
  auto low = torch::randn({o.classes, s.channels, low_h, low_w}, gen);
  auto protos = torch::nn::functional::interpolate(low, torch::nn::functional::InterpolateFuncOptions()
                                                            .size(std::vector<int64_t>{s.height, s.width})
                                                            .mode(torch::kBilinear)
                                                            .align_corners(false));
  protos = protos / protos.flatten(1).std(1).view({o.classes, 1, 1, 1});
  auto make = [&](int64_t n) {
    auto y = torch::arange(n, torch::kInt64).remainder(o.classes);
    auto perm = torch::randperm(n, gen, torch::kInt64);
    y = y.index_select(0, perm);
    auto x = protos.index_select(0, y) * o.signal + torch::randn({n, s.channels, s.height, s.width}, gen);
    return Tensors{x.contiguous(), y};
  };
  auto train = make(o.train);
  auto test = make(o.test);
  return {train, test};
}

namespace {

class SyntheticSource : public PoolSource {
 public:
  Pool read(const DataOptions& o) const override {
    Pool pool;
    std::tie(pool.train, pool.test) = make_synthetic(o.synthetic);
    pool.test = pool.test.head(o.test_limit);
    pool.classes = o.synthetic.classes;
    pool.description = "synthetic";
    return pool;
  }

  std::string fingerprint(const DataOptions& o) const override {
    const auto& s = o.synthetic;
    std::ostringstream os;
    os << ";train=" << s.train << ";classes=" << s.classes << ";shape=" << s.shape.channels << "x" << s.shape.height
       << "x" << s.shape.width << ";signal=" << s.signal << ";seed=" << s.seed;
    return os.str();
  }

  std::vector<WorkItem> work(const DataOptions& o) const override {
    const auto& s = o.synthetic;
    return {{"data.synthetic.train", static_cast<double>(s.train), "samples"},
            {"data.synthetic.test", static_cast<double>(s.test), "samples"},
            {"data.synthetic input size", static_cast<double>(s.shape.numel()), "features"}};
  }
};

}  // namespace

PRUNEGYM_REGISTER(
    DataSourceRegistry, "synthetic", [] { return std::make_unique<SyntheticSource>(); },
    "generated class prototypes plus noise (data.synthetic)");

}  // namespace prunegym
