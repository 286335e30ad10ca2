// A network kind in one file, with its own options: "network": {"name": "test_hidden_mlp",
// "hidden": 24} is flatten, linear:hidden, relu, linear. Its registry entry names its keys, its
// parser checks them, and a server bounds `hidden` by its layer_width limit. Used by test_parts.cpp.

#include <prunegym/networks/model.h>

namespace prunegym::test {

namespace {

struct HiddenMlpOptions {
  int64_t hidden = 16;
  void read(ObjectReader& r) {
    r.get("hidden", hidden);
    if (hidden <= 0) throw ConfigError("config key '" + r.key_path("hidden") + "' must be positive");
  }
  nlohmann::json to_json() const { return {{"hidden", hidden}}; }
};

std::unique_ptr<NetworkImpl> make_hidden_mlp(const NetworkOptions& o, InputShape input, int64_t classes) {
  const auto options = read_options<HiddenMlpOptions>(o.options, "network");
  using K = LayerSpec::Kind;
  return std::make_unique<LayerStackImpl>(
      std::vector<LayerSpec>{LayerSpec::flatten(), LayerSpec::linear(options.hidden), LayerSpec::activation(K::relu),
                             LayerSpec::linear()},
      input, classes);
}

nlohmann::json parse_hidden_mlp(const nlohmann::json& j, const std::string& path) {
  return read_options<HiddenMlpOptions>(j, path).to_json();
}

}  // namespace

PRUNEGYM_REGISTER(NetworkRegistry, "test_hidden_mlp", make_hidden_mlp, "test: one hidden layer of `hidden` units",
                  parse_hidden_mlp,
                  nlohmann::json{{"options", nlohmann::json::array({"hidden"})},
                                 {"limits", {{"hidden", "layer_width"}}}});

}  // namespace prunegym::test
