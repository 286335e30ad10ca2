#pragma once
// Shared fixtures: a tiny synthetic config and a private cache folder per test process.

#include <prunegym/env/config.h>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <filesystem>
#include <string>

namespace prunegym::test {

inline std::string scratch_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("prunegym-tests-" + std::to_string(::getpid())) / name;
  std::filesystem::create_directories(dir);
  return dir.string();
}

/// The tiny synthetic setup: 12x12 inputs, MLP 64-32-10, pretrained in well under a second.
inline nlohmann::json tiny_json() {
  return nlohmann::json::parse(R"({
    "seed": 0, "threads": 2,
    "data": {"source": "synthetic", "validation": 300,
             "synthetic": {"train": 1500, "test": 400, "height": 12, "width": 12, "signal": 0.35, "seed": 7}},
    "network": {"name": "custom", "layers": ["flatten", "linear:64", "relu", "linear:32", "relu", "linear"],
                "pretrain": {"lr": 0.002, "batch_size": 64, "epochs": 8}},
    "env": {"retrain": {"samples": 200, "batch_size": 50},
            "reward": {"name": "purl", "target_sparsity": 0.8}}
  })");
}

inline Config tiny_config(const nlohmann::json& patch = nlohmann::json::object()) {
  auto j = tiny_json();
  j.merge_patch(patch);
  j["cache_dir"] = scratch_dir("cache");
  return Config::from_json(j);
}

}  // namespace prunegym::test
