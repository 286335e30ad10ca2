#include <prunegym/core/errors.h>
#include <prunegym/env/pretrain.h>
#include <prunegym/networks/train.h>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <mutex>
#include <sstream>
#include <utility>

namespace fs = std::filesystem;

namespace prunegym {

namespace {

/// Loads an archive into `net` keeping each parameter's memory layout: the archive's tensors
/// replace the parameters' storage (contiguous), while residual networks keep convolution weights
/// channels-last.
void load_keeping_layout(NetworkImpl& net, torch::serialize::InputArchive& archive) {
  std::vector<c10::MemoryFormat> formats;
  for (const auto& p : net.parameters()) formats.push_back(p.suggest_memory_format());
  net.load(archive);
  size_t i = 0;
  for (auto& p : net.parameters()) {
    const auto format = formats[i++];
    if (p.suggest_memory_format() != format) p.set_data(p.detach().contiguous(format));
  }
}

constexpr const char* kMagic = "prunegym-dense-v1";
/// An unfinished pretraining's state after a whole epoch: never read as a dense model.
constexpr const char* kCheckpointMagic = "prunegym-dense-checkpoint-v1";

void log_to(const LogFn& log, const std::string& msg) {
  if (log) log(msg);
}

struct CacheEntry {
  std::string archive;  ///< serialized weights
  nlohmann::json meta;
};

/// Reads and verifies a cache file; returns false (with the reason) when it cannot be trusted.
bool read_cache(const std::string& path, const nlohmann::json& key, CacheEntry& out, std::string& why,
                const char* magic = kMagic) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return (why = "cannot open", false);
  std::string header;
  if (!std::getline(in, header)) return (why = "empty file", false);
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(header);
  } catch (const std::exception&) {
    return (why = "unreadable header", false);
  }
  if (!h.is_object() || h.value("magic", "") != magic) return (why = "not a prunegym cache file", false);
  if (h.value("key", nlohmann::json()) != key) return (why = "written for different settings", false);
  std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (body.size() != h.value("bytes", uint64_t{0})) return (why = "truncated", false);
  if (hex64(fnv1a(body)) != h.value("checksum", "")) return (why = "checksum mismatch", false);
  out.archive = std::move(body);
  out.meta = h;
  return true;
}

void write_cache(const std::string& path, const nlohmann::json& key, const std::string& archive, nlohmann::json meta,
                 const char* magic = kMagic) {
  meta["magic"] = magic;
  meta["key"] = key;
  meta["bytes"] = archive.size();
  meta["checksum"] = hex64(fnv1a(archive));
  // Write beside the target and rename, so a crash never leaves a half-written cache file.
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
      throw DataError("cannot write the pretraining cache " + tmp + ": " + std::strerror(errno) +
                      " (set cache_dir in the config or $PRUNEGYM_CACHE to a writable folder)");
    out << meta.dump() << '\n';
    out.write(archive.data(), static_cast<std::streamsize>(archive.size()));
    if (!out) throw DataError("failed writing the pretraining cache " + tmp);
  }
  fs::rename(tmp, path);
}

/// The state of an unfinished pretraining after whole epochs, kept beside the cache file so a
/// stopped pretraining (a killed job, an ended allocation, a cancelled session) resumes bit for bit:
/// weights, optimizer state, the shuffling generator and LibTorch's generator. Only runs over the
/// whole training split resume: a `samples` subset is drawn when training starts.
struct Checkpoint {
  std::string path;
  nlohmann::json key;
  bool enabled = false;
};

void save_checkpoint(const Checkpoint& c, NetworkImpl& net, torch::optim::Optimizer& optimizer,
                     const std::mt19937_64& rng, int64_t epochs_done, double seconds) {
  torch::serialize::OutputArchive weights, state, all;
  net.save(weights);
  optimizer.save(state);
  all.write("model", weights);
  all.write("optimizer", state);
  {
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    all.write("torch_rng", generator.get_state());
  }
  std::ostringstream bytes, shuffle;
  all.save_to(bytes);
  shuffle << rng;
  write_cache(c.path, c.key, bytes.str(),
              {{"epochs_done", epochs_done}, {"train_seconds", seconds}, {"rng", shuffle.str()}}, kCheckpointMagic);
}

