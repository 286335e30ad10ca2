#include <prunegym/networks/groups.h>

#include <stdexcept>

namespace prunegym {

namespace {

/// The consumer's input columns as [channels, block] slices: dim 1 of a convolution, blocks of
/// columns of a linear layer.
int64_t consumer_columns(const PrunableLayer& l) { return l.weight.size(1); }

}  // namespace

nlohmann::json channel_group_json(const ChannelGroup& g, const NetworkImpl& net) {
  const auto& layers = net.prunable_layers();
  auto consumers = nlohmann::json::array();
  for (const auto& c : g.consumers) consumers.push_back({{"layer", layers.at(c.layer).name}, {"block", c.block}});
  return {{"producer", layers.at(g.producer).name},
          {"channels", g.channels},
          {"consumers", consumers},
          {"batch_norms", g.batch_norms}};
}

std::vector<ChannelGroup> checked_channel_groups(const NetworkImpl& net) {
  auto groups = net.channel_groups();
  const auto& layers = net.prunable_layers();
  for (const auto& g : groups) {
    const auto& p = layers.at(g.producer);
    if (p.weight.size(0) != g.channels)
      throw std::logic_error("channel group of " + p.name + ": " + std::to_string(g.channels) + " channels, but " +
                             std::to_string(p.weight.size(0)) + " weight rows");
    for (const auto& c : g.consumers) {
      const auto& l = layers.at(c.layer);
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
  auto& p = layers.at(g.producer);
  const auto rows = torch::tensor(channels, torch::kLong).to(p.mask.device());
  p.mask.index_fill_(0, rows, 0);
  p.weight.mul_(p.mask);
  for (const auto& c : g.consumers) {
    auto& l = layers.at(c.layer);
    std::vector<int64_t> columns;
    columns.reserve(channels.size() * static_cast<size_t>(c.block));
    for (int64_t ch : channels)
      for (int64_t k = 0; k < c.block; ++k) columns.push_back(ch * c.block + k);
    l.mask.index_fill_(1, torch::tensor(columns, torch::kLong).to(l.mask.device()), 0);
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

}  // namespace prunegym
