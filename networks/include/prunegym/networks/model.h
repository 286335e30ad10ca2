#pragma once
/// Networks with an ordered list of prunable layers. Masks are registered buffers
/// ("fc1.weight_mask"), so torch::save, .to(device) and snapshots carry them.

#include <prunegym/core/registry.h>
#include <prunegym/networks/data.h>
#include <prunegym/networks/work.h>

#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace prunegym {

/// One prunable weight tensor and its 0/1 mask (same shape, same device).
struct PrunableLayer {
  std::string name;  ///< registered parameter name, e.g. "fc1.weight": the layer id everywhere
  torch::Tensor weight;
  torch::Tensor mask;
  int64_t numel() const { return weight.numel(); }
  int64_t remaining() const;  ///< weights whose mask is 1
  double sparsity() const;    ///< fraction of weights masked out
};

/// A layer that reads the output channels of a channel group (networks/groups.h).
struct ChannelConsumer {
  size_t layer = 0;   ///< index among prunable_layers()
  int64_t block = 1;  ///< input columns per channel: the positions per channel after a flatten, else 1
  /// A depthwise convolution (one filter per channel): channel c is its row c, which passes the
  /// channel on to the group's other consumers; it loses the row, not an input column.
  bool depthwise = false;
};

/// The output channels of one prunable layer and the layers that read them: removing channel c
/// masks the producer's row c and each consumer's input columns of channel c (networks/groups.h).
struct ChannelGroup {
  size_t producer = 0;  ///< index among prunable_layers(): the first producer, the step's layer
  int64_t channels = 0;
  std::vector<ChannelConsumer> consumers;
  /// Batch-norm modules between them ("layer1.0.bn1"): the producers' own first, in producer
  /// order (producer, then tied), then any after a depthwise consumer.
  std::vector<std::string> batch_norms;
  /// Further producers of the same channels, tied to the first by residual additions (a coupled
  /// group, network.coupled): removing channel c removes row c of each of them too.
  std::vector<size_t> tied;
};

/// Base of every prunable model: a torch module plus its prunable layers in forward order.
class NetworkImpl : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  /// Floats of the largest activation one input sample produces (0 = unknown): evaluation sizes
  /// its batches from it.
  virtual int64_t activation_floats_per_sample() const { return 0; }
  /// How often each weight of each prunable layer is applied to one input, in prunable_layers()
  /// order: output height x width for a convolution, 1 for a linear layer, the node count for a
  /// layer applied to every node of a graph. A layer's MACs per sample are this times its weights
  /// (networks/cost.h). Empty when the network cannot tell.
  virtual std::vector<int64_t> output_positions() const { return {}; }
  /// The channel groups structured criteria may prune (networks/groups.h); none by default.
  virtual std::vector<ChannelGroup> channel_groups() const { return {}; }
  /// Why prunable layers produce no group ("layer: reason"), where the network knows (imports).
  virtual std::vector<std::string> channel_group_notes() const { return {}; }
  /// The forward pass as TorchScript source reading the network's tensors (save_scripted), or
  /// empty when the network has no TorchScript form of its own (graph networks, imports).
  virtual std::string script_forward() const { return {}; }
  /// True when the network's own evaluation outruns its compact TorchScript copy even with half
  /// of the channels gone (the residual networks fold batch norm into their convolutions):
  /// env.evaluation.compact "auto" then evaluates the masked network (networks/groups.h).
  virtual bool evaluates_faster_masked() const { return false; }
  /// Writes the network to `path`: TorchScript (torch.jit.load opens it) from script_forward(),
  /// the imported module for TorchScript imports, else a LibTorch archive with weights and masks.
  virtual void save_model(const std::string& path) const;
  /// For networks without a script_forward() of their own: writes the network as save_model()
  /// does, with the tensors in `replace` (by their named_parameters()/named_buffers() names, e.g.
  /// groups.h compact_network's sliced ones) swapped in. Returns "" when written, else why it
  /// cannot be (and writes nothing). The default cannot: graph networks.
  virtual std::string save_replaced(const std::string& path, const std::map<std::string, torch::Tensor>& replace) const;
  /// True when save_replaced() can write the network (TorchScript imports).
  virtual bool replaces_tensors() const { return false; }

  const std::vector<PrunableLayer>& prunable_layers() const { return layers_; }
  std::vector<PrunableLayer>& prunable_layers() { return layers_; }
  /// Index of the layer with this name; throws ConfigError listing the names when absent.
  size_t layer_index(const std::string& name) const;

  /// Zeroes every masked weight (after an optimizer step).
  void apply_masks();
  /// Zeroes the gradient of every masked weight (before an optimizer step, so optimizer state
  /// such as Adam's moments never sees pruned weights).
  void mask_gradients();
  /// Sets every mask back to 1.
  void clear_masks();

  int64_t total_prunable() const;
  int64_t remaining_prunable() const;
  double sparsity() const;  ///< over all prunable weights

 protected:
  /// Registers `owner.weight` as prunable with a mask buffer "weight_mask" on the owner.
  void register_prunable(const std::string& owner_name, torch::nn::Module& owner);
  /// Adds a prunable layer whose weight and mask are already registered (imported modules).
  void add_prunable(PrunableLayer layer) { layers_.push_back(std::move(layer)); }

 private:
  std::vector<PrunableLayer> layers_;
};
using NetworkPtr = std::shared_ptr<NetworkImpl>;

