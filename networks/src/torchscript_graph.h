#pragma once
// Reading an imported module's TorchScript graph (networks/src/torchscript*.cpp only).

#include <prunegym/networks/model.h>

#include <torch/script.h>

#include <string>
#include <vector>

namespace prunegym::script {

/// "layer1.0.conv1.weight" for a value read by a chain of attribute reads from the module itself
/// ("" when it is computed some other way).
std::string attribute_path(const torch::jit::Value* v, const torch::jit::Value* self);

/// The weight operand of a convolution or linear call (the second input of conv/linear, or a
/// transposed attribute multiplied from the right: matmul, mm, addmm with W.t()); null otherwise.
const torch::jit::Value* weight_operand(const torch::jit::Node* n);

bool is_convolution(c10::Symbol kind);

/// The channel groups an inlined forward graph proves, and for every prunable layer that produces
/// no group, why (`notes`, "layer: reason").
struct TracedGroups {
  std::vector<ChannelGroup> groups;
  std::vector<std::string> notes;
};

/// Follows each prunable layer's output channels through the graph: batch norms, activations,
/// pooling, dropout and flatten pass them on; a convolution or linear layer reading them is a
/// consumer, a depthwise convolution passes them on as a depthwise consumer. A channel added to,
/// multiplied by or concatenated with another tensor, returned, used in a loop or read by any
/// other operator is left unpruned (the note says which).
/// `module` answers the `if`s on its bool attributes (`self.use_res_connect`, `self.inplace`).
TracedGroups trace_channel_groups(const torch::jit::Module& module, const torch::jit::Graph& graph,
                                  const std::vector<PrunableLayer>& layers);

}  // namespace prunegym::script
