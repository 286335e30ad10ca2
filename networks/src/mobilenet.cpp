// MobileNet-V2 (PuRL Table 5's network) with torchvision's layout and parameter names: a 3x3 stem,
// 17 inverted residual blocks (1x1 expansion, 3x3 depthwise, 1x1 linear projection, each with batch
// norm; a residual add where stride is 1 and the channels match), a 1x1 convolution to 1280
// channels, global average pooling, dropout 0.2 and the classifier. Every convolution (depthwise
// ones included) and the classifier are prunable: 53 layers. network.width multiplies the channels
// (rounded to multiples of 8, as torchvision); network.stem "cifar" makes the stem and the second
// stage stride 1, which suits 28x28 and 32x32 inputs (the 7x7 last stage instead of 1x1).
//
// Channel groups: a block's expansion output and its depthwise channels are one group (producer
// the expansion, consumers the depthwise convolution and the projection); in the first block, which
// has no expansion, the stem's output with that block's depthwise and projection. Block outputs are
// tied by the residual adds and form no group, as in ResNets; with network.coupled, each stage's
// block outputs are one group more (the first block's projection with the projections of the
// residual blocks after it, read by the next expansions or the head).

#include <prunegym/core/errors.h>
#include <prunegym/networks/model.h>
#include <prunegym/networks/resnet.h>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>
#include <tuple>

namespace prunegym {

namespace {

/// torchvision's _make_divisible: the nearest multiple of 8, never more than 10% below `v`.
int64_t divisible(double v, int64_t divisor = 8) {
  int64_t out = std::max<int64_t>(divisor, static_cast<int64_t>(v + divisor / 2.0) / divisor * divisor);
  if (static_cast<double>(out) < 0.9 * v) out += divisor;
  return out;
}

int64_t out_side(int64_t side, int64_t stride) { return (side - 1) / stride + 1; }

/// One convolution and its batch norm, registered as <name>.0 and <name>.1 (or as `conv_name`
/// and `bn_name` inside the owner) so that the parameter names are torchvision's.
struct ConvBn {
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
  std::string conv_name, bn_name;  ///< full module paths, e.g. "features.2.conv.1.0"
  int64_t stride = 1;
};

ConvBn make_conv_bn(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups) {
  ConvBn c;
  c.conv = torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).groups(groups).bias(false));
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_normal_(c.conv->weight, 0.0, torch::kFanOut);  // as torchvision
  c.bn = torch::nn::BatchNorm2d(out);
  c.stride = stride;
  return c;
}

torch::Tensor run_conv_bn(ConvBn& c, const torch::Tensor& x) {
  const int64_t pad = c.conv->weight.size(2) / 2, groups = c.conv->options.groups();
  return c.bn->forward(torch::conv2d(x, c.conv->weight, {}, {c.stride, c.stride}, {pad, pad}, {1, 1}, groups));
}

torch::Tensor clamp6(const torch::Tensor& x) { return torch::clamp(x, 0.0, 6.0); }

std::string self(std::string name) {
  for (char& ch : name)
    if (ch == '.') ch = '_';
  return "self." + name;
}

/// The TorchScript expression of batch_norm(conv(in)); a depthwise convolution's group count is
/// its (possibly compacted) filter count, so the compact export keeps working.
std::string script(const ConvBn& c, const std::string& in, bool depthwise) {
  const std::string s = std::to_string(c.stride), p = std::to_string(c.conv->weight.size(2) / 2);
  const std::string w = self(c.conv_name + ".weight"), b = self(c.bn_name);
  return "torch.batch_norm(torch.conv2d(" + in + ", " + w + ", None, [" + s + ", " + s + "], [" + p + ", " + p +
         "], [1, 1], " + (depthwise ? w + ".size(0)" : std::string("1")) + "), " + b + "_weight, " + b + "_bias, " + b +
         "_running_mean, " + b + "_running_var, self.training, 0.1, 1e-05, False)";
}

struct Block {
  std::optional<ConvBn> expand;
  ConvBn depthwise, project;
  bool residual = false;
};

