#pragma once
/// Any PyTorch model, through TorchScript: `"network": {"name": "torchscript", "path": "model.pt"}`
/// loads a module saved with torch.jit.save (scripted or traced). Its prunable layers are every
/// convolution and linear weight (a parameter named "weight" with two or more dimensions), in
/// definition order and under the module's own names ("features.0.weight"), narrowed by the
/// `include` and `exclude` glob patterns. Training, evaluation (eval mode for batch norm), masks,
/// snapshots, fine-tuning and every criterion, reward and agent work on it as on built-in networks:
/// the module's tensors are shared with the network, never copied.

#include <prunegym/networks/model.h>

#include <torch/script.h>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace prunegym {

/// The torchscript network's options (network.path, network.include, network.exclude).
struct TorchScriptOptions {
  std::string path;                  ///< the module file (torch.jit.save); required
  std::vector<std::string> include;  ///< prune only weights matching one of these globs (none: all)
  std::vector<std::string> exclude;  ///< never prune weights matching these globs
  void read(ObjectReader& r);
  nlohmann::json to_json() const;  ///< the path, and the globs when there are any
};

class TorchScriptNetworkImpl : public NetworkImpl {
 public:
  /// Loads options.path; checks that the output has `classes` columns for the data's input shape.
  TorchScriptNetworkImpl(const TorchScriptOptions& options, InputShape input, int64_t classes);
  torch::Tensor forward(const torch::Tensor& x) override;
  void train(bool on = true) override;
  /// Saves the module with the current (pruned, fine-tuned) weights as TorchScript.
  void save_model(const std::string& path) const override;
  /// The imported module with its tensors replaced (a compact export): refused when a shrunk group
  /// has a depthwise consumer (its channel count is a constant of the graph) or when the rewritten
  /// module does not compute what the masked one does on a probe batch (a shape fixed in its code).
  std::string save_replaced(const std::string& path,
                            const std::map<std::string, torch::Tensor>& replace) const override;
  bool replaces_tensors() const override { return true; }
  /// From one probe of the module's graph on a sample of the data's shape: the output of every
  /// convolution and linear call whose weight is a module attribute. -1 for a prunable weight the
  /// probe did not find (used by another operator, or inside control flow).
  std::vector<int64_t> output_positions() const override { return output_positions_; }
  /// Proven from the inlined forward graph (networks/src/torchscript_groups.cpp): a channel that
  /// reaches an addition, a concatenation, the output or an operator prunegym does not follow is
  /// left unpruned, and channel_group_notes() says which and why.
  std::vector<ChannelGroup> channel_groups() const override { return groups_; }
  std::vector<std::string> channel_group_notes() const override { return group_notes_; }

 private:
  void trace_groups(const torch::jit::Graph& inlined);
  mutable torch::jit::Module module_;
  InputShape input_;
  std::vector<int64_t> output_positions_;
  std::vector<ChannelGroup> groups_;
  std::vector<std::string> group_notes_;
};

/// True when `name` matches the glob `pattern` ('*' any run of characters, '?' one character).
bool glob_match(const std::string& pattern, const std::string& name);

}  // namespace prunegym
