#include <prunegym/core/errors.h>
#include <prunegym/core/timing.h>
#include <prunegym/env/env_core.h>
#include <prunegym/networks/groups.h>
#include <prunegym/networks/train.h>

#include <limits>
#include <sstream>

namespace prunegym {

namespace {

torch::Device parse_device(const std::string& name) {
  try {
    torch::Device d(name);
    if (d.is_cuda() && !torch::cuda::is_available()) {
      throw ConfigError("config key 'device' is '" + name +
                        "' but this LibTorch build has no usable CUDA device; use \"cpu\"");
    }
    return d;
  } catch (const c10::Error&) {
    throw ConfigError("config key 'device': cannot parse '" + name + "' (examples: \"cpu\", \"cuda\", \"cuda:1\")");
  }
}

Tensors to_device(const Tensors& t, const torch::Device& d) { return t.size() ? t.to(d) : t; }

std::shared_ptr<const DataSplits> on_device(std::shared_ptr<const DataSplits> data, const torch::Device& device) {
  if (device.is_cpu()) return data;
  auto moved = std::make_shared<DataSplits>(*data);
  moved->train = to_device(moved->train, device);
  moved->validation = to_device(moved->validation, device);
  moved->test = to_device(moved->test, device);
  return moved;
}

}  // namespace

EnvCore::EnvCore(const Config& config, std::shared_ptr<const DataSplits> data, const LogFn& log, PretrainPolicy policy)
    : config_(config), device_(parse_device(config.device)) {
  data_ = on_device(data ? std::move(data) : std::make_shared<const DataSplits>(load_data(config_.data)), device_);
  dense_ = load_or_pretrain(config_, *data_, log, policy);
  network_ = dense_.network;
  positions_ = network_->output_positions();
  const auto& layers = network_->prunable_layers();
  for (size_t i = 0; i < layers.size() && i < positions_.size(); ++i)
    if (positions_[i] > 0) dense_macs_ += positions_[i] * layers[i].numel();
  criterion_ = make_criterion(config_.env.criterion, config_.env.criterion_options);
  const auto& evaluation = config_.env.evaluation;
  eval_set_ = (evaluation.split == "test" ? data_->test : data_->validation).head(evaluation.samples);
  if (eval_set_.size() == 0) throw ConfigError("env.evaluation: the " + evaluation.split + " split is empty");
  dense_accuracy_ = dense_.trained ? prunegym::evaluate(*network_, eval_set_, evaluation.batch_size).accuracy
                                   : std::numeric_limits<double>::quiet_NaN();
  accuracy_ = dense_accuracy_;
}

double EnvCore::prune(const std::vector<size_t>& layers, double value) {
  const auto t0 = Clock::now();
  criterion_->apply(*network_, layers, value);
  return ms_since(t0);
}

double EnvCore::retrain() {
  const auto t0 = Clock::now();
  const auto& o = config_.env.retrain;
  if (o.epochs > 0 && o.samples >= 0) train_on(*optimizer_, o);
  return ms_since(t0);
}

double EnvCore::retrain_with(const TrainOptions& options) {
  const auto t0 = Clock::now();
  auto optimizer = make_optimizer(*network_, options);
  train_on(*optimizer, options);
  return ms_since(t0);
}

double EnvCore::evaluate() {
  const auto t0 = Clock::now();
  accuracy_ = evaluate_on(eval_set_).accuracy;
  return ms_since(t0);
}

StepInfo EnvCore::counts() const {
  StepInfo info;
  info.accuracy = accuracy_;
  info.total = network_->total_prunable();
  int64_t remaining = 0;
  const auto& layers = network_->prunable_layers();
  info.dense_macs = dense_macs_;
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& l = layers[i];
    const int64_t r = l.remaining();
    remaining += r;
    if (i < positions_.size() && positions_[i] > 0) info.macs += positions_[i] * r;
    info.layer_sparsities.push_back(1.0 - static_cast<double>(r) / static_cast<double>(l.numel()));
  }
  info.remaining = remaining;
  info.sparsity = info.total ? 1.0 - static_cast<double>(remaining) / static_cast<double>(info.total) : 0.0;
  return info;
}

void EnvCore::restart() {
  load_state(*network_, dense_.state);
  optimizer_ = make_optimizer(*network_, config_.env.retrain);
  accuracy_ = dense_accuracy_;
}

void EnvCore::seed(std::optional<uint64_t> seed) {
  if (seed) {
    rng_.seed(*seed);
    seeded_ = true;
  } else if (!seeded_) {
    rng_.seed(config_.seed);
    seeded_ = true;
  }
}

EnvCore::State EnvCore::save() const {
  State s;
  s.network = clone_state(*network_);
  if (optimizer_) {
    torch::serialize::OutputArchive archive;
    optimizer_->save(archive);
    std::ostringstream os;
    archive.save_to(os);
    s.optimizer = os.str();
  }
  s.rng = rng_;
  s.seeded = seeded_;
  s.accuracy = accuracy_;
  return s;
}

void EnvCore::load(const State& s) {
  load_state(*network_, s.network);
  optimizer_ = make_optimizer(*network_, config_.env.retrain);
  if (!s.optimizer.empty()) {
    std::istringstream is(s.optimizer);
    torch::serialize::InputArchive archive;
    archive.load_from(is, device_);
    optimizer_->load(archive);
  }
  rng_ = s.rng;
  seeded_ = true;
  accuracy_ = s.accuracy;
}

EvalResult EnvCore::evaluate_split(const std::string& split) {
  const Tensors* t = split == "train"        ? &data_->train
                     : split == "validation" ? &data_->validation
                     : split == "test"       ? &data_->test
                                             : nullptr;
  if (!t) throw ConfigError("unknown split '" + split + "' (known: train, validation, test)");
  return evaluate_on(*t);
}

EvalResult EnvCore::evaluate_on(const Tensors& data) {
  const auto& o = config_.env.evaluation;
  // "auto" only under a structured criterion: an unstructured one leaves a channel empty by chance,
  // and a compact copy for a few channels costs more than it saves.
  const bool structured = criterion_->structured();
  if (o.compact == "always" || (o.compact == "auto" && structured && !network_->evaluates_faster_masked()))
    if (auto compact = evaluate_compact(*network_, data, o.batch_size)) return *compact;
  return prunegym::evaluate(*network_, data, o.batch_size);
}

TrainStats EnvCore::finetune(const TrainOptions& options, const EpochCallback& on_epoch) {
  auto optimizer = make_optimizer(*network_, options);
  TrainOptions full = options;
  full.samples = 0;
  return train_on(*optimizer, full, on_epoch);
}

TrainStats EnvCore::train_on(torch::optim::Optimizer& optimizer, const TrainOptions& options,
                             const EpochCallback& on_epoch) {
  const auto& mode = config_.env.retrain_compact;
  if (mode == "always" || (mode == "auto" && criterion_->structured() && !trains_by_hand(*network_)))
    if (auto stats = train_compact(*network_, optimizer, data_->train, options, rng_, on_epoch)) return *stats;
  return train(*network_, optimizer, data_->train, options, rng_, on_epoch);
}

}  // namespace prunegym
