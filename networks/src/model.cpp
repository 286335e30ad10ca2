#include <prunegym/networks/errors.h>
#include <prunegym/networks/model.h>

#include <algorithm>
#include <map>
#include <sstream>

namespace prunegym {

int64_t PrunableLayer::remaining() const { return mask.sum().item<int64_t>(); }

double PrunableLayer::sparsity() const {
  return 1.0 - static_cast<double>(remaining()) / static_cast<double>(numel());
}

size_t NetworkImpl::layer_index(const std::string& name) const {
  std::string known;
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (layers_[i].name == name) return i;
    known += (i ? ", " : "") + layers_[i].name;
  }
  throw ConfigError("unknown layer '" + name + "' (prunable layers: " + known + ")");
}

void NetworkImpl::apply_masks() {
  torch::NoGradGuard no_grad;
  for (auto& l : layers_) l.weight.mul_(l.mask);
}

void NetworkImpl::mask_gradients() {
  for (auto& l : layers_) {
    auto& g = l.weight.mutable_grad();
    if (g.defined()) g.mul_(l.mask);
  }
}

void NetworkImpl::clear_masks() {
  torch::NoGradGuard no_grad;
  for (auto& l : layers_) l.mask.fill_(1.0);
}

int64_t NetworkImpl::total_prunable() const {
  int64_t n = 0;
  for (const auto& l : layers_) n += l.numel();
  return n;
}

int64_t NetworkImpl::remaining_prunable() const {
  int64_t n = 0;
  for (const auto& l : layers_) n += l.remaining();
  return n;
}

double NetworkImpl::sparsity() const {
  const int64_t total = total_prunable();
  return total ? 1.0 - static_cast<double>(remaining_prunable()) / static_cast<double>(total) : 0.0;
}

void NetworkImpl::register_prunable(const std::string& owner_name, torch::nn::Module& owner) {
  auto weight = owner.named_parameters(false)["weight"];
  auto mask = owner.register_buffer("weight_mask", torch::ones_like(weight));
  layers_.push_back({owner_name + ".weight", weight, mask});
}

// ---------------------------------------------------------------------------------------------
// Layer specs

LayerSpec LayerSpec::conv(int64_t out, int64_t kernel, int64_t padding) {
  LayerSpec s;
  s.kind = Kind::conv;
  s.out = out;
  s.kernel = kernel;
  s.padding = padding;
  return s;
}
LayerSpec LayerSpec::linear(int64_t out) {
  LayerSpec s;
  s.kind = Kind::linear;
  s.out = out;
  return s;
}
LayerSpec LayerSpec::gcn(int64_t out) {
  LayerSpec s;
  s.kind = Kind::gcn;
  s.out = out;
  return s;
}
LayerSpec LayerSpec::maxpool(int64_t kernel) {
  LayerSpec s;
  s.kind = Kind::maxpool;
  s.kernel = kernel;
  s.stride = kernel;
  return s;
}
LayerSpec LayerSpec::flatten() {
  LayerSpec s;
  s.kind = Kind::flatten;
  return s;
}
LayerSpec LayerSpec::activation(Kind kind) {
  LayerSpec s;
  s.kind = kind;
  return s;
}

namespace {

const std::map<std::string, LayerSpec::Kind>& activation_names() {
  static const std::map<std::string, LayerSpec::Kind> names{{"relu", LayerSpec::Kind::relu},
                                                            {"leaky_relu", LayerSpec::Kind::leaky_relu},
                                                            {"sigmoid", LayerSpec::Kind::sigmoid},
                                                            {"tanh", LayerSpec::Kind::tanh}};
  return names;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) out.push_back(item);
  return out;
}

int64_t parse_int(const std::string& text, const std::string& context) {
  try {
    size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used != text.size() || v < 0) throw std::invalid_argument(text);
    return v;
  } catch (const std::exception&) {
    throw ConfigError("network.layers: '" + context + "': '" + text + "' is not a non-negative integer");
  }
}

}  // namespace

LayerSpec LayerSpec::parse(const std::string& text) {
  const auto parts = split(text, ':');
  const std::string kind = parts.empty() ? "" : parts[0];
  auto arg = [&](size_t i, int64_t fallback) {
    return parts.size() > i ? parse_int(parts[i], text) : fallback;
  };
  if (kind == "conv" && parts.size() >= 2 && parts.size() <= 4) return conv(arg(1, 0), arg(2, 3), arg(3, 0));
  if (kind == "linear" && parts.size() <= 2) return linear(arg(1, 0));
  if (kind == "gcn" && parts.size() == 2) return gcn(arg(1, 0));
  if (kind == "maxpool" && parts.size() <= 2) return maxpool(arg(1, 2));
  if (kind == "flatten" && parts.size() == 1) return flatten();
  const auto it = activation_names().find(kind);
  if (it != activation_names().end() && parts.size() == 1) return activation(it->second);
  throw ConfigError("network.layers: cannot parse '" + text +
                    "' (forms: conv:OUT[:KERNEL[:PADDING]], linear[:OUT], gcn:OUT, maxpool[:K], flatten, relu, "
                    "leaky_relu, sigmoid, tanh)");
}

