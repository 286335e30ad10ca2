// The "cora" source: the Cora citation graph in its plain-text form (cora.content, cora.cites
// under data.path), with data.graph's split sizes.

#include <prunegym/networks/data_source.h>

#include <filesystem>
#include <sstream>

namespace fs = std::filesystem;

namespace prunegym {

namespace {

class CoraSource : public DataSource {
 public:
  bool reads_files() const override { return true; }

  DataSplits load(const DataOptions& o) const override {
    return node_splits(o, std::make_shared<Graph>(read_cora(o.path)));
  }

  std::string fingerprint(const DataOptions& o) const override {
    std::ostringstream os;
    os << node_split_fingerprint(o.graph) << ";path=" << o.path;
    for (const char* name : {"cora.content", "cora.cites"}) {
      std::error_code ec;
      os << ";" << name << "=" << fs::file_size(fs::path(o.path) / name, ec);
    }
    return os.str();
  }
};

}  // namespace

PRUNEGYM_REGISTER(
    DataSourceRegistry, "cora", [] { return std::make_unique<CoraSource>(); },
    "the Cora citation graph, plain-text form (cora.content, cora.cites)");

}  // namespace prunegym
