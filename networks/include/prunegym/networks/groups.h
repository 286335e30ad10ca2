#pragma once
/// Channel groups: the output channels of one prunable layer together with everything that must
/// go when one of them is removed, so that masking a channel is exactly removing it.
///
/// Removing output channel c of a producer masks row c of its weight (a convolution's filter, a
/// linear layer's neuron) and, in every consumer, the input columns that read channel c: input
/// channel c of a convolution, columns [c x block, (c + 1) x block) of a linear layer (block = the
/// positions per channel where a flatten sits between them, else 1). A removed channel's output is
/// then a constant (its bias, or its batch norm's shift) that no consumer reads, so the network
/// computes the same function as one without the channel. Batch norms between producer and
/// consumer lose their channel c with it (listed, not masked: they no longer matter).
///
/// By default channels tied by a residual addition are not grouped: a block's last convolution, the
/// stem and the shortcut of a residual network, and the classifier keep their outputs (the
/// block-internal channels are what AMC prunes in residual networks). With network.coupled, each
/// set of tied producers (a stage's shortcut or stem and its blocks' last convolutions) is one
/// more group: channel c goes from all of them and from everything that reads their sum.
///
/// Compaction (compact_network) then drops the removed channels physically: smaller weight
/// tensors, batch norms and biases, the same function.

#include <prunegym/networks/model.h>
#include <prunegym/networks/train.h>

#include <torch/script.h>

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace prunegym {

// ChannelConsumer and ChannelGroup are declared in model.h (NetworkImpl::channel_groups()).

/// {"producer", "channels", "consumers": [{"layer", "block"}], "batch_norms"} with layer names,
/// and "tied": [layer] for a coupled group.
nlohmann::json channel_group_json(const ChannelGroup& group, const NetworkImpl& net);

/// Every producer of the group's channels: the first, then the tied ones.
std::vector<size_t> group_producers(const ChannelGroup& group);

/// The groups of a network (NetworkImpl::channel_groups()), checked against its weight shapes:
/// throws std::logic_error when a consumer's input columns do not match the producer's channels.
std::vector<ChannelGroup> checked_channel_groups(const NetworkImpl& net);

/// Masks output channels `channels` of the group's producer and the matching input columns of its
/// consumers, and zeroes those weights.
void remove_channels(NetworkImpl& net, const ChannelGroup& group, const std::vector<int64_t>& channels);

/// Output channels of the group still present (a row of the producer's mask with a one).
std::vector<int64_t> surviving_channels(const NetworkImpl& net, const ChannelGroup& group);

/// Channels of the group that some consumer still reads (an unmasked input column in any
/// consumer), in order. The others can go without changing what the network computes; at least
/// one channel is kept so that every shape stays valid.
std::vector<int64_t> read_channels(const NetworkImpl& net, const ChannelGroup& group);

/// The network with every unread channel physically removed: the producer's rows (and bias), the
/// batch norms' entries and the consumers' input columns sliced out. It computes the same function
/// as the masked network with smaller tensors (its parameter names are unchanged).
struct CompactNetwork {
  std::map<std::string, torch::Tensor> tensors;  ///< the sliced parameters and buffers, by name
  int64_t removed_channels = 0;                  ///< over all groups
  int64_t parameters = 0;                        ///< every parameter of the compact network
  int64_t prunable = 0;                          ///< weights of its prunable layers
  int64_t macs = 0;  ///< MACs per sample of its prunable layers, as a dense runtime does them
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;  ///< each prunable weight's new shape
  /// How each sliced tensor was cut from the full one: (dimension, kept indices), in order.
  std::map<std::string, std::vector<std::pair<int64_t, std::vector<int64_t>>>> slices;
  /// {"removed_channels", "parameters", "prunable", "macs", "shapes": {layer: shape}}
  nlohmann::json to_json() const;
};
CompactNetwork compact_network(const NetworkImpl& net);

/// Writes the compact network as TorchScript (torch.jit.load opens it) and returns what it holds:
/// from the network's own TorchScript form, or for TorchScript imports the imported module with
/// the sliced tensors swapped in (NetworkImpl::save_replaced). Nothing (and no file) when it
/// cannot be written, with the reason in `why`: graph networks, an import whose shrunk group has a
/// depthwise consumer, or whose code fixes a shape the removed channels change.
std::optional<CompactNetwork> save_compact_model(const NetworkImpl& net, const std::string& path,
                                                 std::string* why = nullptr);

/// The module save_scripted writes (model.h), in memory.
torch::jit::Module scripted_module(const torch::nn::Module& net, const std::string& forward_source,
                                   const std::map<std::string, torch::Tensor>& replace = {});

/// Evaluates `net` on its compact form (the same function with the removed channels gone, in eval
/// mode): nothing when no channel is removed or the network has no TorchScript form of its own.
/// The sliced copy is built anew on every call, so it always reflects the current weights.
std::optional<EvalResult> evaluate_compact(const NetworkImpl& net, const Tensors& data, int64_t batch_size);

/// Trains `net` as train() does (the same batches from `rng`, the same optimizer and options) on
/// its compact form: a TorchScript copy without the removed channels runs forward and backward,
/// its own optimizer carries the sliced state of `optimizer`, and the weights, batch norm
/// statistics and optimizer state are written back, so `net` and `optimizer` end as train() would
/// leave them: the removed entries take the zero-gradient steps a masked step gives them (weight
/// decay and momentum), so masked and compact retraining end in the same state.
/// Nothing (and nothing changed) when no channel is removed, the network has no TorchScript form
/// of its own (graph networks, TorchScript imports) or the optimizer is not Adam, SGD or Adagrad.
std::optional<TrainStats> train_compact(NetworkImpl& net, torch::optim::Optimizer& optimizer, const Tensors& data,
                                        const TrainOptions& options, std::mt19937_64& rng,
                                        const EpochCallback& on_epoch = {}, const StepCallback& on_step = {});

}  // namespace prunegym
