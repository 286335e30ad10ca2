#include <prunegym/env/prune_env.h>
#include <prunegym/networks/errors.h>
#include <prunegym/networks/train.h>

#include <chrono>
#include <sstream>

namespace prunegym {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

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

}  // namespace

PruneEnv::PruneEnv(const Config& config, PruneEnvHooks hooks)
    : config_(config), hooks_(std::move(hooks)), device_(parse_device(config.device)) {
  if (hooks_.data) {
    data_ = hooks_.data;
  } else {
    data_ = std::make_shared<const DataSplits>(load_data(config_.data));
  }
  if (!device_.is_cpu()) {
    auto moved = std::make_shared<DataSplits>(*data_);
    moved->train = to_device(moved->train, device_);
    moved->validation = to_device(moved->validation, device_);
    moved->test = to_device(moved->test, device_);
    data_ = moved;
  }
  dense_ = load_or_pretrain(config_, *data_, hooks_.log);
  network_ = dense_.network;

  const auto& opt = config_.env;
  const Tensors& split = opt.evaluation.split == "test" ? data_->test : data_->validation;
  eval_set_ = split.head(opt.evaluation.samples);
  retrain_set_ = data_->train;
  if (eval_set_.size() == 0) throw ConfigError("env.evaluation: the " + opt.evaluation.split + " split is empty");
  dense_eval_accuracy_ = evaluate(*network_, eval_set_, opt.evaluation.batch_size).accuracy;

  criterion_ = make_criterion(opt.criterion);
  reward_prototype_ = RewardRegistry::instance().make(opt.reward.name, opt.reward.params);

  rounds_ = opt.episode == "rounds";
  if (rounds_) {
    rounds_options_ = config_.lottery;
    if (!opt.layers.empty()) rounds_options_.layers = opt.layers;
    if (opt.criterion == "global_magnitude") rounds_options_.scope = "global";  // one ranking over the layers
    strategy_ = parse_strategy(rounds_options_.strategy);
    max_rounds_ = opt.max_steps > 0 ? opt.max_steps : 15;
    // W0: the dense model's own initialisation (build_network is deterministic in init_seed).
    auto fresh = build_network(config_.network, data_->shape, data_->classes);
    fresh->to(device_);
    refs_.init = clone_parameters(*fresh);
    refs_.network = config_.network;
    refs_.input = data_->shape;
    refs_.classes = data_->classes;
    if (strategy_ == ResetStrategy::rewind_iter) {
      // W_k: the initialisation trained k iterations (one pass over k batches) with the
      // pretraining settings.
      const int64_t k = rounds_options_.rewind_iteration;
      TrainOptions o = config_.pretrain;
      o.epochs = 1;
      o.samples = k * o.batch_size;
      if (o.samples > data_->train.size())
        throw ConfigError("lottery.rewind_iteration " + std::to_string(k) + " needs " + std::to_string(o.samples) +
                          " training samples in one pass; the training split has " + std::to_string(data_->train.size()));
      if (k > 0) {
        std::mt19937_64 rng(config_.seed);
        auto optimizer = make_optimizer(*fresh, o);
        train(*fresh, *optimizer, data_->train, o, rng);
      }
      refs_.rewind = clone_parameters(*fresh);
    }
    order_ = lottery_layers(*network_, rounds_options_);
  } else if (opt.layers.empty()) {
    for (size_t i = 0; i < network_->prunable_layers().size(); ++i) order_.push_back(i);
  } else {
    for (const auto& name : opt.layers) {
      try {
        order_.push_back(network_->layer_index(name));
      } catch (const ConfigError& e) {
        throw ConfigError(std::string("env.layers: ") + e.what());
      }
    }
  }

  ActionGrid grid = criterion_->default_grid();
  // In rounds episodes a magnitude criterion's action is the round's pruning rate.
  if (rounds_ && criterion_->value_name() != "alpha") grid = {0.1, 0.5, 0.1};
  const double low = opt.actions.low.value_or(grid.low);
  const double high = opt.actions.high.value_or(grid.high);
  if (opt.actions.type == "discrete") {
    action_space_ = Space::discrete(opt.actions.values.empty() ? Space::grid(low, high, opt.actions.step.value_or(grid.step))
                                                               : opt.actions.values);
  } else {
    action_space_ = Space::box({low}, {high});
  }
  const double value_cap = criterion_->value_name() == "alpha" ? 1e9 : 1.0;
  for (double v : action_space_.kind() == Space::Kind::discrete ? action_space_.values() : action_space_.high())
    if (v < 0 || v > value_cap)
      throw ConfigError("env.actions: value " + std::to_string(v) + " is not a valid " + criterion_->value_name() +
                        " for criterion " + opt.criterion);

  const auto L = static_cast<double>(order_.size());
  if (opt.observation == "compact") {
    observation_space_ = Space::box({0.0, 0.0, 0.0}, {rounds_ ? static_cast<double>(max_rounds_) : L, 1.0, 1.0});
  } else {
    observation_space_ = Space::box(std::vector<double>(order_.size() * 2, 0.0), std::vector<double>(order_.size() * 2, 1.0));
  }

  reward_setup_.target_accuracy = opt.reward.target_accuracy.value_or(dense_eval_accuracy_ - opt.reward.target_accuracy_drop);
  reward_setup_.target_sparsity = opt.reward.target_sparsity;
  reward_setup_.beta = opt.reward.beta;
  reward_setup_.dense_accuracy = dense_eval_accuracy_;
  reward_setup_.total_weights = network_->total_prunable();
  reward_setup_.episode_length = episode_length();
  if (!(reward_setup_.target_accuracy > 0)) {
    throw ConfigError("env.reward: the accuracy target " + std::to_string(reward_setup_.target_accuracy) +
                      " is not positive (dense accuracy " + std::to_string(dense_eval_accuracy_) +
                      " minus target_accuracy_drop); lower target_accuracy_drop or set target_accuracy");
  }
  per_layer_.assign(order_.size() * 2, 0.0f);
}

