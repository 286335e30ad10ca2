#include <prunegym/core/errors.h>
#include <prunegym/networks/resnet.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <tuple>

namespace prunegym {

namespace {

/// Channels-last weights and activations unless PRUNEGYM_RESNET_LAYOUT=contiguous.
bool channels_last_enabled() {
  const char* v = std::getenv("PRUNEGYM_RESNET_LAYOUT");
  return !(v && std::strcmp(v, "contiguous") == 0);
}

/// Batch norm folded into the convolution in evaluation unless PRUNEGYM_RESNET_FOLD=0.
bool fold_enabled() {
  const char* v = std::getenv("PRUNEGYM_RESNET_FOLD");
  return !(v && std::strcmp(v, "0") == 0);
}

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  auto c = torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false));
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);  // as torchvision
  if (channels_last_enabled()) c->weight.set_data(c->weight.contiguous(torch::MemoryFormat::ChannelsLast));
  return c;
}

/// bn(conv(x)); in evaluation one convolution with the batch norm folded into weight and bias:
/// w * gamma / sqrt(var + eps), beta - mean * gamma / sqrt(var + eps).
///
/// A strided 1x1 convolution runs as a stride-1 convolution on every stride-th pixel (the same
/// function and gradients): oneDNN 2.6, under Debian's LibTorch, computes the weight gradient of
/// strided 1x1 convolutions on channels-last data through a scratch buffer it overruns when the
/// input has fewer channels than its register block (8 with AVX2, 16 with AVX-512), which hangs
/// or corrupts memory (oneDNN issue 6035; ResNet-20 at width 0.25 has 4-channel shortcuts).
torch::Tensor conv_bn(torch::nn::Conv2d c, torch::nn::BatchNorm2d bn, const torch::Tensor& x, int64_t stride) {
  const int64_t kernel = c->weight.size(2), pad = kernel / 2;
  const bool pointwise = kernel == 1 && stride > 1;
  const auto in = pointwise ? x.slice(2, 0, c10::nullopt, stride).slice(3, 0, c10::nullopt, stride) : x;
  const int64_t s = pointwise ? 1 : stride;
  if (bn->is_training() || !fold_enabled()) return bn(torch::conv2d(in, c->weight, {}, {s, s}, {pad, pad}));
  const auto scale = bn->weight * torch::rsqrt(bn->running_var + bn->options.eps());
  const auto w = (c->weight * scale.view({-1, 1, 1, 1})).contiguous(c->weight.suggest_memory_format());
  const auto b = bn->bias - bn->running_mean * scale;
  return torch::conv2d(in, w, b, {s, s}, {pad, pad});
}

/// Output side of a kernel-3 (or 1), padding-k/2 convolution or pool with this stride.
int64_t out_side(int64_t side, int64_t stride) { return (side - 1) / stride + 1; }

int64_t scaled(int64_t channels, double width) {
  return std::max<int64_t>(1, static_cast<int64_t>(std::lround(static_cast<double>(channels) * width)));
}

}  // namespace

ResNetSpec resnet_spec(const std::string& name) {
  if (name == "resnet18") return {false, true, {2, 2, 2, 2}, {64, 128, 256, 512}};
  if (name == "resnet50") return {true, true, {3, 4, 6, 3}, {64, 128, 256, 512}};
  if (name == "resnet20") return {false, false, {3, 3, 3}, {16, 32, 64}};
  if (name == "resnet56") return {false, false, {9, 9, 9}, {16, 32, 64}};
  throw ConfigError("network.name: '" + name +
                    "' is not a built-in residual network (resnet18, resnet50, resnet20, resnet56)");
}

ResidualBlockImpl::ResidualBlockImpl(int64_t in, int64_t planes, int64_t stride, bool bottleneck)
    : out_(bottleneck ? 4 * planes : planes), stride_(stride) {
  if (bottleneck) {
    conv1_ = register_module("conv1", conv(in, planes, 1, 1));
    bn1_ = register_module("bn1", torch::nn::BatchNorm2d(planes));
    conv2_ = register_module("conv2", conv(planes, planes, 3, stride));
    bn2_ = register_module("bn2", torch::nn::BatchNorm2d(planes));
    conv3_ = register_module("conv3", conv(planes, out_, 1, 1));
    bn3_ = register_module("bn3", torch::nn::BatchNorm2d(out_));
  } else {
    conv1_ = register_module("conv1", conv(in, planes, 3, stride));
    bn1_ = register_module("bn1", torch::nn::BatchNorm2d(planes));
    conv2_ = register_module("conv2", conv(planes, planes, 3, 1));
    bn2_ = register_module("bn2", torch::nn::BatchNorm2d(planes));
  }
  if (stride != 1 || in != out_) {
    down_conv_ = conv(in, out_, 1, stride);
    down_bn_ = torch::nn::BatchNorm2d(out_);
    downsample_ = register_module("downsample", torch::nn::Sequential(down_conv_, down_bn_));
  }
}

