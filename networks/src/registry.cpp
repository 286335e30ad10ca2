// The network registry: the built-in layer stacks (LeNet-300-100, LeNet-5, Conv-2/4/6, the seed-003
// CNN, the GCN) and "custom" stacks from network.layers. Other network kinds register here too.

#include <prunegym/core/errors.h>
#include <prunegym/networks/model.h>

#include <functional>

namespace prunegym {

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

const std::vector<RegisteredNetwork>& stack_networks() {
  static const std::vector<RegisteredNetwork> nets{
      {"lenet300", "LeNet-300-100: fully connected 300-100-classes, ReLU",
       [] {
         return std::vector<LayerSpec>{LayerSpec::flatten(),           LayerSpec::linear(300),
                                       LayerSpec::activation(K::relu), LayerSpec::linear(100),
                                       LayerSpec::activation(K::relu), LayerSpec::linear()};
       }},
      {"lenet5", "LeNet-5: conv 6@5x5, pool, conv 16@5x5, pool, fc 120-84-classes",
       [] {
         return std::vector<LayerSpec>{
             LayerSpec::conv(6, 5, 2),  LayerSpec::activation(K::relu), LayerSpec::maxpool(2),
             LayerSpec::conv(16, 5, 0), LayerSpec::activation(K::relu), LayerSpec::maxpool(2),
             LayerSpec::flatten(),      LayerSpec::linear(120),         LayerSpec::activation(K::relu),
             LayerSpec::linear(84),     LayerSpec::activation(K::relu), LayerSpec::linear()};
       }},
      {"conv2", "Conv-2: 2x conv 64@3x3, pool, fc 256-256-classes", [] { return vgg_like(2); }},
      {"conv4", "Conv-4: Conv-2 plus 2x conv 128@3x3, pool", [] { return vgg_like(4); }},
      {"conv6", "Conv-6: Conv-4 plus 2x conv 256@3x3, pool", [] { return vgg_like(6); }},
      {"cnn2", "small CNN: conv 16@5x5 leaky_relu, pool, conv 32@5x5 leaky_relu, pool, fc-classes sigmoid",
       [] {
         return std::vector<LayerSpec>{LayerSpec::conv(16, 5, 0),
                                       LayerSpec::activation(K::leaky_relu),
                                       LayerSpec::maxpool(2),
                                       LayerSpec::conv(32, 5, 0),
                                       LayerSpec::activation(K::leaky_relu),
                                       LayerSpec::maxpool(2),
                                       LayerSpec::flatten(),
                                       LayerSpec::linear(),
                                       LayerSpec::activation(K::sigmoid)};
       }},
      {"gcn2", "GCN (graph data): gcn 64 leaky_relu, gcn 32 leaky_relu, fc-classes sigmoid",
       [] {
         return std::vector<LayerSpec>{LayerSpec::gcn(64),  LayerSpec::activation(K::leaky_relu),
                                       LayerSpec::gcn(32),  LayerSpec::activation(K::leaky_relu),
                                       LayerSpec::linear(), LayerSpec::activation(K::sigmoid)};
       }},
  };
  return nets;
}

}  // namespace

void StackOptions::read(ObjectReader& r) { r.get("layers", layers); }

nlohmann::json StackOptions::to_json() const {
  return layers.empty() ? nlohmann::json::object() : nlohmann::json{{"layers", layers}};
}

namespace {

/// A built-in stack's options: none (config.cpp names the kinds that take a key given here).
nlohmann::json no_options(const nlohmann::json& j, const std::string& path) {
  read_options<StackOptions>(j, path);  // unknown keys are errors here
  if (j.contains("layers") && !j["layers"].empty())
    throw ConfigError("network.layers is only allowed with network.name = \"custom\"");
  return nlohmann::json::object();
}

nlohmann::json custom_options(const nlohmann::json& j, const std::string& path) {
  const auto o = read_options<StackOptions>(j, path);
  if (o.layers.empty())
    throw ConfigError("config key 'network.layers' is required for a custom network (a non-empty layer list)");
  return o.to_json();
}

std::unique_ptr<NetworkImpl> make_stack(const NetworkOptions& o, InputShape input, int64_t classes) {
  return std::make_unique<LayerStackImpl>(network_specs(o), input, classes);
}

}  // namespace

