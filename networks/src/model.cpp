#include <prunegym/core/errors.h>
#include <prunegym/networks/model.h>

#include <algorithm>
#include <map>
#include <optional>
#include <sstream>

namespace prunegym {

int64_t PrunableLayer::remaining() const { return mask.sum().item<int64_t>(); }

double PrunableLayer::sparsity() const { return 1.0 - static_cast<double>(remaining()) / static_cast<double>(numel()); }

size_t NetworkImpl::layer_index(const std::string& name) const {
  std::string known;
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (layers_[i].name == name) return i;
    known += (i ? ", " : "") + layers_[i].name;
  }
  throw ConfigError("unknown layer '" + name + "' (prunable layers: " + known + ")");
}

bool is_mask_buffer(const std::string& name) {
  static const std::string suffix = "weight_mask";
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void NetworkImpl::save_model(const std::string& path) const {
  if (const auto source = script_forward(); !source.empty()) return save_scripted(*this, source, path);
  torch::serialize::OutputArchive archive;
  save(archive);
  archive.save_to(path);
}

std::string NetworkImpl::save_replaced(const std::string&, const std::map<std::string, torch::Tensor>&) const {
  return "the network has no TorchScript form of its own (graph networks)";
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
  // Masks use the standard layout whatever the weight's (channels-last convolutions), so flat
  // views and indices into them follow the weight's logical order.
  auto mask = owner.register_buffer("weight_mask", torch::ones(weight.sizes(), weight.options()));
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
  auto arg = [&](size_t i, int64_t fallback) { return parts.size() > i ? parse_int(parts[i], text) : fallback; };
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
    case Kind::linear:
      return "linear:" + std::to_string(out);
    case Kind::gcn:
      return "gcn:" + std::to_string(out);
    case Kind::maxpool:
      return "maxpool:" + std::to_string(kernel);
    case Kind::flatten:
      return "flatten";
    default:
      for (const auto& [name, k] : activation_names())
        if (k == kind) return name;
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// Layer stack

namespace {

/// Index of the last spec of this kind; specs.size() when there is none.
size_t last_of(const std::vector<LayerSpec>& specs, LayerSpec::Kind kind) {
  size_t last = specs.size();
  for (size_t i = 0; i < specs.size(); ++i)
    if (specs[i].kind == kind) last = i;
  return last;
}

/// Bag-of-words features are mostly zeros: when the first layer is a graph convolution, it reads
/// them as a sparse matrix (its product and the weight gradient then cost nnz, not N x F).
torch::Tensor graph_input(const std::vector<LayerSpec>& specs, const Graph& graph) {
  const auto first = std::find_if(specs.begin(), specs.end(), [](const LayerSpec& s) {
    return s.kind == LayerSpec::Kind::gcn || s.kind == LayerSpec::Kind::linear;
  });
  if (first != specs.end() && first->kind == LayerSpec::Kind::gcn) return sparse_if_mostly_zero(graph.features);
  return {};
}

/// A linear map with Glorot-uniform weights and zero bias, the usual GCN initialisation.
torch::nn::Linear glorot_linear(int64_t in, int64_t out) {
  auto lin = torch::nn::Linear(in, out);
  torch::NoGradGuard no_grad;
  torch::nn::init::xavier_uniform_(lin->weight);
  lin->bias.zero_();
  return lin;
}

}  // namespace

namespace {

/// Where a layer may sit: graph convolutions on graph data, convolutions and pooling on images before
/// any flatten.
void check_placement(const LayerSpec& s, bool graph, bool flat) {
  const bool image_op = s.kind == LayerSpec::Kind::conv || s.kind == LayerSpec::Kind::maxpool;
  const std::string what = s.kind == LayerSpec::Kind::conv ? "conv layers" : "maxpool";
  if (s.kind == LayerSpec::Kind::gcn && !graph)
    throw ConfigError("network.layers: " + s.to_string() +
                      " is a graph convolution and needs graph data (data.source \"graph\" or \"cora\")");
  if (image_op && graph)
    throw ConfigError("network.layers: " + what + (s.kind == LayerSpec::Kind::conv ? " do" : " does") +
                      " not apply to graph data" + (s.kind == LayerSpec::Kind::conv ? " (use gcn:OUT)" : ""));
  if (image_op && flat)
    throw ConfigError("network.layers: " + s.to_string().substr(0, s.to_string().find(':')) +
                      " after flatten/linear is not supported");
}

/// Each prunable layer of a stack feeds the next one (activations and pooling act per channel); a
/// linear layer after a flatten reads inputs / channels columns (h x w) per channel.
std::vector<ChannelGroup> chain_groups(const std::vector<PrunableLayer>& layers) {
  std::vector<ChannelGroup> groups;
  for (size_t k = 0; k + 1 < layers.size(); ++k) {
    const int64_t channels = layers[k].weight.size(0);
    groups.push_back({k, channels, {{k + 1, layers[k + 1].weight.size(1) / channels}}, {}});
  }
  return groups;
}

}  // namespace

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
    const size_t last_gcn = last_of(specs_, LayerSpec::Kind::gcn);
    select_after_ = last_gcn == specs_.size() ? 0 : last_gcn + 1;
    graph_input_ = graph_input(specs_, *graph_);
  }
  const size_t last_linear = last_of(specs_, LayerSpec::Kind::linear);
  if (last_linear == specs_.size()) throw ConfigError("network.layers: a network needs at least one linear layer");
  for (size_t i = 0; i < specs_.size(); ++i) {
    auto& s = specs_[i];
    switch (s.kind) {
      case LayerSpec::Kind::gcn: {
        check_placement(s, graph_ != nullptr, flat);
        if (s.out <= 0) throw ConfigError("network.layers: gcn needs a positive width");
        auto lin = glorot_linear(features, s.out);
        const std::string name = "gcn" + std::to_string(gcns_.size() + 1);
        register_module(name, lin);
        register_prunable(name, *lin);
        output_positions_.push_back(graph_->nodes());  // every node, each forward
        gcns_.push_back(lin);
        features = s.out;
        break;
      }
      case LayerSpec::Kind::conv: {
        check_placement(s, graph_ != nullptr, flat);
        if (s.out <= 0) throw ConfigError("network.layers: conv needs a positive channel count");
        auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(c, s.out, s.kernel).padding(s.padding).stride(s.stride));
        const std::string name = "conv" + std::to_string(convs_.size() + 1);
        register_module(name, conv);
        register_prunable(name, *conv);
        convs_.push_back(conv);
        c = s.out;
        h = (h + 2 * s.padding - s.kernel) / s.stride + 1;
        w = (w + 2 * s.padding - s.kernel) / s.stride + 1;
        output_positions_.push_back(std::max<int64_t>(h, 0) * std::max<int64_t>(w, 0));
        if (h <= 0 || w <= 0) throw ConfigError("network.layers: the input is too small for " + s.to_string());
        if (!graph_) largest_activation_ = std::max(largest_activation_, c * h * w);
        break;
      }
      case LayerSpec::Kind::maxpool:
        check_placement(s, graph_ != nullptr, flat);
        h /= s.kernel;
        w /= s.kernel;
        if (h <= 0 || w <= 0) throw ConfigError("network.layers: the input is too small for " + s.to_string());
        break;
      case LayerSpec::Kind::flatten:
        flat = true;
        break;
      case LayerSpec::Kind::linear: {
        flat = true;  // implicit flatten before the first linear layer
        if (features == 0) features = c * h * w;
        if (i == last_linear && s.out == 0) s.out = classes;
        if (s.out <= 0) throw ConfigError("network.layers: linear layers need a positive width");
        auto lin = torch::nn::Linear(features, s.out);
        const std::string name = "fc" + std::to_string(linears_.size() + 1);
        register_module(name, lin);
        register_prunable(name, *lin);
        output_positions_.push_back(graph_ && i < select_after_ ? graph_->nodes() : 1);  // before selection: all nodes
        linears_.push_back(lin);
        features = s.out;
        if (!graph_) largest_activation_ = std::max(largest_activation_, features);
        break;
      }
      default:
        break;
    }
  }
  if (features != classes)
    throw ConfigError("network.layers: the last linear layer has " + std::to_string(features) +
                      " outputs but the dataset has " + std::to_string(classes) + " classes");
  groups_ = chain_groups(prunable_layers());
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
      case LayerSpec::Kind::conv:
        x = convs_[ci++]->forward(x);
        break;
      case LayerSpec::Kind::maxpool:
        x = torch::max_pool2d(x, s.kernel, s.stride);
        break;
      case LayerSpec::Kind::flatten:
        x = x.flatten(1);
        break;
      case LayerSpec::Kind::linear:
        if (x.dim() > 2) x = x.flatten(1);
        x = linears_[li++]->forward(x);
        break;
      case LayerSpec::Kind::relu:
        x = torch::relu(x);
        break;
      case LayerSpec::Kind::leaky_relu:
        x = torch::leaky_relu(x, 0.01);
        break;
      case LayerSpec::Kind::sigmoid:
        x = torch::sigmoid(x);
        break;
      case LayerSpec::Kind::tanh:
        x = torch::tanh(x);
        break;
    }
  }
  return x;
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