/// Loads the checkpoint into the training state; returns the epochs it had done, 0 when there is
/// none to use, -1 when it failed after changing the network (the caller starts over from a new one).
int64_t resume_checkpoint(const Checkpoint& c, NetworkImpl& net, torch::optim::Optimizer& optimizer,
                          std::mt19937_64& rng, double& seconds, const LogFn& log) {
  if (!c.enabled || !fs::exists(c.path)) return 0;
  CacheEntry entry;
  std::string why;
  bool touched = false;
  if (read_cache(c.path, c.key, entry, why, kCheckpointMagic)) {
    try {
      std::istringstream is(entry.archive);
      torch::serialize::InputArchive all, weights, state;
      all.load_from(is, net.parameters().front().device());
      all.read("model", weights);
      all.read("optimizer", state);
      torch::Tensor generator_state;
      all.read("torch_rng", generator_state);
      std::mt19937_64 shuffle;
      std::istringstream(entry.meta.at("rng").get<std::string>()) >> shuffle;
      touched = true;
      load_keeping_layout(net, weights);
      optimizer.load(state);
      auto generator = at::detail::getDefaultCPUGenerator();
      {
        std::lock_guard<std::mutex> lock(generator.mutex());
        generator.set_state(generator_state.to(torch::kCPU));
      }
      rng = shuffle;
      seconds = entry.meta.value("train_seconds", 0.0);
      const auto done = entry.meta.at("epochs_done").get<int64_t>();
      log_to(log, "resuming the pretraining after epoch " + std::to_string(done) + " from " + c.path);
      return done;
    } catch (const std::exception& e) {
      why = std::string("unreadable state: ") + e.what();
    }
  }
  log_to(log, "warning: ignoring the pretraining checkpoint " + c.path + " (" + why + "); starting from epoch 1");
  return touched ? -1 : 0;
}

/// Trains `dense.network` under the config's pretraining settings, resuming from and leaving a
/// checkpoint after every epoch.
void pretrain_resumable(const Config& c, const DataSplits& data, const nlohmann::json& key, DenseModel& dense,
                        const LogFn& log) {
  const Checkpoint checkpoint{dense.cache_file + ".partial", key, c.pretrain.samples <= 0};
  const uint64_t seed = c.seed * 0x9E3779B97F4A7C15ULL + 1;
  std::mt19937_64 rng(seed);
  auto optimizer = make_optimizer(*dense.network, c.pretrain);
  double before = 0.0;  // seconds spent before a resume
  int64_t done = resume_checkpoint(checkpoint, *dense.network, *optimizer, rng, before, log);
  if (done < 0) {
    dense.network = build_network(c.network, data.shape, data.classes);
    dense.network->to(data.train.x.device());
    optimizer = make_optimizer(*dense.network, c.pretrain);
    rng.seed(seed);
    done = 0;
  }
  if (done == 0)
    log_to(log, "pretraining " + c.network.name + " on " + std::to_string(data.train.size()) + " samples for " +
                    std::to_string(c.pretrain.epochs) + " epochs (cached afterwards" +
                    (checkpoint.enabled ? ", resumable after each epoch)" : ")"));
  const auto start = std::chrono::steady_clock::now();
  const auto seconds = [&] {
    return before + std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  auto remaining = c.pretrain;
  remaining.epochs = c.pretrain.epochs - done;
  bool warned = false;
  train(*dense.network, *optimizer, data.train, remaining, rng, [&](int64_t epoch, int64_t, double loss) {
    const int64_t finished = done + epoch + 1;
    std::ostringstream os;
    os << "  epoch " << finished << "/" << c.pretrain.epochs << "  loss " << std::fixed << std::setprecision(4) << loss
       << "  " << std::setprecision(1) << seconds() << " s";
    log_to(log, os.str());
    if (!checkpoint.enabled || finished == c.pretrain.epochs) return;
    try {
      save_checkpoint(checkpoint, *dense.network, *optimizer, rng, finished, seconds());
    } catch (const std::exception& e) {
      if (!std::exchange(warned, true))
        log_to(log, std::string("warning: ") + e.what() + "; continuing without checkpoints");
    }
  });
  dense.train_seconds = seconds();
}

}  // namespace