PruneEnv::~PruneEnv() = default;

std::vector<std::string> PruneEnv::episode_layers() const {
  std::vector<std::string> names;
  for (size_t i : order_) names.push_back(network_->prunable_layers()[i].name);
  return names;
}

ResetResult PruneEnv::reset(const ResetOptions& options) {
  // Validate everything before touching state, so a rejected reset changes nothing.
  RewardSetup setup = reward_setup_;
  if (!options.options.is_object()) throw ConfigError("reset options must be a JSON object");
  for (auto it = options.options.begin(); it != options.options.end(); ++it) {
    const auto& v = it.value();
    if (it.key() == "target_sparsity" || it.key() == "target_accuracy") {
      if (!v.is_number() || !(v.get<double>() > 0 && v.get<double>() <= 1))
        throw ConfigError("reset option '" + it.key() + "' must be a number in (0, 1], got " + v.dump());
      (it.key() == "target_sparsity" ? setup.target_sparsity : setup.target_accuracy) = v.get<double>();
    } else {
      throw ConfigError("unknown reset option '" + it.key() + "' (known: target_sparsity, target_accuracy)");
    }
  }

  if (options.seed) {
    rng_.seed(*options.seed);
    seeded_ = true;
  } else if (!seeded_) {
    rng_.seed(config_.seed);
    seeded_ = true;
  }
  load_state(*network_, dense_.state);
  optimizer_ = make_optimizer(*network_, config_.env.retrain);
  reward_ = reward_prototype_->clone();
  reward_->reset(setup);
  started_ = true;
  done_ = false;
  step_ = 0;
  accuracy_ = dense_eval_accuracy_;
  std::fill(per_layer_.begin(), per_layer_.end(), 0.0f);
  StepInfo info = make_info();
  build_observation(info.sparsity);
  return {observation_, info};
}

