#include <prunegym/core/errors.h>
#include <prunegym/networks/resnet.h>

#include <cmath>

namespace prunegym {

namespace {

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  auto c = torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false));
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);  // as torchvision
  return c;
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
  throw ConfigError("network.name: '" + name + "' is not a built-in residual network (resnet18, resnet50, resnet20, resnet56)");
}

ResidualBlockImpl::ResidualBlockImpl(int64_t in, int64_t planes, int64_t stride, bool bottleneck)
    : out_(bottleneck ? 4 * planes : planes) {
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
    downsample_ = register_module("downsample", torch::nn::Sequential(down_conv_, torch::nn::BatchNorm2d(out_)));
  }
}

torch::Tensor ResidualBlockImpl::forward(const torch::Tensor& x) {
  auto y = torch::relu(bn1_(conv1_(x)));
  y = bn2_(conv2_(y));
  if (conv3_) y = bn3_(conv3_(torch::relu(y)));
  return torch::relu(y + (downsample_ ? downsample_->forward(x) : x));
}

std::vector<std::pair<std::string, torch::nn::Conv2d>> ResidualBlockImpl::convolutions() const {
  std::vector<std::pair<std::string, torch::nn::Conv2d>> out{{"conv1", conv1_}, {"conv2", conv2_}};
  if (conv3_) out.emplace_back("conv3", conv3_);
  if (down_conv_) out.emplace_back("downsample.0", down_conv_);
  return out;
}

ResNetImpl::ResNetImpl(const ResNetSpec& spec, double width, InputShape input, int64_t classes)
    : imagenet_stem_(spec.imagenet_stem) {
  if (input.graph) throw ConfigError("network.name: residual networks need image data, not a graph");
  if (!(width > 0)) throw ConfigError("network.width must be positive");
  int64_t channels = scaled(spec.widths.front(), width);
  int64_t h = input.height, w = input.width;
  conv1_ = register_module("conv1", conv(input.channels, channels, imagenet_stem_ ? 7 : 3, imagenet_stem_ ? 2 : 1));
  bn1_ = register_module("bn1", torch::nn::BatchNorm2d(channels));
  register_prunable("conv1", *conv1_);
  if (imagenet_stem_) {
    h = out_side(out_side(h, 2), 2);  // 7x7/2 conv (padding 3), 3x3/2 max-pool (padding 1)
    w = out_side(out_side(w, 2), 2);
  }
  largest_activation_ = channels * out_side(input.height, imagenet_stem_ ? 2 : 1) * out_side(input.width, imagenet_stem_ ? 2 : 1);
  for (size_t s = 0; s < spec.blocks.size(); ++s) {
    auto stage = torch::nn::ModuleList();
    const std::string stage_name = "layer" + std::to_string(s + 1);
    for (int64_t b = 0; b < spec.blocks[s]; ++b) {
      const int64_t stride = (s > 0 && b == 0) ? 2 : 1;
      auto block = ResidualBlock(channels, scaled(spec.widths[s], width), stride, spec.bottleneck);
      stage->push_back(block);
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
}

torch::Tensor ResNetImpl::forward(const torch::Tensor& input) {
  auto x = torch::relu(bn1_(conv1_(input)));
  if (imagenet_stem_) x = torch::max_pool2d(x, 3, 2, 1);
  for (auto& stage : stages_)
    for (size_t b = 0; b < stage->size(); ++b) x = stage->ptr<ResidualBlockImpl>(b)->forward(x);
  x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  return fc_(x);
}

namespace {

NetworkRegistry::Factory resnet_factory(const std::string& name) {
  return [name](const NetworkOptions& o, InputShape input, int64_t classes) -> std::unique_ptr<NetworkImpl> {
    if (!o.layers.empty()) throw ConfigError("network.layers is only allowed with network.name = \"custom\"");
    return std::make_unique<ResNetImpl>(resnet_spec(name), o.width, input, classes);
  };
}

}  // namespace

PRUNEGYM_REGISTER(NetworkRegistry, "resnet18", resnet_factory("resnet18"),
                  "ResNet-18, ImageNet layout with batch norm: 21 prunable layers (network.width scales channels)");
PRUNEGYM_REGISTER(NetworkRegistry, "resnet50", resnet_factory("resnet50"),
                  "ResNet-50, bottlenecks with batch norm: 54 prunable layers, the 108-dim per-layer state");
PRUNEGYM_REGISTER(NetworkRegistry, "resnet20", resnet_factory("resnet20"),
                  "ResNet-20, CIFAR layout (3x3 stem, 16/32/64 channels) with batch norm: 22 prunable layers");
PRUNEGYM_REGISTER(NetworkRegistry, "resnet56", resnet_factory("resnet56"),
                  "ResNet-56, CIFAR layout with batch norm: 58 prunable layers");

}  // namespace prunegym
