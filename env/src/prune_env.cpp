#include <prunegym/core/errors.h>
#include <prunegym/env/budget.h>
#include <prunegym/env/prune_env.h>
#include <prunegym/networks/cost.h>
#include <prunegym/networks/groups.h>
#include <prunegym/networks/train.h>

#include <algorithm>
#include <filesystem>

namespace prunegym {

PruneEnv::PruneEnv(const Config& config, PruneEnvHooks hooks)
    : core_(config, std::move(hooks.data), hooks.log, hooks.pretrain) {
  const auto& opt = config.env;
  schedule_ = ScheduleRegistry::instance().make(opt.episode, opt.episode_options, core_);
  observation_builder_ = ObservationRegistry::instance().make(opt.observation, opt.observation_options);
  reward_prototype_ = RewardRegistry::instance().make(opt.reward.name, opt.reward.params);
  build_action_space();
  const auto layers = static_cast<int64_t>(schedule_->layers().size());
  const auto highs = action_space_.kind() == Space::Kind::discrete ? action_space_.values() : action_space_.high();
  observation_space_ = observation_builder_->space(
      {schedule_->length(), layers, highs.empty() ? 1.0 : *std::max_element(highs.begin(), highs.end())});
  build_reward_setup();
  if (opt.budget.active()) {
    if (!schedule_->replays_by_values())
      throw ConfigError("env.budget applies to layer-wise episodes (one step per layer); '" + opt.episode +
                        "' episodes do not fix which layer a step prunes");
    wall_ = std::make_unique<ActionWall>(opt.budget, core_, schedule_->layers(),
                                         *std::max_element(highs.begin(), highs.end()), hooks.log);
  }
  episode_.restart(schedule_->layers(), core_.accuracy(), 0.0);
}

PruneEnv::~PruneEnv() = default;

void PruneEnv::build_action_space() {
  const auto& opt = config().env;
  const ActionGrid grid = schedule_->default_grid();
  const double low = opt.actions.low.value_or(grid.low);
  const double high = opt.actions.high.value_or(grid.high);
  if (opt.actions.type == "discrete") {
    action_space_ = Space::discrete(
        opt.actions.values.empty() ? Space::grid(low, high, opt.actions.step.value_or(grid.step)) : opt.actions.values);
  } else {
    action_space_ = Space::box({low}, {high});
  }
  const auto& criterion = core_.criterion();
  const double value_cap = criterion.meaning() == ActionMeaning::alpha ? 1e9 : 1.0;
  for (double v : action_space_.kind() == Space::Kind::discrete ? action_space_.values() : action_space_.high())
    if (v < 0 || v > value_cap)
      throw ConfigError("env.actions: value " + std::to_string(v) + " is not a valid " + criterion.value_name() +
                        " for criterion " + opt.criterion);
}

void PruneEnv::build_reward_setup() {
  const auto& r = config().env.reward;
  const double dense = core_.dense_accuracy();
  reward_setup_.target_accuracy = r.target_accuracy.value_or(dense - r.target_accuracy_drop);
  reward_setup_.target_sparsity = r.target_sparsity;
  reward_setup_.beta = r.beta;
  reward_setup_.dense_accuracy = dense;
  reward_setup_.total_weights = core_.network().total_prunable();
  reward_setup_.episode_length = episode_length();
  reward_setup_.dense_macs = core_.counts().dense_macs;
  if (!core_.dense().trained) return;  // describe only: the accuracy target waits for the dense model
  if (!(reward_setup_.target_accuracy > 0)) {
    throw ConfigError("env.reward: the accuracy target " + std::to_string(reward_setup_.target_accuracy) +
                      " is not positive (dense accuracy " + std::to_string(dense) +
                      " minus target_accuracy_drop); lower target_accuracy_drop or set target_accuracy");
  }
}

std::vector<std::string> PruneEnv::episode_layers() const {
  std::vector<std::string> names;
  for (size_t i : schedule_->layers()) names.push_back(core_.network().prunable_layers()[i].name);
  return names;
}

nlohmann::json PruneEnv::describe() const {
  return {{"layers", episode_layers()},
          {"episode_length", episode_length()},
          {"dense_accuracy", dense_accuracy()},
          {"dense_test_accuracy", dense().test_accuracy},
          {"target_accuracy", reward_setup_.target_accuracy},
          {"target_sparsity", reward_setup_.target_sparsity}};
}

Observation PruneEnv::observe() const { return observation_builder_->build(episode_, core_.network()); }

void PruneEnv::record(const ScheduleStep& s, double value) {
  ++episode_.step;
  episode_.accuracy = core_.accuracy();
  episode_.sparsity = s.observed_sparsity;
  episode_.last_value = value;
  episode_.macs = s.info.macs;
  episode_.dense_macs = s.info.dense_macs;
  for (size_t k : s.pruned) {
    auto& l = episode_.layers.at(k);
    l.accuracy = core_.accuracy();
    l.sparsity = s.info.layer_sparsities.at(l.index);
    l.pruned = true;
  }
}

ResetResult PruneEnv::reset(const ResetOptions& options) {
  // Validate everything before touching state, so a rejected reset changes nothing.
  require_dense_model();
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
  auto reward = reward_prototype_->clone();
  reward->reset(setup);  // may refuse the setup (ConfigError), before anything changed
  core_.seed(options.seed);
  core_.restart();
  reward_ = std::move(reward);
  started_ = true;
  done_ = false;
  StepInfo info = core_.counts();
  episode_.restart(schedule_->layers(), core_.accuracy(), info.sparsity);
  episode_.macs = info.macs;
  episode_.dense_macs = info.dense_macs;
  if (wall_) info.resource_ratio = wall_->ratio(info, core_.network());
  observation_ = observe();
  return {observation_, info};
}

StepResult PruneEnv::step(const Action& action) {
  if (!started_) throw EpisodeError("step() called before reset(): call reset() to start an episode");
  if (done_) {
    throw EpisodeError("step() called after the episode ended at step " + std::to_string(episode_.step) +
                       "; call reset() to start a new episode");
  }
  const double requested = action_space_.value_of(action);  // throws ActionError, state untouched
  const double value = wall_ ? wall_->clip(core_, static_cast<size_t>(episode_.step), requested) : requested;
  ScheduleStep s = schedule_->step(core_, episode_, value, reward_->setup().target_sparsity);
  record(s, value);
  const int64_t step = episode_.step;
  StepResult result;
  StepInfo& info = s.info;
  info.step = step;
  info.requested = requested;
  info.clipped = value != requested;
  if (wall_) info.resource_ratio = wall_->ratio(info, core_.network());
  info.early_stop = info.evaluated && core_.accuracy() < config().env.early_stop_accuracy;
  result.terminated = s.finished || info.early_stop;
  const int64_t limit = schedule_->step_limit();
  result.truncated = !result.terminated && limit > 0 && step >= limit;
  if (info.evaluated) {
    RewardInput in;
    in.accuracy = core_.accuracy();
    in.sparsity = info.sparsity;
    in.remaining = info.remaining;
    in.total = info.total;
    in.macs = info.macs;
    in.dense_macs = info.dense_macs;
    in.step = step;
    in.last = result.terminated || result.truncated;
    result.reward = reward_->compute(in);
  }
  done_ = result.terminated || result.truncated;
  observation_ = observe();
  result.observation = observation_;
  result.info = std::move(info);
  return result;
}

void PruneEnv::require_dense_model() const {
  if (!core_.dense().trained)
    throw EpisodeError(
        "this environment was built to describe its config (no dense model was cached); build it "
        "with PretrainPolicy::train, or run `prunegym pretrain` first");
}

void PruneEnv::apply_values(const std::vector<double>& values) {
  require_dense_model();
  if (!schedule_->replays_by_values())
    throw EpisodeError("apply_values() replays a layer-wise policy; " + config().env.episode +
                       " episodes are replayed by stepping");
  const auto& layers = schedule_->layers();
  if (values.size() != layers.size()) {
    throw ActionError("a policy needs one value per episode layer: got " + std::to_string(values.size()) +
                      ", the episode has " + std::to_string(layers.size()));
  }
  core_.restart();
  for (size_t i = 0; i < values.size(); ++i)
    core_.prune({layers[i]}, wall_ ? wall_->clip(core_, i, values[i]) : values[i]);
  started_ = false;  // the next step needs a reset
  done_ = true;
}

TrainStats PruneEnv::finetune(const TrainOptions& options, const EpochCallback& on_epoch) {
  return core_.finetune(options, on_epoch);
}

void PruneEnv::save_network(const std::string& path) const { core_.network().save_model(path); }

nlohmann::json PruneEnv::export_network(const std::string& path, const std::string& masked_path) const {
  namespace fs = std::filesystem;
  const auto& net = core_.network();
  const auto dense = network_cost(net);
  nlohmann::json j{
      {"file", fs::path(path).filename().string()}, {"dense_parameters", dense.parameters}, {"dense_macs", dense.macs}};
  const auto& shape = core_.data().shape;  // what the exported module takes, per sample (python/export_onnx.py)
  j["input"] = {shape.channels, shape.height, shape.width};
  if (core_.criterion().structured()) {
    net.save_model(masked_path);
    std::string why;
    if (const auto compact = save_compact_model(net, path, &why)) {
      j.update(compact->to_json());
      j["compact"] = true;
      j["file_bytes"] = fs::file_size(path);
      j["masked_file"] = fs::path(masked_path).filename().string();
      j["masked_file_bytes"] = fs::file_size(masked_path);
      return j;
    }
    fs::remove(masked_path);
    j["reason"] = why;
  } else {
    j["reason"] = "an unstructured criterion (" + core_.criterion().name() + ") masks weights and keeps every shape";
  }
  net.save_model(path);
  j["compact"] = false;
  j["file_bytes"] = fs::file_size(path);
  j["parameters"] = dense.parameters;
  j["macs"] = dense.macs;
  return j;
}

EnvSnapshot PruneEnv::snapshot() const {
  EnvSnapshot s;
  s.core = core_.save();
  if (reward_) s.reward = std::shared_ptr<RewardFn>(reward_->clone());
  s.started = started_;
  s.done = done_;
  s.episode = episode_;
  s.observation = observation_;
  return s;
}

void PruneEnv::restore(const EnvSnapshot& s) {
  if (s.episode.layers.size() != episode_.layers.size() || s.core.network.empty()) {
    throw ConfigError("restore(): the snapshot was taken from a different environment configuration");
  }
  core_.load(s.core);
  reward_ = s.reward ? s.reward->clone() : nullptr;
  started_ = s.started;
  done_ = s.done;
  episode_ = s.episode;
  observation_ = s.observation;
}

std::shared_ptr<const EnvState> PruneEnv::save_state() const { return std::make_shared<EnvSnapshot>(snapshot()); }

void PruneEnv::restore_state(const EnvState& state) {
  const auto* s = dynamic_cast<const EnvSnapshot*>(&state);
  if (!s) throw ConfigError("restore(): the state was not saved by a prune environment");
  restore(*s);
}

}  // namespace prunegym
