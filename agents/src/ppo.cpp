#include <prunegym/agents/factory.h>
#include <prunegym/agents/ppo.h>
#include <prunegym/core/errors.h>
#include <prunegym/core/json_reader.h>

#include <nlohmann/json.hpp>

#include <numeric>
#include <sstream>

namespace prunegym {

PPOAgent::PPOAgent(const Space& action_space, const Space& observation_space, PPOOptions options)
    : action_space_(action_space),
      observation_space_(observation_space),
      options_(std::move(options)),
      rng_(options_.seed) {
  if (action_space_.kind() != Space::Kind::discrete)
    throw ConfigError("agents.ppo: PPO here needs a Discrete action space");
  if (options_.rollout_steps <= 0 || options_.epochs <= 0 || options_.minibatch <= 0)
    throw ConfigError("agents.ppo: rollout_steps, epochs and minibatch must be positive");
  const auto inputs = static_cast<int64_t>(observation_space_.low().size());
  policy_ = seeded_mlp(inputs, options_.hidden, action_space_.n(), options_.seed);
  value_ = seeded_mlp(inputs, options_.hidden, 1, options_.seed + 1);
  {
    // A near-uniform initial policy: small final-layer weights.
    torch::NoGradGuard no_grad;
    auto params = policy_->parameters();
    params[params.size() - 2].mul_(0.01);
  }
  std::vector<torch::Tensor> params = policy_->parameters();
  for (auto& p : value_->parameters()) params.push_back(p);
  optimizer_ = std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(options_.lr));
}

std::vector<float> PPOAgent::probabilities(const Observation& o) {
  torch::NoGradGuard no_grad;
  auto p = torch::softmax(policy_->forward(torch::tensor(normalize_observation(o, observation_space_))), 0);
  return std::vector<float>(p.data_ptr<float>(), p.data_ptr<float>() + p.numel());
}

Action PPOAgent::act(const Observation& o, bool explore) {
  const auto p = probabilities(o);
  if (!explore) return Action(static_cast<int64_t>(std::max_element(p.begin(), p.end()) - p.begin()));
  const double u = static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0);
  double cumulative = 0.0;
  for (size_t i = 0; i < p.size(); ++i) {
    cumulative += p[i];
    if (u < cumulative) return Action(static_cast<int64_t>(i));
  }
  return Action(static_cast<int64_t>(p.size() - 1));
}

void PPOAgent::observe(const Transition& t) {
  torch::NoGradGuard no_grad;
  const auto x = normalize_observation(t.observation, observation_space_);
  auto xt = torch::tensor(x);
  auto logp = torch::log_softmax(policy_->forward(xt), 0)[t.action.index].item<float>();
  obs_.push_back(x);
  actions_.push_back(t.action.index);
  log_probs_.push_back(logp);
  values_.push_back(value_->forward(xt).item<float>());
  rewards_.push_back(static_cast<float>(t.reward));
  const bool end = t.terminated || t.truncated;
  dones_.push_back(end ? 1.0f : 0.0f);
  // Bootstrap from the next state unless the episode truly terminated.
  bootstrap_.push_back(
      t.terminated ? 0.0f
                   : value_->forward(torch::tensor(normalize_observation(t.next_observation, observation_space_)))
                         .item<float>());
}

void PPOAgent::end_episode() {
  if (static_cast<int64_t>(obs_.size()) >= options_.rollout_steps) update();
}