/// One element of a layer stack. `out == 0` on the last linear layer means "number of classes".
struct LayerSpec {
  enum class Kind { conv, linear, gcn, maxpool, flatten, relu, leaky_relu, sigmoid, tanh };
  Kind kind = Kind::linear;
  int64_t out = 0;
  int64_t kernel = 3;
  int64_t padding = 0;
  int64_t stride = 1;

  static LayerSpec conv(int64_t out, int64_t kernel, int64_t padding = 0);
  static LayerSpec linear(int64_t out = 0);
  /// A graph convolution (needs graph data): adjacency @ (h W^T) + b over every node.
  static LayerSpec gcn(int64_t out);
  static LayerSpec maxpool(int64_t kernel = 2);
  static LayerSpec flatten();
  static LayerSpec activation(Kind kind);
  /// Parses "conv:64:3:1", "linear:300", "gcn:32", "maxpool:2", "flatten", "relu", ... (the config form).
  static LayerSpec parse(const std::string& text);
  std::string to_string() const;
};

/// A feed-forward stack of conv/linear/gcn layers and activations. Conv layers are named conv1,
/// conv2, ..., linear layers fc1, fc2, ... and graph convolutions gcn1, gcn2, ... in order; all
/// their weights are prunable.
///
/// With graph input (InputShape::graph) the stack runs on every node's features, and forward()
/// takes node ids and returns their rows; the graph is shared, never copied or saved.
class LayerStackImpl : public NetworkImpl {
 public:
  LayerStackImpl(std::vector<LayerSpec> specs, InputShape input, int64_t classes);
  torch::Tensor forward(const torch::Tensor& x) override;
  const std::vector<LayerSpec>& specs() const { return specs_; }
  int64_t activation_floats_per_sample() const override { return largest_activation_; }
  std::vector<int64_t> output_positions() const override { return output_positions_; }
  /// Each prunable layer but the last feeds the next one: one group per producer.
  std::vector<ChannelGroup> channel_groups() const override { return groups_; }
  /// Empty for graph networks (they keep the LibTorch archive: the graph is not part of them).
  std::string script_forward() const override;

 private:
  std::vector<LayerSpec> specs_;
  std::vector<torch::nn::Conv2d> convs_;
  std::vector<torch::nn::Linear> linears_;
  std::vector<torch::nn::Linear> gcns_;  ///< weight [out, in] and bias, applied by gcn_propagate
  std::shared_ptr<const Graph> graph_;
  torch::Tensor graph_input_;       ///< the graph's features as sparse COO when mostly zeros
  size_t select_after_ = 0;         ///< graph input: node rows are picked after this many specs
  int64_t largest_activation_ = 0;  ///< image input: floats of the largest per-sample activation
  std::vector<int64_t> output_positions_;
  std::vector<ChannelGroup> groups_;
};

