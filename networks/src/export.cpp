// TorchScript export of the built-in networks: their tensors go into a torch::jit::Module and their
// forward is written out as TorchScript source, so Python opens the result with torch.jit.load.

#include <prunegym/core/errors.h>
#include <prunegym/networks/model.h>
#include <prunegym/networks/resnet.h>

#include <torch/script.h>

#include <sstream>

namespace prunegym {

std::string script_name(std::string name) {
  for (char& c : name)
    if (c == '.') c = '_';
  return name;
}

torch::jit::Module scripted_module(const torch::nn::Module& net, const std::string& forward_source,
                                   const std::map<std::string, torch::Tensor>& replace) {
  const auto tensor = [&](const std::string& name, const torch::Tensor& own) {
    const auto it = replace.find(name);
    return (it == replace.end() ? own : it->second).detach().clone().contiguous();
  };
  torch::jit::Module m("PrunedNetwork");
  // The forwards read self.training (batch norm statistics, dropout): saved in inference mode,
  // module.train() in Python or C++ switches it.
  m.register_attribute("training", c10::BoolType::get(), false);
  for (const auto& p : net.named_parameters())
    m.register_parameter(script_name(p.key()), tensor(p.key(), p.value()), false);
  for (const auto& b : net.named_buffers())
    if (!is_mask_buffer(b.key())) m.register_buffer(script_name(b.key()), tensor(b.key(), b.value()));
  try {
    m.define(forward_source);
  } catch (const c10::Error& e) {
    throw Error("TorchScript export failed (a bug; please report it): " + std::string(e.what_without_backtrace()));
  }
  return m;
}

void save_scripted(const torch::nn::Module& net, const std::string& forward_source, const std::string& path,
                   const std::map<std::string, torch::Tensor>& replace) {
  scripted_module(net, forward_source, replace).save(path);
}

namespace {

std::string self(const std::string& name) { return "self." + script_name(name); }

std::string pair(int64_t v) { return "[" + std::to_string(v) + ", " + std::to_string(v) + "]"; }

/// conv (no bias) followed by batch norm with running statistics, as one expression.
std::string conv_bn(const std::string& in, const std::string& conv, const torch::nn::Conv2d& c, const std::string& bn) {
  const auto& o = c->options;
  const int64_t stride = (*o.stride())[0];
  const int64_t padding = (*c10::get<torch::ExpandingArray<2>>(o.padding()))[0];
  return "torch.batch_norm(torch.conv2d(" + in + ", " + self(conv + ".weight") + ", None, " + pair(stride) + ", " +
         pair(padding) + "), " + self(bn + ".weight") + ", " + self(bn + ".bias") + ", " + self(bn + ".running_mean") +
         ", " + self(bn + ".running_var") + ", self.training, 0.1, 1e-05, False)";
}

}  // namespace

std::string LayerStackImpl::script_forward() const {
  if (graph_) return {};  // the graph is not part of the module
  std::ostringstream src;
  src << "def forward(self, x):\n";
  size_t ci = 0, li = 0;
  for (const auto& s : specs_) {
    switch (s.kind) {
      case LayerSpec::Kind::conv: {
        const std::string n = "conv" + std::to_string(++ci);
        src << "    x = torch.conv2d(x, " << self(n + ".weight") << ", " << self(n + ".bias") << ", " << pair(s.stride)
            << ", " << pair(s.padding) << ")\n";
        break;
      }
      case LayerSpec::Kind::maxpool:
        src << "    x = torch.max_pool2d(x, " << pair(s.kernel) << ", " << pair(s.stride) << ")\n";
        break;
      case LayerSpec::Kind::flatten:
        src << "    x = torch.flatten(x, 1)\n";
        break;
      case LayerSpec::Kind::linear: {
        const std::string n = "fc" + std::to_string(++li);
        src << "    x = torch.flatten(x, 1) if x.dim() > 2 else x\n"
            << "    x = torch.matmul(x, " << self(n + ".weight") << ".t()) + " << self(n + ".bias") << "\n";
        break;
      }
      case LayerSpec::Kind::relu:
        src << "    x = torch.relu(x)\n";
        break;
      case LayerSpec::Kind::leaky_relu:
        src << "    x = torch.where(x > 0, x, x * 0.01)\n";
        break;
      case LayerSpec::Kind::sigmoid:
        src << "    x = torch.sigmoid(x)\n";
        break;
      case LayerSpec::Kind::tanh:
        src << "    x = torch.tanh(x)\n";
        break;
      case LayerSpec::Kind::gcn:
        break;  // graph networks returned above
    }
  }
  src << "    return x\n";
  return src.str();
}

std::string ResidualBlockImpl::script(const std::string& prefix) const {
  std::ostringstream src;
  src << "    y = torch.relu(" << conv_bn("x", prefix + "conv1", conv1_, prefix + "bn1") << ")\n";
  if (conv3_) {
    src << "    y = torch.relu(" << conv_bn("y", prefix + "conv2", conv2_, prefix + "bn2") << ")\n"
        << "    y = " << conv_bn("y", prefix + "conv3", conv3_, prefix + "bn3") << "\n";
  } else {
    src << "    y = " << conv_bn("y", prefix + "conv2", conv2_, prefix + "bn2") << "\n";
  }
  const std::string shortcut =
      down_conv_ ? conv_bn("x", prefix + "downsample.0", down_conv_, prefix + "downsample.1") : std::string("x");
  src << "    x = torch.relu(y + " << shortcut << ")\n";
  return src.str();
}

std::string ResNetImpl::script_forward() const {
  std::ostringstream src;
  src << "def forward(self, x):\n"
      << "    x = torch.relu(" << conv_bn("x", "conv1", conv1_, "bn1") << ")\n";
  if (imagenet_stem_) src << "    x = torch.max_pool2d(x, [3, 3], [2, 2], [1, 1])\n";
  for (size_t s = 0; s < stages_.size(); ++s)
    for (size_t b = 0; b < stages_[s]->size(); ++b)
      src << stages_[s]->ptr<ResidualBlockImpl>(b)->script("layer" + std::to_string(s + 1) + "." + std::to_string(b) +
                                                           ".");
  src << "    x = torch.flatten(torch.adaptive_avg_pool2d(x, [1, 1]), 1)\n"
      << "    return torch.matmul(x, self.fc_weight.t()) + self.fc_bias\n";
  return src.str();
}

}  // namespace prunegym
