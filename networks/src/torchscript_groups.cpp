// Channel groups of an imported TorchScript module, proven from its inlined forward graph.

#include "torchscript_graph.h"

#include <torch/csrc/jit/ir/constants.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

namespace prunegym::script {

std::string attribute_path(const torch::jit::Value* v, const torch::jit::Value* self) {
  std::string path;
  while (v != self) {
    const torch::jit::Node* n = v->node();
    if (n->kind() != c10::prim::GetAttr) return "";
    path = n->s(c10::attr::name) + (path.empty() ? "" : "." + path);
    v = n->input(0);
  }
  return path;
}

bool is_convolution(c10::Symbol k) {
  return k == c10::aten::conv1d || k == c10::aten::conv2d || k == c10::aten::conv3d || k == c10::aten::_convolution;
}

const torch::jit::Value* weight_operand(const torch::jit::Node* n) {
  const auto k = n->kind();
  if (is_convolution(k) || k == c10::aten::linear) return n->input(1);
  const size_t right = k == c10::aten::addmm ? 2 : 1;
  if ((k != c10::aten::matmul && k != c10::aten::mm && k != c10::aten::addmm) || n->inputs().size() <= right)
    return nullptr;
  const torch::jit::Node* t = n->input(right)->node();
  return t->kind() == c10::aten::t ? t->input(0) : nullptr;
}

namespace {

using torch::jit::Block;
using torch::jit::Node;
using torch::jit::Value;

constexpr int kNone = -1;  // no prunable layer's channels
constexpr int kTied = -2;  // channels of a layer that can no longer be followed

/// Whose output channels a tensor carries, and along which dimension.
struct Origin {
  int producer = kNone;
  bool features_last = false;  ///< a linear layer's output or a flattened map (channels in the last dim)
  bool flattened = false;      ///< a flattened map: each channel is a block of columns
  bool operator==(const Origin& o) const {
    return producer == o.producer && features_last == o.features_last && flattened == o.flattened;
  }
};

const std::set<std::string> kActivations = {"aten::relu",
                                            "aten::relu_",
                                            "aten::relu6",
                                            "aten::hardtanh",
                                            "aten::hardtanh_",
                                            "aten::sigmoid",
                                            "aten::sigmoid_",
                                            "aten::tanh",
                                            "aten::tanh_",
                                            "aten::gelu",
                                            "aten::silu",
                                            "aten::silu_",
                                            "aten::hardswish",
                                            "aten::hardswish_",
                                            "aten::hardsigmoid",
                                            "aten::hardsigmoid_",
                                            "aten::leaky_relu",
                                            "aten::leaky_relu_",
                                            "aten::elu",
                                            "aten::elu_",
                                            "aten::dropout",
                                            "aten::dropout_",
                                            "aten::feature_dropout",
                                            "aten::alpha_dropout",
                                            "aten::contiguous",
                                            "aten::clone",
                                            "aten::detach",
                                            "aten::clamp",
                                            "aten::clamp_",
                                            "aten::softplus",
                                            "aten::mish"};
const std::set<std::string> kPooling = {"aten::max_pool1d",
                                        "aten::max_pool2d",
                                        "aten::max_pool3d",
                                        "aten::avg_pool1d",
                                        "aten::avg_pool2d",
                                        "aten::avg_pool3d",
                                        "aten::adaptive_avg_pool1d",
                                        "aten::adaptive_avg_pool2d",
                                        "aten::adaptive_avg_pool3d",
                                        "aten::adaptive_max_pool2d",
                                        "aten::max_pool2d_with_indices"};
const std::set<std::string> kShapeReads = {
    "aten::size",  "aten::dim",    "aten::len",   "aten::numel",  "aten::__is__",           "aten::__isnot__",
    "prim::shape", "prim::device", "prim::dtype", "prim::layout", "aten::is_floating_point"};
const std::set<std::string> kElementwise = {"aten::add", "aten::add_", "aten::sub", "aten::sub_",
                                            "aten::mul", "aten::mul_", "aten::div", "aten::div_"};

bool is_tensor(const Value* v) { return v->type()->cast<c10::TensorType>() != nullptr; }

std::optional<int64_t> constant_int(const Value* v) {
  const auto iv = torch::jit::toIValue(v);
  if (iv && iv->isInt()) return iv->toInt();
  return std::nullopt;
}

class Tracer {
 public:
  Tracer(const torch::jit::Module& module, const std::vector<PrunableLayer>& layers)
      : module_(module), layers_(layers), producers_(layers.size()) {
    for (size_t i = 0; i < layers.size(); ++i) index_[layers[i].name] = static_cast<int>(i);
  }