/// Description of a network to build: the kind (config key network.name), the seed of its initial
/// weights, and the kind's own options: every other key of the config's network section. Each kind
/// declares `struct Options` next to its class (StackOptions below, ResidualOptions in resnet.h,
/// TorchScriptOptions in torchscript.h) and registers a parser for them, so the config stores them
/// canonical (defaults left out) and the kind's factory reads them typed with
/// read_options<Options>(options.options, "network").
struct NetworkOptions {
  std::string name = "lenet300";
  uint64_t init_seed = 0;                             ///< seed of the initial weights
  nlohmann::json options = nlohmann::json::object();  ///< the kind's keys, e.g. {"width": 0.5}
};

/// The options of the layer stacks: `layers` for "custom" (required, non-empty); the built-in
/// stacks take none.
struct StackOptions {
  std::vector<std::string> layers;
  void read(ObjectReader& r);
  nlohmann::json to_json() const;
};

/// Networks by name (config key network.name). A factory builds the network for the data's input
/// shape and class count; build_network seeds its initial weights from NetworkOptions::init_seed.
/// What a kind says of itself (registry traits), so that no central code tests its name:
///   "options":  the network keys it reads (a key another kind reads is refused with their names);
///   "files":    the option keys that name files it reads (their bytes key the dense-model cache, and
///               a server checks that the paths are allowed);
///   "limits":   {option key: server work limit} for numeric options a server bounds.
using NetworkRegistry = Registry<NetworkImpl, const NetworkOptions&, InputShape, int64_t>;
template <>
NetworkRegistry& NetworkRegistry::instance();

/// The layer specs of a layer-stack network (a built-in stack or "custom"); ConfigError otherwise.
std::vector<LayerSpec> network_specs(const NetworkOptions& options);
/// True for the built-in layer stacks and "custom".
bool is_layer_stack(const NetworkOptions& options);
/// Checks the name (and a stack's layer strings) without building anything.
void validate_network(const NetworkOptions& options);
/// Names of the registered networks.
std::vector<std::string> network_names();
/// The files the network reads (its "files" trait), as (config key, path); none for most kinds.
std::vector<std::pair<std::string, std::string>> network_files(const NetworkOptions& options);
/// What building the network asks of a server: a stack's layer count and layer widths, and the
/// options named by the kind's "limits" trait.
std::vector<WorkItem> network_work(const NetworkOptions& options);
/// Builds a registered network with deterministic initial weights.
NetworkPtr build_network(const NetworkOptions& options, InputShape input, int64_t classes);

/// Writes `net`'s parameters and learned buffers (masks left out: pruned weights are already zero)
/// into a TorchScript module whose forward is `forward_source` (TorchScript code that reads them as
/// self.<name with dots as underscores>), and saves it to `path`. A tensor named in `replace` is
/// written instead of the network's own (the compact export's sliced tensors, networks/groups.h).
void save_scripted(const torch::nn::Module& net, const std::string& forward_source, const std::string& path,
                   const std::map<std::string, torch::Tensor>& replace = {});
/// "layer1.0.conv1.weight" -> "layer1_0_conv1_weight": the attribute names save_scripted gives.
std::string script_name(std::string name);

/// True for the buffers that hold masks (named "...weight_mask"); other buffers (batch-norm
/// statistics) are learned state.
bool is_mask_buffer(const std::string& name);

/// Copies parameters and buffers (masks included) from `from` into `to` (same architecture).
void copy_state(const NetworkImpl& from, NetworkImpl& to);
/// Deep copies of every parameter and buffer, in registration order.
std::vector<torch::Tensor> clone_state(const NetworkImpl& net);
/// Writes tensors produced by clone_state back into the network.
void load_state(NetworkImpl& net, const std::vector<torch::Tensor>& state);

}  // namespace prunegym