torch::Tensor ResidualBlockImpl::forward(const torch::Tensor& x) {
  // Bottlenecks stride in their 3x3 convolution (conv2), basic blocks in conv1.
  const int64_t s1 = conv3_ ? 1 : stride_, s2 = conv3_ ? stride_ : 1;
  auto y = torch::relu(conv_bn(conv1_, bn1_, x, s1));
  y = conv_bn(conv2_, bn2_, y, s2);
  if (conv3_) y = conv_bn(conv3_, bn3_, torch::relu(y), 1);
  return torch::relu(y + (down_conv_ ? conv_bn(down_conv_, down_bn_, x, stride_) : x));
}

std::vector<int64_t> ResidualBlockImpl::output_positions(int64_t h, int64_t w) const {
  const int64_t in = h * w, out = out_side(h, stride_) * out_side(w, stride_);
  std::vector<int64_t> positions{conv3_ ? in : out, out};
  if (conv3_) positions.push_back(out);
  if (down_conv_) positions.push_back(out);
  return positions;
}

std::vector<std::pair<std::string, torch::nn::Conv2d>> ResidualBlockImpl::convolutions() const {
  std::vector<std::pair<std::string, torch::nn::Conv2d>> out{{"conv1", conv1_}, {"conv2", conv2_}};
  if (conv3_) out.emplace_back("conv3", conv3_);
  if (down_conv_) out.emplace_back("downsample.0", down_conv_);
  return out;
}

ResNetImpl::ResNetImpl(const ResNetSpec& spec, double width, InputShape input, int64_t classes, bool coupled)
    : imagenet_stem_(spec.imagenet_stem), coupled_(coupled), channels_last_(channels_last_enabled()) {
  if (input.graph) throw ConfigError("network.name: residual networks need image data, not a graph");
  if (!(width > 0)) throw ConfigError("network.width must be positive");
  int64_t channels = scaled(spec.widths.front(), width);
  int64_t h = input.height, w = input.width;
  conv1_ = register_module("conv1", conv(input.channels, channels, imagenet_stem_ ? 7 : 3, imagenet_stem_ ? 2 : 1));
  bn1_ = register_module("bn1", torch::nn::BatchNorm2d(channels));
  register_prunable("conv1", *conv1_);
  output_positions_.push_back(out_side(h, imagenet_stem_ ? 2 : 1) * out_side(w, imagenet_stem_ ? 2 : 1));
  if (imagenet_stem_) {
    h = out_side(out_side(h, 2), 2);  // 7x7/2 conv (padding 3), 3x3/2 max-pool (padding 1)
    w = out_side(out_side(w, 2), 2);
  }
  largest_activation_ =
      channels * out_side(input.height, imagenet_stem_ ? 2 : 1) * out_side(input.width, imagenet_stem_ ? 2 : 1);
  for (size_t s = 0; s < spec.blocks.size(); ++s) {
    auto stage = torch::nn::ModuleList();
    const std::string stage_name = "layer" + std::to_string(s + 1);
    for (int64_t b = 0; b < spec.blocks[s]; ++b) {
      const int64_t stride = (s > 0 && b == 0) ? 2 : 1;
      auto block = ResidualBlock(channels, scaled(spec.widths[s], width), stride, spec.bottleneck);
      stage->push_back(block);
      for (int64_t p : block->output_positions(h, w)) output_positions_.push_back(p);
      channels = block->out_channels();
      h = out_side(h, stride);
      w = out_side(w, stride);
      largest_activation_ = std::max(largest_activation_, channels * h * w);
    }
    stages_.push_back(register_module(stage_name, stage));
    for (size_t b = 0; b < stage->size(); ++b)
      for (auto& [name, c] : stage->ptr<ResidualBlockImpl>(b)->convolutions())
        register_prunable(stage_name + "." + std::to_string(b) + "." + name, *c);
  }
  fc_ = register_module("fc", torch::nn::Linear(channels, classes));
  register_prunable("fc", *fc_);
  output_positions_.push_back(1);
}

torch::Tensor ResNetImpl::forward(const torch::Tensor& input) {
  const auto in = channels_last_ ? input.contiguous(torch::MemoryFormat::ChannelsLast) : input;
  auto x = torch::relu(conv_bn(conv1_, bn1_, in, imagenet_stem_ ? 2 : 1));
  if (imagenet_stem_) x = torch::max_pool2d(x, 3, 2, 1);
  for (auto& stage : stages_)
    for (size_t b = 0; b < stage->size(); ++b) x = stage->ptr<ResidualBlockImpl>(b)->forward(x);
  x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  return fc_(x);
}

void ResidualOptions::read(ObjectReader& r) {
  r.get("width", width);
  r.get("stem", stem);
  r.get("coupled", coupled);
  if (!(width > 0 && width <= 16))
    throw ConfigError("config key '" + r.key_path("width") + "' must be in (0, 16] (1 = the published widths)");
  if (!stem.empty() && stem != "imagenet" && stem != "cifar")
    throw ConfigError("config key '" + r.key_path("stem") +
                      "' must be \"imagenet\" (7x7/2 conv and 3x3/2 max-pool) or \"cifar\" "
                      "(3x3/1 conv, no pooling: suits 28x28 and 32x32 inputs), not \"" +
                      stem + "\"");
}

