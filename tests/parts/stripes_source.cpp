// A data source in one file: 12x12 images of class k hold a bright horizontal band at rows
// 3k..3k+2, plus noise (4 classes, 800 training and 200 test images, deterministic). Config:
// "data": {"source": "test_stripes"}. Used by test_parts.cpp.

#include <prunegym/networks/data_source.h>

#include <ATen/CPUGeneratorImpl.h>

namespace prunegym::test {

namespace {

class StripesSource : public PoolSource {
 public:
  Pool read(const DataOptions& o) const override {
    auto gen = at::detail::createCPUGenerator(17);
    auto make = [&](int64_t n) {
      auto y = torch::arange(n, torch::kInt64).remainder(4);
      auto x = torch::randn({n, 1, 12, 12}, gen) * 0.5;
      for (int64_t i = 0; i < n; ++i) x[i][0].narrow(0, 3 * y[i].item<int64_t>(), 3).add_(1.5);
      return Tensors{x, y};
    };
    Pool pool;
    pool.train = make(800);
    pool.test = make(200).head(o.test_limit);
    pool.classes = 4;
    pool.description = "stripes";
    return pool;
  }
  std::string fingerprint(const DataOptions&) const override { return ";stripes=1"; }
  std::vector<WorkItem> work(const DataOptions&) const override { return {{"test_stripes images", 1000.0, "samples"}}; }
};

}  // namespace

PRUNEGYM_REGISTER(
    DataSourceRegistry, "test_stripes", [] { return std::make_unique<StripesSource>(); },
    "test: horizontal bands, 4 classes");

}  // namespace prunegym::test
