#include <prunegym/agents/factory.h>
#include <prunegym/core/errors.h>
#include <prunegym/core/json_reader.h>
#include <prunegym/env/config.h>
#include <prunegym/env/config_check.h>

#include <algorithm>
#include <optional>

namespace prunegym {

namespace {

const nlohmann::json& section_of(const nlohmann::json& agents, const std::string& name) {
  static const nlohmann::json empty = nlohmann::json::object();
  if (!agents.is_object()) throw ConfigError("config key 'agents' must be an object");
  auto it = agents.find(name);
  return it == agents.end() ? empty : *it;
}

/// The section's own "episodes" when it gives one (a positive integer, else ConfigError).
std::optional<int64_t> own_episodes(const std::string& name, const nlohmann::json& section) {
  if (!section.contains("episodes")) return std::nullopt;
  const auto& e = section["episodes"];
  if (!e.is_number_integer() || e.get<int64_t>() < 1)
    throw ConfigError("config key 'agents." + name + ".episodes' must be a positive integer");
  return e.get<int64_t>();
}

}  // namespace

TrainSettings parse_train_settings(const nlohmann::json& section) {
  TrainSettings t;
  ObjectReader r(section, "train");
  r.get("episodes", t.episodes);
  r.get("policy_episodes", t.policy_episodes);
  r.get("greedy_every", t.greedy_every);
  r.get("greedy_measure", t.greedy_measure);
  r.get("final_policy", t.final_policy);
  r.get("recalibrate_bn", t.recalibrate_bn);
  read_train_options(r.child("finetune"), t.finetune, false);
  if (section.is_object() && section.contains("final_train")) {
    t.final_train = section.at("final_train");
    TrainOptions check;  // validated here, applied over lottery.train by the train pipeline
    check.samples = 0;
    read_train_options(r.child("final_train"), check, true);
    if (check.samples != 0)
      throw ConfigError(
          "config key 'train.final_train.samples' must be 0: the final network trains on the whole "
          "training split");
  }
  r.finish();
  if (t.episodes < 1) throw ConfigError("config key 'train.episodes' must be >= 1");
  if (t.policy_episodes < 1) throw ConfigError("config key 'train.policy_episodes' must be >= 1");
  if (t.greedy_every < 0) throw ConfigError("config key 'train.greedy_every' must be >= 0 (0 = no greedy checks)");
  if (t.greedy_measure != "episode" && t.greedy_measure != "dense")
    throw ConfigError("config key 'train.greedy_measure' must be \"episode\" or \"dense\", not \"" + t.greedy_measure +
                      "\"");
  if (t.final_policy != "one_shot" && t.final_policy != "episode")
    throw ConfigError("config key 'train.final_policy' must be \"one_shot\" or \"episode\", not \"" + t.final_policy +
                      "\"");
  if (t.recalibrate_bn < 0) throw ConfigError("config key 'train.recalibrate_bn' must be >= 0 (0 = off)");
  if (t.recalibrate_bn > 0 && t.final_policy == "episode")
    throw ConfigError(
        "config key 'train.recalibrate_bn' applies to train.final_policy \"one_shot\"; an episode "
        "retrains after every layer and so keeps its statistics current");
  if (t.finetune.epochs < 0) throw ConfigError("config key 'train.finetune.epochs' must be >= 0");
  return t;
}

namespace {

/// The "train" and "agents" sections are checked when a config loads (see register_config_check).
void check_agent_sections(const Config& c) {
  parse_train_settings(c.train);
  for (auto it = c.agents.begin(); it != c.agents.end(); ++it) {
    if (!it.value().is_object())
      throw ConfigError("config key 'agents." + it.key() + "' must be an object of that agent's options");
    own_episodes(it.key(), it.value());
  }
}

const bool kAgentSectionsChecked [[maybe_unused]] = register_config_check("agents", check_agent_sections);

}  // namespace

template <>
AgentRegistry& AgentRegistry::instance() {
  static AgentRegistry registry("agent", "--agent");
  return registry;
}

std::vector<std::string> agent_names() { return AgentRegistry::instance().names(); }

int64_t agent_episodes(const std::string& name, const nlohmann::json& agents, const TrainSettings& train) {
  if (const auto own = own_episodes(name, section_of(agents, name))) return *own;
  // An agent may cap its own budget (registered trait "max_episodes"; the uniform baseline's is 8).
  const auto& traits = AgentRegistry::instance().traits(name);
  if (traits.contains("max_episodes"))
    return std::min<int64_t>(train.episodes, traits.at("max_episodes").get<int64_t>());
  return train.episodes;
}

std::unique_ptr<Agent> make_agent(const std::string& name, const nlohmann::json& agents, const Space& action_space,
                                  const Space& observation_space, uint64_t seed, double target_sparsity) {
  AgentRegistry::instance().check(name);
  nlohmann::json options = section_of(agents, name);
  if (!options.is_object()) throw ConfigError("config key 'agents." + name + "' must be an object");
  options.erase("episodes");  // read by agent_episodes()
  const AgentContext context{options, "agents." + name, action_space, observation_space, seed, target_sparsity};
  return AgentRegistry::instance().make(name, context);
}

}  // namespace prunegym