nlohmann::json ResidualOptions::to_json() const {
  nlohmann::json out = nlohmann::json::object();
  if (width != 1.0) out["width"] = width;
  if (!stem.empty()) out["stem"] = stem;
  if (coupled) out["coupled"] = true;
  return out;
}

nlohmann::json parse_residual_options(const nlohmann::json& options, const std::string& path) {
  return read_options<ResidualOptions>(options, path).to_json();
}

nlohmann::json residual_traits() {
  return {{"options", nlohmann::json::array({"width", "stem", "coupled"})}, {"limits", {{"width", "network_width"}}}};
}

namespace {

NetworkRegistry::Factory resnet_factory(const std::string& name) {
  return [name](const NetworkOptions& o, InputShape input, int64_t classes) -> std::unique_ptr<NetworkImpl> {
    const auto options = read_options<ResidualOptions>(o.options, "network");
    auto spec = resnet_spec(name);
    if (!options.stem.empty()) spec.imagenet_stem = options.stem == "imagenet";
    return std::make_unique<ResNetImpl>(spec, options.width, input, classes, options.coupled);
  };
}

NetworkRegistry::PartEntry residual_part(const std::string& name) {
  return {resnet_factory(name), parse_residual_options};
}

}  // namespace

PRUNEGYM_REGISTER(NetworkRegistry, "resnet18", residual_part("resnet18"),
                  "ResNet-18, ImageNet layout with batch norm: 21 prunable layers (network.width scales channels)",
                  residual_traits());
PRUNEGYM_REGISTER(NetworkRegistry, "resnet50", residual_part("resnet50"),
                  "ResNet-50, bottlenecks with batch norm: 54 prunable layers, the 108-dim per-layer state",
                  residual_traits());
PRUNEGYM_REGISTER(NetworkRegistry, "resnet20", residual_part("resnet20"),
                  "ResNet-20, CIFAR layout (3x3 stem, 16/32/64 channels) with batch norm: 22 prunable layers",
                  residual_traits());
PRUNEGYM_REGISTER(NetworkRegistry, "resnet56", residual_part("resnet56"),
                  "ResNet-56, CIFAR layout with batch norm: 58 prunable layers", residual_traits());

}  // namespace prunegym

namespace prunegym {

bool ResNetImpl::evaluates_faster_masked() const { return fold_enabled(); }

std::vector<ChannelGroup> ResNetImpl::channel_groups() const {
  std::vector<ChannelGroup> groups;
  const auto& layers = prunable_layers();
  const auto index = [&](const std::string& name) -> std::optional<size_t> {
    for (size_t i = 0; i < layers.size(); ++i)
      if (layers[i].name == name) return i;
    return std::nullopt;
  };
  const std::string suffix = ".conv1.weight";
  for (const auto& l : layers) {
    if (l.name.size() <= suffix.size() || l.name.compare(l.name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string block = l.name.substr(0, l.name.size() - suffix.size() + 1);  // "layer1.0."
    for (const auto& [from, to, bn] :
         {std::tuple<const char*, const char*, const char*>{"conv1", "conv2", "bn1"}, {"conv2", "conv3", "bn2"}}) {
      const auto p = index(block + from + ".weight"), c = index(block + to + ".weight");
      if (!p || !c) continue;
      groups.push_back({*p, layers[*p].weight.size(0), {{*c, 1}}, {block + bn}});
    }
  }
  if (coupled_) add_coupled_groups(groups);
  std::sort(groups.begin(), groups.end(), [](const auto& a, const auto& b) { return a.producer < b.producer; });
  return groups;
}

void ResNetImpl::add_coupled_groups(std::vector<ChannelGroup>& groups) const {
  const auto index = [&](const std::string& module) { return layer_index(module + ".weight"); };
  // The set being collected: the stem, or a stage's first shortcut, and the blocks adding to it.
  ChannelGroup g{index("conv1"), conv1_->options.out_channels(), {}, {"bn1"}, {}};
  for (size_t s = 0; s < stages_.size(); ++s)
    for (size_t b = 0; b < stages_[s]->size(); ++b) {
      const auto& block = *stages_[s]->ptr<ResidualBlockImpl>(b);
      const std::string prefix = "layer" + std::to_string(s + 1) + "." + std::to_string(b) + ".";
      g.consumers.push_back({index(prefix + "conv1"), 1});
      if (block.has_downsample()) {  // the shortcut reads the set and starts the next one
        g.consumers.push_back({index(prefix + "downsample.0"), 1});
        groups.push_back(g);
        g = {index(prefix + "downsample.0"), block.out_channels(), {}, {prefix + "downsample.1"}, {}};
      }
      g.tied.push_back(index(prefix + (block.bottleneck() ? "conv3" : "conv2")));
      g.batch_norms.push_back(prefix + (block.bottleneck() ? "bn3" : "bn2"));
    }
  g.consumers.push_back({index("fc"), 1});  // after global average pooling: one column per channel
  groups.push_back(g);
}

}  // namespace prunegym