nlohmann::json pretrain_key(const Config& c, const DataSplits& data, const NetworkImpl* built) {
  const auto& t = c.pretrain;
  std::vector<std::string> specs;
  if (!is_layer_stack(c.network)) {
    // Any other network: its parameters and buffers, by name and shape (of the network the
    // caller built already, when it has one).
    const NetworkPtr own = built ? nullptr : build_network(c.network, data.shape, data.classes);
    const NetworkImpl& net = built ? *built : *own;
    for (const auto& p : net.named_parameters()) specs.push_back(p.key() + c10::str(p.value().sizes()));
    for (const auto& b : net.named_buffers()) specs.push_back(b.key() + c10::str(b.value().sizes()));
  } else {
    for (const auto& s : network_specs(c.network)) specs.push_back(s.to_string());
  }
  nlohmann::json key{{"format", 1},
                     {"network", c.network.name},
                     {"layers", specs},
                     {"init_seed", c.network.init_seed},
                     {"input", {data.shape.channels, data.shape.height, data.shape.width}},
                     {"classes", data.classes},
                     {"data", data_fingerprint(c.data)},
                     {"pretrain",
                      {{"optimizer", t.optimizer},
                       {"lr", t.lr},
                       {"momentum", t.momentum},
                       {"weight_decay", t.weight_decay},
                       {"batch_size", t.batch_size},
                       {"epochs", t.epochs}}},
                     {"seed", c.seed}};
  // An imported module's weights live in its file: the key covers the file's bytes.
  for (const auto& [config_key, path] : network_files(c.network)) key["network_file"] = file_hash(path);
  return key;
}

DenseModel load_or_pretrain(const Config& c, const DataSplits& data, const LogFn& log, PretrainPolicy policy) {
  DenseModel dense;
  const auto device = data.train.x.device();
  dense.network = build_network(c.network, data.shape, data.classes);
  dense.network->to(device);
  const auto key = pretrain_key(c, data, dense.network.get());
  const std::string dir = c.resolved_cache_dir();
  dense.cache_file = (fs::path(dir) / ("dense-" + c.network.name + "-" + hash_hex(key.dump()) + ".pt")).string();

  CacheEntry entry;
  std::string why;
  if (fs::exists(dense.cache_file)) {
    if (read_cache(dense.cache_file, key, entry, why)) {
      try {
        std::istringstream is(entry.archive);
        torch::serialize::InputArchive archive;
        archive.load_from(is, device);
        load_keeping_layout(*dense.network, archive);
        dense.state = clone_state(*dense.network);
        dense.validation_accuracy = entry.meta.value("validation_accuracy", 0.0);
        dense.test_accuracy = entry.meta.value("test_accuracy", 0.0);
        dense.from_cache = true;
        log_to(log, "dense model loaded from cache " + dense.cache_file);
        return dense;
      } catch (const c10::Error& e) {
        why = "unreadable weights";
      }
    }
    log_to(log,
           "warning: ignoring cache file " + dense.cache_file + " (" + why + "); " +
               (policy == PretrainPolicy::train ? "retraining the dense model" : "`prunegym pretrain` rebuilds it"));
    dense.network = build_network(c.network, data.shape, data.classes);
    dense.network->to(device);
  }
  if (policy == PretrainPolicy::cached_only) {
    dense.trained = false;
    dense.validation_accuracy = dense.test_accuracy = std::numeric_limits<double>::quiet_NaN();
    dense.state = clone_state(*dense.network);
    return dense;
  }

  std::error_code ec;
  fs::create_directories(dir, ec);  // checkpoints go there from the first epoch
  pretrain_resumable(c, data, key, dense, log);
  dense.validation_accuracy = evaluate(*dense.network, data.validation).accuracy;
  dense.test_accuracy = evaluate(*dense.network, data.test).accuracy;
  dense.state = clone_state(*dense.network);

  torch::serialize::OutputArchive archive;
  dense.network->save(archive);
  std::ostringstream os;
  archive.save_to(os);
  try {
    write_cache(dense.cache_file, key, os.str(),
                {{"validation_accuracy", dense.validation_accuracy},
                 {"test_accuracy", dense.test_accuracy},
                 {"train_seconds", dense.train_seconds}});
    log_to(log, "dense model cached at " + dense.cache_file);
    fs::remove(dense.cache_file + ".partial", ec);
  } catch (const std::exception& e) {
    log_to(log, std::string("warning: ") + e.what() + "; continuing without a cache");
  }
  return dense;
}

}  // namespace prunegym
