#include <prunegym/agents/ddpg.h>
#include <prunegym/agents/dqn.h>
#include <prunegym/agents/factory.h>
#include <prunegym/core/errors.h>
#include <prunegym/core/json_reader.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>

namespace prunegym {

/// Actor (observation -> [0, 1] through a sigmoid) and critic ((observation, action) -> value),
/// each with its target copy and optimizer. A critic on the concatenation is AMC's critic, whose
/// separate first layers for state and action are summed: one linear map of [s; a].
struct DDPGAgent::Net {
  Mlp actor{nullptr}, critic{nullptr}, actor_target{nullptr}, critic_target{nullptr};
  std::unique_ptr<torch::optim::Adam> actor_opt, critic_opt;

  Net(int64_t inputs, const DDPGOptions& o)
      : actor(seeded_mlp(inputs, o.hidden, 1, o.seed)),
        critic(seeded_mlp(inputs + 1, o.hidden, 1, o.seed + 1)),
        actor_target(seeded_mlp(inputs, o.hidden, 1, o.seed)),
        critic_target(seeded_mlp(inputs + 1, o.hidden, 1, o.seed + 1)),
        actor_opt(std::make_unique<torch::optim::Adam>(actor->parameters(), torch::optim::AdamOptions(o.lr_actor))),
        critic_opt(std::make_unique<torch::optim::Adam>(critic->parameters(), torch::optim::AdamOptions(o.lr_critic))) {
  }

  torch::Tensor act(Mlp& a, const torch::Tensor& obs) { return torch::sigmoid(a->forward(obs)); }
  torch::Tensor q(Mlp& c, const torch::Tensor& obs, const torch::Tensor& action) {
    return c->forward(torch::cat({obs, action}, 1));
  }
};

namespace {

double unit_uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0); }

/// A normal draw around `mu` with `sigma`, truncated to [0, 1] (by rejection; clamped if it
/// keeps missing, which only a sigma far below the distance to the interval could cause).
double truncated_normal(double mu, double sigma, std::mt19937_64& rng) {
  std::normal_distribution<double> normal(mu, sigma);
  for (int i = 0; i < 64; ++i) {
    const double x = normal(rng);
    if (x >= 0.0 && x <= 1.0) return x;
  }
  return std::clamp(mu, 0.0, 1.0);
}

void soft_update(Mlp& target, Mlp& source, double tau) {
  torch::NoGradGuard no_grad;
  auto t = target->parameters();
  auto s = source->parameters();
  for (size_t i = 0; i < t.size(); ++i) t[i].mul_(1.0 - tau).add_(s[i], tau);
}

}  // namespace

DDPGAgent::DDPGAgent(const Space& action_space, const Space& observation_space, DDPGOptions options)
    : action_space_(action_space),
      observation_space_(observation_space),
      options_(std::move(options)),
      rng_(options_.seed) {
  if (action_space_.kind() != Space::Kind::box || action_space_.low().size() != 1)
    throw ConfigError("agents.ddpg: DDPG needs a one-dimensional Box action space (env.actions.type \"box\")");
  const auto& o = options_;
  if (o.buffer_size <= 0 || o.batch_size <= 0 || o.warmup < 0 || o.updates_per_step <= 0)
    throw ConfigError("agents.ddpg: buffer_size, batch_size and updates_per_step must be positive, warmup >= 0");
  if (!(o.tau > 0 && o.tau <= 1) || !(o.moving_alpha > 0 && o.moving_alpha <= 1) ||
      !(o.delta_decay > 0 && o.delta_decay <= 1) || !(o.init_delta > 0) || !(o.gamma >= 0 && o.gamma <= 1))
    throw ConfigError(
        "agents.ddpg: tau, moving_alpha and delta_decay must be in (0, 1], gamma in [0, 1], "
        "init_delta positive");
  const auto d = static_cast<int64_t>(observation_space_.low().size());
  net_ = std::make_shared<Net>(d, o);
  replay_ = torch::zeros({o.buffer_size, 2 * d + 3});
}

void DDPGAgent::begin_episode(int64_t episode, int64_t) {
  episode_ = episode;
  pending_.clear();
}

double DDPGAgent::exploration() const {
  if (episode_ < options_.warmup) return 1.0;
  return options_.init_delta * std::pow(options_.delta_decay, static_cast<double>(episode_ - options_.warmup));
}

double DDPGAgent::to_unit(double action) const {
  const double low = action_space_.low()[0], high = action_space_.high()[0];
  return high > low ? std::clamp((action - low) / (high - low), 0.0, 1.0) : 0.0;
}