class MobileNetV2Impl : public NetworkImpl {
 public:
  MobileNetV2Impl(double width, bool small_input, InputShape input, int64_t classes, bool coupled) : coupled_(coupled) {
    if (input.graph) throw ConfigError("network.name: mobilenet_v2 needs image data, not a graph");
    if (!(width > 0)) throw ConfigError("network.width must be positive");
    // (expansion t, channels c, blocks n, stride s) of each stage, as in the paper and torchvision.
    const int64_t settings[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                    {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    auto features = register_module("features", torch::nn::ModuleList());
    int64_t channels = divisible(32 * width), h = input.height, w = input.width;
    stem_ = make_conv_bn(input.channels, channels, 3, small_input ? 1 : 2, 1);
    add(features, stem_, "features.0", {});
    track(stem_, h, w);
    for (int stage = 0; stage < 7; ++stage) {
      const auto [t, c, n, s] =
          std::tuple{settings[stage][0], settings[stage][1], settings[stage][2], settings[stage][3]};
      const int64_t out = divisible(static_cast<double>(c) * width);
      for (int64_t i = 0; i < n; ++i) {
        const int64_t stride = i > 0 ? 1 : (small_input && stage == 1 ? 1 : s), hidden = channels * t;
        Block b;
        const std::string name = "features." + std::to_string(features->size()), conv = name + ".conv";
        auto body = torch::nn::ModuleList();
        if (t != 1) b.expand = make_conv_bn(channels, hidden, 1, 1, 1);
        b.depthwise = make_conv_bn(hidden, hidden, 3, stride, hidden);
        b.project = make_conv_bn(hidden, out, 1, 1, 1);
        const int k = t != 1 ? 1 : 0;  // torchvision's index of the depthwise pair inside "conv"
        if (b.expand) add(body, *b.expand, conv + ".0", {});
        add(body, b.depthwise, conv + "." + std::to_string(k), {});
        add(body, b.project, conv + "." + std::to_string(k + 1), conv + "." + std::to_string(k + 2));
        auto block = std::make_shared<torch::nn::Module>();
        block->register_module("conv", body);
        features->push_back(block);
        b.residual = stride == 1 && channels == out;
        if (b.expand) track(*b.expand, h, w);
        track(b.depthwise, h, w);
        track(b.project, h, w);
        blocks_.push_back(std::move(b));
        channels = out;
      }
    }
    head_ = make_conv_bn(channels, divisible(1280 * std::max(1.0, width)), 1, 1, 1);
    add(features, head_, "features." + std::to_string(features->size()), {});
    track(head_, h, w);
    fc_ = torch::nn::Linear(head_.conv->options.out_channels(), classes);
    {
      torch::NoGradGuard no_grad;  // as torchvision: N(0, 0.01) weights, zero bias
      torch::nn::init::normal_(fc_->weight, 0.0, 0.01);
      torch::nn::init::zeros_(fc_->bias);
    }
    auto classifier = register_module("classifier", torch::nn::ModuleList());
    classifier->push_back(torch::nn::Dropout(0.2));
    classifier->push_back(fc_);
    register_prunable("classifier.1", *fc_);
    output_positions_.push_back(1);
  }

  torch::Tensor forward(const torch::Tensor& input) override {
    auto x = clamp6(run_conv_bn(stem_, input));
    for (auto& b : blocks_) {
      auto y = b.expand ? clamp6(run_conv_bn(*b.expand, x)) : x;
      y = run_conv_bn(b.project, clamp6(run_conv_bn(b.depthwise, y)));
      x = b.residual ? x + y : y;
    }
    x = torch::adaptive_avg_pool2d(clamp6(run_conv_bn(head_, x)), {1, 1}).flatten(1);
    return fc_(torch::dropout(x, 0.2, is_training()));
  }

  int64_t activation_floats_per_sample() const override { return largest_activation_; }
  std::vector<int64_t> output_positions() const override { return output_positions_; }

  std::vector<ChannelGroup> channel_groups() const override {
    const auto& layers = prunable_layers();
    const auto index = [&](const ConvBn& c) {
      for (size_t i = 0; i < layers.size(); ++i)
        if (layers[i].name == c.conv_name + ".weight") return i;
      throw std::logic_error("mobilenet_v2: no prunable layer " + c.conv_name);
    };
    std::vector<ChannelGroup> groups;
    for (size_t k = 0; k < blocks_.size(); ++k) {
      const auto& b = blocks_[k];
      // The stem feeds the first block's depthwise convolution, unless that block adds the stem's
      // output to its own (narrow widths round both to the same channel count): then it is tied.
      if (!b.expand && (k > 0 || b.residual)) continue;
      const ConvBn& producer = b.expand ? *b.expand : stem_;
      ChannelGroup g{
          index(producer), producer.conv->options.out_channels(), {}, {producer.bn_name, b.depthwise.bn_name}};
      g.consumers.push_back({index(b.depthwise), 1, true});
      g.consumers.push_back({index(b.project), 1, false});
      groups.push_back(std::move(g));
    }
    if (coupled_) add_coupled_groups(groups, index);
    std::sort(groups.begin(), groups.end(), [](const auto& a, const auto& b) { return a.producer < b.producer; });
    return groups;
  }

  std::string script_forward() const override {
    std::ostringstream src;
    src << "def forward(self, x):\n    x = torch.clamp(" << script(stem_, "x", false) << ", 0.0, 6.0)\n";
    for (const auto& b : blocks_) {
      src << "    y = x\n";
      if (b.expand) src << "    y = torch.clamp(" << script(*b.expand, "y", false) << ", 0.0, 6.0)\n";
      src << "    y = torch.clamp(" << script(b.depthwise, "y", true) << ", 0.0, 6.0)\n"
          << "    y = " << script(b.project, "y", false) << "\n"
          << (b.residual ? "    x = x + y\n" : "    x = y\n");
    }
    src << "    x = torch.clamp(" << script(head_, "x", false) << ", 0.0, 6.0)\n"
        << "    x = torch.dropout(torch.flatten(torch.adaptive_avg_pool2d(x, [1, 1]), 1), 0.2, self.training)\n"
        << "    return torch.matmul(x, self.classifier_1_weight.t()) + self.classifier_1_bias\n";
    return src.str();
  }

 private:
  /// network.coupled: the block outputs tied by residual adds, one group per stage. A set read by
  /// a block without an expansion (its depthwise convolution would carry it on) is left alone.
  template <typename Index>
  void add_coupled_groups(std::vector<ChannelGroup>& groups, const Index& index) const {
    std::optional<ChannelGroup> set;  // the current stage's tied projections
    for (const auto& b : blocks_) {
      if (set && b.expand) set->consumers.push_back({index(*b.expand), 1, false});
      if (set && !b.expand) set.reset();
      if (!b.residual) {
        if (set) groups.push_back(*set);
        set = ChannelGroup{index(b.project), b.project.conv->options.out_channels(), {}, {b.project.bn_name}, {}};
      } else if (set) {
        set->tied.push_back(index(b.project));
        set->batch_norms.push_back(b.project.bn_name);
      }
    }
    if (!set) return;
    set->consumers.push_back({index(head_), 1, false});
    groups.push_back(*set);
  }

  /// Registers c's convolution and batch norm under `conv_name` / `bn_name` (empty: the pair as
  /// <conv_name>.0 and <conv_name>.1, torchvision's Conv2dNormActivation), and the convolution as
  /// prunable.
  void add(torch::nn::ModuleList parent, ConvBn& c, const std::string& conv_name, const std::string& bn_name) {
    if (bn_name.empty()) {
      auto pair = torch::nn::ModuleList();
      pair->push_back(c.conv);
      pair->push_back(c.bn);
      parent->push_back(pair);
      c.conv_name = conv_name + ".0";
      c.bn_name = conv_name + ".1";
    } else {  // projection: the convolution and its batch norm are siblings ("conv.2", "conv.3")
      parent->push_back(c.conv);
      parent->push_back(c.bn);
      c.conv_name = conv_name;
      c.bn_name = bn_name;
    }
    register_prunable(c.conv_name, *c.conv);
  }

  /// Records the convolution's output positions for `h` x `w` input, and steps h, w on.
  void track(const ConvBn& c, int64_t& h, int64_t& w) {
    h = out_side(h, c.stride);
    w = out_side(w, c.stride);
    output_positions_.push_back(h * w);
    largest_activation_ = std::max(largest_activation_, c.conv->options.out_channels() * h * w);
  }

  bool coupled_ = false;
  ConvBn stem_, head_;
  std::vector<Block> blocks_;
  torch::nn::Linear fc_{nullptr};
  std::vector<int64_t> output_positions_;
  int64_t largest_activation_ = 0;
};

std::unique_ptr<NetworkImpl> make_mobilenet_v2(const NetworkOptions& o, InputShape input, int64_t classes) {
  const auto options = read_options<ResidualOptions>(o.options, "network");
  return std::make_unique<MobileNetV2Impl>(options.width, options.stem == "cifar", input, classes, options.coupled);
}

}  // namespace

PRUNEGYM_REGISTER(NetworkRegistry, "mobilenet_v2", make_mobilenet_v2,
                  "MobileNet-V2 with batch norm and depthwise convolutions: 53 prunable layers (network.width; "
                  "network.stem cifar for 28x28 and 32x32 inputs)",
                  parse_residual_options, residual_traits());

}  // namespace prunegym
