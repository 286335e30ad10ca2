#include <prunegym/core/errors.h>
#include <prunegym/networks/torchscript.h>

#include <filesystem>

namespace fs = std::filesystem;

namespace prunegym {

bool glob_match(const std::string& pattern, const std::string& name) {
  size_t p = 0, n = 0, star = std::string::npos, resume = 0;
  while (n < name.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == name[n])) {
      ++p;
      ++n;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = n;
    } else if (star != std::string::npos) {
      p = star + 1;
      n = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

namespace {

bool selected(const NetworkOptions& o, const std::string& name) {
  bool in = o.include.empty();
  for (const auto& g : o.include) in = in || glob_match(g, name);
  for (const auto& g : o.exclude) in = in && !glob_match(g, name);
  return in;
}

torch::jit::Module load_module(const std::string& path) {
  if (path.empty()) throw ConfigError("network.path: a torchscript network needs the module file (torch.jit.save)");
  if (!fs::exists(path))
    throw DataError("network.path " + path +
                    " does not exist; write it from Python with torch.jit.save(torch.jit.script("
                    "model), path) or python/export_model.py");
  try {
    return torch::jit::load(path, torch::kCPU);
  } catch (const c10::Error& e) {
    throw DataError("network.path " + path + " is not a TorchScript module (" + e.what_without_backtrace() +
                    "); save it with torch.jit.save, not torch.save");
  }
}

}  // namespace

TorchScriptNetworkImpl::TorchScriptNetworkImpl(const NetworkOptions& o, InputShape input, int64_t classes)
    : module_(load_module(o.path)) {
  if (input.graph) throw ConfigError("network.name: torchscript networks take image or vector data, not a graph");
  for (const auto& p : module_.named_parameters(/*recurse=*/true)) {
    auto t = register_parameter(script_name(p.name), p.value, /*requires_grad=*/true);
    if (p.value.dim() < 2 || p.name.size() < 6 || p.name.compare(p.name.size() - 6, 6, "weight") != 0) continue;
    if (!selected(o, p.name)) continue;
    auto mask = register_buffer(script_name(p.name) + "_mask", torch::ones_like(t));
    add_prunable({p.name, t, mask});
  }
  for (const auto& b : module_.named_buffers(/*recurse=*/true)) register_buffer(script_name(b.name), b.value);
  if (prunable_layers().empty())
    throw ConfigError("network.path " + o.path + ": no prunable layer (no weight with two or more dimensions" +
                      (o.include.empty() && o.exclude.empty() ? std::string() : " matches include/exclude") + ")");
  eval();
  torch::Tensor out;
  try {
    torch::NoGradGuard no_grad;
    out = forward(torch::zeros({2, input.channels, input.height, input.width}));
  } catch (const std::exception& e) {
    throw ConfigError("network.path " + o.path + ": the module fails on a batch of the data's shape [N, " +
                      std::to_string(input.channels) + ", " + std::to_string(input.height) + ", " +
                      std::to_string(input.width) + "]: " + std::string(e.what()).substr(0, 300));
  }
  train();
  if (out.dim() != 2 || out.size(1) != classes)
    throw ConfigError("network.path " + o.path + ": the module's output has shape " + c10::str(out.sizes()) +
                      " but the data has " + std::to_string(classes) + " classes (expected [N, " +
                      std::to_string(classes) + "])");
}

torch::Tensor TorchScriptNetworkImpl::forward(const torch::Tensor& x) { return module_.forward({x}).toTensor(); }

void TorchScriptNetworkImpl::train(bool on) {
  NetworkImpl::train(on);
  module_.train(on);
}

void TorchScriptNetworkImpl::save_model(const std::string& path) const { module_.save(path); }

namespace {

std::unique_ptr<NetworkImpl> make_torchscript(const NetworkOptions& o, InputShape input, int64_t classes) {
  if (!o.layers.empty()) throw ConfigError("network.layers is only allowed with network.name = \"custom\"");
  return std::make_unique<TorchScriptNetworkImpl>(o, input, classes);
}

}  // namespace

PRUNEGYM_REGISTER(NetworkRegistry, "torchscript", make_torchscript,
                  "any PyTorch model saved with torch.jit.save (network.path; include/exclude globs)");

}  // namespace prunegym
