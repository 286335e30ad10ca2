// Config identity: the resolved document of every shipped config and of every variant of every
// shipped bench grid is byte-identical to the recorded one. Bench run folders, the dense-model
// cache and the committed docs/results/*/raw runs are keyed by hashes of these documents, so a
// refactor of the config code must not move a single byte. A deliberate change of the resolved
// form rewrites the record with PRUNEGYM_WRITE_RESOLVED=1 and says so in its commit.

#include <prunegym/core/json_file.h>
#include <prunegym/env/config.h>
#include <prunegym/experiments/bench_grid.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

using namespace prunegym;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kSource = PRUNEGYM_SOURCE_DIR;
const std::string kRecord = kSource + "/tests/data/resolved-configs.json";

std::vector<fs::path> json_files(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == ".json") out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

/// Every resolved document by id: "configs/x.json" for configs, "configs/bench/g.json#variant"
/// for grid variants, and "configs/bench/g.json#variant/s<seed>" for the run folders' keys.
std::map<std::string, json> resolve_all() {
  std::map<std::string, json> out;
  for (const auto& path : json_files(kSource + "/configs")) {
    json doc = Config::load(path.string()).to_json();
    doc.erase("cache_dir");
    out["configs/" + path.filename().string()] = doc;
  }
  for (const auto& path : json_files(kSource + "/configs/bench")) {
    json doc = read_json_file(path.string());
    // Plugins are named relative to a build folder; the test's own build has them.
    if (doc.contains("plugins")) doc["plugins"] = json::array({PRUNEGYM_REWARD_PLUGIN});
    const auto grid = bench::parse_grid(doc, path.parent_path().string(), path.string());
    const std::string id = "configs/bench/" + path.filename().string();
    for (const auto& v : grid.variants) out[id + "#" + v.name] = json{{"agent", v.agent}, {"config", v.config}};
    if (!grid.plugins.empty()) continue;  // their run keys name the plugin's absolute path
    for (const auto& run : bench::plan_runs(grid, grid.seeds))
      out[id + "#" + grid.variants[run.variant].name + "/s" + std::to_string(run.seed)] = run.dir;
  }
  return out;
}

}  // namespace

TEST_CASE("every shipped config and grid variant resolves to its recorded document", "[config][identity]") {
  const auto current = resolve_all();
  if (const char* w = std::getenv("PRUNEGYM_WRITE_RESOLVED"); w && std::string(w) == "1") {
    std::ofstream(kRecord) << json(current).dump(1) << "\n";
    WARN("rewrote " << kRecord);
  }
  const json record = read_json_file(kRecord);
  std::set<std::string> seen;
  for (const auto& [id, doc] : current) {
    INFO(id);
    REQUIRE(record.contains(id));  // a new config or variant: record it (see the file's header)
    CHECK(record.at(id).dump() == doc.dump());
    seen.insert(id);
  }
  for (auto it = record.begin(); it != record.end(); ++it) {
    INFO("recorded but no longer shipped: " << it.key());
    CHECK(seen.count(it.key()) == 1);
  }
  CHECK(current.size() > 60);
}
