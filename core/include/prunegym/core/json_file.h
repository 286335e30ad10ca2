#pragma once
/// Reading JSON files (comments allowed), key.path=value overrides, and atomic file writes.

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace prunegym {

/// Reads a JSON file (comments allowed); ConfigError names the file, and the line for syntax errors.
nlohmann::json read_json_file(const std::string& path);

/// Applies one "key.path=value" override to a document (the value is parsed as JSON, else taken
/// as a string); throws ConfigError when the text has no key or no '='.
void apply_override(nlohmann::json& doc, const std::string& assignment);

/// Writes a file through a temporary and a rename, so an interruption never leaves half a file.
void write_atomic(const std::filesystem::path& path, const std::string& content);

}  // namespace prunegym