  TracedGroups run(const torch::jit::Graph& graph) {
    self_ = graph.inputs().at(0);
    walk(graph.block());
    for (const Value* v : graph.outputs()) taint(origin(v), "its channels are outputs of the module");
    return result();
  }

 private:
  struct Producer {
    bool seen = false;  ///< reached as a producer
    std::string why;    ///< set: left unpruned
    std::vector<ChannelConsumer> consumers;
    std::vector<std::string> batch_norms;
    bool depthwise = false;  ///< a depthwise layer: it carries the channels of `carries` (kNone: none)
    int carries = kNone;
  };

  Origin origin(const Value* v) const {
    const auto it = origins_.find(v);
    return it == origins_.end() ? Origin{} : it->second;
  }

  void taint(const Origin& o, const std::string& why) {
    if (o.producer >= 0 && producers_[o.producer].why.empty()) producers_[o.producer].why = why;
  }

  void consume(const Origin& o, ChannelConsumer c) {
    auto& consumers = producers_[o.producer].consumers;
    if (std::none_of(consumers.begin(), consumers.end(), [&](const ChannelConsumer& x) { return x.layer == c.layer; }))
      consumers.push_back(c);
  }

  int prunable(const Value* weight) const {
    const auto it = index_.find(attribute_path(weight, self_));
    return it == index_.end() ? kNone : it->second;
  }

  /// A module attribute's bool value when an `if` tests one (not `training`, which changes with the mode).
  std::optional<bool> static_condition(const Value* v) const {
    if (const auto iv = torch::jit::toIValue(v); iv && iv->isBool()) return iv->toBool();
    const std::string path = attribute_path(v, self_);
    const bool mode = path == "training" || (path.size() > 9 && path.compare(path.size() - 9, 9, ".training") == 0);
    if (path.empty() || mode) return std::nullopt;
    c10::IValue cur = module_._ivalue();
    size_t start = 0;
    while (start <= path.size()) {
      const size_t dot = std::min(path.find('.', start), path.size());
      if (!cur.isObject()) return std::nullopt;
      const auto obj = cur.toObject();
      const std::string part = path.substr(start, dot - start);
      if (!obj->type()->hasAttribute(part)) return std::nullopt;
      cur = obj->getAttr(part);
      start = dot + 1;
    }
    if (cur.isBool()) return cur.toBool();
    return std::nullopt;
  }

  void walk(const Block* b) {
    for (const Node* n : b->nodes()) visit(n);
  }

  void visit(const Node* n) {
    const std::string kind = n->kind().toQualString();
    if (weight_operand(n)) return weighted(n);
    if (n->kind() == c10::prim::If) return branch(n);
    if (n->kind() == c10::prim::Loop) return loop(n);
    if (n->kind() == c10::aten::batch_norm) {
      const Origin x = origin(n->input(0));
      if (x.producer >= 0) {
        std::string bn = attribute_path(n->input(1), self_);
        if (bn.size() > 7 && bn.compare(bn.size() - 7, 7, ".weight") == 0) {
          bn.resize(bn.size() - 7);
          auto& list = producers_[x.producer].batch_norms;
          if (std::find(list.begin(), list.end(), bn) == list.end()) list.push_back(bn);
        }
      }
      return pass(n, x);
    }
    if (kActivations.count(kind)) return pass(n, origin(n->input(0)));
    if (kPooling.count(kind)) {
      const Origin x = origin(n->input(0));
      if (x.features_last) taint(x, "pooled along its channels by " + kind);
      return pass(n, x.features_last ? Origin{} : x);
    }
    if (kShapeReads.count(kind)) return;
    if (kElementwise.count(kind)) return elementwise(n, kind);
    if (n->kind() == c10::aten::flatten || n->kind() == c10::aten::view || n->kind() == c10::aten::reshape)
      return flatten(n, kind);
    if (n->kind() == c10::prim::ListConstruct) return listed(n);
    for (const Value* v : n->inputs()) taint(origin(v), "read by " + kind + ", which prunegym does not follow");
  }

