#include <prunegym/networks/groups.h>

#include <torch/csrc/jit/runtime/graph_executor.h>

#include <set>
#include <stdexcept>

namespace prunegym {

namespace {

/// The consumer's input columns as [channels, block] slices: dim 1 of a convolution, blocks of
/// columns of a linear layer.
int64_t consumer_columns(const PrunableLayer& l) { return l.weight.size(1); }

/// The input columns of `channels` in a consumer that reads `block` columns per channel.
std::vector<int64_t> expand_columns(const std::vector<int64_t>& channels, int64_t block) {
  std::vector<int64_t> columns;
  columns.reserve(channels.size() * static_cast<size_t>(block));
  for (int64_t ch : channels)
    for (int64_t k = 0; k < block; ++k) columns.push_back(ch * block + k);
  return columns;
}

}  // namespace

nlohmann::json channel_group_json(const ChannelGroup& g, const NetworkImpl& net) {
  const auto& layers = net.prunable_layers();
  auto consumers = nlohmann::json::array();
  for (const auto& c : g.consumers) {
    consumers.push_back({{"layer", layers.at(c.layer).name}, {"block", c.block}});
    if (c.depthwise) consumers.back()["depthwise"] = true;
  }
  nlohmann::json out{{"producer", layers.at(g.producer).name},
                     {"channels", g.channels},
                     {"consumers", consumers},
                     {"batch_norms", g.batch_norms}};
  if (!g.tied.empty()) {
    out["tied"] = nlohmann::json::array();
    for (size_t t : g.tied) out["tied"].push_back(layers.at(t).name);
  }
  return out;
}

std::vector<size_t> group_producers(const ChannelGroup& g) {
  std::vector<size_t> out{g.producer};
  out.insert(out.end(), g.tied.begin(), g.tied.end());
  return out;
}

std::vector<ChannelGroup> checked_channel_groups(const NetworkImpl& net) {
  auto groups = net.channel_groups();
  const auto& layers = net.prunable_layers();
  for (const auto& g : groups) {
    const auto& p = layers.at(g.producer);
    for (size_t producer : group_producers(g)) {
      const auto& w = layers.at(producer).weight;
      if (w.size(0) != g.channels)
        throw std::logic_error("channel group of " + p.name + ": " + std::to_string(g.channels) + " channels, but " +
                               layers.at(producer).name + " has " + std::to_string(w.size(0)) + " weight rows");
    }
    for (const auto& c : g.consumers) {
      const auto& l = layers.at(c.layer);
      if (c.depthwise) {
        if (l.weight.dim() != 4 || l.weight.size(0) != g.channels || l.weight.size(1) != 1)
          throw std::logic_error("channel group of " + p.name + ": depthwise consumer " + l.name + " has not " +
                                 std::to_string(g.channels) + " single-channel filters");
        continue;
      }
      if (l.weight.dim() < 2 || consumer_columns(l) != g.channels * c.block)
        throw std::logic_error("channel group of " + p.name + ": consumer " + l.name + " reads " +
                               std::to_string(l.weight.dim() < 2 ? 0 : consumer_columns(l)) + " inputs, not " +
                               std::to_string(g.channels) + " x " + std::to_string(c.block));
    }
  }
  return groups;
}

void remove_channels(NetworkImpl& net, const ChannelGroup& g, const std::vector<int64_t>& channels) {
  if (channels.empty()) return;
  torch::NoGradGuard no_grad;
  auto& layers = net.prunable_layers();
  for (size_t producer : group_producers(g)) {
    auto& p = layers.at(producer);
    p.mask.index_fill_(0, torch::tensor(channels, torch::kLong).to(p.mask.device()), 0);
    p.weight.mul_(p.mask);
  }
  for (const auto& c : g.consumers) {
    auto& l = layers.at(c.layer);
    const auto index = c.depthwise ? channels : expand_columns(channels, c.block);
    l.mask.index_fill_(c.depthwise ? 0 : 1, torch::tensor(index, torch::kLong).to(l.mask.device()), 0);
    l.weight.mul_(l.mask);
  }
}

std::vector<int64_t> surviving_channels(const NetworkImpl& net, const ChannelGroup& g) {
  const auto& p = net.prunable_layers().at(g.producer);
  const auto alive = p.mask.reshape({p.mask.size(0), -1}).amax(1).to(torch::kCPU);
  std::vector<int64_t> out;
  const auto a = alive.accessor<float, 1>();
  for (int64_t c = 0; c < alive.size(0); ++c)
    if (a[c] > 0) out.push_back(c);
  return out;
}

namespace {

/// One consumer's mask as [channels, everything else]: row c holds the input columns of channel c.
torch::Tensor columns_by_channel(const PrunableLayer& l, const ChannelGroup& g) {
  return l.mask.transpose(0, 1).reshape({g.channels, -1});
}

/// "layer1.0.conv1.weight" -> "layer1.0.conv1".
std::string owner_of(const std::string& weight) {
  const auto dot = weight.rfind('.');
  return dot == std::string::npos ? std::string() : weight.substr(0, dot);
}

}  // namespace

std::vector<int64_t> read_channels(const NetworkImpl& net, const ChannelGroup& g) {
  const auto& layers = net.prunable_layers();
  auto read = torch::zeros({g.channels}, torch::kBool);
  for (const auto& c : g.consumers)  // a depthwise consumer only carries the channel to the others
    if (!c.depthwise) read = read.logical_or(columns_by_channel(layers.at(c.layer), g).amax(1).to(torch::kCPU) > 0);
  std::vector<int64_t> out;
  const auto a = read.accessor<bool, 1>();
  for (int64_t c = 0; c < g.channels; ++c)
    if (a[c]) out.push_back(c);
  if (out.empty()) out.push_back(0);  // a layer keeps one channel: the shapes stay valid, the function the same
  return out;
}

CompactNetwork compact_network(const NetworkImpl& net) {
  torch::NoGradGuard no_grad;
  CompactNetwork out;
  std::map<std::string, torch::Tensor> tensors;
  std::set<std::string> parameters;
  for (const auto& p : net.named_parameters()) {
    tensors[p.key()] = p.value().detach();
    parameters.insert(p.key());
  }
  for (const auto& b : net.named_buffers())
    if (!is_mask_buffer(b.key())) tensors[b.key()] = b.value().detach();
  // Built-in networks name their tensors by module path; imports by script_name() of it.
  const auto key = [&](const std::string& name) { return tensors.count(name) ? name : script_name(name); };
  const auto select = [&](const std::string& name, int64_t dim, const std::vector<int64_t>& keep) {
    auto it = tensors.find(key(name));
    if (it == tensors.end() || it->second.dim() <= dim) return;
    it->second = it->second.index_select(dim, torch::tensor(keep, torch::kLong).to(it->second.device()));
    out.tensors[it->first] = it->second;
    out.slices[it->first].emplace_back(dim, keep);
  };
  const auto& layers = net.prunable_layers();
  for (const auto& g : checked_channel_groups(net)) {
    const auto keep = read_channels(net, g);
    if (static_cast<int64_t>(keep.size()) == g.channels) continue;
    out.removed_channels += g.channels - static_cast<int64_t>(keep.size());
    for (size_t producer : group_producers(g)) {
      select(layers.at(producer).name, 0, keep);
      select(owner_of(layers.at(producer).name) + ".bias", 0, keep);
    }
    for (const auto& bn : g.batch_norms)
      for (const char* field : {".weight", ".bias", ".running_mean", ".running_var"}) select(bn + field, 0, keep);
    for (const auto& c : g.consumers)
      select(layers.at(c.layer).name, c.depthwise ? 0 : 1, c.depthwise ? keep : expand_columns(keep, c.block));
  }
  for (const auto& name : parameters) out.parameters += tensors.at(name).numel();
  const auto positions = net.output_positions();
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& w = tensors.at(key(layers[i].name));
    out.prunable += w.numel();
    if (i < positions.size() && positions[i] >= 0) out.macs += positions[i] * w.numel();
    out.shapes.emplace_back(layers[i].name, w.sizes().vec());
  }
  return out;
}