void PPOAgent::update() {
  const auto n = static_cast<int64_t>(obs_.size());
  std::vector<float> advantages(static_cast<size_t>(n)), returns(static_cast<size_t>(n));
  float next_advantage = 0.0f;
  for (int64_t t = n - 1; t >= 0; --t) {
    const auto i = static_cast<size_t>(t);
    // bootstrap_[i] already is V(s') or 0 at a terminal state.
    const float delta = rewards_[i] + static_cast<float>(options_.gamma) * bootstrap_[i] - values_[i];
    const float carry = dones_[i] > 0 ? 0.0f : next_advantage;
    advantages[i] = delta + static_cast<float>(options_.gamma * options_.lambda) * carry;
    returns[i] = advantages[i] + values_[i];
    next_advantage = advantages[i];
  }
  std::vector<float> flat;
  for (const auto& o : obs_) flat.insert(flat.end(), o.begin(), o.end());
  auto obs = torch::tensor(flat).view({n, -1});
  auto actions = torch::tensor(actions_, torch::kInt64);
  auto old_logp = torch::tensor(log_probs_);
  auto adv = torch::tensor(advantages);
  auto ret = torch::tensor(returns);
  if (n > 1) adv = (adv - adv.mean()) / (adv.std() + 1e-8);

  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  double entropy_sum = 0.0;
  int64_t batches = 0;
  for (int64_t epoch = 0; epoch < options_.epochs; ++epoch) {
    for (int64_t i = n - 1; i > 0; --i)
      std::swap(order[static_cast<size_t>(i)], order[rng_() % static_cast<uint64_t>(i + 1)]);
    for (int64_t start = 0; start < n; start += options_.minibatch) {
      const int64_t len = std::min(options_.minibatch, n - start);
      auto idx = torch::tensor(std::vector<int64_t>(order.begin() + start, order.begin() + start + len), torch::kInt64);
      auto logits = policy_->forward(obs.index_select(0, idx));
      auto logp_all = torch::log_softmax(logits, 1);
      auto logp = logp_all.gather(1, actions.index_select(0, idx).unsqueeze(1)).squeeze(1);
      auto entropy = -(logp_all.exp() * logp_all).sum(1).mean();
      auto ratio = (logp - old_logp.index_select(0, idx)).exp();
      auto a = adv.index_select(0, idx);
      auto surrogate = torch::min(ratio * a, ratio.clamp(1.0 - options_.clip, 1.0 + options_.clip) * a).mean();
      auto v = value_->forward(obs.index_select(0, idx)).squeeze(1);
      auto value_loss = (v - ret.index_select(0, idx)).pow(2).mean();
      auto loss = -surrogate + options_.value_coef * value_loss - options_.entropy_coef * entropy;
      optimizer_->zero_grad();
      loss.backward();
      std::vector<torch::Tensor> params = policy_->parameters();
      for (auto& p : value_->parameters()) params.push_back(p);
      torch::nn::utils::clip_grad_norm_(params, options_.grad_clip);
      optimizer_->step();
      entropy_sum += entropy.item<double>();
      ++batches;
    }
  }
  last_entropy_ = batches ? entropy_sum / static_cast<double>(batches) : 0.0;
  ++updates_;
  obs_.clear();
  actions_.clear();
  log_probs_.clear();
  values_.clear();
  rewards_.clear();
  dones_.clear();
  bootstrap_.clear();
}

void PPOAgent::save(const std::string& path) const {
  torch::serialize::OutputArchive archive, policy, value, optim;
  policy_->save(policy);
  value_->save(value);
  optimizer_->save(optim);
  archive.write("policy", policy);
  archive.write("value", value);
  archive.write("optimizer", optim);
  std::ostringstream rng;
  rng << rng_;
  const nlohmann::json meta{{"agent", "ppo"}, {"rng", rng.str()}, {"updates", updates_}, {"entropy", last_entropy_}};
  archive.write("meta", c10::IValue(meta.dump()));
  archive.save_to(path);
}

void PPOAgent::load(const std::string& path) {
  torch::serialize::InputArchive archive, policy, value, optim;
  try {
    archive.load_from(path);
    c10::IValue meta_value;
    archive.read("meta", meta_value);
    const auto meta = nlohmann::json::parse(meta_value.toStringRef());
    if (meta.value("agent", "") != "ppo") throw DataError(path + ": not a PPO checkpoint");
    archive.read("policy", policy);
    archive.read("value", value);
    archive.read("optimizer", optim);
    policy_->load(policy);
    value_->load(value);
    optimizer_->load(optim);
    std::istringstream rng(meta.value("rng", std::string()));
    rng >> rng_;
    updates_ = meta.value("updates", int64_t{0});
    last_entropy_ = meta.value("entropy", 0.0);
  } catch (const c10::Error& e) {
    throw DataError(path + ": cannot load the PPO checkpoint (" + e.what_without_backtrace() + ")");
  }
  // A partial rollout from before the checkpoint is not restored; training resumes at an episode start.
}

namespace {

std::unique_ptr<Agent> make_ppo(const AgentContext& c) {
  PPOOptions o;
  ObjectReader r(c.options, c.path);
  r.get("hidden", o.hidden);
  r.get("lr", o.lr);
  r.get("rollout_steps", o.rollout_steps);
  r.get("epochs", o.epochs);
  r.get("minibatch", o.minibatch);
  r.get("clip", o.clip);
  r.get("gamma", o.gamma);
  r.get("lambda", o.lambda);
  r.get("entropy_coef", o.entropy_coef);
  r.get("value_coef", o.value_coef);
  r.get("grad_clip", o.grad_clip);
  r.finish();
  o.seed = c.seed;
  return std::make_unique<PPOAgent>(c.action_space, c.observation_space, o);
}

}  // namespace

PRUNEGYM_REGISTER(AgentRegistry, "ppo", make_ppo, "PPO with a categorical policy");

}  // namespace prunegym