  /// A tensor put in a list: torch.cat and torch.stack join its channels with the others'.
  void listed(const Node* n) {
    std::string users;
    for (const auto& use : n->output()->uses())
      users += (users.empty() ? "" : ", ") + std::string(use.user->kind().toQualString());
    const bool joined = users.find("cat") != std::string::npos || users.find("stack") != std::string::npos;
    const std::string why =
        joined ? "its channels are concatenated with other tensors' (" + users + ")"
               : "put in a list read by " + (users.empty() ? "nothing" : users) + ", which prunegym does not follow";
    for (const Value* v : n->inputs()) taint(origin(v), why);
  }

  void pass(const Node* n, const Origin& o) {
    for (const Value* v : n->inputs())
      if (v != n->input(0) && is_tensor(v) && origin(v).producer != kNone)
        taint(origin(v), "combined with another tensor by " + std::string(n->kind().toQualString()));
    if (o.producer != kNone) origins_[n->output(0)] = o;
  }

  void elementwise(const Node* n, const std::string& kind) {
    const Origin a = origin(n->input(0)), b = origin(n->input(1));
    if (!is_tensor(n->input(1)) || (a == b && a.producer >= 0)) return pass(n, a);
    if (a.producer == kNone && b.producer == kNone) return;
    const bool add = kind.find("add") != std::string::npos || kind.find("sub") != std::string::npos;
    const std::string why = add ? "its channels are added to another tensor's (" + kind + ", a residual tie)"
                                : "its channels are scaled by another tensor (" + kind + ")";
    taint(a, why);
    taint(b, why);
    origins_[n->output(0)] = Origin{kTied};
    if (kind.back() == '_') origins_[n->input(0)] = Origin{kTied};  // later reads of the mutated tensor
  }

  void flatten(const Node* n, const std::string& kind) {
    const Origin x = origin(n->input(0));
    if (x.producer == kNone) return;
    bool ok = false;
    if (n->kind() == c10::aten::flatten) {
      ok = constant_int(n->input(1)) == 1 && constant_int(n->input(2)) == -1;
    } else if (n->inputs().size() == 2 && n->input(1)->node()->kind() == c10::prim::ListConstruct) {
      // x.view(x.size(0), -1)
      const Node* list = n->input(1)->node();
      const Node* first = list->inputs().size() == 2 ? list->input(0)->node() : nullptr;
      ok = first && first->kind() == c10::aten::size && first->input(0) == n->input(0) &&
           constant_int(first->input(1)) == 0 && constant_int(list->input(1)) == -1;
    }
    if (!ok) {
      taint(x, "reshaped by " + kind + " (only flatten(x, 1) and x.view(x.size(0), -1) are followed)");
      return;
    }
    origins_[n->output(0)] = x.features_last ? x : Origin{x.producer, true, true};
  }

  void weighted(const Node* n);
  void branch(const Node* n);
  void loop(const Node* n);
  TracedGroups result() const;

