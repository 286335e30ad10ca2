#include <prunegym/agents/baselines.h>
#include <prunegym/agents/dqn.h>
#include <prunegym/agents/factory.h>
#include <prunegym/agents/ppo.h>
#include <prunegym/agents/tabular_q.h>
#include <prunegym/env/config.h>
#include <prunegym/env/json_reader.h>
#include <prunegym/networks/errors.h>

#include <algorithm>

namespace prunegym {

namespace {

const nlohmann::json& section_of(const nlohmann::json& agents, const std::string& name) {
  static const nlohmann::json empty = nlohmann::json::object();
  if (!agents.is_object()) throw ConfigError("config key 'agents' must be an object");
  auto it = agents.find(name);
  return it == agents.end() ? empty : *it;
}

}  // namespace

TrainSettings parse_train_settings(const nlohmann::json& section) {
  TrainSettings t;
  ObjectReader r(section, "train");
  r.get("episodes", t.episodes);
  r.get("policy_episodes", t.policy_episodes);
  read_train_options(r.child("finetune"), t.finetune, false);
  r.finish();
  if (t.episodes < 1) throw ConfigError("config key 'train.episodes' must be >= 1");
  if (t.policy_episodes < 1) throw ConfigError("config key 'train.policy_episodes' must be >= 1");
  if (t.finetune.epochs < 0) throw ConfigError("config key 'train.finetune.epochs' must be >= 0");
  return t;
}

std::vector<std::string> agent_names() { return {"q", "dqn", "ppo", "random", "uniform"}; }

int64_t agent_episodes(const std::string& name, const nlohmann::json& agents, const TrainSettings& train) {
  const auto& s = section_of(agents, name);
  if (s.contains("episodes")) {
    if (!s["episodes"].is_number_integer() || s["episodes"].get<int64_t>() < 1)
      throw ConfigError("config key 'agents." + name + ".episodes' must be a positive integer");
    return s["episodes"].get<int64_t>();
  }
  // The uniform baseline's bisection over a 23-value grid settles within 5-6 episodes.
  if (name == "uniform") return std::min<int64_t>(train.episodes, 8);
  return train.episodes;
}

std::unique_ptr<Agent> make_agent(const std::string& name, const nlohmann::json& agents, const Space& action_space,
                                  const Space& observation_space, uint64_t seed, double target_sparsity) {
  const auto& section = section_of(agents, name);
  ObjectReader r(section, "agents." + name);
  int64_t episodes = 0;
  r.get("episodes", episodes);  // read by agent_episodes()
  if (name == "q") {
    QLearningOptions o;
    r.get("update", o.update);
    r.get("alpha", o.alpha);
    r.get("gamma", o.gamma);
    r.get("bins", o.bins);
    r.get("epsilon_start", o.epsilon_start);
    r.get("epsilon_end", o.epsilon_end);
    r.finish();
    o.seed = seed;
    return std::make_unique<TabularQAgent>(action_space, observation_space, o);
  }
  if (name == "dqn") {
    DQNOptions o;
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
    o.seed = seed;
    return std::make_unique<DQNAgent>(action_space, observation_space, o);
  }
  if (name == "ppo") {
    PPOOptions o;
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
    o.seed = seed;
    return std::make_unique<PPOAgent>(action_space, observation_space, o);
  }
  if (name == "random") {
    r.finish();
    return std::make_unique<RandomAgent>(action_space, seed);
  }
  if (name == "uniform") {
    UniformOptions o;
    o.target_sparsity = target_sparsity;
    r.get("target_sparsity", o.target_sparsity);
    r.finish();
    return std::make_unique<UniformAgent>(action_space, o);
  }
  throw ConfigError("unknown agent '" + name + "' (known: q, dqn, ppo, random, uniform)");
}

}  // namespace prunegym
