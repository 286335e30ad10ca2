#include <prunegym/agents/runner.h>

#include <chrono>
#include <cmath>

namespace prunegym {

uint64_t episode_seed(uint64_t seed, int64_t episode, bool greedy) {
  return seed * 1000003ULL + static_cast<uint64_t>(episode) + (greedy ? 0x9E3779B97F4A7C15ULL : 0ULL);
}

EpisodeRecord run_episode(Env& env, Agent& agent, bool learn, uint64_t seed, int64_t episode, int64_t total,
                          const EpisodeStepCallback& on_step) {
  const auto start = std::chrono::steady_clock::now();
  EpisodeRecord rec;
  rec.episode = episode;
  if (learn) agent.begin_episode(episode, total);
  rec.exploration = agent.exploration();
  ResetOptions reset;
  reset.seed = seed;
  Observation obs = env.reset(reset).observation;
  while (true) {
    if (const auto known = agent.knows(obs)) rec.known_steps = rec.known_steps.value_or(0) + (*known ? 1 : 0);
    const Action action = agent.act(obs, learn);
    rec.actions.push_back(action);
    StepResult r = env.step(action);
    rec.total_reward += r.reward;
    rec.values.push_back(r.info.value);
    rec.accuracy = r.info.accuracy;
    rec.sparsity = r.info.sparsity;
    rec.early_stop = r.info.early_stop;
    rec.truncated = r.truncated;
    ++rec.steps;
    const bool done = r.terminated || r.truncated;
    if (learn) agent.observe({obs, action, r.reward, r.observation, r.terminated, r.truncated, r.info});
    if (on_step) on_step(r);
    obs = std::move(r.observation);
    if (done) break;
  }
  if (learn) agent.end_episode();
  rec.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return rec;
}

EpisodeRecord replay_actions(Env& env, const std::vector<Action>& actions, uint64_t seed) {
  const auto start = std::chrono::steady_clock::now();
  EpisodeRecord rec;
  ResetOptions reset;
  reset.seed = seed;
  env.reset(reset);
  for (const auto& action : actions) {
    const StepResult r = env.step(action);
    rec.actions.push_back(action);
    rec.total_reward += r.reward;
    rec.values.push_back(r.info.value);
    rec.accuracy = r.info.accuracy;
    rec.sparsity = r.info.sparsity;
    rec.early_stop = r.info.early_stop;
    rec.truncated = r.truncated;
    ++rec.steps;
    if (r.terminated || r.truncated) break;
  }
  rec.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return rec;
}

std::vector<EpisodeRecord> train_agent(Env& env, Agent& agent, const RunOptions& o) {
  std::vector<EpisodeRecord> out;
  for (int64_t e = o.start_episode; e < o.episodes; ++e) {
    if (o.stop && o.stop->load()) break;
    out.push_back(run_episode(env, agent, true, episode_seed(o.seed, e), e, o.episodes));
    if (o.on_episode) o.on_episode(out.back());
  }
  return out;
}

GreedyPolicy greedy_policy(Env& env, Agent& agent, int64_t episodes, uint64_t seed) {
  GreedyPolicy p;
  std::vector<int64_t> counts;
  for (int64_t e = 0; e < episodes; ++e) {
    p.episodes.push_back(run_episode(env, agent, false, episode_seed(seed, e, true), e, episodes));
    const auto& v = p.episodes.back().values;
    if (p.mean_values.size() < v.size()) {
      p.mean_values.resize(v.size(), 0.0);
      counts.resize(v.size(), 0);
    }
    for (size_t i = 0; i < v.size(); ++i) {
      p.mean_values[i] += v[i];
      ++counts[i];
    }
  }
  for (size_t i = 0; i < p.mean_values.size(); ++i) p.mean_values[i] /= static_cast<double>(counts[i]);
  return p;
}

}  // namespace prunegym