  const torch::jit::Module& module_;
  const std::vector<PrunableLayer>& layers_;
  const Value* self_ = nullptr;
  std::map<std::string, int> index_;
  std::vector<Producer> producers_;
  std::map<const Value*, Origin> origins_;
};

/// A convolution or linear call: a consumer of what it reads, the producer of what it writes.
void Tracer::weighted(const Node* n) {
  const int idx = prunable(weight_operand(n));
  const bool conv = is_convolution(n->kind());
  const Value* input = n->kind() == c10::aten::addmm ? n->input(1) : n->input(0);
  const Origin x = origin(input);
  const std::string name = idx >= 0 ? layers_[idx].name : attribute_path(weight_operand(n), self_);
  if (!conv) {
    if (x.producer >= 0) {
      const int64_t channels = layers_[x.producer].weight.size(0);
      const int64_t columns = idx >= 0 ? layers_[idx].weight.size(1) : 0;
      if (idx < 0)
        taint(x, "read by " + (name.empty() ? std::string("a linear call") : name) + ", which is not prunable");
      else if (!x.features_last)
        taint(x, "read by the linear layer " + name + " along another dimension");
      else if (columns % channels != 0 || (!x.flattened && columns != channels))
        taint(x, "read by " + name + " with " + std::to_string(columns) + " inputs, not a multiple of its channels");
      else
        consume(x, {static_cast<size_t>(idx), columns / channels, false});
    }
    if (idx >= 0) {
      producers_[idx].seen = true;
      origins_[n->output(0)] = Origin{idx, true, false};
    }
    return;
  }
  const auto flag = n->kind() == c10::aten::_convolution ? torch::jit::toIValue(n->input(6)) : c10::nullopt;
  const bool transposed = flag && flag->isBool() && flag->toBool();
  const auto groups = constant_int(n->input(n->kind() == c10::aten::_convolution ? 8 : 6));
  const auto& w = idx >= 0 ? layers_[idx].weight : torch::Tensor();
  const bool depthwise = idx >= 0 && groups && *groups > 1 && w.dim() >= 3 && w.size(1) == 1 && *groups == w.size(0);
  if (x.producer >= 0) {
    if (idx < 0 || x.features_last || transposed || (!depthwise && groups != 1))
      taint(x, "read by " + (name.empty() ? std::string("a convolution") : name) +
                   (idx < 0 ? ", which is not prunable" : ", a grouped, transposed or misplaced convolution"));
    else
      consume(x, {static_cast<size_t>(idx), 1, depthwise});
  }
  if (idx < 0) return;
  if (depthwise) {  // carries its input's channels on
    producers_[idx].depthwise = true;
    producers_[idx].carries = x.producer;
    if (x.producer != kNone) origins_[n->output(0)] = x;
    return;
  }
  if (transposed || groups != 1) {
    producers_[idx].why = "a grouped or transposed convolution";
    return;
  }
  producers_[idx].seen = true;
  origins_[n->output(0)] = Origin{idx, false, false};
}

/// An `if`: a module attribute's bool picks one branch; otherwise both are followed and the
/// outputs must carry the same channels.
void Tracer::branch(const Node* n) {
  const auto taken = static_condition(n->input(0));
  std::vector<const Block*> blocks;
  for (const Block* b : n->blocks())
    if (!taken || (b == n->blocks()[0]) == *taken) blocks.push_back(b);
  for (const Block* b : blocks) walk(b);
  for (size_t i = 0; i < n->outputs().size(); ++i) {
    std::optional<Origin> merged;
    bool same = true;
    for (const Block* b : blocks) {
      const Origin o = origin(b->outputs()[i]);
      same = same && (!merged || *merged == o);
      merged = o;
    }
    if (!same)
      for (const Block* b : blocks) taint(origin(b->outputs()[i]), "its channels depend on a condition");
    if (merged && merged->producer != kNone) origins_[n->output(i)] = same ? *merged : Origin{kTied};
  }
}

void Tracer::loop(const Node* n) {
  for (const Value* v : n->inputs()) taint(origin(v), "used in a loop");
  for (const Block* b : n->blocks())
    for (const Node* inner : b->nodes()) {
      for (const Value* v : inner->inputs()) taint(origin(v), "used in a loop");
      for (const Block* nested : inner->blocks()) walk(nested);  // records any other reads
    }
}

TracedGroups Tracer::result() const {
  TracedGroups out;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto& p = producers_[i];
    const std::string& name = layers_[i].name;
    if (p.depthwise) {
      const bool grouped = p.carries >= 0 && producers_[p.carries].why.empty();
      out.notes.push_back(name + (grouped
                                      ? ": a depthwise convolution, pruned with the group of " + layers_[p.carries].name
                                      : ": not pruned: a depthwise convolution reading channels that are not pruned"));
    } else if (!p.why.empty()) {
      out.notes.push_back(name + ": not pruned: " + p.why);
    } else if (!p.seen) {
      out.notes.push_back(name +
                          ": not pruned: its weight is not used by a convolution or linear call prunegym follows");
    } else if (p.consumers.empty()) {
      out.notes.push_back(name + ": not pruned: no prunable layer reads its channels");
    } else {
      ChannelGroup g;
      g.producer = i;
      g.channels = layers_[i].weight.size(0);
      g.consumers = p.consumers;
      g.batch_norms = p.batch_norms;
      out.groups.push_back(std::move(g));
    }
  }
  return out;
}

}  // namespace

TracedGroups trace_channel_groups(const torch::jit::Module& module, const torch::jit::Graph& graph,
                                  const std::vector<PrunableLayer>& layers) {
  return Tracer(module, layers).run(graph);
}

}  // namespace prunegym::script