template <>
NetworkRegistry& NetworkRegistry::instance() {
  static NetworkRegistry reg = [] {
    NetworkRegistry r("network", "network.name");
    for (const auto& n : stack_networks()) r.add(n.name, make_stack, n.summary, no_options);
    r.add("custom", make_stack,
          "a layer stack from network.layers, e.g. [\"flatten\", \"linear:300\", \"relu\", \"linear\"]", custom_options,
          nlohmann::json{{"options", nlohmann::json::array({"layers"})}});
    return r;
  }();
  return reg;
}

std::vector<std::string> network_names() { return NetworkRegistry::instance().names(); }

std::vector<LayerSpec> network_specs(const NetworkOptions& options) {
  const auto o = read_options<StackOptions>(options.options, "network");
  if (options.name == "custom") {
    if (o.layers.empty()) throw ConfigError("network.layers: a custom network needs a non-empty layer list");
    std::vector<LayerSpec> specs;
    for (const auto& l : o.layers) specs.push_back(LayerSpec::parse(l));
    return specs;
  }
  if (!o.layers.empty()) {
    throw ConfigError("network.layers is only allowed with network.name = \"custom\"");
  }
  for (const auto& n : stack_networks())
    if (n.name == options.name) return n.specs();
  NetworkRegistry::instance().check(options.name);  // unknown names: the registry's error
  throw ConfigError("network '" + options.name + "' is not a layer stack: it has no layer specs");
}

bool is_layer_stack(const NetworkOptions& options) {
  if (options.name == "custom") return true;
  for (const auto& n : stack_networks())
    if (n.name == options.name) return true;
  return false;
}

void validate_network(const NetworkOptions& options) {
  NetworkRegistry::instance().check(options.name);
  if (is_layer_stack(options)) network_specs(options);  // parses the layer strings now, not at first use
}

std::vector<std::pair<std::string, std::string>> network_files(const NetworkOptions& options) {
  std::vector<std::pair<std::string, std::string>> files;
  const nlohmann::json keys = NetworkRegistry::instance().traits(options.name).value("files", nlohmann::json::array());
  for (const auto& key : keys) {
    const auto k = key.get<std::string>();
    if (options.options.contains(k) && options.options[k].is_string())
      files.emplace_back("network." + k, options.options[k].get<std::string>());
  }
  return files;
}

std::vector<WorkItem> network_work(const NetworkOptions& options) {
  std::vector<WorkItem> work;
  if (is_layer_stack(options)) {
    const auto o = read_options<StackOptions>(options.options, "network");
    work.push_back({"network.layers (count)", static_cast<double>(o.layers.size()), "layers"});
    for (const auto& text : o.layers)
      work.push_back({"network.layers '" + text + "'", static_cast<double>(LayerSpec::parse(text).out), "layer_width"});
  }
  const nlohmann::json limits =
      NetworkRegistry::instance().traits(options.name).value("limits", nlohmann::json::object());
  for (const auto& [key, limit] : limits.items())
    if (options.options.contains(key) && options.options[key].is_number())
      work.push_back({"network." + key, options.options[key].get<double>(), limit.get<std::string>()});
  return work;
}

NetworkPtr build_network(const NetworkOptions& options, InputShape input, int64_t classes) {
  // Initial weights come from the global generator; seed it here and leave it as it was.
  auto gen = at::detail::getDefaultCPUGenerator();
  const auto saved = gen.get_state();
  torch::manual_seed(options.init_seed);
  std::unique_ptr<NetworkImpl> built;
  try {
    built = NetworkRegistry::instance().make(options.name, options, input, classes);
  } catch (...) {
    gen.set_state(saved);
    throw;
  }
  gen.set_state(saved);
  return NetworkPtr(std::move(built));
}

}  // namespace prunegym