nlohmann::json CompactNetwork::to_json() const {
  auto shapes_json = nlohmann::json::object();
  for (const auto& [name, shape] : shapes) shapes_json[name] = shape;
  return {{"removed_channels", removed_channels},
          {"parameters", parameters},
          {"prunable", prunable},
          {"macs", macs},
          {"shapes", shapes_json}};
}

std::optional<CompactNetwork> save_compact_model(const NetworkImpl& net, const std::string& path, std::string* why) {
  const std::string source = net.script_forward();
  if (source.empty() && !net.replaces_tensors()) {
    if (why) *why = net.save_replaced(path, {});
    return std::nullopt;
  }
  auto compact = compact_network(net);
  if (source.empty()) {
    const auto reason = net.save_replaced(path, compact.tensors);
    if (why) *why = reason;
    if (!reason.empty()) return std::nullopt;
    return compact;
  }
  save_scripted(net, source, path, compact.tensors);
  return compact;
}

std::optional<EvalResult> evaluate_compact(const NetworkImpl& net, const Tensors& data, int64_t batch_size) {
  const std::string source = net.script_forward();
  if (source.empty()) return std::nullopt;
  torch::InferenceMode guard;
  const auto compact = compact_network(net);
  if (compact.removed_channels == 0) return std::nullopt;
  // The network's memory format carries over (the residual networks run channels-last).
  bool channels_last = false;
  for (const auto& l : net.prunable_layers())
    channels_last = channels_last || (l.weight.dim() == 4 && !l.weight.is_contiguous() &&
                                      l.weight.is_contiguous(torch::MemoryFormat::ChannelsLast));
  auto module = scripted_module(net, source, compact.tensors);
  module.eval();
  if (channels_last)
    for (auto p : module.parameters())
      if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
  // A fresh module each call: the profiling executor would re-profile and re-optimize it every
  // time, which costs more than it saves on one evaluation.
  torch::jit::GraphOptimizerEnabledGuard plain(false);
  return evaluate_forward(
      [&](const torch::Tensor& x) {
        return module.forward({channels_last ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x}).toTensor();
      },
      data, batch_size, net.activation_floats_per_sample());
}

}  // namespace prunegym
