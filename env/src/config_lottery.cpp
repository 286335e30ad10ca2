// The "lottery" section of the config: lottery-ticket rounds for `prunegym lottery` and for the
// rounds episodes. Shared helpers first.

#include "config_sections.h"

#include <utility>

namespace prunegym {

std::vector<double> LotteryOptions::schedule() const {
  if (!sparsities.empty()) return sparsities;
  if (one_shot) return {*one_shot};
  std::vector<double> out;
  double keep = 1.0;
  for (int64_t r = 0; r < rounds; ++r) {
    keep *= 1.0 - rate;
    out.push_back(1.0 - keep);
  }
  return out;
}

namespace config_detail {

using nlohmann::json;

json train_json(const TrainOptions& t, bool with_samples) {
  json j{{"optimizer", t.optimizer},   {"lr", t.lr},        {"momentum", t.momentum}, {"weight_decay", t.weight_decay},
         {"batch_size", t.batch_size}, {"epochs", t.epochs}};
  if (with_samples) j["samples"] = t.samples;
  return j;
}

void require_one_of(const std::string& key, const std::string& value, std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) {
    if (value == a) return;
    list += (list.empty() ? "" : ", ") + std::string(a);
  }
  throw ConfigError("config key '" + key + "': unknown value '" + value + "' (known: " + list + ")");
}

json lottery_json(const LotteryOptions& o) {
  json j{{"strategies", o.strategies},
         {"strategy", o.strategy},
         {"scope", o.scope},
         {"layers", o.layers},
         {"train", train_json(o.train, true)},
         {"eval_every", o.eval_every},
         {"rewind_iteration", o.rewind_iteration}};
  if (!o.sparsities.empty()) {
    j["sparsities"] = o.sparsities;
  } else if (o.one_shot) {
    j["one_shot"] = *o.one_shot;
    if (o.output_rate) j["output_rate"] = *o.output_rate;
    if (o.conv_rate) j["conv_rate"] = *o.conv_rate;
  } else {
    j["rate"] = o.rate;
    j["rounds"] = o.rounds;
    if (o.output_rate) j["output_rate"] = *o.output_rate;
    if (o.conv_rate) j["conv_rate"] = *o.conv_rate;
  }
  return j;
}

/// The "lottery" section.
void read_lottery_section(ObjectReader& root, LotteryOptions& o) {
  auto l = root.child("lottery");
  l.get("strategies", o.strategies);
  l.get("strategy", o.strategy);
  l.get("scope", o.scope);
  // output_rate and conv_rate go with either per-round schedule: rate/rounds, or one_shot (a single
  // round, so the layer's rate is its sparsity).
  const bool has_rate = l.find("rate") || l.find("rounds");
  l.get("rate", o.rate);
  l.get("output_rate", o.output_rate);
  l.get("conv_rate", o.conv_rate);
  l.get("rounds", o.rounds);
  l.get("sparsities", o.sparsities);
  l.get("one_shot", o.one_shot);
  l.get("layers", o.layers);
  l.get("eval_every", o.eval_every);
  l.get("rewind_iteration", o.rewind_iteration);
  read_train_options(l.child("train"), o.train, true);
  l.finish();
  if (o.strategies.empty()) throw ConfigError("config key 'lottery.strategies' must name at least one strategy");
  for (const auto& s : o.strategies)
    require_one_of("lottery.strategies", s, {"keep", "rewind_init", "rewind_iter", "reinit", "random_mask"});
  require_one_of("lottery.strategy", o.strategy, {"keep", "rewind_init", "rewind_iter", "reinit", "random_mask"});
  require_one_of("lottery.scope", o.scope, {"layerwise", "global"});
  if (!(o.rate > 0 && o.rate < 1)) throw ConfigError("config key 'lottery.rate' must be in (0, 1)");
  if (o.rounds < 1) throw ConfigError("config key 'lottery.rounds' must be >= 1");
  const int schedules = int(!o.sparsities.empty()) + int(o.one_shot.has_value()) + int(has_rate);
  if (schedules > 1)
    throw ConfigError(
        "config section 'lottery': give one schedule - rate/rounds, sparsities, or one_shot - not several");
  double prev = 0.0;
  for (double v : o.sparsities) {
    if (!(v > prev && v < 1))
      throw ConfigError("config key 'lottery.sparsities' must increase strictly within (0, 1), e.g. [0.2, 0.52, 0.8]");
    prev = v;
  }
  if (o.one_shot && !(*o.one_shot > 0 && *o.one_shot < 1))
    throw ConfigError("config key 'lottery.one_shot' must be in (0, 1)");
  for (const auto& [key, value] : {std::pair{"output_rate", o.output_rate}, std::pair{"conv_rate", o.conv_rate}}) {
    if (!value) continue;
    const std::string k = key;
    if (!(*value >= 0 && *value < 1)) throw ConfigError("config key 'lottery." + k + "' must be in [0, 1)");
    if (!o.sparsities.empty())
      throw ConfigError("config key 'lottery." + k +
                        "' goes with rate/rounds or one_shot, not with 'sparsities' (give "
                        "the layers' rate per round, or use one_shot with " +
                        k + " as their sparsity)");
    if (o.scope != "layerwise") throw ConfigError("config key 'lottery." + k + "' applies to the layerwise scope only");
  }
  if (o.eval_every < 1) throw ConfigError("config key 'lottery.eval_every' must be >= 1");
  if (o.rewind_iteration < 0) throw ConfigError("config key 'lottery.rewind_iteration' must be >= 0");
}

}  // namespace config_detail

}  // namespace prunegym