double DDPGAgent::policy(const Observation& o) {
  torch::NoGradGuard no_grad;
  const auto obs = torch::tensor(normalize_observation(o, observation_space_)).unsqueeze(0);
  const double unit = net_->act(net_->actor, obs).item<double>();
  return action_space_.low()[0] + unit * (action_space_.high()[0] - action_space_.low()[0]);
}

double DDPGAgent::value(const Observation& o, double action) {
  torch::NoGradGuard no_grad;
  const auto obs = torch::tensor(normalize_observation(o, observation_space_)).unsqueeze(0);
  const auto a = torch::full({1, 1}, static_cast<float>(to_unit(action)));
  return net_->q(net_->critic, obs, a).item<double>();
}

Action DDPGAgent::act(const Observation& o, bool explore) {
  const double low = action_space_.low()[0], high = action_space_.high()[0];
  if (!explore) return Action::continuous({policy(o)});
  double unit = 0.0;
  if (episode_ < options_.warmup) {
    unit = unit_uniform(rng_);
  } else {
    unit = truncated_normal(to_unit(policy(o)), exploration(), rng_);
  }
  return Action::continuous({low + unit * (high - low)});
}

void DDPGAgent::store(const std::vector<float>& obs, double action01, double reward, const std::vector<float>& next,
                      bool end) {
  const auto d = static_cast<int64_t>(obs.size());
  auto row = replay_[stored_ % options_.buffer_size];
  row.narrow(0, 0, d).copy_(torch::tensor(obs));
  row[d] = static_cast<float>(action01);
  row[d + 1] = static_cast<float>(reward);
  row.narrow(0, d + 2, d).copy_(torch::tensor(next));
  row[2 * d + 2] = end ? 1.0f : 0.0f;
  ++stored_;
}

void DDPGAgent::observe(const Transition& t) {
  if (options_.episode_reward) {
    pending_.push_back(t);
    return;
  }
  store(normalize_observation(t.observation, observation_space_), to_unit(t.action.values.at(0)), t.reward,
        normalize_observation(t.next_observation, observation_space_), t.terminated);
  if (episode_ >= options_.warmup)
    for (int64_t i = 0; i < options_.updates_per_step; ++i) learn();
}

void DDPGAgent::end_episode() {
  if (pending_.empty()) return;
  double total = 0.0;
  for (const auto& t : pending_) total += t.reward;
  for (const auto& t : pending_)
    store(normalize_observation(t.observation, observation_space_), to_unit(t.action.values.at(0)), total,
          normalize_observation(t.next_observation, observation_space_), t.terminated);
  const auto steps = static_cast<int64_t>(pending_.size());
  pending_.clear();
  if (episode_ >= options_.warmup)
    for (int64_t i = 0; i < steps * options_.updates_per_step; ++i) learn();
}

void DDPGAgent::learn() {
  const int64_t n = std::min(stored_, options_.buffer_size);
  if (n == 0) return;
  std::vector<int64_t> idx(static_cast<size_t>(options_.batch_size));
  for (auto& i : idx) i = static_cast<int64_t>(rng_() % static_cast<uint64_t>(n));
  const auto batch = replay_.index_select(0, torch::tensor(idx, torch::kInt64));
  const int64_t d = (replay_.size(1) - 3) / 2;
  const auto obs = batch.narrow(1, 0, d), action = batch.narrow(1, d, 1), next = batch.narrow(1, d + 2, d);
  auto reward = batch.narrow(1, d + 1, 1);
  const auto end = batch.narrow(1, 2 * d + 2, 1);
  // AMC's baseline: a moving average of the minibatch rewards, subtracted from them.
  const double mean = reward.mean().item<double>();
  baseline_ = has_baseline_ ? baseline_ + options_.moving_alpha * (mean - baseline_) : mean;
  has_baseline_ = true;
  reward = reward - baseline_;
  torch::Tensor target;
  {
    torch::NoGradGuard no_grad;
    const auto next_q = net_->q(net_->critic_target, next, net_->act(net_->actor_target, next));
    target = reward + options_.gamma * (1.0 - end) * next_q;
  }
  auto critic_loss = torch::mse_loss(net_->q(net_->critic, obs, action), target);
  net_->critic_opt->zero_grad();
  critic_loss.backward();
  net_->critic_opt->step();

  auto actor_loss = -net_->q(net_->critic, obs, net_->act(net_->actor, obs)).mean();
  net_->actor_opt->zero_grad();
  actor_loss.backward();
  net_->actor_opt->step();
  net_->critic_opt->zero_grad();  // the actor's pass left gradients on the critic

  soft_update(net_->actor_target, net_->actor, options_.tau);
  soft_update(net_->critic_target, net_->critic, options_.tau);
  ++updates_;
}