StepResult PruneEnv::step(const Action& action) {
  if (!started_) throw EpisodeError("step() called before reset(): call reset() to start an episode");
  if (done_) {
    throw EpisodeError("step() called after the episode ended at step " + std::to_string(step_) +
                       "; call reset() to start a new episode");
  }
  const double value = action_space_.value_of(action);  // throws ActionError, state untouched
  if (rounds_) return step_round(value);
  const size_t layer = order_[static_cast<size_t>(step_)];
  const auto& opt = config_.env;

  StepResult result;
  auto t0 = Clock::now();
  criterion_->apply(*network_, {layer}, value);
  const double prune_ms = ms_since(t0);
  ++step_;
  const bool last = step_ == static_cast<int64_t>(order_.size());
  const bool measure = opt.timing == "dense" || last;

  double retrain_ms = 0.0, eval_ms = 0.0;
  if (measure) {
    t0 = Clock::now();
    if (opt.retrain.epochs > 0 && opt.retrain.samples >= 0) train(*network_, *optimizer_, retrain_set_, opt.retrain, rng_);
    retrain_ms = ms_since(t0);
    t0 = Clock::now();
    accuracy_ = evaluate(*network_, eval_set_, opt.evaluation.batch_size).accuracy;
    eval_ms = ms_since(t0);
  }

  // One pass over the masks gives every count this step reports.
  StepInfo info = make_info();
  const double layer_sparsity = info.layer_sparsities[layer];
  const auto k = static_cast<size_t>(step_ - 1);
  per_layer_[2 * k] = static_cast<float>(accuracy_);
  per_layer_[2 * k + 1] = static_cast<float>(layer_sparsity);
  info.layer = network_->prunable_layers()[layer].name;
  info.layer_index = static_cast<int64_t>(layer);
  info.alpha = value;
  info.layer_sparsity = layer_sparsity;
  info.evaluated = measure;
  info.prune_ms = prune_ms;
  info.retrain_ms = retrain_ms;
  info.eval_ms = eval_ms;

  if (measure) {
    RewardInput in;
    in.accuracy = accuracy_;
    in.sparsity = info.sparsity;
    in.remaining = info.remaining;
    in.total = info.total;
    in.step = step_;
    in.last = last;
    result.reward = reward_->compute(in);
  }
  info.early_stop = measure && accuracy_ < opt.early_stop_accuracy;
  result.terminated = last || info.early_stop;
  result.truncated = !result.terminated && opt.max_steps > 0 && step_ >= opt.max_steps;
  done_ = result.terminated || result.truncated;

  build_observation(info.sparsity);
  result.observation = observation_;
  result.info = info;
  return result;
}

double PruneEnv::group_sparsity(const StepInfo& info) const {
  int64_t total = 0, pruned = 0;
  for (size_t i : order_) {
    const int64_t n = network_->prunable_layers()[i].numel();
    total += n;
    pruned += std::llround(info.layer_sparsities[i] * static_cast<double>(n));
  }
  return total ? static_cast<double>(pruned) / static_cast<double>(total) : 0.0;
}

StepResult PruneEnv::step_round(double value) {
  const auto& opt = config_.env;
  auto t0 = Clock::now();
  RoundTarget target;
  if (criterion_->value_name() == "alpha") {
    // The threshold decides each layer's new sparsity; the round then prunes to exactly that.
    const auto saved = clone_state(*network_);
    criterion_->apply(*network_, order_, value);
    target.layers = order_;
    for (size_t i : order_) target.sparsity.push_back(network_->prunable_layers()[i].sparsity());
    load_state(*network_, saved);
  } else {
    target = rate_target(*network_, rounds_options_, value);
  }
  prune_and_reset(*network_, target, strategy_, refs_, rng_(), rng_);
  const double prune_ms = ms_since(t0);

  t0 = Clock::now();
  if (rounds_options_.train.epochs > 0) {
    auto optimizer = make_optimizer(*network_, rounds_options_.train);
    train(*network_, *optimizer, retrain_set_, rounds_options_.train, rng_);
  }
  const double retrain_ms = ms_since(t0);
  t0 = Clock::now();
  accuracy_ = evaluate(*network_, eval_set_, opt.evaluation.batch_size).accuracy;
  const double eval_ms = ms_since(t0);
  ++step_;

  StepInfo info = make_info();
  const double sparsity = group_sparsity(info);  // from the counts make_info() just took
  for (size_t k = 0; k < order_.size(); ++k) {
    per_layer_[2 * k] = static_cast<float>(accuracy_);
    per_layer_[2 * k + 1] = static_cast<float>(info.layer_sparsities[order_[k]]);
  }
  info.layer = "round " + std::to_string(step_);
  info.alpha = value;
  info.layer_sparsity = sparsity;
  info.evaluated = true;
  info.prune_ms = prune_ms;
  info.retrain_ms = retrain_ms;
  info.eval_ms = eval_ms;

  StepResult result;
  RewardInput in;
  in.accuracy = accuracy_;
  in.sparsity = info.sparsity;
  in.remaining = info.remaining;
  in.total = info.total;
  in.step = step_;
  info.early_stop = accuracy_ < opt.early_stop_accuracy;
  result.terminated = info.early_stop || sparsity >= reward_->setup().target_sparsity - 1e-9;
  result.truncated = !result.terminated && step_ >= max_rounds_;
  in.last = result.terminated || result.truncated;
  result.reward = reward_->compute(in);
  done_ = result.terminated || result.truncated;
  build_observation(sparsity);
  result.observation = observation_;
  result.info = info;
  return result;
}

