#pragma once
/// Residual networks with batch norm, pruned like every network: each convolution and the
/// classifier is a prunable layer, in definition order, named as torchvision names them
/// ("layer1.0.conv1.weight", "layer1.0.downsample.0.weight", "fc.weight").
///
///   ImageNet layout (7x7 stem, max-pool, four stages of 64/128/256/512 channels):
///     resnet18  basic blocks [2, 2, 2, 2]:      21 prunable layers
///     resnet50  bottlenecks  [3, 4, 6, 3]:      54 prunable layers (PuRL's 108-dim state)
///   CIFAR layout (3x3 stem, three stages of 16/32/64 channels, basic blocks):
///     resnet20  [3, 3, 3]:                      22 prunable layers
///     resnet56  [9, 9, 9]:                      58 prunable layers
///
/// Input channels and classes follow the data; `width` multiplies every channel count and keeps
/// the layer count. Batch norm trains in train mode and evaluates with its running statistics;
/// the statistics are buffers, so snapshots, resets and rewinding carry them.
///
/// Speed (docs/performance.md): convolution weights and activations are channels-last (oneDNN's
/// fast layout on CPU; masks stay in the standard layout, so index-based pruning is unchanged), and
/// evaluation folds each batch norm into its convolution (one convolution with a bias instead of a
/// convolution and a normalisation). PRUNEGYM_RESNET_LAYOUT=contiguous and PRUNEGYM_RESNET_FOLD=0
/// switch these off, to measure them.

#include <prunegym/networks/model.h>

#include <torch/torch.h>

#include <string>
#include <vector>

namespace prunegym {

/// The options of the residual networks and MobileNet-V2 (network.width, network.stem).
struct ResidualOptions {
  double width = 1.0;    ///< channel multiplier in (0, 16]; the layer count is unchanged
  std::string stem;      ///< "imagenet", "cifar", or "" (the network's own)
  bool coupled = false;  ///< channels tied by residual additions form groups too (channel_groups())
  void read(ObjectReader& r);
  nlohmann::json to_json() const;  ///< only what differs from the defaults
};

/// The registry parser and traits of the networks that take ResidualOptions.
nlohmann::json parse_residual_options(const nlohmann::json& options, const std::string& path);
nlohmann::json residual_traits();

struct ResNetSpec {
  bool bottleneck = false;      ///< bottleneck blocks (1x1, 3x3, 1x1 with 4x expansion) or basic (3x3, 3x3)
  bool imagenet_stem = true;    ///< 7x7/2 conv + 3x3/2 max-pool, or a 3x3/1 conv (CIFAR)
  std::vector<int64_t> blocks;  ///< blocks per stage
  std::vector<int64_t> widths;  ///< channels per stage (before expansion), at width 1
};

/// The spec of a built-in residual network; ConfigError for other names.
ResNetSpec resnet_spec(const std::string& name);

/// One residual block: conv-bn-relu twice (basic) or three times (bottleneck), plus a 1x1
/// conv + bn shortcut ("downsample") when the shape changes.
class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(int64_t in, int64_t planes, int64_t stride, bool bottleneck);
  /// Output positions per sample (height x width) of each convolution in convolutions() order,
  /// for an input of side `h` x `w`.
  std::vector<int64_t> output_positions(int64_t h, int64_t w) const;
  torch::Tensor forward(const torch::Tensor& x);
  int64_t out_channels() const { return out_; }
  bool bottleneck() const { return static_cast<bool>(conv3_); }
  bool has_downsample() const { return static_cast<bool>(down_conv_); }
  /// The block's convolutions with their names relative to the block, in definition order.
  std::vector<std::pair<std::string, torch::nn::Conv2d>> convolutions() const;
  /// TorchScript statements computing the block from `x` into `x`; `prefix` is its path ("layer1.0.").
  std::string script(const std::string& prefix) const;

 private:
  int64_t out_;
  int64_t stride_;
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr}, down_conv_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr}, down_bn_{nullptr};
  torch::nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(ResidualBlock);

class ResNetImpl : public NetworkImpl {
 public:
  ResNetImpl(const ResNetSpec& spec, double width, InputShape input, int64_t classes, bool coupled = false);
  torch::Tensor forward(const torch::Tensor& x) override;
  int64_t activation_floats_per_sample() const override { return largest_activation_; }
  /// TorchScript with batch norm in inference form (running statistics): torch.jit.load opens it.
  std::string script_forward() const override;
  /// Folding batch norm into the convolutions (unless PRUNEGYM_RESNET_FOLD=0) beats the compact
  /// copy's separate batch norms (bench_compact: 0.72x with the compact copy on ResNet-20 and -56).
  bool evaluates_faster_masked() const override;
  /// Output positions per sample (height x width; 1 for the classifier) of each prunable layer,
  /// in prunable_layers() order: the rows of its im2col product (bench_step's bound).
  std::vector<int64_t> output_positions() const override { return output_positions_; }
  /// Block-internal channels only: conv1 -> conv2 (and conv2 -> conv3 in a bottleneck) with the
  /// batch norm between; the stem, each block's last convolution, the shortcuts and the classifier
  /// are tied by residual additions (or are the output) and form no group. With `coupled`, each
  /// set of tied producers is a group as well: the stem or a stage's first shortcut with the last
  /// convolution of every block it feeds, read by the blocks' first convolutions, the next stage's
  /// first block (conv1 and shortcut) or the classifier. In network order.
  std::vector<ChannelGroup> channel_groups() const override;

 private:
  void add_coupled_groups(std::vector<ChannelGroup>& groups) const;

  bool imagenet_stem_;
  bool coupled_;
  bool channels_last_;
  std::vector<int64_t> output_positions_;
  torch::nn::Conv2d conv1_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr};
  std::vector<torch::nn::ModuleList> stages_;
  torch::nn::Linear fc_{nullptr};
  int64_t largest_activation_ = 0;
};

}  // namespace prunegym
