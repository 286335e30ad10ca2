#include <prunegym/agents/dqn.h>
#include <prunegym/agents/factory.h>
#include <prunegym/core/errors.h>
#include <prunegym/core/json_reader.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <sstream>

namespace prunegym {

// ---------------------------------------------------------------------------------------------
// Replay buffer

ReplayBuffer::ReplayBuffer(size_t capacity, size_t observation_size) : capacity_(capacity), dim_(observation_size) {
  if (capacity_ == 0) throw ConfigError("agents.dqn.buffer_size must be positive");
  const auto n = static_cast<int64_t>(capacity_), d = static_cast<int64_t>(dim_);
  obs_ = torch::zeros({n, d});
  next_obs_ = torch::zeros({n, d});
  actions_ = torch::zeros({n}, torch::kInt64);
  rewards_ = torch::zeros({n});
  terminal_ = torch::zeros({n});
}

void ReplayBuffer::add(const std::vector<float>& obs, int64_t action, double reward, const std::vector<float>& next,
                       bool terminal) {
  const auto i = static_cast<int64_t>(next_);
  obs_[i].copy_(torch::tensor(obs));
  next_obs_[i].copy_(torch::tensor(next));
  actions_[i] = action;
  rewards_[i] = static_cast<float>(reward);
  terminal_[i] = terminal ? 1.0f : 0.0f;
  next_ = (next_ + 1) % capacity_;
  size_ = std::min(size_ + 1, capacity_);
}

ReplayBuffer::Batch ReplayBuffer::sample(size_t n, std::mt19937_64& rng) const {
  std::vector<int64_t> idx(n);
  for (auto& i : idx) i = static_cast<int64_t>(rng() % size_);
  auto t = torch::tensor(idx, torch::kInt64);
  return {obs_.index_select(0, t), actions_.index_select(0, t), rewards_.index_select(0, t),
          next_obs_.index_select(0, t), terminal_.index_select(0, t)};
}

void ReplayBuffer::save(torch::serialize::OutputArchive& a) const {
  a.write("replay_obs", obs_, true);
  a.write("replay_next", next_obs_, true);
  a.write("replay_actions", actions_, true);
  a.write("replay_rewards", rewards_, true);
  a.write("replay_terminal", terminal_, true);
  a.write("replay_cursor", torch::tensor({static_cast<int64_t>(size_), static_cast<int64_t>(next_)}), true);
}

void ReplayBuffer::load(torch::serialize::InputArchive& a) {
  torch::Tensor cursor;
  a.read("replay_obs", obs_, true);
  a.read("replay_next", next_obs_, true);
  a.read("replay_actions", actions_, true);
  a.read("replay_rewards", rewards_, true);
  a.read("replay_terminal", terminal_, true);
  a.read("replay_cursor", cursor, true);
  size_ = static_cast<size_t>(cursor[0].item<int64_t>());
  next_ = static_cast<size_t>(cursor[1].item<int64_t>());
  capacity_ = static_cast<size_t>(obs_.size(0));
}

// ---------------------------------------------------------------------------------------------
// MLP

MlpImpl::MlpImpl(int64_t inputs, const std::vector<int64_t>& hidden, int64_t outputs) {
  int64_t width = inputs;
  for (int64_t h : hidden) {
    if (h <= 0) throw ConfigError("hidden layer sizes must be positive");
    layers->push_back(torch::nn::Linear(width, h));
    layers->push_back(torch::nn::ReLU());
    width = h;
  }
  layers->push_back(torch::nn::Linear(width, outputs));
  register_module("layers", layers);
}

torch::Tensor MlpImpl::forward(torch::Tensor x) { return layers->forward(x); }

Mlp seeded_mlp(int64_t inputs, const std::vector<int64_t>& hidden, int64_t outputs, uint64_t seed) {
  auto gen = at::detail::getDefaultCPUGenerator();
  const auto saved = gen.get_state();
  torch::manual_seed(seed);
  Mlp net(inputs, hidden, outputs);
  gen.set_state(saved);
  return net;
}

namespace {

double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// DQN

DQNAgent::DQNAgent(const Space& action_space, const Space& observation_space, DQNOptions options)
    : action_space_(action_space),
      observation_space_(observation_space),
      options_(std::move(options)),
      replay_(static_cast<size_t>(std::max<int64_t>(options_.buffer_size, 1)), observation_space.low().size()),
      rng_(options_.seed) {
  if (action_space_.kind() != Space::Kind::discrete) throw ConfigError("agents.dqn: DQN needs a Discrete action space");
  if (options_.buffer_size <= 0 || options_.batch_size <= 0 || options_.target_update <= 0 ||
      options_.train_freq <= 0 || options_.gradient_steps <= 0)
    throw ConfigError(
        "agents.dqn: buffer_size, batch_size, target_update, train_freq and gradient_steps must be positive");
  if (!(options_.exploration_fraction > 0 && options_.exploration_fraction <= 1))
    throw ConfigError("agents.dqn.exploration_fraction must be in (0, 1]");
  const auto inputs = static_cast<int64_t>(observation_space_.low().size());
  online_ = seeded_mlp(inputs, options_.hidden, action_space_.n(), options_.seed);
  target_ = seeded_mlp(inputs, options_.hidden, action_space_.n(), options_.seed);
  optimizer_ = std::make_unique<torch::optim::Adam>(online_->parameters(), torch::optim::AdamOptions(options_.lr));
  epsilon_ = options_.epsilon_start;
}

void DQNAgent::begin_episode(int64_t episode, int64_t total) {
  const double horizon = std::max(1.0, options_.exploration_fraction * static_cast<double>(total));
  const double progress = std::min(1.0, static_cast<double>(episode) / horizon);
  epsilon_ = options_.epsilon_start + (options_.epsilon_end - options_.epsilon_start) * progress;
}

std::vector<float> DQNAgent::q_values(const Observation& o) {
  torch::NoGradGuard no_grad;
  auto q = online_->forward(torch::tensor(normalize_observation(o, observation_space_)).unsqueeze(0)).squeeze(0);
  return std::vector<float>(q.data_ptr<float>(), q.data_ptr<float>() + q.numel());
}

Action DQNAgent::act(const Observation& o, bool explore) {
  if (explore && uniform01(rng_) < epsilon_) return action_space_.sample(rng_);
  const auto q = q_values(o);
  return Action(static_cast<int64_t>(std::max_element(q.begin(), q.end()) - q.begin()));
}

void DQNAgent::observe(const Transition& t) {
  replay_.add(normalize_observation(t.observation, observation_space_), t.action.index, t.reward,
              normalize_observation(t.next_observation, observation_space_), t.terminated);
  ++steps_;
  if (steps_ >= options_.learning_starts && steps_ % options_.train_freq == 0 &&
      replay_.size() >= static_cast<size_t>(std::min<int64_t>(options_.batch_size, options_.buffer_size))) {
    for (int64_t i = 0; i < options_.gradient_steps; ++i) learn();
  }
  if (steps_ % options_.target_update == 0) {
    torch::NoGradGuard no_grad;
    auto src = online_->parameters();
    auto dst = target_->parameters();
    for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
    ++target_syncs_;
  }
}

void DQNAgent::learn() {
  auto batch = replay_.sample(static_cast<size_t>(options_.batch_size), rng_);
  torch::Tensor target;
  {
    torch::NoGradGuard no_grad;
    auto next_target = target_->forward(batch.next);
    torch::Tensor next_q;
    if (options_.double_q) {
      auto best = online_->forward(batch.next).argmax(1, /*keepdim=*/true);
      next_q = next_target.gather(1, best).squeeze(1);
    } else {
      next_q = std::get<0>(next_target.max(1));
    }
    target = batch.rewards + options_.gamma * (1.0 - batch.terminal) * next_q;
  }
  auto q = online_->forward(batch.obs).gather(1, batch.actions.unsqueeze(1)).squeeze(1);
  auto loss = torch::nn::functional::smooth_l1_loss(q, target);
  optimizer_->zero_grad();
  loss.backward();
  torch::nn::utils::clip_grad_norm_(online_->parameters(), options_.grad_clip);
  optimizer_->step();
  ++updates_;
}

double DQNAgent::target_distance() const {
  torch::NoGradGuard no_grad;
  double d = 0.0;
  auto a = online_->parameters();
  auto b = target_->parameters();
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, (a[i] - b[i]).abs().max().item<double>());
  return d;
}

void DQNAgent::save(const std::string& path) const {
  torch::serialize::OutputArchive archive, online, target, optim;
  online_->save(online);
  target_->save(target);
  optimizer_->save(optim);
  archive.write("online", online);
  archive.write("target", target);
  archive.write("optimizer", optim);
  replay_.save(archive);
  std::ostringstream rng;
  rng << rng_;
  const nlohmann::json meta{{"agent", "dqn"},  {"rng", rng.str()},    {"epsilon", epsilon_},
                            {"steps", steps_}, {"updates", updates_}, {"target_syncs", target_syncs_}};
  archive.write("meta", c10::IValue(meta.dump()));
  archive.save_to(path);
}

void DQNAgent::load(const std::string& path) {
  torch::serialize::InputArchive archive, online, target, optim;
  try {
    archive.load_from(path);
    c10::IValue meta_value;
    archive.read("meta", meta_value);
    const auto meta = nlohmann::json::parse(meta_value.toStringRef());
    if (meta.value("agent", "") != "dqn") throw DataError(path + ": not a DQN checkpoint");
    archive.read("online", online);
    archive.read("target", target);
    archive.read("optimizer", optim);
    online_->load(online);
    target_->load(target);
    optimizer_->load(optim);
    replay_.load(archive);
    std::istringstream rng(meta.value("rng", std::string()));
    rng >> rng_;
    epsilon_ = meta.value("epsilon", epsilon_);
    steps_ = meta.value("steps", int64_t{0});
    updates_ = meta.value("updates", int64_t{0});
    target_syncs_ = meta.value("target_syncs", int64_t{0});
  } catch (const c10::Error& e) {
    throw DataError(path + ": cannot load the DQN checkpoint (" + e.what_without_backtrace() + ")");
  }
}

namespace {

std::unique_ptr<Agent> make_dqn(const AgentContext& c) {
  DQNOptions o;
  ObjectReader r(c.options, c.path);
  r.get("hidden", o.hidden);
  r.get("lr", o.lr);
  r.get("buffer_size", o.buffer_size);
  r.get("batch_size", o.batch_size);
  r.get("gamma", o.gamma);
  r.get("target_update", o.target_update);
  r.get("exploration_fraction", o.exploration_fraction);
  r.get("epsilon_start", o.epsilon_start);
  r.get("epsilon_end", o.epsilon_end);
  r.get("learning_starts", o.learning_starts);
  r.get("train_freq", o.train_freq);
  r.get("gradient_steps", o.gradient_steps);
  r.get("double_q", o.double_q);
  r.get("grad_clip", o.grad_clip);
  r.finish();
  o.seed = c.seed;
  return std::make_unique<DQNAgent>(c.action_space, c.observation_space, o);
}

}  // namespace

PRUNEGYM_REGISTER(AgentRegistry, "dqn", make_dqn, "DQN (PuRL's agent and defaults)");

}  // namespace prunegym