StepInfo PruneEnv::make_info() const {
  StepInfo info;
  info.step = step_;
  info.accuracy = accuracy_;
  info.total = network_->total_prunable();
  int64_t remaining = 0;
  for (const auto& l : network_->prunable_layers()) {
    const int64_t r = l.remaining();
    remaining += r;
    info.layer_sparsities.push_back(1.0 - static_cast<double>(r) / static_cast<double>(l.numel()));
  }
  info.remaining = remaining;
  info.sparsity = info.total ? 1.0 - static_cast<double>(remaining) / static_cast<double>(info.total) : 0.0;
  return info;
}

void PruneEnv::build_observation(double sparsity) {
  if (config_.env.observation == "compact") {
    observation_ = {static_cast<float>(step_), static_cast<float>(accuracy_), static_cast<float>(sparsity)};
  } else {
    observation_ = per_layer_;
  }
}

double PruneEnv::test_accuracy() { return evaluate(*network_, data_->test, config_.env.evaluation.batch_size).accuracy; }

EvalResult PruneEnv::evaluate_split(const std::string& split) {
  const Tensors* t = split == "train" ? &data_->train
                     : split == "validation" ? &data_->validation
                     : split == "test" ? &data_->test
                                       : nullptr;
  if (!t) throw ConfigError("unknown split '" + split + "' (known: train, validation, test)");
  return evaluate(*network_, *t, config_.env.evaluation.batch_size);
}

void PruneEnv::apply_values(const std::vector<double>& values) {
  if (rounds_) throw EpisodeError("apply_values() replays a layer-wise policy; rounds episodes are replayed by stepping");
  if (values.size() != order_.size()) {
    throw ActionError("a policy needs one value per episode layer: got " + std::to_string(values.size()) + ", the episode has " +
                      std::to_string(order_.size()));
  }
  load_state(*network_, dense_.state);
  for (size_t i = 0; i < values.size(); ++i) criterion_->apply(*network_, {order_[i]}, values[i]);
  started_ = false;  // the next step needs a reset
  done_ = true;
}

TrainStats PruneEnv::finetune(const TrainOptions& options, const EpochCallback& on_epoch) {
  auto optimizer = make_optimizer(*network_, options);
  TrainOptions full = options;
  full.samples = 0;
  return train(*network_, *optimizer, data_->train, full, rng_, on_epoch);
}

void PruneEnv::save_network(const std::string& path) const {
  torch::serialize::OutputArchive archive;
  network_->save(archive);
  archive.save_to(path);
}

EnvSnapshot PruneEnv::snapshot() const {
  EnvSnapshot s;
  s.network_state = clone_state(*network_);
  if (optimizer_) {
    torch::serialize::OutputArchive archive;
    optimizer_->save(archive);
    std::ostringstream os;
    archive.save_to(os);
    s.optimizer_state = os.str();
  }
  s.rng = rng_;
  if (reward_) s.reward = std::shared_ptr<RewardFn>(reward_->clone());
  s.started = started_;
  s.done = done_;
  s.step = step_;
  s.accuracy = accuracy_;
  s.observation = observation_;
  s.per_layer = per_layer_;
  return s;
}

void PruneEnv::restore(const EnvSnapshot& s) {
  if (s.per_layer.size() != per_layer_.size() || s.network_state.empty()) {
    throw ConfigError("restore(): the snapshot was taken from a different environment configuration");
  }
  load_state(*network_, s.network_state);
  optimizer_ = make_optimizer(*network_, config_.env.retrain);
  if (!s.optimizer_state.empty()) {
    std::istringstream is(s.optimizer_state);
    torch::serialize::InputArchive archive;
    archive.load_from(is, device_);
    optimizer_->load(archive);
  }
  rng_ = s.rng;
  seeded_ = true;
  reward_ = s.reward ? s.reward->clone() : nullptr;
  started_ = s.started;
  done_ = s.done;
  step_ = s.step;
  accuracy_ = s.accuracy;
  observation_ = s.observation;
  per_layer_ = s.per_layer;
}

}  // namespace prunegym
