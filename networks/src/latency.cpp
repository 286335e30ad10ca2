#include <prunegym/core/errors.h>
#include <prunegym/core/hash.h>
#include <prunegym/core/json_file.h>
#include <prunegym/networks/groups.h>
#include <prunegym/networks/latency.h>
#include <torch/script.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

namespace prunegym {

namespace {

using Seconds = std::chrono::duration<double>;

/// Channel counts from count/points to count, distinct, at least 1.
std::vector<int64_t> grid_points(int64_t count, int64_t points, bool varies) {
  if (!varies || count <= 1) return {count};
  std::vector<int64_t> out;
  for (int64_t j = 1; j <= points; ++j) {
    const auto k = std::max<int64_t>(1, static_cast<int64_t>(std::llround(static_cast<double>(count * j) / points)));
    if (out.empty() || out.back() != k) out.push_back(k);
  }
  return out;
}

/// Linear interpolation position of `k` among `points`: (lower index, weight of the upper).
std::pair<size_t, double> locate(const std::vector<int64_t>& points, int64_t k) {
  if (points.size() == 1 || k <= points.front()) return {0, 0.0};
  if (k >= points.back()) return {points.size() - 1, 0.0};
  size_t i = 0;
  while (points[i + 1] < k) ++i;
  const double span = static_cast<double>(points[i + 1] - points[i]);
  return {i, static_cast<double>(k - points[i]) / span};
}

/// Which dimensions of each prunable layer a channel group can shrink.
struct Shrinks {
  std::vector<bool> in, out, depthwise;
  std::vector<int64_t> block;
};

Shrinks shrinking_dimensions(const NetworkImpl& net) {
  const size_t n = net.prunable_layers().size();
  Shrinks s{std::vector<bool>(n), std::vector<bool>(n), std::vector<bool>(n), std::vector<int64_t>(n, 1)};
  for (const auto& g : net.channel_groups()) {
    s.out[g.producer] = true;
    for (size_t t : g.tied) s.out[t] = true;
    for (const auto& c : g.consumers) {
      if (c.depthwise) {
        s.depthwise[c.layer] = s.out[c.layer] = true;
      } else {
        s.in[c.layer] = true;
        s.block[c.layer] = c.block;
      }
    }
  }
  return s;
}

/// One layer's operation at `in` input and `out` output channels, ready to time.
std::function<void()> layer_operation(const LatencyLayer& l, int64_t batch, int64_t in, int64_t out) {
  torch::NoGradGuard no_grad;
  if (l.shape.size() == 2) {
    auto x = torch::randn({batch, in * l.block});
    auto w = torch::randn({out, in * l.block});
    auto b = torch::randn({out});
    return [x, w, b] {
      torch::NoGradGuard guard;
      auto y = torch::addmm(b, x, w.t());
      torch::relu_(y);
    };
  }
  const int64_t kh = l.shape[2], kw = l.shape[3];
  const int64_t groups = l.depthwise ? out : 1;
  const auto format = l.channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
  auto x = torch::randn({batch, l.depthwise ? out : in, l.height + kh - 1, l.width + kw - 1}).contiguous(format);
  auto w = torch::randn({out, l.depthwise ? 1 : in, kh, kw}).contiguous(format);
  return [x, w, groups] {
    torch::NoGradGuard guard;
    const std::vector<int64_t> one{1, 1}, none{0, 0};
    auto y = torch::conv2d(x, w, torch::Tensor(), one, none, one, groups);
    torch::relu_(y);
  };
}

/// The key a cached table must match: machine, threads, batch, points and the layers' shapes.
std::string table_key(const NetworkImpl& net, int64_t batch, int64_t points) {
  std::string key = machine_key() + "|threads " + std::to_string(torch::get_num_threads()) + "|batch " +
                    std::to_string(batch) + "|points " + std::to_string(points);
  const auto positions = net.output_positions();
  for (size_t i = 0; i < net.prunable_layers().size(); ++i) {
    const auto& l = net.prunable_layers()[i];
    key += "|" + l.name;
    for (auto d : l.weight.sizes()) key += " " + std::to_string(d);
    if (i < positions.size()) key += " @" + std::to_string(positions[i]);
  }
  return key;
}

/// Fewer channels never cost more: each entry is at most every entry with as many or more
/// channels (a minimum from the dense corner down, so the dense entry stays as measured and a slow
/// outlier at a small count cannot lift the rest).
void make_monotone(LatencyLayer& l) {
  const size_t nin = l.in_points.size(), nout = l.out_points.size();
  for (size_t i = nin; i-- > 0;)
    for (size_t o = nout; o-- > 0;) {
      double& v = l.seconds[i * nout + o];
      if (i + 1 < nin) v = std::min(v, l.seconds[(i + 1) * nout + o]);
      if (o + 1 < nout) v = std::min(v, l.seconds[i * nout + o + 1]);
    }
}

/// The dense network's forward pass as a deployment runs it: its TorchScript export loaded back
/// (what the compact export of a pruned network is too), else the module itself.
double dense_forward_seconds(NetworkImpl& net, const torch::Tensor& x) {
  const auto path = std::filesystem::temp_directory_path() / ("prunegym-latency-" + std::to_string(::getpid()) + ".pt");
  if (save_compact_model(net, path.string())) {
    auto module = torch::jit::load(path.string());
    std::filesystem::remove(path);
    module.eval();
    return fastest_seconds([&] {
      torch::NoGradGuard guard;
      module.forward({x});
    });
  }
  const bool was_training = net.is_training();
  net.eval();
  const double s = fastest_seconds([&] {
    torch::NoGradGuard guard;
    net.forward(x);
  });
  net.train(was_training);
  return s;
}

}  // namespace

double LatencyLayer::at(int64_t in, int64_t out) const {
  const auto [i, wi] = locate(in_points, in);
  const auto [o, wo] = locate(out_points, out);
  const size_t nout = out_points.size();
  const auto v = [&](size_t a, size_t b) { return seconds[a * nout + b]; };
  const size_t i1 = std::min(i + 1, in_points.size() - 1), o1 = std::min(o + 1, nout - 1);
  return (1 - wi) * ((1 - wo) * v(i, o) + wo * v(i, o1)) + wi * ((1 - wo) * v(i1, o) + wo * v(i1, o1));
}

std::vector<double> LatencyTable::predict_layers(const NetworkImpl& net) const {
  const auto& layers = net.prunable_layers();
  if (layers.size() != this->layers.size())
    throw ConfigError("the latency table describes " + std::to_string(this->layers.size()) +
                      " prunable layers, the network has " + std::to_string(layers.size()));
  std::vector<double> out;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& t = this->layers[i];
    const auto mask = layers[i].mask;
    const int64_t rows = mask.size(0);
    const auto kept_rows = mask.reshape({rows, -1}).ne(0).any(1).sum().item<int64_t>();
    int64_t kept_in = t.in_points.back();
    if (t.in_points.size() > 1) {
      const int64_t channels = t.in_points.back();
      kept_in = mask.reshape({rows, channels, -1}).ne(0).any(2).any(0).sum().item<int64_t>();
    }
    out.push_back(t.at(std::max<int64_t>(kept_in, 1), std::max<int64_t>(kept_rows, 1)));
  }
  return out;
}

