#include <prunegym/core/errors.h>
#include <prunegym/networks/groups.h>
#include <prunegym/networks/torchscript.h>

#include "torchscript_graph.h"

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/passes/inliner.h>

#include <filesystem>
#include <map>

namespace fs = std::filesystem;

namespace prunegym {

using script::attribute_path;
using script::weight_operand;

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

void TorchScriptOptions::read(ObjectReader& r) {
  r.get("path", path);
  r.get("include", include);
  r.get("exclude", exclude);
  if (path.empty())
    throw ConfigError("config key '" + r.key_path("path") +
                      "' is required for a torchscript network (a file from torch.jit.save)");
}

nlohmann::json TorchScriptOptions::to_json() const {
  nlohmann::json out{{"path", path}};
  if (!include.empty()) out["include"] = include;
  if (!exclude.empty()) out["exclude"] = exclude;
  return out;
}

namespace {

bool selected(const TorchScriptOptions& o, const std::string& name) {
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

/// Output features of one call: the last dimension of a linear layer's output, the channel
/// dimension (1) of a convolution's.
int64_t n_features(const torch::Tensor& y, bool linear) {
  if (y.dim() == 0) return 0;
  return linear ? y.size(-1) : (y.dim() >= 2 ? y.size(1) : 0);
}

/// Runs a copy of the module's forward graph on `sample` that also returns the output of every
/// convolution and linear call; returns how often each attribute weight was applied per sample.
std::map<std::string, int64_t> probe_positions(torch::jit::Module& module, torch::jit::Graph& inlined,
                                               const torch::Tensor& sample) {
  auto graph = inlined.copy();  // gains the extra outputs
  const torch::jit::Value* self = graph->inputs().at(0);
  std::vector<torch::jit::Value*> outputs;
  std::vector<std::string> names;
  for (torch::jit::Node* n : graph->nodes()) {  // top level only: values inside blocks cannot be returned
    const torch::jit::Value* weight = weight_operand(n);
    if (!weight) continue;
    const std::string name = attribute_path(weight, self);
    if (name.empty()) continue;
    outputs.push_back(n->output());
    names.push_back(name);
  }
  std::map<std::string, int64_t> positions;
  if (outputs.empty()) return positions;
  graph->setInsertPoint(graph->return_node());
  torch::jit::Node* tuple = graph->insertNode(graph->createTuple(outputs));
  graph->eraseOutput(0);
  graph->registerOutput(tuple->output());
  torch::jit::GraphFunction probe("prunegym_probe", graph, nullptr);
  torch::NoGradGuard no_grad;
  const auto results = probe({module._ivalue(), sample}).toTuple()->elements();
  for (size_t i = 0; i < results.size(); ++i) {
    const torch::Tensor y = results[i].toTensor();
    // One sample: the output's elements over its feature/channel count.
    const auto k = outputs[i]->node()->kind();
    const bool conv = script::is_convolution(k);
    const int64_t features = n_features(y, !conv);
    positions[names[i]] += features > 0 ? y.numel() / features : 0;
  }
  return positions;
}

}  // namespace

TorchScriptNetworkImpl::TorchScriptNetworkImpl(const TorchScriptOptions& o, InputShape input, int64_t classes)
    : module_(load_module(o.path)), input_(input) {
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
  // Inlined once: the probe of the positions and the channel groups both read it.
  const auto inlined = module_.get_method("forward").graph()->copy();
  torch::jit::Inline(*inlined);
  std::map<std::string, int64_t> positions;
  try {
    positions = probe_positions(module_, *inlined, torch::zeros({1, input.channels, input.height, input.width}));
  } catch (const std::exception&) {
    positions.clear();  // MACs stay unknown (-1); the module itself ran above
  }
  for (const auto& l : prunable_layers()) {
    const auto it = positions.find(l.name);
    output_positions_.push_back(it == positions.end() ? -1 : it->second);
  }
  trace_groups(*inlined);
  train();
  if (out.dim() != 2 || out.size(1) != classes)
    throw ConfigError("network.path " + o.path + ": the module's output has shape " + c10::str(out.sizes()) +
                      " but the data has " + std::to_string(classes) + " classes (expected [N, " +
                      std::to_string(classes) + "])");
}

void TorchScriptNetworkImpl::trace_groups(const torch::jit::Graph& inlined) {
  try {
    auto traced = script::trace_channel_groups(module_, inlined, prunable_layers());
    groups_ = std::move(traced.groups);
    group_notes_ = std::move(traced.notes);
  } catch (const std::exception& e) {  // an unreadable graph: nothing is pruned by channels
    groups_.clear();
    group_notes_ = {std::string("no channel groups: the forward graph could not be followed (") +
                    std::string(e.what()).substr(0, 200) + ")"};
  }
}

torch::Tensor TorchScriptNetworkImpl::forward(const torch::Tensor& x) { return module_.forward({x}).toTensor(); }

void TorchScriptNetworkImpl::train(bool on) {
  NetworkImpl::train(on);
  module_.train(on);
}

void TorchScriptNetworkImpl::save_model(const std::string& path) const { module_.save(path); }

std::string TorchScriptNetworkImpl::save_replaced(const std::string& path,
                                                  const std::map<std::string, torch::Tensor>& replace) const {
  for (const auto& g : groups_) {
    if (static_cast<int64_t>(read_channels(*this, g).size()) == g.channels) continue;
    for (const auto& c : g.consumers)
      if (c.depthwise)
        return "the depthwise convolution " + prunable_layers()[c.layer].name +
               " keeps its channel count as a constant of the imported graph, so its group cannot shrink there";
  }
  torch::NoGradGuard no_grad;
  auto copy = module_.clone();
  const auto put = [&](const std::string& dotted) {
    const auto it = replace.find(script_name(dotted));
    if (it == replace.end()) return;
    torch::jit::Module owner = copy;
    size_t from = 0;
    for (size_t dot = dotted.find('.'); dot != std::string::npos; dot = dotted.find('.', from = dot + 1))
      owner = owner.attr(dotted.substr(from, dot - from)).toModule();
    owner.setattr(dotted.substr(from), it->second.detach().clone());
  };
  for (const auto& p : module_.named_parameters(/*recurse=*/true)) put(p.name);
  for (const auto& b : module_.named_buffers(/*recurse=*/true)) put(b.name);
  // The rewritten module must compute what the masked one does, in inference form.
  const bool was_training = is_training();
  module_.eval();
  copy.eval();
  const auto probe = torch::randn({4, input_.channels, input_.height, input_.width},
                                  torch::Generator(at::detail::createCPUGenerator(0)));
  std::string why;
  try {
    const auto want = module_.forward({probe}).toTensor(), got = copy.forward({probe}).toTensor();
    const double diff = got.sizes() == want.sizes() ? (got - want).abs().max().item<double>() : 1e9;
    if (!(diff <= 1e-4 * (1.0 + want.abs().max().item<double>())))
      why = "the module with the smaller tensors computes something else (max difference " + std::to_string(diff) +
            "): its code fixes a shape the removed channels change";
  } catch (const std::exception& e) {
    why = "the module with the smaller tensors fails (its code fixes a shape the removed channels change): " +
          std::string(e.what()).substr(0, 200);
  }
  module_.train(was_training);
  if (why.empty()) copy.save(path);
  return why;
}

namespace {

std::unique_ptr<NetworkImpl> make_torchscript(const NetworkOptions& o, InputShape input, int64_t classes) {
  return std::make_unique<TorchScriptNetworkImpl>(read_options<TorchScriptOptions>(o.options, "network"), input,
                                                  classes);
}

nlohmann::json parse_torchscript(const nlohmann::json& j, const std::string& path) {
  return read_options<TorchScriptOptions>(j, path).to_json();
}

}  // namespace

PRUNEGYM_REGISTER(NetworkRegistry, "torchscript", make_torchscript,
                  "any PyTorch model saved with torch.jit.save (network.path; include/exclude globs)",
                  parse_torchscript,
                  nlohmann::json{{"options", nlohmann::json::array({"path", "include", "exclude"})},
                                 {"files", nlohmann::json::array({"path"})}});

}  // namespace prunegym
