#include <prunegym/agents/factory.h>
#include <prunegym/agents/tabular_q.h>
#include <prunegym/core/errors.h>
#include <prunegym/core/json_reader.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

namespace prunegym {

namespace {

int64_t argmax_random_ties(const std::vector<double>& q, std::mt19937_64& rng) {
  const double best = *std::max_element(q.begin(), q.end());
  std::vector<int64_t> ties;
  for (size_t i = 0; i < q.size(); ++i)
    if (q[i] == best) ties.push_back(static_cast<int64_t>(i));
  return ties[static_cast<size_t>(rng() % ties.size())];
}

}  // namespace

TabularQAgent::TabularQAgent(const Space& action_space, const Space& observation_space, QLearningOptions options)
    : action_space_(action_space),
      observation_space_(observation_space),
      options_(std::move(options)),
      rng_(options_.seed) {
  if (action_space_.kind() != Space::Kind::discrete)
    throw ConfigError("agents.q: tabular Q-learning needs a Discrete action space");
  if (observation_space_.kind() != Space::Kind::box) throw ConfigError("agents.q: the observation space must be a Box");
  if (options_.update != "eq3" && options_.update != "eq6")
    throw ConfigError("agents.q.update: unknown rule '" + options_.update + "' (known: eq3, eq6)");
  if (options_.bins < 1) throw ConfigError("agents.q.bins must be >= 1");
  if (!(options_.alpha > 0 && options_.alpha <= 1)) throw ConfigError("agents.q.alpha must be in (0, 1]");
  epsilon_ = options_.epsilon_start;
}

double TabularQAgent::updated_q(const std::string& rule, double q, double reward, double max_next, double alpha,
                                double gamma) {
  if (rule == "eq3") return q + alpha * (reward + max_next - q);
  return (1.0 - alpha) * q + alpha * (reward + gamma * max_next);
}

void TabularQAgent::begin_episode(int64_t episode, int64_t total) {
  const double progress =
      total > 1 ? std::min(1.0, static_cast<double>(episode) / static_cast<double>(total - 1)) : 1.0;
  epsilon_ = options_.epsilon_start + (options_.epsilon_end - options_.epsilon_start) * progress;
}

std::string TabularQAgent::state_key(const Observation& o) const {
  std::ostringstream key;
  const auto& lo = observation_space_.low();
  const auto& hi = observation_space_.high();
  for (size_t i = 0; i < o.size(); ++i) {
    int64_t bin = 0;
    if (i < lo.size() && hi[i] > lo[i]) {
      bin = static_cast<int64_t>(std::floor((o[i] - lo[i]) / (hi[i] - lo[i]) * static_cast<double>(options_.bins)));
      bin = std::clamp<int64_t>(bin, 0, options_.bins - 1);
    }
    key << (i ? "," : "") << bin;
  }
  return key.str();
}

std::vector<double>& TabularQAgent::row(const std::string& key) {
  auto it = table_.find(key);
  if (it == table_.end())
    it = table_.emplace(key, std::vector<double>(static_cast<size_t>(action_space_.n()), 0.0)).first;
  return it->second;
}

std::vector<double> TabularQAgent::q_values(const Observation& o) const {
  auto it = table_.find(state_key(o));
  return it == table_.end() ? std::vector<double>(static_cast<size_t>(action_space_.n()), 0.0) : it->second;
}

std::optional<bool> TabularQAgent::knows(const Observation& o) const {
  auto it = table_.find(state_key(o));
  if (it == table_.end()) return false;
  const auto& q = it->second;
  const double best = *std::max_element(q.begin(), q.end());
  return std::count(q.begin(), q.end(), best) == 1;
}

Action TabularQAgent::act(const Observation& o, bool explore) {
  const double u = static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0);
  if (explore && u < epsilon_) return action_space_.sample(rng_);
  return Action(argmax_random_ties(q_values(o), rng_));
}

void TabularQAgent::observe(const Transition& t) {
  const auto next = q_values(t.next_observation);
  const double max_next = t.terminated ? 0.0 : *std::max_element(next.begin(), next.end());
  auto& q = row(state_key(t.observation))[static_cast<size_t>(t.action.index)];
  q = updated_q(options_.update, q, t.reward, max_next, options_.alpha, options_.gamma);
}

void TabularQAgent::save(const std::string& path) const {
  std::ostringstream rng;
  rng << rng_;
  nlohmann::json j{
      {"agent", "q"},        {"update", options_.update}, {"bins", options_.bins}, {"actions", action_space_.n()},
      {"epsilon", epsilon_}, {"rng", rng.str()},          {"table", table_}};
  write_checkpoint_json(path, j);
}

void TabularQAgent::load(const std::string& path) {
  const auto j = read_checkpoint_json(path, "q");
  if (j.value("actions", int64_t{-1}) != action_space_.n() || j.value("bins", int64_t{-1}) != options_.bins)
    throw DataError(path + ": the Q-table was saved for another action space or bin count");
  table_ = j.at("table").get<std::unordered_map<std::string, std::vector<double>>>();
  epsilon_ = j.value("epsilon", epsilon_);
  std::istringstream rng(j.value("rng", std::string()));
  rng >> rng_;
}

namespace {

std::unique_ptr<Agent> make_tabular_q(const AgentContext& c) {
  QLearningOptions o;
  ObjectReader r(c.options, c.path);
  r.get("update", o.update);
  r.get("alpha", o.alpha);
  r.get("gamma", o.gamma);
  r.get("bins", o.bins);
  r.get("epsilon_start", o.epsilon_start);
  r.get("epsilon_end", o.epsilon_end);
  r.finish();
  o.seed = c.seed;
  return std::make_unique<TabularQAgent>(c.action_space, c.observation_space, o);
}

}  // namespace

PRUNEGYM_REGISTER(AgentRegistry, "q", make_tabular_q,
                  "tabular Q-learning over binned observations, epsilon-greedy (the lottery-round agent)");

}  // namespace prunegym