double LatencyTable::predict(const NetworkImpl& net) const {
  double now = 0.0;
  for (double s : predict_layers(net)) now += s;
  const double dense_layers = dense_seconds - rest_seconds;
  return dense_layers > 0 ? dense_seconds * now / dense_layers : dense_seconds;
}

nlohmann::json LatencyTable::to_json() const {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& l : layers)
    rows.push_back({{"name", l.name},
                    {"shape", l.shape},
                    {"height", l.height},
                    {"width", l.width},
                    {"block", l.block},
                    {"depthwise", l.depthwise},
                    {"channels_last", l.channels_last},
                    {"in_points", l.in_points},
                    {"out_points", l.out_points},
                    {"seconds", l.seconds}});
  return {{"machine", machine},
          {"threads", threads},
          {"batch", batch},
          {"points", points},
          {"dense_seconds", dense_seconds},
          {"rest_seconds", rest_seconds},
          {"layers", rows}};
}

LatencyTable LatencyTable::from_json(const nlohmann::json& j) {
  LatencyTable t;
  t.machine = j.at("machine").get<std::string>();
  t.threads = j.at("threads").get<int64_t>();
  t.batch = j.at("batch").get<int64_t>();
  t.points = j.at("points").get<int64_t>();
  t.dense_seconds = j.at("dense_seconds").get<double>();
  t.rest_seconds = j.at("rest_seconds").get<double>();
  for (const auto& r : j.at("layers")) {
    LatencyLayer l;
    l.name = r.at("name").get<std::string>();
    l.shape = r.at("shape").get<std::vector<int64_t>>();
    l.height = r.at("height").get<int64_t>();
    l.width = r.at("width").get<int64_t>();
    l.block = r.at("block").get<int64_t>();
    l.depthwise = r.at("depthwise").get<bool>();
    l.channels_last = r.value("channels_last", false);
    l.in_points = r.at("in_points").get<std::vector<int64_t>>();
    l.out_points = r.at("out_points").get<std::vector<int64_t>>();
    l.seconds = r.at("seconds").get<std::vector<double>>();
    if (l.seconds.size() != l.in_points.size() * l.out_points.size())
      throw std::runtime_error("layer " + l.name + ": seconds do not fill its grid");
    t.layers.push_back(std::move(l));
  }
  return t;
}