std::string LayerSpec::to_string() const {
  switch (kind) {
    case Kind::conv:
      return "conv:" + std::to_string(out) + ":" + std::to_string(kernel) + ":" + std::to_string(padding);
    case Kind::linear: return "linear:" + std::to_string(out);
    case Kind::gcn: return "gcn:" + std::to_string(out);
    case Kind::maxpool: return "maxpool:" + std::to_string(kernel);
    case Kind::flatten: return "flatten";
    default:
      for (const auto& [name, k] : activation_names())
        if (k == kind) return name;
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// Layer stack

LayerStackImpl::LayerStackImpl(std::vector<LayerSpec> specs, InputShape input, int64_t classes)
    : specs_(std::move(specs)), graph_(input.graph) {
  int64_t c = input.channels, h = input.height, w = input.width;
  bool flat = false;
  int64_t features = 0;
  if (!graph_) largest_activation_ = c * h * w;
  if (graph_) {
    // Node features are vectors from the start; rows are selected after the last graph layer.
    flat = true;
    features = graph_->feature_count();
    for (size_t i = 0; i < specs_.size(); ++i)
      if (specs_[i].kind == LayerSpec::Kind::gcn) select_after_ = i + 1;
    // Bag-of-words features are mostly zeros: when the first layer is a graph convolution, it
    // reads them as a sparse matrix (its product and the weight gradient then cost nnz, not N x F).
    const auto first = std::find_if(specs_.begin(), specs_.end(), [](const LayerSpec& s) {
      return s.kind == LayerSpec::Kind::gcn || s.kind == LayerSpec::Kind::linear;
    });
    if (first != specs_.end() && first->kind == LayerSpec::Kind::gcn) graph_input_ = sparse_if_mostly_zero(graph_->features);
  }
  size_t last_linear = specs_.size();
  for (size_t i = 0; i < specs_.size(); ++i)
    if (specs_[i].kind == LayerSpec::Kind::linear) last_linear = i;
  if (last_linear == specs_.size()) throw ConfigError("network.layers: a network needs at least one linear layer");
  for (size_t i = 0; i < specs_.size(); ++i) {
    auto& s = specs_[i];
    switch (s.kind) {
      case LayerSpec::Kind::gcn: {
        if (!graph_)
          throw ConfigError("network.layers: " + s.to_string() +
                            " is a graph convolution and needs graph data (data.source \"graph\" or \"cora\")");
        if (s.out <= 0) throw ConfigError("network.layers: gcn needs a positive width");
        auto lin = torch::nn::Linear(features, s.out);
        {
          // Glorot-uniform weights and zero bias, the usual GCN initialisation.
          torch::NoGradGuard no_grad;
          torch::nn::init::xavier_uniform_(lin->weight);
          lin->bias.zero_();
        }
        const std::string name = "gcn" + std::to_string(gcns_.size() + 1);
        register_module(name, lin);
        register_prunable(name, *lin);
        gcns_.push_back(lin);
        features = s.out;
        break;
      }
      case LayerSpec::Kind::conv: {
        if (graph_) throw ConfigError("network.layers: conv layers do not apply to graph data (use gcn:OUT)");
        if (flat) throw ConfigError("network.layers: conv after flatten/linear is not supported");
        if (s.out <= 0) throw ConfigError("network.layers: conv needs a positive channel count");
        auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(c, s.out, s.kernel).padding(s.padding).stride(s.stride));
        const std::string name = "conv" + std::to_string(convs_.size() + 1);
        register_module(name, conv);
        register_prunable(name, *conv);
        convs_.push_back(conv);
        c = s.out;
        h = (h + 2 * s.padding - s.kernel) / s.stride + 1;
        w = (w + 2 * s.padding - s.kernel) / s.stride + 1;
        if (h <= 0 || w <= 0) throw ConfigError("network.layers: the input is too small for " + s.to_string());
        if (!graph_) largest_activation_ = std::max(largest_activation_, c * h * w);
        break;
      }
      case LayerSpec::Kind::maxpool:
        if (graph_) throw ConfigError("network.layers: maxpool does not apply to graph data");
        if (flat) throw ConfigError("network.layers: maxpool after flatten/linear is not supported");
        h /= s.kernel;
        w /= s.kernel;
        if (h <= 0 || w <= 0) throw ConfigError("network.layers: the input is too small for " + s.to_string());
        break;
      case LayerSpec::Kind::flatten:
        flat = true;
        break;
      case LayerSpec::Kind::linear: {
        if (!flat) flat = true;  // implicit flatten before the first linear layer
        if (features == 0) features = c * h * w;
        if (i == last_linear && s.out == 0) s.out = classes;
        if (s.out <= 0) throw ConfigError("network.layers: linear layers need a positive width");
        auto lin = torch::nn::Linear(features, s.out);
        const std::string name = "fc" + std::to_string(linears_.size() + 1);
        register_module(name, lin);
        register_prunable(name, *lin);
        linears_.push_back(lin);
        features = s.out;
        if (!graph_) largest_activation_ = std::max(largest_activation_, features);
        break;
      }
      default:
        break;
    }
  }
  if (features != classes) {
    throw ConfigError("network.layers: the last linear layer has " + std::to_string(features) +
                      " outputs but the dataset has " + std::to_string(classes) + " classes");
  }
}

torch::Tensor LayerStackImpl::forward(const torch::Tensor& input) {
  torch::Tensor x = graph_ ? (graph_input_.defined() ? graph_input_ : graph_->features) : input;
  if (graph_ && input.scalar_type() != torch::kInt64)
    throw DataError("a graph network takes node ids (int64), got a tensor of " +
                    std::string(c10::toString(input.scalar_type())));
  size_t ci = 0, li = 0, gi = 0;
  for (size_t i = 0; i <= specs_.size(); ++i) {
    if (graph_ && i == select_after_) x = x.index_select(0, input);
    if (i == specs_.size()) break;
    const auto& s = specs_[i];
    switch (s.kind) {
      case LayerSpec::Kind::gcn: {
        const auto& g = gcns_[gi++];
        x = gcn_propagate(graph_->adjacency, x, g->weight, g->bias);
        break;
      }
      case LayerSpec::Kind::conv: x = convs_[ci++]->forward(x); break;
      case LayerSpec::Kind::maxpool: x = torch::max_pool2d(x, s.kernel, s.stride); break;
      case LayerSpec::Kind::flatten: x = x.flatten(1); break;
      case LayerSpec::Kind::linear:
        if (x.dim() > 2) x = x.flatten(1);
        x = linears_[li++]->forward(x);
        break;
      case LayerSpec::Kind::relu: x = torch::relu(x); break;
      case LayerSpec::Kind::leaky_relu: x = torch::leaky_relu(x, 0.01); break;
      case LayerSpec::Kind::sigmoid: x = torch::sigmoid(x); break;
      case LayerSpec::Kind::tanh: x = torch::tanh(x); break;
    }
  }
  return x;
}

// ---------------------------------------------------------------------------------------------
// Registry

namespace {

using K = LayerSpec::Kind;

std::vector<LayerSpec> vgg_like(int convs) {
  // The lottery-ticket paper's Conv-2/4/6: pairs of 3x3 convs (64, 128, 256 filters) each followed
  // by max-pooling, then 256-256-classes fully connected layers.
  std::vector<LayerSpec> s;
  const int64_t widths[] = {64, 128, 256};
  for (int pair = 0; pair < convs / 2; ++pair) {
    s.push_back(LayerSpec::conv(widths[pair], 3, 1));
    s.push_back(LayerSpec::activation(K::relu));
    s.push_back(LayerSpec::conv(widths[pair], 3, 1));
    s.push_back(LayerSpec::activation(K::relu));
    s.push_back(LayerSpec::maxpool(2));
  }
  s.push_back(LayerSpec::flatten());
  s.push_back(LayerSpec::linear(256));
  s.push_back(LayerSpec::activation(K::relu));
  s.push_back(LayerSpec::linear(256));
  s.push_back(LayerSpec::activation(K::relu));
  s.push_back(LayerSpec::linear());
  return s;
}

struct RegisteredNetwork {
  std::string name;
  std::string summary;
  std::function<std::vector<LayerSpec>()> specs;
};

const std::vector<RegisteredNetwork>& registry() {
  static const std::vector<RegisteredNetwork> nets{
      {"lenet300", "LeNet-300-100: fully connected 300-100-classes, ReLU",
       [] {
         return std::vector<LayerSpec>{LayerSpec::flatten(), LayerSpec::linear(300), LayerSpec::activation(K::relu),
                                       LayerSpec::linear(100), LayerSpec::activation(K::relu), LayerSpec::linear()};
       }},
      {"lenet5", "LeNet-5: conv 6@5x5, pool, conv 16@5x5, pool, fc 120-84-classes",
       [] {
         return std::vector<LayerSpec>{LayerSpec::conv(6, 5, 2), LayerSpec::activation(K::relu), LayerSpec::maxpool(2),
                                       LayerSpec::conv(16, 5, 0), LayerSpec::activation(K::relu), LayerSpec::maxpool(2),
                                       LayerSpec::flatten(), LayerSpec::linear(120), LayerSpec::activation(K::relu),
                                       LayerSpec::linear(84), LayerSpec::activation(K::relu), LayerSpec::linear()};
       }},
      {"conv2", "Conv-2: 2x conv 64@3x3, pool, fc 256-256-classes", [] { return vgg_like(2); }},
      {"conv4", "Conv-4: Conv-2 plus 2x conv 128@3x3, pool", [] { return vgg_like(4); }},
      {"conv6", "Conv-6: Conv-4 plus 2x conv 256@3x3, pool", [] { return vgg_like(6); }},
      {"cnn2", "small CNN: conv 16@5x5 leaky_relu, pool, conv 32@5x5 leaky_relu, pool, fc-classes sigmoid",
       [] {
         return std::vector<LayerSpec>{LayerSpec::conv(16, 5, 0), LayerSpec::activation(K::leaky_relu),
                                       LayerSpec::maxpool(2), LayerSpec::conv(32, 5, 0),
                                       LayerSpec::activation(K::leaky_relu), LayerSpec::maxpool(2),
                                       LayerSpec::flatten(), LayerSpec::linear(), LayerSpec::activation(K::sigmoid)};
       }},
      {"gcn2", "GCN (graph data): gcn 64 leaky_relu, gcn 32 leaky_relu, fc-classes sigmoid",
       [] {
         return std::vector<LayerSpec>{LayerSpec::gcn(64), LayerSpec::activation(K::leaky_relu), LayerSpec::gcn(32),
                                       LayerSpec::activation(K::leaky_relu), LayerSpec::linear(),
                                       LayerSpec::activation(K::sigmoid)};
       }},
  };
  return nets;
}

}  // namespace

std::vector<std::string> network_names() {
  std::vector<std::string> names;
  for (const auto& n : registry()) names.push_back(n.name);
  names.push_back("custom");
  return names;
}

std::vector<LayerSpec> network_specs(const NetworkOptions& options) {
  if (options.name == "custom") {
    if (options.layers.empty()) throw ConfigError("network.layers: a custom network needs a non-empty layer list");
    std::vector<LayerSpec> specs;
    for (const auto& l : options.layers) specs.push_back(LayerSpec::parse(l));
    return specs;
  }
  if (!options.layers.empty()) {
    throw ConfigError("network.layers is only allowed with network.name = \"custom\"");
  }
  std::string known;
  for (const auto& n : registry()) {
    if (n.name == options.name) return n.specs();
    known += n.name + ", ";
  }
  throw ConfigError("network.name: unknown network '" + options.name + "' (known: " + known + "custom)");
}

NetworkPtr build_network(const NetworkOptions& options, InputShape input, int64_t classes) {
  auto specs = network_specs(options);
  // Initial weights come from the global generator; seed it here and leave it as it was.
  auto gen = at::detail::getDefaultCPUGenerator();
  const auto saved = gen.get_state();
  torch::manual_seed(options.init_seed);
  auto net = std::make_shared<LayerStackImpl>(std::move(specs), input, classes);
  gen.set_state(saved);
  return net;
}

void copy_state(const NetworkImpl& from, NetworkImpl& to) { load_state(to, clone_state(from)); }

std::vector<torch::Tensor> clone_state(const NetworkImpl& net) {
  std::vector<torch::Tensor> out;
  for (const auto& p : net.parameters()) out.push_back(p.detach().clone());
  for (const auto& b : net.buffers()) out.push_back(b.detach().clone());
  return out;
}

void load_state(NetworkImpl& net, const std::vector<torch::Tensor>& state) {
  torch::NoGradGuard no_grad;
  auto params = net.parameters();
  auto buffers = net.buffers();
  if (state.size() != params.size() + buffers.size()) {
    throw Error("load_state: the saved state has " + std::to_string(state.size()) + " tensors, the network " +
                std::to_string(params.size() + buffers.size()));
  }
  size_t i = 0;
  for (auto& p : params) p.copy_(state[i++]);
  for (auto& b : buffers) b.copy_(state[i++]);
}

}  // namespace prunegym
