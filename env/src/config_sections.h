#pragma once
// The config's sections that live in files of their own (config.cpp reads the rest), and the
// helpers they share with it. Internal to prunegym_env.

#include <prunegym/core/json_reader.h>
#include <prunegym/env/config.h>

#include <initializer_list>
#include <string>

namespace prunegym::config_detail {

/// The JSON form of training settings (with or without "samples").
nlohmann::json train_json(const TrainOptions& t, bool with_samples);
/// ConfigError naming `key` and the allowed values unless `value` is one of them.
void require_one_of(const std::string& key, const std::string& value, std::initializer_list<const char*> allowed);

/// The "lottery" section.
void read_lottery_section(ObjectReader& root, LotteryOptions& options);
nlohmann::json lottery_json(const LotteryOptions& options);

}  // namespace prunegym::config_detail
