// A TorchScript module (batch norm and a residual add, written by the test through Debian's
// python3-torch) through reset, step, snapshot/restore, fine-tuning and export.

#include "helpers.h"

#include <prunegym/core/errors.h>
#include <prunegym/core/hash.h>
#include <prunegym/env/prune_env.h>
#include <prunegym/networks/torchscript.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace prunegym;
using Catch::Matchers::Contains;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* const kWriter = R"(import sys, torch
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(8)
        self.block = torch.nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.block_bn = torch.nn.BatchNorm2d(8)
        self.head = torch.nn.Linear(8, 10)
    def forward(self, x):
        x = torch.relu(self.bn(self.stem(x)))
        x = torch.relu(x + self.block_bn(self.block(x)))
        return self.head(torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))
torch.manual_seed(0)
torch.jit.script(Net()).save(sys.argv[1])
)";

/// Writes the module with python3; "" when python3-torch is not there.
std::string write_module(const fs::path& dir) {
  const fs::path script = dir / "write_model.py", model = dir / "model.pt";
  std::ofstream(script) << kWriter;
  const std::string cmd = "/usr/bin/python3 " + script.string() + " " + model.string() + " > /dev/null 2>&1";
  return std::system(cmd.c_str()) == 0 && fs::exists(model) ? model.string() : "";
}

}  // namespace

TEST_CASE("a TorchScript module is reset, stepped, snapshotted, fine-tuned and exported", "[torchscript][env]") {
  const fs::path dir = test::scratch_dir("torchscript");
  const std::string model = write_module(dir);
  if (model.empty()) {
    WARN("python3-torch is not installed: the TorchScript round trip cannot run here");
    return;
  }
  PruneEnv env(test::tiny_config({{"network", {{"name", "torchscript"}, {"path", model}, {"layers", json::array()}}}}));
  REQUIRE(env.episode_layers() == std::vector<std::string>{"stem.weight", "block.weight", "head.weight"});
  CHECK(env.dense().test_accuracy > 0.3);  // pretrained through the module like any network
  env.reset({2});
  env.step(Action(10));
  const auto snap = env.snapshot();
  const auto stats = env.network().named_buffers()["bn_running_mean"].clone();
  const auto a = env.step(Action(12));
  env.restore(snap);
  CHECK(torch::equal(env.network().named_buffers()["bn_running_mean"], stats));  // batch norm statistics too
  const auto b = env.step(Action(12));
  CHECK(a.observation == b.observation);
  CHECK(a.reward == b.reward);
  env.step(Action(5));

  const double before = env.network().sparsity();
  env.finetune(TrainOptions().set_epochs(1).set_batch_size(100));
  CHECK(env.network().sparsity() == Approx(before));  // masked weights stay zero through fine-tuning
  const std::string exported = (dir / "pruned.pt").string();
  env.save_network(exported);
  auto loaded = torch::jit::load(exported);
  int64_t remaining = 0;
  for (const auto& p : loaded.named_parameters())
    if (p.value.dim() >= 2) remaining += p.value.ne(0).sum().item<int64_t>();
  CHECK(remaining == env.network().remaining_prunable());
}

TEST_CASE("glob patterns and file hashes behave", "[torchscript]") {
  CHECK(glob_match("layer1.*", "layer1.0.conv1.weight"));
  CHECK(glob_match("*.conv?.weight", "layer1.0.conv2.weight"));
  CHECK_FALSE(glob_match("fc.*", "layer1.fc"));
  CHECK(glob_match("*", ""));
  const fs::path dir = test::scratch_dir("hash");
  std::ofstream(dir / "a") << "one";
  std::ofstream(dir / "b") << "two";
  CHECK(file_hash((dir / "a").string()) != file_hash((dir / "b").string()));
  CHECK(file_hash((dir / "a").string()).size() == 16);
  CHECK(file_hash((dir / "missing").string()).empty());
  CHECK_THROWS_WITH(test::tiny_config({{"network", {{"name", "torchscript"}, {"layers", json::array()}}}}),
                    Contains("network.path"));
  CHECK_THROWS_WITH(test::tiny_config({{"network", {{"path", "x.pt"}}}}), Contains("torchscript"));
}