void DDPGAgent::save(const std::string& path) const {
  torch::serialize::OutputArchive archive;
  const std::pair<const char*, const Mlp*> nets[] = {{"actor", &net_->actor},
                                                     {"critic", &net_->critic},
                                                     {"actor_target", &net_->actor_target},
                                                     {"critic_target", &net_->critic_target}};
  for (const auto& [key, mlp] : nets) {
    torch::serialize::OutputArchive part;
    (*mlp)->save(part);
    archive.write(key, part);
  }
  torch::serialize::OutputArchive actor_opt, critic_opt;
  net_->actor_opt->save(actor_opt);
  net_->critic_opt->save(critic_opt);
  archive.write("actor_opt", actor_opt);
  archive.write("critic_opt", critic_opt);
  archive.write("replay", replay_, true);
  std::ostringstream rng;
  rng << rng_;
  const nlohmann::json meta{{"agent", "ddpg"},       {"rng", rng.str()},
                            {"episode", episode_},   {"updates", updates_},
                            {"baseline", baseline_}, {"has_baseline", has_baseline_},
                            {"stored", stored_},     {"replay_width", replay_.size(1)}};
  archive.write("meta", c10::IValue(meta.dump()));
  archive.save_to(path);
}

void DDPGAgent::load(const std::string& path) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
    c10::IValue meta_value;
    archive.read("meta", meta_value);
    const auto meta = nlohmann::json::parse(meta_value.toStringRef());
    if (meta.value("agent", "") != "ddpg") throw DataError(path + ": not a DDPG checkpoint");
    if (meta.value("replay_width", int64_t{0}) != replay_.size(1))
      throw DataError(path + ": the checkpoint was written for another observation size");
    const std::pair<const char*, Mlp*> nets[] = {{"actor", &net_->actor},
                                                 {"critic", &net_->critic},
                                                 {"actor_target", &net_->actor_target},
                                                 {"critic_target", &net_->critic_target}};
    for (const auto& [key, mlp] : nets) {
      torch::serialize::InputArchive part;
      archive.read(key, part);
      (*mlp)->load(part);
    }
    torch::serialize::InputArchive actor_opt, critic_opt;
    archive.read("actor_opt", actor_opt);
    archive.read("critic_opt", critic_opt);
    net_->actor_opt->load(actor_opt);
    net_->critic_opt->load(critic_opt);
    archive.read("replay", replay_, true);
    std::istringstream rng(meta.value("rng", std::string()));
    rng >> rng_;
    episode_ = meta.value("episode", int64_t{0});
    updates_ = meta.value("updates", int64_t{0});
    baseline_ = meta.value("baseline", 0.0);
    has_baseline_ = meta.value("has_baseline", false);
    stored_ = meta.value("stored", int64_t{0});
  } catch (const c10::Error& e) {
    throw DataError(path + ": cannot load the DDPG checkpoint (" + e.what_without_backtrace() + ")");
  }
}

namespace {

std::unique_ptr<Agent> make_ddpg(const AgentContext& c) {
  DDPGOptions o;
  ObjectReader r(c.options, c.path);
  r.get("hidden", o.hidden);
  r.get("lr_actor", o.lr_actor);
  r.get("lr_critic", o.lr_critic);
  r.get("buffer_size", o.buffer_size);
  r.get("batch_size", o.batch_size);
  r.get("gamma", o.gamma);
  r.get("tau", o.tau);
  r.get("warmup", o.warmup);
  r.get("init_delta", o.init_delta);
  r.get("delta_decay", o.delta_decay);
  r.get("moving_alpha", o.moving_alpha);
  r.get("episode_reward", o.episode_reward);
  r.get("updates_per_step", o.updates_per_step);
  r.finish();
  o.seed = c.seed;
  return std::make_unique<DDPGAgent>(c.action_space, c.observation_space, o);
}

}  // namespace

PRUNEGYM_REGISTER(AgentRegistry, "ddpg", make_ddpg,
                  "DDPG (AMC's agent and defaults): one continuous action per layer, env.actions.type \"box\"");

}  // namespace prunegym