std::string machine_key() {
  std::string model = "unknown processor";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);)
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  return model + ", " + std::to_string(std::thread::hardware_concurrency()) + " cores, LibTorch " + TORCH_VERSION;
}

double fastest_seconds(const std::function<void()>& run) {
  for (int i = 0; i < 3; ++i) run();  // warm-up: allocations, kernel selection, TorchScript's profiling runs
  int64_t calls = 1;
  for (;;) {  // calls per block: at least a millisecond
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < calls; ++i) run();
    const double s = Seconds(std::chrono::steady_clock::now() - t0).count();
    if (s >= 1e-3 || calls >= (int64_t{1} << 20)) break;
    calls *= s > 0 ? std::clamp<int64_t>(static_cast<int64_t>(std::ceil(1.2e-3 / s)), 2, 64) : 64;
  }
  double best = std::numeric_limits<double>::infinity();
  for (int block = 0; block < 5; ++block) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < calls; ++i) run();
    best = std::min(best, Seconds(std::chrono::steady_clock::now() - t0).count() / static_cast<double>(calls));
  }
  return best;
}

LatencyTable measure_latency_table(NetworkImpl& net, const InputShape& input, int64_t batch, int64_t points,
                                   const std::function<void(const std::string&)>& log) {
  const auto positions = net.output_positions();
  const auto& layers = net.prunable_layers();
  if (input.graph || positions.size() != layers.size())
    throw ConfigError(
        "a latency table needs every prunable layer's output map; this network cannot tell them "
        "(graph networks and some imports), so budget \"macs\" or \"params\" instead");
  const Shrinks shrinks = shrinking_dimensions(net);
  // The network's layout: channels-last when it keeps its filters so (1x1 filters look the same
  // either way, so one spatial filter decides for all).
  const bool channels_last = std::any_of(layers.begin(), layers.end(), [](const PrunableLayer& p) {
    return p.weight.dim() == 4 && !p.weight.is_contiguous() &&
           p.weight.is_contiguous(torch::MemoryFormat::ChannelsLast);
  });
  LatencyTable t;
  t.machine = machine_key();
  t.threads = torch::get_num_threads();
  t.batch = batch;
  t.points = points;
  double dense_layers = 0.0;
  for (size_t i = 0; i < layers.size(); ++i) {
    LatencyLayer l;
    l.name = layers[i].name;
    l.shape = layers[i].weight.sizes().vec();
    const auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(positions[i]))));
    l.height = side * side == positions[i] ? side : positions[i];
    l.width = side * side == positions[i] ? side : 1;
    l.depthwise = shrinks.depthwise[i];
    l.channels_last = channels_last && l.shape.size() == 4;
    l.block = shrinks.block[i];
    const int64_t in = l.depthwise ? 1 : l.shape[1] / l.block;
    l.in_points = grid_points(in, points, shrinks.in[i]);
    l.out_points = grid_points(l.shape[0], points, shrinks.out[i] || l.depthwise);
    for (int64_t ci : l.in_points)
      for (int64_t co : l.out_points) l.seconds.push_back(fastest_seconds(layer_operation(l, batch, ci, co)));
    make_monotone(l);
    dense_layers += l.seconds.back();
    if (log) log("latency table: " + l.name + " (" + std::to_string(l.seconds.size()) + " entries)");
    t.layers.push_back(std::move(l));
  }
  t.dense_seconds = dense_forward_seconds(net, torch::randn({batch, input.channels, input.height, input.width}));
  t.rest_seconds = t.dense_seconds - dense_layers;
  return t;
}

LatencyTable load_or_measure_latency_table(NetworkImpl& net, const InputShape& input, int64_t batch, int64_t points,
                                           const std::string& cache_file,
                                           const std::function<void(const std::string&)>& log) {
  const std::string key = table_key(net, batch, points);
  const std::string path = cache_file.empty() ? "" : cache_file + ".latency-" + hash_hex(key) + ".json";
  if (!path.empty() && std::filesystem::exists(path)) {
    try {
      auto t = LatencyTable::from_json(read_json_file(path));
      if (log) log("latency table from the cache: " + path);
      return t;
    } catch (const std::exception& e) {
      if (log) log("the cached latency table " + path + " is unreadable (" + e.what() + "); measuring it again");
    }
  }
  if (log)
    log("measuring the per-layer latency table (batch " + std::to_string(batch) + ", " +
        std::to_string(torch::get_num_threads()) + " threads; once per machine)");
  LatencyTable t = measure_latency_table(net, input, batch, points, log);
  if (!path.empty()) write_atomic(path, t.to_json().dump() + "\n");
  return t;
}

}  // namespace prunegym
